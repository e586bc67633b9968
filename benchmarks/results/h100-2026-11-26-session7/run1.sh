#!/usr/bin/env bash
# Prebuilt GPU checks: executables built on the dev machine (/work/main, nvcc 13, Release, CUDA tests -O0).
set -u
R=$OUT; T=/tmp/r; B=/tmp/gb; mkdir -p $T $B; START=$SECONDS; BUDGET=${1:-470}
[[ $PWD == /work/main ]] || { mkdir -p /work && ln -sfn "$PWD" /work/main; }
tar -C $B -xJf .gpu/bundle.tar.xz
export LD_LIBRARY_PATH=/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib:$B/lib
ldd $B/test_cuda_pipeline | grep -q 'not found' && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/usr/local/cuda/lib64
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; lscpu | grep -E "Model name|^CPU\(s\)"
  python3 -c 'import torch; print("torch", torch.__version__, torch.backends.cudnn.version())'; nvcc --version | tail -1
  ldd $B/test_cuda_pipeline | grep -E "not found|cudnn|cublas|cudart|tiff"; echo LD_LIBRARY_PATH=$LD_LIBRARY_PATH; } > $R/machine.txt 2>&1
run() {  # run <group> <name> <limit> cmd...
  local group=$1 name=$2 limit=$3; shift 3; local s=$SECONDS
  timeout $limit "$@" > $T/$name.log 2>&1; local rc=$?
  { echo "===== $name rc=$rc $((SECONDS-s))s"; if [[ $group == tests || $rc != 0 ]]; then tail -c 12000 $T/$name.log; else tail -c 1500 $T/$name.log; fi; } > $T/$name.done
  flock $R/$group.log sh -c "cat $T/$name.done >> $R/$group.log"
  flock $R/summary.txt sh -c "printf '%-45s rc=%-4s %4ss\n' $name $rc $((SECONDS-s)) >> $R/summary.txt"
}
export -f run; export R T B CS
touch $R/summary.txt $R/tests.log $R/sanitizer.log $R/bench.log
# 1. tests, all at once
ls $B/test_cuda_* | xargs -P 16 -I{} bash -c 'run tests $(basename {}) 150 {} --durations yes'
echo "--- tests done at $((SECONDS-START))s" >> $R/summary.txt
# 2. timings, one at a time
run bench models_student 90 $B/gkd_bench_models_step --device cuda --batch 16 --net student --steps 10 --warmup 3
run bench models_teacher 90 $B/gkd_bench_models_step --device cuda --batch 16 --net teacher --steps 10 --warmup 3
[[ ${OPS:-1} == 1 ]] && run bench ops 60 $B/gkd_bench_cuda_ops
[[ ${FULL:-0} == 1 ]] && run bench pairwise_kd 60 $B/gkd_bench_cuda_pairwise_kd --reps 3
[[ ${FULL:-0} == 1 ]] && run bench graph_kd 90 $B/gkd_bench_cuda_graph_kd --quick
[[ ${PROFILE:-0} == 1 ]] && run bench ncu_teacher 100 $NCU --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel $B/gkd_bench_models_step --device cuda --batch 16 --net teacher --steps 1 --warmup 1 --no-pytorch
[[ ${PROFILE:-0} == 1 ]] && cp $T/ncu_teacher.log $R/ncu_teacher.log
echo "--- bench done at $((SECONDS-START))s" >> $R/summary.txt
# 3. sanitizers in the time left
left=$((BUDGET - (SECONDS-START))); (( left < 30 )) && left=30
( for t in ${MEMCHECK:-$B/test_cuda_*}; do echo "sanitizer memcheck_$(basename $t) $left $CS --tool memcheck --error-exitcode 1 $t"; done
  for t in ${RACE:-graph_kd pairwise_kd cross_recon_kd softmax reduce optim distill_losses pool index losses_more}; do
    echo "sanitizer racecheck_$t $left $CS --tool racecheck --error-exitcode 1 $B/test_cuda_$t"; done
) | xargs -P 16 -L 1 bash -c 'run "$@"' _
echo "--- all done at $((SECONDS-START))s" >> $R/summary.txt
cat $R/summary.txt
