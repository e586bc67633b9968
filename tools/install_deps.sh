#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages gkd needs to build and test, only if any is missing (idempotent).
# Each area lists its packages in tools/deps/apt-<area>.txt (one per line, '#' comments) and its
# Python packages (for the tools/ scripts only, never for the build) in tools/deps/pip-<area>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t packages < <(cat tools/deps/apt-*.txt | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "gkd: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
