#!/usr/bin/env bash
# gpu_suite.sh BUILD_DIR OUT_DIR [step...]: the GPU check-and-measure sequence for one call of the
# GPU machine. Steps: info, tests (GPU tests + CLI on the GPU vs CPU), bench (PoseRT fp16+fp32,
# with per-layer profile), compare (PoseRT and PyTorch side by side in the same run), pipeline
# (end-to-end GPU pipeline breakdown and CPU-vs-CUDA decode for every decoder), e2e (the
# end-to-end part of pipeline alone). Default: all. Every log goes to OUT_DIR/logs/ and is packed into OUT_DIR/logs.tgz at the end.
set -uo pipefail
build=${1:?usage: gpu_suite.sh BUILD_DIR OUT_DIR [step...]}
out=${2:?usage: gpu_suite.sh BUILD_DIR OUT_DIR [step...]}
shift 2
steps=${*:-info tests bench compare pipeline}
logs="$out/logs"
mkdir -p "$logs"
export LD_LIBRARY_PATH="$PWD/$build/gpu-libs:${LD_LIBRARY_PATH:-}"
export POSERT_ENGINE_CACHE=/tmp/posert-cache
has() { [[ " $steps " == *" $1 "* ]]; }
posert="$build/bin/posert"
bench() {  # bench MODEL PRECISION BATCHES LOG [extra...]
  local m=$1 p=$2 b=$3 log=$4
  shift 4
  "$posert" bench --model "$m" --backend cuda --precision "$p" --batch "$b" --timing-cache /tmp/posert-cache/timing.cache \
    "$@" > "$logs/$log" 2>&1
  grep -v '^tuning\|^\s*[0-9.]* us' "$logs/$log" | tr '\r' '\n' | grep -v '^tuning' | head -n 12
}

if has info; then
  { date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv;
    nvcc --version | tail -n 2;
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())';
  } > "$logs/info.log" 2>&1
  cat "$logs/info.log"
fi
if has tests; then
  if [ -f "$build/CTestTestfile.cmake" ]; then
    (cd "$build" && ctest -R '^gpu\.' --output-on-failure --timeout 600) > "$logs/gpu_ctest.log" 2>&1
    grep -E "tests passed|Test +#|engine-vs-ref" "$logs/gpu_ctest.log" | sed 's/^ *//' | tail -n 60
  else  # a slim carry (bin/ and gpu-libs/ only): the GPU test binary itself, every test in it
    "$build/bin/posert_gpu_tests" > "$logs/gpu_ctest.log" 2>&1
    grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests ran|Failure" "$logs/gpu_ctest.log" | tail -n 60
  fi
  photos="data/photos/messi5.jpg data/photos/person_multi_det.jpg data/photos/camera.png"
  for m in movenet-lightning movenet-multipose posenet; do
    "$posert" run -q --model "$m" --backend cuda --precision fp16 $photos -o "$logs/run_${m}_cuda.json" &&
      "$posert" run -q --model "$m" --backend cpu $photos -o "$logs/run_${m}_cpu.json"
    echo "posert run $m --backend cuda (fp16) and cpu: rc=$?"
  done 2>&1 | tee "$logs/run_cli.log"
fi
if has bench; then
  bench movenet-lightning fp16 1,8,64,256 bench_lightning_fp16.log --profile
  bench movenet-lightning fp32 1,8,64,256 bench_lightning_fp32.log
  bench movenet-thunder fp16 1,8,64,256 bench_thunder_fp16.log --profile
fi
if has compare; then
  for m in movenet-lightning movenet-thunder; do
    bench "$m" fp16 1,64 "compare_${m}_posert.log"
    PYTHONUNBUFFERED=1 timeout 200 python3 bench/pytorch_baseline.py --model "$m" --batch 1,64 --modes compile-fp16,eager-fp16 \
      --iters 100 --no-reference --json "$logs/compare_${m}_torch.json" > "$logs/compare_${m}_torch.log" 2>&1
    tail -n 8 "$logs/compare_${m}_torch.log"
  done
fi
if has pipeline || has e2e; then
  for m in movenet-lightning movenet-thunder; do
    "$posert" bench --stage e2e --model "$m" --precision fp16 --batch 1,64 \
      --timing-cache /tmp/posert-cache/timing.cache > "$logs/e2e_${m}.log" 2>&1
    grep -v '^building' "$logs/e2e_${m}.log" | head -n 8
  done
  # Full-HD frames: the mapped transfer modes read only the rows the resize samples.
  "$posert" bench --stage e2e --model movenet-lightning --precision fp16 --batch 1,8 --width 1920 --height 1080 \
    --timing-cache /tmp/posert-cache/timing.cache > "$logs/e2e_movenet-lightning_1080p.log" 2>&1
  grep -v '^building' "$logs/e2e_movenet-lightning_1080p.log" | head -n 8
fi
if has pipeline; then
  for m in movenet-lightning movenet-thunder movenet-multipose posenet heatmap; do
    "$posert" bench --stage decode --model "$m" --batch 1,16,64,256 > "$logs/decode_${m}.log" 2>&1
    cat "$logs/decode_${m}.log"
  done
fi
tar -czf "$out/logs.tgz" -C "$out" logs && rm -rf "$logs"
