#!/usr/bin/env bash
# cpu_baseline.sh OUT_DIR ROUNDS MODELS BATCHES POSERT [THREADS]: one call of the GPU machine that
# measures the CPU decoders the GPU decoders are compared with. Each of ROUNDS rounds runs
# `posert bench --stage decode --model M --batch BATCHES` for every model of the comma list MODELS
# with the CPU decoder's pool spinning before it sleeps (POSERT_POOL_SPIN_US=200, the default) and
# sleeping at once (=0), in that order in odd rounds and reversed in even rounds; then, for every
# thread count of the comma list THREADS (default 1,4,8), the same with `--threads N` (pool
# spinning). Each run's table rows (batch, CPU p50/p99, CUDA queued p50/p99, speedup, idle p50,
# speedup, direct p50) are printed under a "== round R MODEL spin S threads T (rc N)" line; the
# logs stay in OUT_DIR. The exit status is 1 if any run failed (its last log lines go to stderr),
# 2 on a usage error.
set -uo pipefail
usage="usage: cpu_baseline.sh OUT_DIR ROUNDS MODELS BATCHES POSERT [THREADS]"
[ $# -ge 5 ] && [ $# -le 6 ] || { echo "$usage" >&2; exit 2; }
out=$1 rounds=$2 models=$3 batches=$4 bin=$5 sweep=${6:-1,4,8}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "cpu_baseline.sh: ROUNDS must be a positive integer, not '$rounds'" >&2; exit 2; }
[[ $sweep =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "cpu_baseline.sh: THREADS must be a comma list of positive integers, not '$sweep'" >&2; exit 2; }
[ -f "$bin" ] && [ -x "$bin" ] || { echo "cpu_baseline.sh: $bin is not an executable file" >&2; exit 2; }
bin=$(realpath "$bin")
mkdir -p "$out" || exit 2
fail=0
one() {  # one ROUND MODEL SPIN THREADS (0: the default, every core)
  local log="$out/${2}_r${1}_spin${3}_t${4}.log" extra=() rc
  [ "$4" -gt 0 ] && extra=(--threads "$4")
  POSERT_POOL_SPIN_US=$3 "$bin" bench --stage decode --model "$2" --batch "$batches" "${extra[@]}" > "$log" 2>&1
  rc=$?
  echo "== round $1 $2 spin $3 threads $([ "$4" -gt 0 ] && echo "$4" || echo all) (rc $rc)"
  grep -E '^ +[0-9]+ ' "$log"
  if [ $rc -ne 0 ]; then
    fail=1
    { echo "cpu_baseline.sh: $2 failed (rc $rc); the end of $log:"; tail -n 5 "$log"; } >&2
  fi
}
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then spins="200 0"; else spins="0 200"; fi
  for m in ${models//,/ }; do
    for s in $spins; do one "$r" "$m" "$s" 0; done
    for t in ${sweep//,/ }; do one "$r" "$m" 200 "$t"; done
  done
done
exit $fail
