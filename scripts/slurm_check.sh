#!/usr/bin/env bash
# A real Slurm in the tests: starts a one-node cluster on this machine (munged, slurmctld,
# slurmd, a generated slurm.conf with this host's name and CPU count), runs a sweep once with
# `sweep local` and once as a Slurm job array, merges both and compares them byte for byte;
# then cancels one array element mid-run (scancel: SIGTERM, then SIGKILL), checks that merge
# reports it missing, resubmits (only that task runs) and compares again. Stops the daemons it
# started, by their process ids.
# Exit 0: passed; 1: failed; 77: skipped (Slurm cannot be installed or started here; one line).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=target/release/scoresde
skip() { echo "slurm_check: skipped: $*"; exit 77; }
fail() { echo "slurm_check: FAILED: $*" >&2; exit 1; }

need=()
command -v slurmctld >/dev/null || need+=(slurmctld)
command -v slurmd >/dev/null || need+=(slurmd)
command -v sbatch >/dev/null || need+=(slurm-client)
command -v munged >/dev/null || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || skip "Slurm is not installed and this user cannot apt-get install it"
    apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 ||
        skip "apt-get could not install ${need[*]}"
fi
[ "$(id -u)" -eq 0 ] || skip "starting munged and slurmd needs root here"
[ -x "$bin" ] || fail "$bin is not built"

work=$(mktemp -d /tmp/scoresde-slurm.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 1
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{state,spool,log} /run/munge

# munge: this run's own key and socket.
dd if=/dev/urandom of="$work/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge.key"
socket="$work/munge.socket"
munged --force --key-file="$work/munge.key" --socket="$socket" --log-file="$work/log/munged.log" \
    --pid-file="$work/munged.pid" --seed-file="$work/munged.seed" ||
    skip "munged did not start"
for _ in $(seq 50); do [ -s "$work/munged.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/munged.pid")")

host=$(hostname -s)
cpus=$(nproc)
# The node's memory in MB (Slurm assumes 1 MB without it, and refuses any --mem).
mem=$(awk '/^MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
export SLURM_CONF="$work/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=scoresde-check
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF" || skip "slurmctld did not start"
for _ in $(seq 50); do [ -s "$work/slurmctld.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/slurmctld.pid")")
slurmd -f "$SLURM_CONF" || skip "slurmd did not start"
for _ in $(seq 50); do [ -s "$work/slurmd.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/slurmd.pid")")
up=0
for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -q idle; then up=1; break; fi
    sleep 0.5
done
[ "$up" = 1 ] || skip "the one-node cluster did not come up ($(tail -n 1 "$work/log/slurmd.log"))"
echo "slurm_check: one-node cluster up ($host, $cpus CPUs)"

# 1. The same sweep locally and as a job array: the same merged bytes.
cp tests/data/sweep.toml "$work/sweep.toml"
"$bin" sweep local "$work/sweep.toml" --out "$work/local" --jobs 2 >/dev/null || fail "sweep local"
timeout 600 "$bin" sweep slurm "$work/sweep.toml" --out "$work/array" --cpus 1 --time 10 --submit --wait \
    >/dev/null || fail "sweep slurm --submit --wait ($(cat "$work"/array/slurm/*.log 2>/dev/null | tail -n 2))"
for o in local array; do "$bin" sweep merge "$work/$o" >/dev/null || fail "merge $o"; done
for f in merged.csv merged.jsonl fit.csv; do
    cmp -s "$work/local/$f" "$work/array/$f" || fail "$f differs between local and Slurm"
done
echo "slurm_check: 8 tasks local and on Slurm merge byte-identical"

# 2. An element cancelled mid-run is reported missing, resubmitted alone, and merges the same.
cat >"$work/kill.toml" <<'EOF'
name = "slurm-kill"
experiment = "error-vs-dimension"
quick = true
[grid]
"error_vs_dimension.k" = [1, 2]
EOF
"$bin" sweep local "$work/kill.toml" --out "$work/kill-local" --jobs 1 >/dev/null || fail "kill sweep local"
out=$("$bin" sweep slurm "$work/kill.toml" --out "$work/kill" --cpus 1 --time 10 --submit) ||
    fail "sweep slurm --submit"
job=$(echo "$out" | grep -Eo 'Submitted batch job [0-9]+' | grep -Eo '[0-9]+$')
[ -n "$job" ] || fail "no job id in: $out"
for _ in $(seq 300); do [ -d "$work/kill/tasks/.0.partial" ] && break; sleep 0.1; done
[ -d "$work/kill/tasks/.0.partial" ] || fail "task 0 never started"
sleep 1
scancel "${job}_0" || fail "scancel"
for _ in $(seq 600); do [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break; sleep 0.2; done
[ -d "$work/kill/tasks/0" ] && fail "the cancelled task left a task folder"
m=$("$bin" sweep merge "$work/kill") && fail "merge passed with a task missing"
echo "$m" | grep -q 'missing: \[0\]' || fail "merge did not report task 0 missing: $m"
"$bin" sweep slurm "$work/kill.toml" --out "$work/kill" --cpus 1 --time 10 >/dev/null
grep -q '^#SBATCH --array=0$' "$work/kill/sweep.sbatch" || fail "resubmission is not task 0 alone"
timeout 600 "$bin" sweep slurm "$work/kill.toml" --out "$work/kill" --cpus 1 --time 10 --submit --wait >/dev/null ||
    fail "resubmission"
"$bin" sweep merge "$work/kill" >/dev/null || fail "merge after resubmission"
"$bin" sweep merge "$work/kill-local" >/dev/null || fail "merge kill-local"
cmp -s "$work/kill/merged.jsonl" "$work/kill-local/merged.jsonl" ||
    fail "the resumed sweep differs from the local one"
echo "slurm_check: a cancelled element was reported missing, rerun alone, and merges byte-identical"
echo "slurm_check: passed"
