#!/usr/bin/env bash
# A 4-node Slurm on this one host for the Slurm tests: tests/system/slurm.sh up|down|status
#
# up      installs slurm-wlm + munge if missing (Debian/Ubuntu, as root), writes a slurm.conf
#         with NODES nodes n1..nN on `hostname -s` (one slurmd each, `slurmd -N nX`, a port
#         each), starts munged, slurmctld and the slurmds, and waits until every node is idle.
#         A Slurm that answers and is not ours (a real cluster) is used as it is. Ours from an
#         earlier `up` is kept when its layout is the same (a stopped slurmd is started again,
#         a drained or down node resumed) and rewritten when not (e.g. the single-node one).
#         Exit 0 when `sinfo` answers; exit 1, with the reason on stderr, when no Slurm can
#         be had here (not root, no apt-get, no package).
# down    cancels every job, stops the daemons this script started, keeps the installation.
# status  prints `sinfo` and `squeue`; exit 0 when Slurm answers.
#
# NODES (default 4) and CPUS per node (default 12) can be set in the environment. Nodes claim
# CPUS whatever the host has (SlurmdParameters=config_overrides): the tests' trials sleep, and
# 1-core jobs are spread over the nodes (LLN=YES) as on a real machine. Each node has its
# name as a feature, so a test keeps its jobs on some nodes (--constraint='n2|n3'). A node's
# slurmd can be killed and started again on its own (tests/system/slurmkit.py does, as a
# dead node: its pid file is $STATE/slurmd-<node>.pid).
#
# No systemd is assumed: the daemons are started directly. Only a slurm.conf this script
# wrote (it carries the MARK line) is ever replaced or used to stop daemons.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
STATE=/var/lib/supervisor-slurm
LOGS=/var/log/supervisor-slurm
MARK="# written by supervisor tests/system/slurm.sh"
NODES=${NODES:-4}
CPUS=${CPUS:-12}
BASE_PORT=6830  # node i's slurmd listens on BASE_PORT + i
LAYOUT="# layout: nodes=$NODES cpus=$CPUS features=names"

die() { echo "slurm.sh: $*" >&2; exit 1; }
answers() { timeout 5 sinfo -h >/dev/null 2>&1; }
ours() { [[ -f $CONF ]] && grep -qF "$MARK" "$CONF"; }
same_layout() { grep -qxF "$LAYOUT" "$CONF"; }
node_names() { seq -f "n%g" 1 "$NODES"; }
# A killed daemon may linger as a zombie for a while here (PID 1 reaps lazily): not alive.
# alive PID_FILE COMMAND: the pid in the file runs COMMAND (not a zombie, and not another
# program that got the pid of one that died: pids are reused).
alive() {
    local pid state
    [[ -f $1 ]] && pid=$(cat "$1") && state=$(ps -o stat= -p "$pid" 2>/dev/null) \
        && [[ $state != Z* ]] && [[ $(ps -o args= -p "$pid" 2>/dev/null) == *"$2"* ]]
}

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
    local host mem_mb i
    host=$(hostname -s)
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$LOGS"
    {
        cat <<EOF
$MARK
$LAYOUT
# $NODES test nodes on this host (\`hostname -s\` = $host), one slurmd each: slurmd -N nX.
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
# The nodes claim more CPUs and memory than the host has; a restarted slurmd of a node
# marked down comes back by itself.
SlurmdParameters=config_overrides
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d/%n
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd-%n.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd-%n.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
InactiveLimit=0
KillWait=5
MinJobAge=60
SlurmdTimeout=30
EOF
        for i in $(seq 1 "$NODES"); do
            echo "NodeName=n$i NodeHostname=$host Port=$((BASE_PORT + i)) Features=n$i CPUs=$CPUS RealMemory=$mem_mb State=UNKNOWN"
        done
        # LLN: each job goes to the least loaded node, so 1-core jobs spread over the nodes.
        echo "PartitionName=debug Nodes=n[1-$NODES] Default=YES MaxTime=INFINITE State=UP LLN=YES"
    } >"$CONF"
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

start_daemons() {
    local node
    alive "$STATE/slurmctld.pid" slurmctld || slurmctld
    for node in $(node_names); do
        mkdir -p "$STATE/d/$node"
        alive "$STATE/slurmd-$node.pid" "slurmd -N $node" || slurmd -N "$node"
    done
}

# Nodes a test left drained or down (it crashed before putting them back) take jobs again.
resume_nodes() {
    local node state
    for node in $(node_names); do
        state=$(sinfo -h -n "$node" -o %t 2>/dev/null || true)
        case $state in
            drain* | drng* | down* | fail*)
                scontrol update NodeName="$node" State=RESUME 2>/dev/null || true ;;
        esac
    done
}

all_idle() {
    local ready
    ready=$(sinfo -h -N -o '%N %t' 2>/dev/null | grep -cE ' (idle|mix|alloc)$' || true)
    [[ $ready -eq $NODES ]]
}

stop_daemons() {
    local pid_file
    # slurmd.pid: the single-node layout of earlier versions of this script
    for pid_file in "$STATE"/slurmd*.pid "$STATE/slurmctld.pid"; do
        if alive "$pid_file" slurm; then
            kill "$(cat "$pid_file")"
            for _ in $(seq 1 20); do alive "$pid_file" slurm || break; sleep 0.25; done
        fi
    done
}

up() {
    if ours; then
        if ! same_layout; then
            echo "rewriting the test Slurm ($NODES nodes, $CPUS CPUs each)"
            answers && scancel --full --user "$(id -un)" 2>/dev/null || true
            stop_daemons
            rm -rf "${STATE:?}/ctld" "$STATE/d" "$STATE"/slurmd*.pid
            write_conf
        fi
    elif answers; then
        echo "Slurm already answers and is not ours: using it"
        sinfo
        return 0
    elif [[ -f $CONF ]]; then
        die "$CONF exists and was not written by this script; not touching it"
    else
        install_packages
        write_conf
    fi
    start_munge
    start_daemons
    for _ in $(seq 1 60); do
        if answers; then
            resume_nodes
            if all_idle; then
                sinfo
                return 0
            fi
        fi
        sleep 0.5
    done
    tail -n 20 "$LOGS/slurmctld.log" "$LOGS"/slurmd-n*.log >&2 || true
    die "slurmctld/slurmd started but not all $NODES nodes became idle within 30 s"
}

down() {
    ours || { echo "no Slurm started by this script"; return 0; }
    answers && scancel --full --user "$(id -un)" 2>/dev/null || true
    stop_daemons
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
