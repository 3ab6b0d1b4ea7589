#!/usr/bin/env bash
# ab_decode.sh OUT_DIR ROUNDS MODELS BATCHES POSERT... : one call of the GPU machine that times the
# decoders of several posert binaries (say main's and a branch's) alternately: ROUNDS rounds, each
# running `posert bench --stage decode --model M --batch BATCHES` for every model (comma list) and
# every binary, the binaries in the given order in odd rounds and reversed in even rounds, so that
# every binary sees the same GPU in the same state. Each run's log goes to OUT_DIR (named by the
# binary's position in the list, its file name, the model and the round); its table rows (batch,
# CPU p50/p99, CUDA queued p50/p99, speedup, idle p50, speedup, direct p50) are printed under a
# "== round R MODEL BINARY (rc N)" line, and a failed run's last log lines go to stderr. The exit
# status is 1 if any run failed, 2 on a usage error (too few arguments, a bad ROUNDS, a binary that
# is not an executable file). Extra environment (POSERT_DECODE_CELLS_PER_LANE, ...) passes
# through to every run.
set -uo pipefail
usage="usage: ab_decode.sh OUT_DIR ROUNDS MODELS BATCHES POSERT..."
[ $# -ge 5 ] || { echo "$usage" >&2; exit 2; }
out=$1 rounds=$2 models=$3 batches=$4
shift 4
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "ab_decode.sh: ROUNDS must be a positive integer, not '$rounds'" >&2; exit 2; }
bins=()
for bin in "$@"; do
  [ -f "$bin" ] && [ -x "$bin" ] || { echo "ab_decode.sh: $bin is not an executable file" >&2; exit 2; }
  bins+=("$(realpath "$bin")")  # a bare name would otherwise be looked up on PATH
done
mkdir -p "$out" || exit 2
fail=0
for r in $(seq 1 "$rounds"); do
  order=()
  if [ $((r % 2)) -eq 1 ]; then
    for ((i = 0; i < ${#bins[@]}; i++)); do order+=("$i"); done
  else
    for ((i = ${#bins[@]} - 1; i >= 0; i--)); do order+=("$i"); done
  fi
  for m in ${models//,/ }; do
    for i in "${order[@]}"; do
      bin=${bins[i]}
      log="$out/$((i + 1))_$(basename "$bin")_${m}_r$r.log"
      "$bin" bench --stage decode --model "$m" --batch "$batches" > "$log" 2>&1
      rc=$?
      echo "== round $r $m $bin (rc $rc)"
      grep -E '^ +[0-9]+ ' "$log"
      if [ $rc -ne 0 ]; then
        fail=1
        { echo "ab_decode.sh: $bin failed on $m (rc $rc); the end of $log:"; tail -n 5 "$log"; } >&2
      fi
    done
  done
done
exit $fail
