#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The recorded comparison of benchmarks/README.md: every method (scratch, KD, AT, SKD, IFVD, CWD, EMKD,
# GKD and its ablations) trained on the synthetic CHASE-like domain and on real CHASE_DB1 (when present
# in ../shared/data/chasedb1), evaluated on the held-out domains, seeds 1, 2 and 3, two runs at a time
# with one thread each; then mean ± std tables.
#   tools/compare.sh [OUT_DIR] [extra gkd options, e.g. --set epochs.student=10]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/compare}
shift || true
gkd=${GKD:-build/examples/gkd}
[ -x "$gkd" ] || { cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build --target gkd_cli; }
mkdir -p "$out"
jobs=()
for seed in 1 2 3; do
  jobs+=("all --methods comparison --threads 1 --seed $seed --run $out/synthetic-seed$seed $*")
  if [ -d ../shared/data/chasedb1 ]; then
    jobs+=("all --methods comparison --threads 1 --seed $seed --run $out/chasedb1-seed$seed --data ../shared/data/chasedb1 --targets retina_a,retina_b --set data.image_size=256 $*")
  fi
done
# each run's output goes to <run folder>.log; failures are listed in failed.txt
printf '%s\n' "${jobs[@]}" |
  xargs -P 2 -I{} sh -c 'log=$(echo "{}" | sed "s/.*--run \([^ ]*\).*/\1/").log; '"$gkd"' {} > "$log" 2>&1 || echo "FAILED: {}" >> '"$out"'/failed.txt' 
$gkd summarize "$out"/synthetic-seed{1,2,3} --out "$out/synthetic.md"
[ -d ../shared/data/chasedb1 ] && $gkd summarize "$out"/chasedb1-seed{1,2,3} --out "$out/chasedb1.md"
cat "$out"/failed.txt 2> /dev/null || true
