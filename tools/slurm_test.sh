#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, from Debian's slurm-wlm and munge, running a 2-task
# tern job with sbatch and srun (docs/DISTRIBUTED.md, "Under Slurm"). Everything it starts
# (munged, slurmctld, slurmd) lives in a scratch folder, on its own ports, and is stopped by PID
# when the script ends. Needs root (the daemons, and apt-get when the packages are missing).
# usage: tools/slurm_test.sh [path/to/tern]     (default build/tern; run from the repository root)
# Exit status 0 when the job ran on 2 tasks and its losses match one process with twice the batch.
set -euo pipefail
tern=$(realpath "${1:-build/tern}")
root=$(pwd)
[ -x "$tern" ] || { echo "slurm_test: $tern is not a program; build it first (make)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "slurm_test: needs root to run slurmd and munged" >&2; exit 2; }
for p in slurm-wlm munge; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "slurm_test: installing $p" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
  fi
done

t0=$(date +%s)
dir=$(mktemp -d)
pids=()
cleanup() {
  # stop what this script started, newest first, by PID
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    for _ in $(seq 50); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$dir"
}
trap cleanup EXIT

host=$(hostname -s)
# two free ports of our own, so that clusters started by concurrent test runs do not meet
port=
for try in $(seq 50); do
  p=$(( 20000 + (RANDOM % 20000) * 2 ))
  if ! ss -Htan "( sport = :$p or sport = :$((p + 1)) )" 2>/dev/null | grep -q .; then port=$p; break; fi
done
[ -n "$port" ] || { echo "slurm_test: no free ports found" >&2; exit 1; }
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/job"

# munge: its own key and socket, so that nothing of the machine's is touched
dd if=/dev/urandom of="$dir/munge.key" bs=1 count=1024 status=none
chmod 600 "$dir/munge.key"
/usr/sbin/munged --foreground --force --socket="$dir/munge.sock" --key-file="$dir/munge.key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed" \
  >>"$dir/log/munged.log" 2>&1 &
pids+=($!)

export SLURM_CONF="$dir/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=tern-test
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
# seconds between the SIGTERM and the SIGKILL that end a job step (Slurm's default is 30): a rank
# whose peer died waits in a collective and is ended by the SIGKILL
KillWait=5
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
for _ in $(seq 50); do [ -S "$dir/munge.sock" ] && break; sleep 0.1; done
/usr/sbin/slurmctld -D -i >>"$dir/log/slurmctld.log" 2>&1 &
pids+=($!)
sleep 1
/usr/sbin/slurmd -D >>"$dir/log/slurmd.log" 2>&1 &
pids+=($!)
state=
for _ in $(seq 100); do
  state=$(sinfo -h -o %t 2>/dev/null || true)
  [ "$state" = "idle" ] && break
  sleep 0.2
done
[ "$state" = "idle" ] || { echo "slurm_test: the node did not come up (state '$state')" >&2; tail -5 "$dir/log/"*.log >&2; exit 1; }
echo "slurm_test: cluster up in $(( $(date +%s) - t0 )) s: $(sinfo -h -o '%P %D node, %c CPUs, %t')"

# A small corpus and data folder, then the same run as 2 Slurm tasks and as one process.
work="$dir/job"
head -c 60000 "$root/data/tinyshakespeare/input.txt" >"$work/c.txt"
"$tern" tokenizer train --vocab-size 320 -o "$work/tok" "$work/c.txt" >/dev/null 2>&1
"$tern" prepare --tokenizer "$work/tok" --val-fraction 0.1 -o "$work/data" "$work/c.txt" >/dev/null 2>&1
flags="--data $work/data --tokenizer $work/tok --n-layer 2 --n-head 2 --n-embd 32 --seq 32 --lr 3e-3 --warmup 2 --steps 6 --eval-every 3 --eval-batches 2 --threads 1"
cat >"$work/job.sh" <<EOF
#!/bin/bash
#SBATCH --job-name=tern-dp
#SBATCH --ntasks=2
#SBATCH --cpus-per-task=1
#SBATCH --output=$work/job.out
#SBATCH --error=$work/job.out
# one tern rank per task; PMIx tells Open MPI the ranks; a dead task ends the job
srun --mpi=pmix --kill-on-bad-exit=1 $tern train $flags --batch 4 --zero 1 -o $work/two
EOF
echo "slurm_test: the job script:"
sed 's/^/    /' "$work/job.sh"
set +e
sbatch --wait "$work/job.sh" >"$work/sbatch.out" 2>&1
rc=$?
set -e
echo "slurm_test: sbatch --wait: status $rc ($(cat "$work/sbatch.out"))"
echo "slurm_test: the job's output:"
sed 's/^/    /' "$work/job.out"
[ "$rc" -eq 0 ] || exit 1
grep -q "^2 ranks (MPI" "$work/job.out" || { echo "slurm_test: the job did not run as 2 MPI ranks" >&2; exit 1; }
"$tern" train $flags --batch 8 -o "$work/one" >/dev/null 2>&1
# the "loss" values of both runs, compared step by step (relative difference at most 1e-5)
loss() { sed -n 's/.*"loss":\([^,}]*\).*/\1/p' "$1"; }
paste <(loss "$work/one/metrics.jsonl") <(loss "$work/two/metrics.jsonl") | awk '
  { d = ($1 - $2) / $1; if (d < 0) d = -d; if (d > worst) worst = d; n++ }
  END { printf "slurm_test: losses of 2 Slurm tasks x --batch 4 vs one process x --batch 8 over %d steps: worst relative difference %.2g\n", n, worst
        exit !(n == 6 && worst <= 1e-5) }'

# A task that dies: task 1 is killed (SIGKILL) 3 s into a long run; srun --kill-on-bad-exit ends
# the job, and the last checkpoint resumes.
cat >"$work/kill.sh" <<EOF
#!/bin/bash
#SBATCH --ntasks=2
#SBATCH --output=$work/kill.out
#SBATCH --error=$work/kill.out
srun --mpi=pmix --kill-on-bad-exit=1 bash -c '[ \$SLURM_PROCID = 1 ] && (sleep 3; kill -KILL \$\$) & exec $tern train $flags --batch 4 --steps 100000 --ckpt-every 20 --eval-every 0 -o $work/kill'
EOF
k0=$(date +%s%N)
set +e
sbatch --wait "$work/kill.sh" >/dev/null 2>&1
rc=$?
set -e
ms=$(( ($(date +%s%N) - k0) / 1000000 ))
echo "slurm_test: a job whose task 1 was killed 3 s in: sbatch --wait status $rc after $ms ms; its last lines:"
grep -v -e "^step" -e "Read -1, expected" "$work/kill.out" | sed 's/^/    /'
[ "$rc" -ne 0 ] && [ "$ms" -lt 60000 ] && grep -q "task 1" "$work/kill.out" || { echo "slurm_test: the job did not end as expected" >&2; exit 1; }
last=$(cat "$work/kill/ckpt/latest")
step=$(sed -n 's/.*"step":[[:space:]]*\([0-9]*\).*/\1/p' "$work/kill/ckpt/$last/state.json" | head -1)
"$tern" train -o "$work/kill" --resume --stop-at $((step + 2)) >/dev/null 2>&1 \
  || { echo "slurm_test: resuming after the killed job failed" >&2; exit 1; }
echo "slurm_test: the killed job's last checkpoint ($last) resumed for 2 more steps"
echo "slurm_test: passed in $(( $(date +%s) - t0 )) s"
