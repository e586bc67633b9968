#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing, builds the examples and runs the main demo: a U-Net trained on
# generated vessel images, printing its loss falling. Idempotent. Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target gkd_example_train_unet
build/examples/gkd_example_train_unet "$@"
