#!/usr/bin/env bash
# neulens against ONNX Runtime, side by side (see README.md). Creates benches/compare/.venv with
# onnx, onnxruntime, numpy and safetensors from PyPI on first use, builds the `ort_twin` binary
# (release) and runs compare.py; extra arguments go to compare.py (--help lists them).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import onnx, onnxruntime, numpy, safetensors" 2>/dev/null; then
    echo "== creating $venv (onnx, onnxruntime, numpy, safetensors from PyPI)"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet onnx onnxruntime numpy safetensors
fi

echo "== cargo build --release -p neulens-benches --bin ort_twin"
cd "$root"
cargo build --release -p neulens-benches --bin ort_twin
target_dir="$(cargo metadata --format-version 1 --no-deps | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

echo "== compare.py"
exec "$venv/bin/python" "$here/compare.py" --ort-twin "$target_dir/release/ort_twin" "$@"
