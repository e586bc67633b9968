#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Kills `gkd all` with SIGKILL at random points, resumes it each time with the same command, and checks
# that the final weights and metrics are byte-identical to an uninterrupted run (1 thread, fixed seed).
#   tests/cli/kill_and_resume.sh path/to/gkd [seed]
set -euo pipefail
gkd=$1
RANDOM=${2:-7}
work=$(mktemp -d "${TMPDIR:-/tmp}/gkd_kill_resume.XXXXXX")
trap 'rm -rf "$work"' EXIT
args=(all --methods gkd,kd --threads 1
      --set data.image_size=64 --set data.patch=32 --set data.train_count=4 --set data.test_count=2
      --set data.samples_per_epoch=8 --set data.batch=4 --set data.workers=1
      --set nets.teacher_width=0.03125 --set nets.student_width=0.05 --set overlays=1
      --set epochs.teacher=3 --set epochs.student=3 --set epochs.psae=3 --set epochs.msan=3)

start=$(date +%s.%N)
"$gkd" "${args[@]}" --run "$work/straight" > "$work/straight.log" 2>&1
duration=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
echo "uninterrupted run: ${duration}s"

kills=0
for attempt in 1 2 3 4; do  # four kills at random points, each resuming the previous one's work
  "$gkd" "${args[@]}" --run "$work/killed" > "$work/killed.$attempt.log" 2>&1 &
  pid=$!
  delay=$(awk -v d="$duration" -v r="$((RANDOM % 1000))" 'BEGIN { printf "%.3f", 0.05 + 0.5 * d * r / 1000 }')
  sleep "$delay"
  if kill -KILL "$pid" 2> /dev/null; then
    kills=$((kills + 1))
    echo "attempt $attempt: killed after ${delay}s"
  else
    echo "attempt $attempt: had already finished"
  fi
  wait "$pid" 2> /dev/null || true
done
"$gkd" "${args[@]}" --run "$work/killed" > "$work/killed.final.log" 2>&1
[ "$kills" -ge 1 ] || { echo "FAIL: no kill landed while the run was going"; exit 1; }

status=0
for f in metrics.csv metrics.json teacher/model.safetensors student_scratch/model.safetensors psae/model.safetensors \
         msan/model.safetensors student_gkd/model.safetensors student_kd/model.safetensors \
         student_gkd/history.csv teacher/history.csv; do
  if cmp -s "$work/straight/$f" "$work/killed/$f"; then echo "same: $f"; else echo "DIFFERENT: $f"; status=1; fi
done
echo "$kills SIGKILLs"
exit $status
