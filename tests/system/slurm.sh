#!/usr/bin/env bash
# A single-node Slurm on this host for the Slurm tests: tests/system/slurm.sh up|down|status
#
# up      installs slurm-wlm + munge if missing (Debian/Ubuntu, as root), writes a slurm.conf
#         for `hostname`, starts munged, slurmctld and slurmd, and waits until the node is idle.
#         A Slurm that already answers (a real cluster, or ours from an earlier `up`) is used
#         as it is. Exit 0 when `sinfo` answers; exit 1, with the reason on stderr, when no
#         Slurm can be had here (not root, no apt-get, no package).
# down    cancels every job, stops the daemons this script started, keeps the installation.
# status  prints `sinfo` and `squeue`; exit 0 when Slurm answers.
#
# No systemd is assumed: the daemons are started directly. Only a slurm.conf this script
# wrote (it carries the MARK line) is ever replaced or used to stop daemons.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
STATE=/var/lib/supervisor-slurm
LOGS=/var/log/supervisor-slurm
MARK="# written by supervisor tests/system/slurm.sh"

die() { echo "slurm.sh: $*" >&2; exit 1; }
answers() { timeout 5 sinfo -h >/dev/null 2>&1; }
ours() { [[ -f $CONF ]] && grep -qF "$MARK" "$CONF"; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null && return 0
    [[ $EUID -eq 0 ]] || die "Slurm is not installed and installing it needs root"
    command -v apt-get >/dev/null || die "Slurm is not installed and there is no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # Others may be installing packages at the same time: wait for the dpkg lock.
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -y -qq)
    local packages=(slurmctld slurmd slurm-client munge)
    if ! "${apt[@]}" install --no-install-recommends "${packages[@]}" >/dev/null 2>&1; then
        "${apt[@]}" update >/dev/null 2>&1 || true
        "${apt[@]}" install --no-install-recommends "${packages[@]}" >/dev/null \
            || die "apt-get could not install ${packages[*]}"
    fi
}

write_conf() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc --all)
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$LOGS"
    cat >"$CONF" <<EOF
$MARK
# A single-node test cluster; node = \`hostname -s\` = $host.
ClusterName=supervisor-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
InactiveLimit=0
KillWait=5
MinJobAge=30
SlurmdTimeout=60
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        if id munge >/dev/null 2>&1; then
            runuser -u munge -- munged
        else
            munged --force
        fi
    fi
}

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
    if answers; then
        echo "Slurm already answers: using it"
        sinfo
        return 0
    fi
    if [[ -f $CONF ]] && ! ours; then
        die "$CONF exists and was not written by this script; not touching it"
    fi
    install_packages
    write_conf
    start_munge
    alive "$STATE/slurmctld.pid" || slurmctld
    alive "$STATE/slurmd.pid" || slurmd
    for _ in $(seq 1 60); do
        if answers && sinfo -h -o %t | grep -qE '^(idle|mix|alloc)'; then
            sinfo
            return 0
        fi
        sleep 0.5
    done
    tail -n 20 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2 || true
    die "slurmctld/slurmd started but the node did not become idle within 30 s"
}

down() {
    ours || { echo "no Slurm started by this script"; return 0; }
    answers && scancel --full --user "$(id -un)" 2>/dev/null || true
    for pid_file in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
        if alive "$pid_file"; then
            kill "$(cat "$pid_file")"
            for _ in $(seq 1 20); do alive "$pid_file" || break; sleep 0.25; done
        fi
    done
    echo "Slurm stopped"
}

status() {
    answers || { echo "Slurm does not answer"; return 1; }
    sinfo
    squeue
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
