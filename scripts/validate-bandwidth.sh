#!/usr/bin/env bash
# The bandwidth-bound case of `martelli simulate --validate`, over a real capped link: a worker
# host in a network namespace (`ip netns`, a veth pair), the link towards it capped with
# `tc qdisc ... tbf` (netem is not on every kernel; the cap is what matters here), two
# `martelli worker`s on it, and configs/validate/bandwidth.toml measured and predicted.
# Everything it made is removed on exit, failed or not. Needs root; says so and skips otherwise.
#
#   scripts/validate-bandwidth.sh [MARTELLI_BINARY] [CALIBRATION_FILE] [--json]
set -euo pipefail
bin=${1:-target/release/martelli}
calibration=${2:-output/calibration.toml}
shift $(( $# > 2 ? 2 : $# )) || true
if [ "$(id -u)" != 0 ]; then
    echo "skipped: the capped-link case needs root (ip netns, tc); run it as root" >&2
    exit 0
fi
for tool in ip tc; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool (iproute2) is not installed" >&2; exit 0; }
done
ns=mtl-host1
host_if=mtl-veth0
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip link del "$host_if" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add "$ns"
ip link add "$host_if" type veth peer name eth0 netns "$ns"
ip addr add 10.77.0.1/24 dev "$host_if"
ip link set "$host_if" up
ip -n "$ns" addr add 10.77.0.2/24 dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set lo up
# Tasks (and their payloads) flow towards the workers: cap that direction.
tc qdisc add dev "$host_if" root tbf rate 100mbit burst 64kb latency 200ms
for port in 7070 7071; do
    ip netns exec "$ns" "$bin" worker --listen "10.77.0.2:$port" --threads 2 >/dev/null 2>&1 &
    pids+=($!)
done
for port in 7070 7071; do
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/10.77.0.2/$port") 2>/dev/null && break
        sleep 0.1
    done
done
"$bin" simulate --validate configs/validate/bandwidth.toml --calibration "$calibration" "$@"
