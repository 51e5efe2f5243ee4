"""External tools the tests drive (compilers, QEMU). A missing tool skips with its name and
how to install it; under CI=true, where scripts/setup.sh has installed every one, a missing
tool fails instead. A tool that is present but fails (a firmware that does not build) is
always a failure, never a skip."""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL = {
    "arm-none-eabi-gcc": "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "qemu-system-arm": "apt-get install qemu-system-arm",
    "clang": "apt-get install clang",
    "cc": "apt-get install build-essential",
    "make": "apt-get install make",
}


def need_tool(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            why = f"{tool} is not installed ({INSTALL.get(tool, 'scripts/setup.sh installs it')})"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{why}, and CI=true, where scripts/setup.sh installs it")
            pytest.skip(why)
