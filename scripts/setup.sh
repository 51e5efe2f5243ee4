#!/usr/bin/env bash
# Installs everything tinyadapt needs on a fresh Debian 12 machine; safe to run again.
#   system: C compilers, the Arm bare-metal toolchain, QEMU (Cortex-M), clang (fuzzing)
#   python: a virtualenv in .venv with tinyadapt and its test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(make gcc gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang libclang-rt-14-dev)
missing=()
for tool in make gcc arm-none-eabi-gcc qemu-system-arm clang; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ! -e /usr/lib/arm-none-eabi/newlib/libc_nano.a ] && [ ! -e /usr/lib/arm-none-eabi/lib/libc_nano.a ]; then
    missing+=(newlib)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing system packages (missing: ${missing[*]})"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "setup: Python 3.11 is required (tflite-runtime 2.14 ships wheels for 3.11 only); found $("$PYTHON" --version)" >&2
    exit 1
fi
stamp=".venv/.tinyadapt-installed"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: creating .venv and installing Python packages"
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
    echo "$want" > "$stamp"
fi
