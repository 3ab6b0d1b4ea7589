#!/usr/bin/env bash
# profile_kernels.sh POSERT OUT_DIR BATCH REGEX COUNT MODEL...: for each model, build an fp16
# engine for BATCH (timing cache shared across the models), print the per-layer profile
# (`posert bench --engine X --profile`), then profile the first COUNT kernel launches whose name
# matches REGEX with Nsight Compute (full section set, clocks left alone as METHOD.md asks) and
# write its details page as text. Logs: OUT_DIR/<model>_profile.log, OUT_DIR/<model>_ncu.txt.
set -uo pipefail
posert=${1:?usage: profile_kernels.sh POSERT OUT_DIR BATCH REGEX COUNT MODEL...}
out=${2:?}
batch=${3:?}
regex=${4:?}
count=${5:?}
shift 5
mkdir -p "$out"
cache=/tmp/posert-profile-cache
mkdir -p "$cache"
for m in "$@"; do
  engine="$cache/$m-b$batch.engine"
  "$posert" build --model "$m" --precision fp16 --max-batch "$batch" --timing-cache "$cache/timing.cache" -o "$engine" \
    > "$out/${m}_build.log" 2>&1 || { echo "$m: build failed"; tail -n 5 "$out/${m}_build.log"; continue; }
  "$posert" bench --engine "$engine" --model "$m" --backend cuda --batch "$batch" --profile > "$out/${m}_profile.log" 2>&1
  echo "$m: bench rc=$?"
  if command -v ncu > /dev/null; then
    ncu --clock-control none --set full -k "regex:$regex" --launch-count "$count" -f -o "$cache/$m" \
      "$posert" bench --engine "$engine" --model "$m" --backend cuda --batch "$batch" --runs 2 --warmup 1 \
      > "$out/${m}_ncu_run.log" 2>&1
    echo "$m: ncu rc=$?"
    ncu --import "$cache/$m.ncu-rep" --page details > "$out/${m}_ncu.txt" 2>&1
    ncu --import "$cache/$m.ncu-rep" --page source --csv --print-source sass > "$out/${m}_ncu_sass.csv" 2>/dev/null || true
  else
    echo "ncu not found: no kernel profile"
  fi
done
