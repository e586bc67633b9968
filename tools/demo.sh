#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing, builds the `gkd` command and runs the default GKD pipeline (preset cpu):
# teacher, P-SAE, MSAN, scratch student and GKD student trained on the synthetic CHASE-like domain and
# evaluated on the unseen DRIVE- and STARE-like domains. Idempotent and resumable (run it again after
# Ctrl-C). Extra arguments go to `gkd all`, e.g. `tools/demo.sh --methods comparison`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target gkd_cli
build/examples/gkd all --run runs/demo "$@"
