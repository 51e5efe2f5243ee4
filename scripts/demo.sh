#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh), then runs the demo: the digits CNN converted,
# run over its held-out test split on the tinyadapt engine and on TensorFlow Lite Micro.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
