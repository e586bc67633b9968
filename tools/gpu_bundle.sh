#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Packs the GPU checks for a borrowed GPU machine whose device time is too scarce to build there: builds the
# CUDA tests, the CUDA examples, the CUDA benchmarks and gkd_bench_models_step in BUILD_DIR, strips them, adds the image-format libraries (TIFF, NIfTI,
# GDCM and theirs) that a bare GPU machine lacks, and records this checkout's path (the benchmarks find
# their PyTorch scripts there). Writes .gpu/bundle.tar.xz; then, in a copy of this checkout on the GPU machine:
#   GKD_GPU_BUNDLE=.gpu/bundle.tar.xz tools/gpu_check.sh RESULTS_DIR
# The GPU machine's CPU is not this one: the executables are built for x86-64-v3 (AVX2 + FMA, which every
# H100/H200 host has), never with -march=native, whose AVX-512 or AMX instructions a GPU host may lack.
# Usage: tools/gpu_bundle.sh [BUILD_DIR]   (default build-gpu-bundle, configured here when new)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu-bundle}
if [[ ! -f $build/build.ninja ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGKD_WITH_CUDA=ON -DGKD_NATIVE=OFF \
        -DCMAKE_CXX_FLAGS=-march=x86-64-v3 -DGKD_BUILD_TESTS=ON -DGKD_BUILD_EXAMPLES=ON -DGKD_BUILD_BENCHMARKS=ON
fi
if grep -q '^GKD_NATIVE:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "$build is configured with GKD_NATIVE=ON (-march=native): its executables may not run on the GPU machine's CPU" >&2
  exit 1
fi
targets=$(ninja -C "$build" -t targets all |
          grep -oE '^(test_cuda_[a-z0-9_]+|gkd_bench_[a-z0-9_]+|gkd_example_cuda_[a-z0-9_]+): ' | tr -d ': ' |
          grep -E '^test_cuda_|^gkd_bench_cuda_|^gkd_bench_models_step$|^gkd_example_cuda_' | sort -u)
[[ -n $targets ]] || { echo "no CUDA targets in $build: configure it with the CUDA backend" >&2; exit 1; }
ninja -C "$build" $targets
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib"
for t in $targets; do cp "$(find "$build" -name "$t" -type f -perm -u+x | head -1)" "$stage/"; done
strip "$stage"/test_cuda_* "$stage"/gkd_bench_* "$stage"/gkd_example_cuda_*
# shared libraries of the image readers, which the GPU machine's image does not have
ldd "$stage"/test_cuda_* "$stage"/gkd_bench_* "$stage"/gkd_example_cuda_* | awk '/=> \// {print $3}' | sort -u |
  grep -E '/lib(tiff|nifti|znz|gdcm|webp|Lerc|jbig|jpeg|deflate|openjp2|charls|json-c)[^/]*$' |
  xargs -r cp -L -t "$stage/lib"
pwd >"$stage/source_dir"
mkdir -p .gpu
tar -C "$stage" -cJf .gpu/bundle.tar.xz .
echo ".gpu/bundle.tar.xz: $(ls "$stage" | grep -c -E '^(test_cuda|gkd_bench|gkd_example_cuda)') executables, $(ls "$stage/lib" | wc -l) libraries, $(du -h .gpu/bundle.tar.xz | cut -f1)"
