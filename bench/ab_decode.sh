#!/usr/bin/env bash
# ab_decode.sh OUT_DIR ROUNDS MODELS BATCHES POSERT... : one call of the GPU machine that times the
# decoders of several posert binaries (say main's and a branch's) alternately: ROUNDS rounds, each
# running `posert bench --stage decode --model M --batch BATCHES` for every model (comma list) and
# every binary, the binaries in the given order in odd rounds and reversed in even rounds, so that
# every binary sees the same GPU in the same state. Each run's log goes to OUT_DIR; its table rows
# (batch, CPU p50/p99, CUDA queued p50/p99, speedup, idle p50, speedup, direct p50) are printed
# under a "== round R MODEL BINARY" line. Extra environment (POSERT_DECODE_CELLS_PER_LANE, ...)
# passes through to every run.
set -uo pipefail
usage="usage: ab_decode.sh OUT_DIR ROUNDS MODELS BATCHES POSERT..."
out=${1:?$usage}
rounds=${2:?$usage}
models=${3:?$usage}
batches=${4:?$usage}
shift 4
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
for bin in "$@"; do
  [ -x "$bin" ] || { echo "ab_decode.sh: $bin is not an executable" >&2; exit 2; }
done
mkdir -p "$out"
bins=("$@")
for r in $(seq 1 "$rounds"); do
  order=("${bins[@]}")
  if [ $((r % 2)) -eq 0 ]; then
    order=()
    for ((i = ${#bins[@]} - 1; i >= 0; i--)); do order+=("${bins[i]}"); done
  fi
  for m in ${models//,/ }; do
    for bin in "${order[@]}"; do
      log="$out/$(basename "$bin")_${m}_r$r.log"
      "$bin" bench --stage decode --model "$m" --batch "$batches" > "$log" 2>&1
      echo "== round $r $m $bin (rc $?)"
      grep -E '^ +[0-9]+ ' "$log"
    done
  done
done
