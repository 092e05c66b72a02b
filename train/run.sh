#!/usr/bin/env bash
# Trains the micro-flow supernets of specs/digits.yaml and specs/fashion.yaml and exports the
# specs, weights, shipped test sets and metrics (issue 7). Not run by CI. Creates its own venv in
# train/.venv (gitignored) with PyTorch (CPU), numpy, safetensors and tqdm.
#
#   bash train/run.sh                 # data + both models in parallel, one thread each (seeded;
#                                     # ~40 min on the shared 2-vCPU machine, train/README.md)
#   bash train/run.sh digits          # one model (data is prepared if missing)
set -euo pipefail
cd "$(dirname "$0")"
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
    python3 -m venv .venv
    # PyPI's torch wheel (it also pulls CUDA libraries, unused here; training runs on the CPU).
    .venv/bin/pip install -q torch
    .venv/bin/pip install -q numpy safetensors tqdm
fi
if [ ! -f .work/digits.npz ] || [ ! -f .work/fashion.npz ]; then
    "$PY" prepare_data.py --seed 7
fi
# As the shipped models were trained: each model on its own process, one thread each
# (train.py's default --threads 1), logs in .work/<name>.log.
pids=()
for ds in "${@:-digits fashion}"; do
    for d in $ds; do
        "$PY" train.py "$d" --seed 1 > ".work/$d.log" 2>&1 &
        pids+=("$!")
        echo "training $d (pid $!, log train/.work/$d.log)"
    done
done
for p in "${pids[@]}"; do
    wait "$p"
done
tail -n 30 .work/*.log | grep -v "it/s\|batch/s" || true
