#!/usr/bin/env bash
# Session 7, call 2: the Panels schedule (graph_kd, SKD, CIRKD) against the CPU oracle, then the loss benchmarks.
set -u
R=$OUT; T=/tmp/r; B=/tmp/gb; mkdir -p $T $B; START=$SECONDS
[[ $PWD == /work/main ]] || { mkdir -p /work && ln -sfn "$PWD" /work/main; }
tar -C $B -xJf .gpu/bundle.tar.xz
export LD_LIBRARY_PATH=/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib:$B/lib
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; python3 -c 'import torch; print("torch", torch.__version__)'; } > $R/machine.txt 2>&1
run() {  # run <group> <name> <limit> cmd...
  local group=$1 name=$2 limit=$3; shift 3; local s=$SECONDS
  timeout $limit "$@" > $T/$name.log 2>&1; local rc=$?
  { echo "===== $name rc=$rc $((SECONDS-s))s"; if [[ $group == tests ]]; then tail -c 6000 $T/$name.log; else cat $T/$name.log; fi; } > $T/$name.done
  flock $R/$group.log sh -c "cat $T/$name.done >> $R/$group.log"
  flock $R/summary.txt sh -c "printf '%-45s rc=%-4s %4ss\n' $name $rc $((SECONDS-s)) >> $R/summary.txt"
}
export -f run; export R T B
touch $R/summary.txt $R/tests.log $R/bench.log
ls $B/test_cuda_* | xargs -P 16 -I{} bash -c 'run tests $(basename {}) 100 {}'
echo "--- tests done at $((SECONDS-START))s" >> $R/summary.txt
run bench graph_kd 110 $B/gkd_bench_cuda_graph_kd --no-compile
run bench pairwise_kd 70 $B/gkd_bench_cuda_pairwise_kd --reps 3
echo "--- all done at $((SECONDS-START))s" >> $R/summary.txt
cat $R/summary.txt
