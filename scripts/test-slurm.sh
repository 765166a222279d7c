#!/usr/bin/env bash
# deploy/slurm/martelli.sbatch on a real Slurm: installs Debian's slurm-wlm and munge where
# they are missing, starts a single-node cluster (munged, slurmctld, slurmd) with its own
# config, ports and state in a temporary folder, submits the batch script, waits for it, and
# checks that the distributed points carry the single tier's checksum. Every daemon it started
# is stopped and its folder removed, whatever happens. Needs root; skips with a message
# otherwise.
#
#   scripts/test-slurm.sh            (uses target/debug/martelli, building it if needed)
#   MARTELLI=target/release/martelli scripts/test-slurm.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "slurm test: skipped: it needs root to start munged, slurmctld and slurmd"
    exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    echo "slurm test: installing slurm-wlm and munge from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; }
fi
martelli=${MARTELLI:-$root/target/debug/martelli}
if [ ! -x "$martelli" ]; then
    (cd "$root" && cargo build -q)
fi
martelli=$(cd "$(dirname "$martelli")" && pwd)/$(basename "$martelli")

work=$(mktemp -d /tmp/martelli-slurm.XXXXXX)
chmod 755 "$work"
cleanup() {
    local status=$?
    [ -n "${SLURM_CONF:-}" ] && scancel --quiet --user=root 2>/dev/null || true
    for pidfile in "$work/slurmd.pid" "$work/slurmctld.pid" "$work/munged.pid"; do
        if [ -s "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
        fi
    done
    # Give the daemons a moment to go, then make sure.
    sleep 1
    for pidfile in "$work/slurmd.pid" "$work/slurmctld.pid" "$work/munged.pid"; do
        if [ -s "$pidfile" ]; then
            kill -9 "$(cat "$pidfile")" 2>/dev/null || true
        fi
    done
    pkill -f "$martelli worker" 2>/dev/null || true
    if [ $status -ne 0 ]; then
        echo "slurm test: FAILED; the daemons' logs:" >&2
        tail -n 30 "$work"/log/*.log "$work"/martelli-*.log 2>/dev/null >&2 || true
    fi
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT

host=$(hostname -s)
cpus=$(nproc)
memory=$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)
mkdir -p "$work/state" "$work/spool" "$work/log" "$work/munge"

# munge: a key of our own and a socket of our own, so a system munged is left alone.
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
chmod 700 "$work/munge"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.sock" \
    --pid-file="$work/munged.pid" --log-file="$work/log/munged.log" --seed-file="$work/munge/seed"

# Ports of our own too, so a system Slurm is left alone.
cat > "$work/slurm.conf" <<CONF
ClusterName=martelli-test
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.sock
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
slurmctld
slurmd

started=$(date +%s)
until [ "$(sinfo -h -o %T 2>/dev/null | head -n 1)" = "idle" ]; do
    if [ $(( $(date +%s) - started )) -gt 60 ]; then
        echo "slurm test: the node did not become idle within 60 s: $(sinfo 2>&1)" >&2
        exit 1
    fi
    sleep 0.5
done
echo "slurm test: cluster up in $(( $(date +%s) - started )) s ($cpus CPUs on $host)"

# A small CPU-bound workload on every core count Slurm gave the node.
cat > "$work/slurm-test.toml" <<TOML
tier = "distributed"

[workload]
name = "slurm-test"
seed = 3
tasks = 300
kind = "cpu"
iterations = 20000

[sweep]
cores = [1, $cpus]
repeats = 2
warmup = 0
TOML

# Submitted from the work folder: the results land in the submit directory.
job=$(cd "$work" && sbatch --parsable --nodes=1 --time=5 \
    --export=ALL,MARTELLI="$martelli",RUST_LOG=info \
    "$root/deploy/slurm/martelli.sbatch" "$work/slurm-test.toml")
echo "slurm test: submitted job $job"
deadline=$(( $(date +%s) + 180 ))
while squeue -h -j "$job" 2>/dev/null | grep -q .; do
    if [ "$(date +%s)" -gt "$deadline" ]; then
        echo "slurm test: job $job still running after 180 s" >&2
        exit 1
    fi
    sleep 1
done
state=$(sacct -n -X -j "$job" -o State 2>/dev/null | tr -d ' ' || true)
results="$work/martelli-$job/results.json"
if [ ! -s "$results" ]; then
    echo "slurm test: job $job left no $results (state: ${state:-unknown})" >&2
    cat "$work/martelli-$job.log" >&2 || true
    exit 1
fi
python3 - "$results" <<'PY'
import json, sys
points = json.load(open(sys.argv[1]))["points"]
single = {p["checksum"] for p in points if p["tier"] == "single"}
distributed = [p for p in points if p["tier"] == "distributed"]
assert len(single) == 1, f"one single-tier checksum expected, got {single}"
assert distributed, "no distributed point in the results"
for p in distributed:
    assert p["checksum"] in single, f"distributed point at {p['cores']} cores: {p['checksum']} != {single}"
print(f"slurm test: ok: {len(distributed)} distributed point(s) carry the single tier's checksum {single.pop()}")
PY
