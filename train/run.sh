#!/usr/bin/env bash
# Trains the micro-flow supernets of specs/digits.yaml and specs/fashion.yaml and exports the
# specs, weights, shipped test sets and metrics (issue 7). Not run by CI. Creates its own venv in
# train/.venv (gitignored) with PyTorch (CPU), numpy, safetensors and tqdm.
#
#   bash train/run.sh                 # data + both models (seeded; minutes per model on 2 cores)
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
for ds in "${@:-digits fashion}"; do
    for d in $ds; do
        "$PY" train.py "$d" --seed 1
    done
done
