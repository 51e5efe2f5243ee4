#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh), then runs the whole test suite:
# op-by-op and model bit-exactness against TFLite Micro, the planner checker, sanitized
# loader runs over corrupt blobs, the CLI contract, and the emulated-device tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
