#!/usr/bin/env python3
"""Prepare a PlatformIO core directory that builds the QEMU environments without the registry.

`pio run` needs two packages it normally downloads from the PlatformIO registry: `tool-scons`
(the build engine) and, for a Cortex-M platform, `toolchain-gccarmnoneeabi`. Where the registry
cannot be reached, this script makes both from what is installed locally:

  tool-scons                 a scons.py that runs the SCons pip installed (`pip install scons`)
                             with the Python that runs PlatformIO
  toolchain-gccarmnoneeabi   bin/ symlinks to the system's arm-none-eabi-* tools (Debian's
                             gcc-arm-none-eabi), versioned after `arm-none-eabi-gcc -dumpversion`

Then, from the repository root:

    python boards/platformio/offline_core.py build/pio-core
    PLATFORMIO_CORE_DIR=build/pio-core pio run -e qemu-an386      # or qemu-an500

The QEMU environments' platform (boards/platformio/qemu-mps2) is in the repository, so nothing
else is fetched. The real boards' platforms (ststm32, nordicnrf52) and their toolchain still come
from the registry: this does not fake them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SCONS_PACKAGE_VERSION = "4.41101.0"  # PlatformIO 6.2 asks for tool-scons ~4.41101.0 (SCons 4.11.1)
TOOLS = ("addr2line", "ar", "as", "c++", "c++filt", "cpp", "g++", "gcc", "gcc-ar", "gcc-nm", "gcc-ranlib",
         "gdb", "ld", "ld.bfd", "nm", "objcopy", "objdump", "ranlib", "readelf", "size", "strings", "strip")

SCONS_PY = '''\
# Offline stand-in for PlatformIO's tool-scons package (boards/platformio/offline_core.py):
# runs the SCons installed in the Python that PlatformIO starts this file with.
import sys

try:
    from SCons.Script.Main import main
except ImportError:
    sys.stderr.write("tool-scons (offline): SCons is not installed for %s: pip install scons\\n" % sys.executable)
    sys.exit(2)

if __name__ == "__main__":
    main()
'''


def write_package(root: Path, name: str, version: str, description: str) -> Path:
    pkg = root / "packages" / name
    if pkg.exists():
        shutil.rmtree(pkg)
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps(
        {"name": name, "version": version, "description": description}, indent=2) + "\n")
    # PlatformIO's installed-package metadata: owner "platformio", as a registry install writes it.
    (pkg / ".piopm").write_text(json.dumps({
        "type": "tool", "name": name, "version": version,
        "spec": {"owner": "platformio", "id": None, "name": name, "requirements": None, "uri": None},
    }))
    return pkg


def gcc_package_version(gcc: str) -> str:
    out = subprocess.run([gcc, "-dumpfullversion", "-dumpversion"], capture_output=True, text=True, check=True)
    major, minor, patch = (int(x) for x in (out.stdout.strip().split(".") + ["0", "0"])[:3])
    return f"1.{major}{minor:02d}{patch:02d}.0"  # PlatformIO's scheme: GCC 12.2.1 -> 1.120201.x


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("core_dir", type=Path, help="PlatformIO core directory to fill (PLATFORMIO_CORE_DIR)")
    ap.add_argument("--cross", default="arm-none-eabi-", help="tool prefix (default arm-none-eabi-)")
    args = ap.parse_args(argv)

    gcc = shutil.which(args.cross + "gcc")
    if gcc is None:
        print(f"offline_core: {args.cross}gcc not found (Debian: apt-get install gcc-arm-none-eabi "
              "libnewlib-arm-none-eabi)", file=sys.stderr)
        return 1
    try:
        import SCons  # noqa: F401
    except ImportError:
        print(f"offline_core: SCons is not installed for {sys.executable} (pip install scons)", file=sys.stderr)
        return 1

    root = args.core_dir.resolve()
    scons = write_package(root, "tool-scons", SCONS_PACKAGE_VERSION, "SCons from pip (offline stand-in)")
    (scons / "scons.py").write_text(SCONS_PY)

    version = gcc_package_version(gcc)
    toolchain = write_package(root, "toolchain-gccarmnoneeabi", version,
                              f"System {args.cross}gcc ({gcc}) (offline stand-in)")
    bindir = toolchain / "bin"
    bindir.mkdir()
    linked = 0
    for tool in TOOLS:
        path = shutil.which(args.cross + tool)
        if path:
            os.symlink(path, bindir / (args.cross + tool))
            linked += 1
    print(f"{root}: tool-scons {SCONS_PACKAGE_VERSION}, toolchain-gccarmnoneeabi {version} ({linked} tools)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
