#!/usr/bin/env bash
# ab_engine.sh BASE_POSERT NEW_POSERT OUT_DIR ROUNDS MODEL... : one call of the GPU machine that
# times the engine of two posert binaries (the previous commit's and this one's) alternately,
# ROUNDS times each, `posert bench --backend cuda --precision fp16 --batch $BATCHES` per model, so
# both see the same GPU in the same state. Each binary keeps its own timing cache (tuned once, in
# its first round). The new binary's first round runs with POSERT_TUNE_LOG=1 (every tactic and
# fusion timing) and, with PROFILE=1, --profile (per-layer times at the last batch). Logs go to
# OUT_DIR; each run's table is printed as it ends.
set -uo pipefail
base=${1:?usage: ab_engine.sh BASE_POSERT NEW_POSERT OUT_DIR ROUNDS MODEL...}
new=${2:?}
out=${3:?}
rounds=${4:?}
shift 4
batches=${BATCHES:-1,64}
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  for m in "$@"; do
    for which in base new; do
      bin=$base
      [ "$which" = new ] && bin=$new
      log="$out/${m}_${which}_r$r.log"
      if [ "$which" = new ] && [ "$r" = 1 ]; then
        POSERT_TUNE_LOG=1 "$bin" bench --model "$m" --backend cuda --precision fp16 --batch "$batches" \
          --timing-cache "/tmp/ab-$which.cache" ${PROFILE:+--profile} > "$log" 2>&1
      else
        "$bin" bench --model "$m" --backend cuda --precision fp16 --batch "$batches" \
          --timing-cache "/tmp/ab-$which.cache" > "$log" 2>&1
      fi
      echo "== $m $which round $r (rc $?)"
      grep -E '^engine build|^ *batch|^ *[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9]+ ' "$log" | head -n 8
    done
  done
done
