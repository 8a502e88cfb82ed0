#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for running Seed's multi-rank jobs under srun/sbatch.
#
#   scripts/slurm-local.sh up       install (Debian packages), configure, start munged, slurmctld, slurmd; wait idle
#   scripts/slurm-local.sh down     stop the daemons this script started (by their pid files)
#   scripts/slurm-local.sh status   show the daemons and the node; exit 0 when the node is usable
#   scripts/slurm-local.sh env      print `export SLURM_CONF=...` for clients (sinfo, srun, sbatch)
#
# Everything lives in $SEED_SLURM_DIR (default /tmp/seed-slurm): slurm.conf, state, spool, logs, pid files.
# Nothing under /etc/slurm is written, so clients need SLURM_CONF (the tests set it from SEED_SLURM_DIR).
# No systemd: daemons are started by hand and run as root (SlurmUser=root), munged as the munge user.
# Ports: $SEED_SLURM_CTLD_PORT (6817) and $SEED_SLURM_SLURMD_PORT (6818).
set -euo pipefail

dir=${SEED_SLURM_DIR:-/tmp/seed-slurm}
conf=$dir/slurm.conf
ctld_port=${SEED_SLURM_CTLD_PORT:-6817}
slurmd_port=${SEED_SLURM_SLURMD_PORT:-6818}
export SLURM_CONF=$conf

say() { echo "slurm-local: $*" >&2; }
die() { say "$*"; exit 1; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

install_packages() {
    # libpmix-dev must be present before slurmd starts, or `srun --mpi=pmix` hangs (the pmix plugin dlopens it).
    local need=()
    for pkg in slurmctld slurmd slurm-client munge libpmix-dev; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    say "installing ${need[*]} ..."
    local log
    log=$(mktemp)
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get failed installing ${need[*]}"
    fi
    rm -f "$log"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_works; then return 0; fi
    $sudo mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [ ! -s /etc/munge/munge.key ]; then
        $sudo dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    $sudo chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    $sudo chmod 700 /etc/munge
    $sudo chmod 400 /etc/munge/munge.key
    $sudo chmod 755 /run/munge
    $sudo runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        if munge_works; then
            # munged writes its pid here; remember that this script started it.
            cp /run/munge/munged.pid "$dir/run/munged.pid" 2>/dev/null || pgrep -u munge -x munged >"$dir/run/munged.pid"
            return 0
        fi
        sleep 0.1
    done
    die "munged did not start (see /var/log/munge/munged.log)"
}

write_config() {
    local cpus memory
    cpus=$(nproc)
    # slurmd drains a node that has less memory than configured: offer 80% of what the kernel reports.
    memory=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
    mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
    cat >"$conf" <<CONF
# Single-node Slurm for Seed (written by scripts/slurm-local.sh; see DESIGN §5).
ClusterName=seed
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

node_state() { timeout 10 sinfo -h -N -n localhost -o %T 2>/dev/null | head -1; }

up() {
    local start=$SECONDS
    install_packages
    mkdir -p "$dir/run"
    if alive "$dir/run/slurmctld.pid" && alive "$dir/run/slurmd.pid"; then
        say "already running (state in $dir)"
    else
        write_config
        start_munge
        alive "$dir/run/slurmctld.pid" || $sudo /usr/sbin/slurmctld -f "$conf"
        alive "$dir/run/slurmd.pid" || $sudo /usr/sbin/slurmd -f "$conf" -N localhost
    fi
    local state=""
    for _ in $(seq 120); do
        state=$(node_state)
        case "$state" in
            idle | mixed | allocated) break ;;
            down* | drain*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    case "$state" in
        idle | mixed | allocated) ;;
        *) tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
           die "the node did not become idle (state '${state:-unknown}'); logs in $dir/log" ;;
    esac
    # The node can read idle from saved state before slurmd has registered: a finished job step proves it is up.
    timeout 60 srun -n 1 --time=1 true || die "the node is $state but a one-task srun failed; logs in $dir/log"
    say "up in $((SECONDS - start)) s: node localhost $state; clients need SLURM_CONF=$conf"
}

stop_pid_file() {
    local file=$1 name=$2
    if alive "$file"; then
        local pid
        pid=$(cat "$file")
        $sudo kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name ($pid) ignored SIGTERM; killing it"
            $sudo kill -KILL "$pid" || true
        fi
        say "stopped $name ($pid)"
    fi
    rm -f "$file"
}

down() {
    stop_pid_file "$dir/run/slurmd.pid" slurmd
    stop_pid_file "$dir/run/slurmctld.pid" slurmctld
    stop_pid_file "$dir/run/munged.pid" munged
}

status() {
    local ok=0
    for daemon in munged slurmctld slurmd; do
        if alive "$dir/run/$daemon.pid"; then
            echo "$daemon: running (pid $(cat "$dir/run/$daemon.pid"))"
        elif [ "$daemon" = munged ] && munge_works; then
            echo "munged: running (not started by this script)"
        else
            echo "$daemon: not running"
            ok=1
        fi
    done
    if [ $ok -eq 0 ]; then
        timeout 10 sinfo -N -o "%N %T %c %m %P" || ok=1
    fi
    return $ok
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    env) echo "export SLURM_CONF=$conf" ;;
    *) die "usage: $0 up|down|status|env" ;;
esac
