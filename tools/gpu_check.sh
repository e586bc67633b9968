#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every GPU check of gkd in one command, for a machine with an NVIDIA GPU:
#   1. configure and build the CUDA backend, the CUDA tests and the CUDA benchmarks (Release, sm_90 + PTX);
#   2. run the CUDA tests (tests/cuda/) and the CUDA examples (examples/cuda/);
#   3. compute-sanitizer memcheck and racecheck on each CUDA test executable;
#   4. the CUDA benchmarks (each compares against PyTorch on the same GPU in the same invocation), and the
#      student and teacher training step at batch 16, 128x128 (gkd_bench_models_step --device cuda), in
#      strict FP32 and in TF32 (--tf32) on both sides, with gkd's convolutions through cuDNN's legacy
#      API, its graph API and the faster of the two per geometry (--conv-api legacy|graph|auto), and under
#      bf16 autocast (--autocast); and graph_kd's panel-height sweep (--panel-sweep). The TF32 steps run
#      first, then the kernel benchmarks and the sweep, the strict-FP32 steps last.
# Usage:  tools/gpu_check.sh [RESULTS_DIR]          (default: build-gpu/results)
# Every step writes <step>.log into a log folder (GKD_GPU_LOGS, default a new temporary one) and one line
# into RESULTS_DIR/summary.txt; a failing step does not stop the others. After every step the logs are
# archived into RESULTS_DIR/logs.tar.gz and the end of a failing step's log is added to failures.txt, so
# RESULTS_DIR holds four files (machine.txt, summary.txt, logs.tar.gz, failures.txt) even when the run is
# cut short: a borrowed GPU machine returns at most 8 files. Tests and sanitizer runs go GKD_GPU_JOBS at a time (default: the core count); benchmarks run
# one at a time, after the tests and before the sanitizers, so that nothing else shares the GPU.
#   GKD_GPU_STEPS="tests bench memcheck racecheck"  picks steps, run in the order given; bench_kernels and
#                                                   bench_models are the two halves of bench; profile (not run
#                                                   unless named) profiles graph_kd's first tile and small-graph kernels with
#                                                   Nsight Compute
#   GKD_GPU_STEP_LIMIT=400                          seconds per executable and step
#   GKD_GPU_DEADLINE=540                            seconds for everything: each step gets at most what is
#                                                   left, and steps that would start with under 10 s left
#                                                   are listed as skipped (a borrowed GPU's call limit)
#   GKD_GPU_BIN=<dir>                               runs prebuilt executables from <dir> instead of building
#   GKD_GPU_BUNDLE=.gpu/bundle.tar.xz               runs the executables that tools/gpu_bundle.sh packed on a
#                                                   development machine (no build here: saves device time)
# Dependencies missing on the machine (Eigen, xtensor, xtl, Catch2 headers) are taken from .deps/*.deb when
# present (download them with `apt-get download libeigen3-dev libxtensor-dev xtl-dev catch2 libstb-dev`).
set -uo pipefail
cd "$(dirname "$0")/.."
results=$(realpath -m "${1:-build-gpu/results}")
logs=$(realpath -m "${GKD_GPU_LOGS:-$(mktemp -d /tmp/gkd-gpu-logs.XXXXXX)}")
mkdir -p "$results" "$logs"
summary=$results/summary.txt
: >"$summary"
: >"$results/failures.txt"
deadline=$(( $(date +%s) + ${GKD_GPU_DEADLINE:-86400} ))
step() {  # step <name> <timeout-seconds> <command...>
  local name=$1 limit=$2; shift 2
  local start=$SECONDS left=$((deadline - $(date +%s)))
  if (( left < 10 )); then
    printf '%-40s skipped: GKD_GPU_DEADLINE reached\n' "$name" | tee -a "$summary"
    return 124
  fi
  (( limit > left )) && limit=$left
  timeout "$limit" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  printf '%-40s rc=%-4s %4ds\n' "$name" "$rc" $((SECONDS - start)) | tee -a "$summary"
  (  # one writer at a time: steps run in parallel
    flock 9
    (( rc == 0 )) || { printf '===== %s rc=%s\n' "$name" "$rc"; tail -c 3000 "$logs/$name.log"; echo; } >>"$results/failures.txt"
    tar -C "$logs" -czf "$results/logs.tar.gz.part" --exclude=.lock --warning=no-file-changed . 2>/dev/null
    [[ -s $results/logs.tar.gz.part ]] && mv "$results/logs.tar.gz.part" "$results/logs.tar.gz"
  ) 9>"$logs/.lock"
  return $rc
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  nvcc --version | tail -1; g++ --version | head -1; cmake --version | head -1
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
  lscpu | grep -E "Model name|^CPU\(s\)"; } >"$results/machine.txt" 2>&1

# cuDNN: next to the toolkit, else the one PyTorch's wheels bring.
cmake_args=()
if ! ls /usr/local/cuda/lib64/libcudnn.so* /usr/local/cuda/lib/libcudnn.so* /usr/lib/x86_64-linux-gnu/libcudnn.so* >/dev/null 2>&1; then
  cudnn=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)
  if [[ -n $cudnn ]]; then
    echo "cuDNN from $cudnn" >>"$results/machine.txt"
    [[ -e $cudnn/lib/libcudnn.so ]] || ln -sf "$cudnn"/lib/libcudnn.so.9 "$cudnn"/lib/libcudnn.so 2>/dev/null || true
    cmake_args+=(-DGKD_CUDNN_INCLUDE_DIR="$cudnn/include" -DGKD_CUDNN_LIBRARY="$cudnn/lib/libcudnn.so.9")
    export LD_LIBRARY_PATH="$cudnn/lib:${LD_LIBRARY_PATH:-}"
  fi
fi
for lib in cublas cuda_runtime; do  # PyTorch's wheels also carry cuBLAS and cudart for the runtime
  d=$(python3 -c "import nvidia.$lib, os; print(os.path.dirname(nvidia.$lib.__file__))" 2>/dev/null || true)
  [[ -n $d && -d $d/lib ]] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d/lib"
done

nvidia=$(python3 -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null || true)
[[ -n $nvidia && -d $nvidia/cu13/lib ]] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$nvidia/cu13/lib"  # newer wheels
if [[ -n ${GKD_GPU_BUNDLE:-} ]]; then
  GKD_GPU_BIN=/tmp/gkd-gpu-bundle
  mkdir -p "$GKD_GPU_BIN" && tar -C "$GKD_GPU_BIN" -xJf "$GKD_GPU_BUNDLE" || exit 1
  export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$GKD_GPU_BIN/lib"
  source_dir=$(cat "$GKD_GPU_BIN/source_dir")  # where the benchmarks look for their PyTorch scripts
  [[ -e $source_dir ]] || { mkdir -p "$(dirname "$source_dir")" && ln -sfn "$PWD" "$source_dir"; }
fi
if [[ -z ${GKD_GPU_BIN:-} ]]; then
  if [[ ! -d /usr/include/eigen3 ]] && compgen -G ".deps/*.deb" >/dev/null; then
    for f in .deps/*.deb; do dpkg -x "$f" /tmp/gkd-deps; done
    d=/tmp/gkd-deps/usr
    cmake_args+=(-DEigen3_DIR=$d/share/eigen3/cmake -Dxtl_DIR=$d/share/cmake/xtl
                 -Dxtensor_DIR=$d/lib/x86_64-linux-gnu/cmake/xtensor -DCatch2_DIR=$d/lib/cmake/Catch2)
  fi
  step configure 300 cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DGKD_WITH_CUDA=ON \
    -DGKD_BUILD_EXAMPLES=ON -DGKD_BUILD_BENCHMARKS=ON "${cmake_args[@]}" || exit 1
  targets=$(ninja -C build-gpu -t targets all |
            grep -oE '^(test_cuda_[a-z0-9_]+|gkd_bench_[a-z0-9_]+|gkd_example_cuda_[a-z0-9_]+): ' | tr -d ': ' |
            grep -E '^test_cuda_|^gkd_bench_cuda_|^gkd_bench_models_step$|^gkd_example_cuda_' | sort -u)
  step build 900 cmake --build build-gpu -j "$(nproc)" -- -k 0 $targets
  bin=build-gpu
else
  bin=$GKD_GPU_BIN
fi

tests=$(find "$bin" -maxdepth 2 -type f -name 'test_cuda_*' -perm -u+x | sort)
examples=$(find "$bin" -maxdepth 2 -type f -name 'gkd_example_cuda_*' -perm -u+x | sort)
benches=$(find "$bin" -maxdepth 2 -type f -name 'gkd_bench_cuda_*' -perm -u+x | sort)
models_step=$(find "$bin" -maxdepth 2 -type f -name gkd_bench_models_step -perm -u+x | head -1)
steps=${GKD_GPU_STEPS:-tests bench memcheck racecheck}  # a subset can be chosen
limit=${GKD_GPU_STEP_LIMIT:-400}                          # seconds per executable and step
jobs=${GKD_GPU_JOBS:-$(nproc)}
# Tests and sanitizer jobs run $jobs at a time, each with its share of the cores for the OpenMP CPU
# oracles (unset, each would start one thread per core: 16 x 16 threads on 16 cores).
test_threads=$(( $(nproc) / jobs > 0 ? $(nproc) / jobs : 1 ))
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
export -f step; export results logs summary deadline
# parallel <name-prefix> <command-prefix...> -- <executables...>: one step per executable, $jobs at a time.
parallel() {
  local prefix=$1; shift
  local cmd=()
  while [[ $1 != -- ]]; do cmd+=("$1"); shift; done; shift
  printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c \
    'step "$0$(basename "$1")" "$2" "${@:3}" "$1"' "$prefix" {} "$limit" "${cmd[@]}"
}
# The training step at batch 16, 128x128: tf32 = TF32 through each cuDNN API, then bf16 autocast; fp32 = strict FP32.
ms() { [[ -n $models_step ]] && step "models_step_cuda_$1" "$limit" "$models_step" --device cuda --batch 16 \
         --steps 10 --warmup 3 "${@:2}"; }
run_bench_models() {
  for net in student teacher; do
    for api in legacy graph auto; do
      if [[ $1 == tf32 ]]; then ms "${net}_${api}_tf32" --net $net --conv-api $api --tf32; else ms "${net}_$api" --net $net --conv-api $api; fi
    done
  done
  if [[ $1 == tf32 ]]; then for net in student teacher; do ms "${net}_autocast" --net $net --autocast; done; fi
}
# The CUDA benchmarks (each against PyTorch in the same invocation): graph_kd's panel sweep first, ops also through the graph API.
run_bench_kernels() {
  local b
  for b in $benches; do
    [[ $(basename "$b") == gkd_bench_cuda_graph_kd ]] && step panel_sweep "$limit" "$b" --panel-sweep
  done
  for b in $benches; do
    case $(basename "$b") in
      gkd_bench_cuda_graph_kd) step "$(basename "$b")" "$limit" "$b" --no-compile ;;
      *) step "$(basename "$b")" "$limit" "$b" ;;
    esac
  done
  for b in $benches; do
    [[ $(basename "$b") == gkd_bench_cuda_ops ]] && step gkd_bench_cuda_ops_graph_api "$limit" env GKD_CUDNN_API=graph "$b"
  done
}
for s in $steps; do
  case $s in
    tests) parallel "" env OMP_NUM_THREADS="$test_threads" -- $tests $examples ;;
    memcheck|racecheck)  # one job per test case (${s}_cases.txt in the logs maps the step numbers to the
      # cases); the fused-loss tests at their [sanitize] sizes only (the full ones take minutes there)
      for t in $tests; do
        case $(basename "$t") in
          test_cuda_graph_kd|test_cuda_pairwise_kd) printf '%s\t%s\t%s\n' "$t" sanitize '[sanitize]' ;;
          *) "$t" --list-test-names-only | sed -e '/^$/d' -e 's/[][\\,*"]/\\&/g' | awk -v t="$t" '{printf "%s\t%d\t%s\n", t, NR, $0}' ;;
        esac
      done | tee "$logs/${s}_cases.txt" | xargs -P "$jobs" -d '\n' -I{} bash -c 'IFS=$'"'"'\t'"'"' read -r exe n spec <<<"$1"
        OMP_NUM_THREADS=$5 step "$2_$(basename "$exe")_$n" "$3" "$4" --tool "$2" --error-exitcode 1 "$exe" \
          -w NoTests "$spec"' _ {} "$s" "$limit" "$sanitizer" "$test_threads" ;;
    profile)
      ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
      for b in $benches; do
        [[ $(basename "$b") == gkd_bench_cuda_graph_kd && -n $ncu ]] &&
          step ncu_graph_kd_tiles "$limit" "$ncu" --clock-control none --kernel-name 'regex:forward_kernel|backward_kernel|small_graphs' \
            --launch-count 8 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
            "$b" --quick --no-pytorch
      done ;;
    bench) run_bench_models tf32; run_bench_kernels; run_bench_models fp32 ;;
    bench_kernels) run_bench_kernels ;;         # the loss-kernel and op benchmarks alone
    bench_models) run_bench_models tf32; run_bench_models fp32 ;;  # the training steps alone
  esac
done
if [[ -s $results/failures.txt ]]; then
  echo "failing steps (the end of each log; all logs in $results/logs.tar.gz):"
  tail -c 6000 "$results/failures.txt"
fi
cat "$summary"
