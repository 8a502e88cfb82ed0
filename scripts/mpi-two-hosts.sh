#!/usr/bin/env bash
# Runs the 2-rank MPI selftest across two "hosts" on this machine: two network namespaces, each with its own
# hostname, joined by two veth pairs like a cluster's two networks: 10.200.0.1/.2 carries Open MPI's control
# traffic (launch, the daemons' out-of-band channel) and 10.201.0.1/.2 the ranks' data (the TCP BTL) (DESIGN §5).
#
#   scripts/mpi-two-hosts.sh [seed-mpi-selftest arguments...]     (default: check --timeout 60)
#
# Environment: SEED_SELFTEST (the program to run, e.g. the seed binary), SEED_COLLECTIVE_TIMEOUT (passed to both
# ranks), SEED_TWO_HOSTS_CUT_DATA=FILE (once FILE exists, the data network is cut: the second host's end of the
# data pair goes down, so the ranks cannot reach each other while the launcher still can; for the unreachable-peer
# test).
#
# mpirun runs inside the first namespace; it starts the second host's daemon through an rsh agent script that
# enters the other namespace (`ip netns exec NS unshare --uts sh -c "hostname H; ..."`). Needs root (ip netns).
# The namespaces and the veth pairs are removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

[ "$(id -u)" -eq 0 ] || { echo "mpi-two-hosts: needs root (ip netns)" >&2; exit 1; }
command -v ip >/dev/null || { echo "mpi-two-hosts: needs iproute2 (apt-get install -y iproute2)" >&2; exit 1; }
scripts/install-deps.sh
bin=${SEED_SELFTEST:-$root/.build/release/seed-mpi-selftest}
if [ ! -x "$bin" ]; then swift build -c release --product seed-mpi-selftest >/dev/null; fi

tag=$$
ns_a=seed-host-a-$tag
ns_b=seed-host-b-$tag
work=$(mktemp -d /tmp/seed-two-hosts.XXXXXX)
cleanup() {
    [ -n "${watcher:-}" ] && kill "$watcher" 2>/dev/null || true
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true  # deleting a namespace deletes its end of the veth pair, and the pair
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns_a"
ip netns add "$ns_b"
for net in s d; do  # s: control (10.200.0.0/24), d: data (10.201.0.0/24)
    ip link add "${net}va$tag" type veth peer name "${net}vb$tag"
    ip link set "${net}va$tag" netns "$ns_a"
    ip link set "${net}vb$tag" netns "$ns_b"
done
ip -n "$ns_a" addr add 10.200.0.1/24 dev "sva$tag"
ip -n "$ns_b" addr add 10.200.0.2/24 dev "svb$tag"
ip -n "$ns_a" addr add 10.201.0.1/24 dev "dva$tag"
ip -n "$ns_b" addr add 10.201.0.2/24 dev "dvb$tag"
for ns in "$ns_a" "$ns_b"; do
    ip -n "$ns" link set lo up
done
for net in s d; do
    ip -n "$ns_a" link set "${net}va$tag" up
    ip -n "$ns_b" link set "${net}vb$tag" up
done

if [ -n "${SEED_TWO_HOSTS_CUT_DATA:-}" ]; then
    (
        while [ ! -e "$SEED_TWO_HOSTS_CUT_DATA" ]; do
            ip netns pids "$ns_a" >/dev/null 2>&1 || exit 0  # the namespaces are gone: the run ended
            sleep 0.1
        done
        ip -n "$ns_b" link set "dvb$tag" down && echo "mpi-two-hosts: data network cut (dvb$tag down)" >&2
    ) &
    watcher=$!
fi

# Open MPI's rsh launcher calls: AGENT HOST COMMAND...; run COMMAND on that host's namespace under its hostname.
cat >"$work/netns-rsh" <<AGENT
#!/bin/sh
host=\$1
shift
case "\$host" in
    10.200.0.1) ns=$ns_a; name=seed-host-a ;;
    10.200.0.2) ns=$ns_b; name=seed-host-b ;;
    *) echo "netns-rsh: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$name; \$*"
AGENT
chmod +x "$work/netns-rsh"

[ $# -gt 0 ] || set -- check --timeout 60
start=$SECONDS
status=0
ip netns exec "$ns_a" unshare --uts sh -c 'hostname seed-host-a; exec "$@"' sh \
    mpirun --allow-run-as-root --oversubscribe -np 2 --host 10.200.0.1,10.200.0.2 --map-by node \
    --mca plm_rsh_agent "$work/netns-rsh" \
    --mca btl tcp,self --mca btl_tcp_if_include 10.201.0.0/24 --mca oob_tcp_if_include 10.200.0.0/24 \
    ${SEED_COLLECTIVE_TIMEOUT:+-x SEED_COLLECTIVE_TIMEOUT="$SEED_COLLECTIVE_TIMEOUT"} \
    "$bin" "$@" || status=$?
echo "mpi-two-hosts: exit $status after $((SECONDS - start)) s" >&2
exit $status
