#!/usr/bin/env bash
# The visual-DMC suite (suites/training/visual-dmc.yaml, issue 25) on a CUDA machine, for at most SECONDS
# (0 or none: until it is done), resumable: started again beside the same runs/ folder, each run continues from
# its checkpoint (the suite skips finished runs). When the time is up every run gets SIGTERM, which a ratbench
# run treats like Ctrl-C: it saves its checkpoint and stops.
#
# Then the compact outputs of every run (progress.csv, config.yaml, provenance.json, summary.json, train.log,
# TensorBoard events; never checkpoints) are copied to $OUT/visual-dmc/<run>, to be collected on the CPU machine
# with `ratbench report $OUT/visual-dmc/* --collect results/visual-dmc --out ...`. With KEEP_CHECKPOINTS=1 the
# checkpoints come too, as $OUT/checkpoints.tar, for a later machine to continue from (untar in the repo root).
#
# Needs ratbench's install with the dmc extra (or .ci/gpu-check's prepared wheels on PYTHONPATH) and EGL.
# Usage: OUT=<folder> [JOBS=n] [KEEP_CHECKPOINTS=1] [SUITE=another.yaml] bash suites/training/visual-dmc-gpu.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/../.."
limit=${1:-0}
OUT=${OUT:-/tmp/visual-dmc}
suite_file=${SUITE:-suites/training/visual-dmc.yaml}
name=$(basename "$suite_file" .yaml)
mkdir -p "$OUT/$name"
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
nvidia_egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f "$nvidia_egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$nvidia_egl
# Each run steps 8 envs in spawned workers on >= 4 cores (README: 607 agent steps/s with 16 on an H200).
jobs=${JOBS:-$(( $(nproc) >= 8 ? $(nproc) / 4 : 1 ))}
logdir=$(python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['logdir'])" "$suite_file")

setsid python3 -m ratbench train --suite "$suite_file" --jobs "$jobs" --quiet &
suite=$!
if [ "$limit" -gt 0 ]; then
  ( sleep "$limit"; kill -TERM -- "-$suite" 2>/dev/null ) &
  timer=$!
fi
wait "$suite"
rc=$?
[ "$limit" -gt 0 ] && kill "$timer" 2>/dev/null
# the runs save their checkpoints after SIGTERM: wait for the last of them to exit
while pgrep -f -- "-m ratbench train --.*$logdir" > /dev/null; do sleep 2; done

for run in "$logdir"/*/; do
  [ -f "$run/config.yaml" ] || continue
  dest="$OUT/$name/$(basename "$run")"
  mkdir -p "$dest"
  find "$run" -maxdepth 1 -type f ! -name 'checkpoint*' -exec cp {} "$dest/" \;
done
if [ "${KEEP_CHECKPOINTS:-0}" = 1 ]; then
  tar -cf "$OUT/checkpoints.tar" $(find "$logdir" -name 'checkpoint*' -maxdepth 2)
fi
echo "suite exit $rc; compact outputs of $(ls "$OUT/$name" | wc -l) runs in $OUT/$name"
