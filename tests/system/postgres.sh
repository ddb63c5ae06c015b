#!/usr/bin/env bash
# A local PostgreSQL for the PostgreSQL tests: tests/system/postgres.sh up|down|status
#
# up      installs Debian's postgresql if no server binaries are found (as root, apt-get),
#         creates a cluster of its own (initdb) in $PG_ROOT, starts it on 127.0.0.1:$PG_PORT
#         (and a Unix socket in $PG_ROOT), and creates the database $PG_DB. A server that
#         already answers on that port is used as it is. Prints the URL the tests use.
#         Exit 0 when the database answers; exit 1, with the reason on stderr, when no
#         PostgreSQL can be had here (not root and not installed, no apt-get, no package).
# down    stops the server this script started; keeps its files for the next `up`.
# status  exit 0 when the database answers.
#
# As root the server runs as the `postgres` user (PostgreSQL refuses to run as root).
# The tests read SUPERVISOR_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:55432/
# supervisor_test: keep PG_PORT and PG_DB in step with it.
set -euo pipefail

PG_PORT=${PG_PORT:-55432}
PG_DB=${PG_DB:-supervisor_test}
if [[ $EUID -eq 0 ]]; then
    PG_ROOT=${PG_ROOT:-/var/lib/supervisor-postgres}
else
    PG_ROOT=${PG_ROOT:-${XDG_RUNTIME_DIR:-/tmp}/supervisor-postgres-$EUID}
fi
DATA=$PG_ROOT/data
LOG=$PG_ROOT/server.log
MARK=$PG_ROOT/written-by-supervisor-tests
URL="postgresql://postgres@127.0.0.1:$PG_PORT/$PG_DB"

die() { echo "postgres.sh: $*" >&2; exit 1; }

pg_bin() {  # the newest installed server's bin directory
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n $dir && -x $dir/initdb ]] && echo "$dir"
}

install_packages() {
    pg_bin >/dev/null && return 0
    [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed and installing it needs root"
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and there is no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # Others may be installing packages at the same time: wait for the dpkg lock.
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -y -qq)
    if ! "${apt[@]}" install --no-install-recommends postgresql >/dev/null 2>&1; then
        "${apt[@]}" update >/dev/null 2>&1 || true
        "${apt[@]}" install --no-install-recommends postgresql >/dev/null \
            || die "apt-get could not install postgresql"
    fi
    pg_bin >/dev/null || die "postgresql installed, but no server binaries in /usr/lib/postgresql"
}

as_owner() {  # run a server command as the cluster's owner
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

answers() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 3 2>/dev/null; }

psql_admin() {
    "$(pg_bin)/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"
}

create_database() {
    if ! psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
        psql_admin -c "CREATE DATABASE \"$PG_DB\"" || die "cannot create database $PG_DB"
    fi
}

up() {
    install_packages
    local bin
    bin=$(pg_bin)
    if answers; then
        echo "PostgreSQL already answers on 127.0.0.1:$PG_PORT: using it"
    else
        if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
            die "no 'postgres' user to run the server as (PostgreSQL refuses to run as root)"
        fi
        mkdir -p "$PG_ROOT"
        [[ $EUID -eq 0 ]] && chown postgres: "$PG_ROOT"
        chmod 0700 "$PG_ROOT"
        if [[ ! -f $DATA/PG_VERSION ]]; then
            # trust: only local connections are possible (loopback and a private socket).
            as_owner "$bin/initdb" -D "$DATA" -U postgres -A trust --no-sync -E UTF8 \
                >"$PG_ROOT/initdb.log" 2>&1 || { cat "$PG_ROOT/initdb.log" >&2; die "initdb failed"; }
            touch "$MARK"
        fi
        as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_ROOT -c fsync=off" start \
            >/dev/null || { tail -n 20 "$LOG" >&2 || true; die "the server did not start"; }
    fi
    create_database
    echo "PostgreSQL answers: $URL"
}

down() {
    [[ -f $MARK && -f $DATA/postmaster.pid ]] || { echo "no PostgreSQL started by this script"; return 0; }
    as_owner "$(pg_bin)/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    echo "PostgreSQL stopped"
}

status() {
    pg_bin >/dev/null || { echo "PostgreSQL is not installed"; return 1; }
    answers || { echo "PostgreSQL does not answer on 127.0.0.1:$PG_PORT"; return 1; }
    echo "PostgreSQL answers: $URL"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
