#!/usr/bin/env bash
# Session 7, call 3: tests (Panels, run_with_gradient), loss benchmarks, training steps with TF32 on both
# sides and strict FP32 on both, then compute-sanitizer on the new panel kernels.
set -u
R=$OUT; T=/tmp/r; B=/tmp/gb; mkdir -p $T $B; START=$SECONDS
[[ $PWD == /work/main ]] || { mkdir -p /work && ln -sfn "$PWD" /work/main; }
tar -C $B -xJf .gpu/bundle.tar.xz
export LD_LIBRARY_PATH=/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib:$B/lib
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; lscpu | grep -E "Model name|^CPU\(s\)"; python3 -c 'import torch; print("torch", torch.__version__, torch.backends.cudnn.version())'; } > $R/machine.txt 2>&1
run() {  # run <group> <name> <limit> cmd...
  local group=$1 name=$2 limit=$3; shift 3; local s=$SECONDS
  timeout $limit "$@" > $T/$name.log 2>&1; local rc=$?
  { echo "===== $name rc=$rc $((SECONDS-s))s"; if [[ $group == bench ]]; then cat $T/$name.log; else tail -c 5000 $T/$name.log; fi; } > $T/$name.done
  flock $R/$group.log sh -c "cat $T/$name.done >> $R/$group.log"
  flock $R/summary.txt sh -c "printf '%-45s rc=%-4s %4ss\n' $name $rc $((SECONDS-s)) >> $R/summary.txt"
}
export -f run; export R T B CS
touch $R/summary.txt $R/tests.log $R/bench.log $R/sanitizer.log
ls $B/test_cuda_* | xargs -P 16 -I{} bash -c 'run tests $(basename {}) 110 {}'
echo "--- tests done at $((SECONDS-START))s" >> $R/summary.txt
run bench graph_kd 60 $B/gkd_bench_cuda_graph_kd --no-compile
run bench pairwise_kd 50 $B/gkd_bench_cuda_pairwise_kd --reps 3
for net in student teacher; do
  run bench models_${net}_tf32 40 $B/gkd_bench_models_step --device cuda --batch 16 --net $net --steps 10 --warmup 3 --tf32
done
run bench models_teacher_fp32 40 $B/gkd_bench_models_step --device cuda --batch 16 --net teacher --steps 10 --warmup 3
echo "--- bench done at $((SECONDS-START))s" >> $R/summary.txt
left=$((${1:-290} - (SECONDS-START))); (( left < 30 )) && left=30
( echo "sanitizer memcheck_graph_kd_panels $left $CS --tool memcheck --error-exitcode 1 $B/test_cuda_graph_kd \"cuda graph_kd Panels schedule equals the CPU oracle\""
  echo "sanitizer memcheck_graph_kd_errors $left $CS --tool memcheck --error-exitcode 1 $B/test_cuda_graph_kd [errors]"
  echo "sanitizer memcheck_pairwise_kd $left $CS --tool memcheck --error-exitcode 1 $B/test_cuda_pairwise_kd"
  echo "sanitizer racecheck_graph_kd_panels $left $CS --tool racecheck --error-exitcode 1 $B/test_cuda_graph_kd \"cuda graph_kd Panels schedule equals the CPU oracle\""
  echo "sanitizer racecheck_pairwise_kd $left $CS --tool racecheck --error-exitcode 1 $B/test_cuda_pairwise_kd"
  echo "sanitizer memcheck_distill_losses $left $CS --tool memcheck --error-exitcode 1 $B/test_cuda_distill_losses"
) | xargs -P 8 -L 1 bash -c 'run "$@"' _
echo "--- all done at $((SECONDS-START))s" >> $R/summary.txt
cat $R/summary.txt
