"""Real boards through a CMSIS-DAP / ST-Link / J-Link probe, with pyOCD.

pyOCD is optional (`pip install tinyadapt[pyocd]`): without it, flashing fails with one line
saying so. The Python API is used when pyOCD imports; its `pyocd` command otherwise.

    with PyOcdBackend(target="stm32f746zgtx", probe_id=None) as b:
        b.flash("build/stm32f746g-disco/tinyadapt.elf")
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
from pathlib import Path

from tinyadapt.device.backends import Capability, DeviceBackend
from tinyadapt.errors import FlashError

log = logging.getLogger(__name__)

NOT_INSTALLED = ("pyOCD is not installed: install it with 'pip install pyocd' (or tinyadapt[pyocd]) "
                 "to flash real boards through a debug probe")


def pyocd_api_available() -> bool:
    return importlib.util.find_spec("pyocd") is not None


def pyocd_cli() -> str | None:
    return shutil.which("pyocd")


class PyOcdBackend(DeviceBackend):
    name = "pyocd"
    capabilities = Capability.FLASH | Capability.RESET

    def __init__(self, target: str | None, probe_id: str | None = None, frequency: int | None = None):
        super().__init__()
        self.target = target
        self.probe_id = probe_id
        self.frequency = frequency
        self._session = None
        self._use_api = False

    def start(self) -> None:
        if self._session is not None:
            return
        if pyocd_api_available():
            self._use_api = True
            try:
                from pyocd.core.helpers import ConnectHelper

                options = {"target_override": self.target} if self.target else {}
                if self.frequency:
                    options["frequency"] = self.frequency
                session = ConnectHelper.session_with_chosen_probe(unique_id=self.probe_id, blocking=False,
                                                                  return_first=self.probe_id is None,
                                                                  options=options)
            except Exception as exc:
                raise FlashError(f"pyOCD could not open a probe: {exc}") from None
            if session is None:
                which = f"probe {self.probe_id}" if self.probe_id else "any debug probe"
                raise FlashError(f"pyOCD found no {which}: connect the board, or pass --probe ID "
                                 "(list them with 'pyocd list')")
            try:
                session.open()
            except Exception as exc:
                raise FlashError(f"pyOCD could not connect to the target: {exc}") from None
            self._session = session
        elif pyocd_cli():
            self._use_api = False
            self._session = "cli"
        else:
            raise FlashError(NOT_INSTALLED)

    def flash(self, image) -> None:
        image = Path(image)
        if not image.is_file():
            raise FlashError(f"firmware image {image} does not exist (build it with 'tinyadapt build')")
        if self._session is None:
            self.start()
        if self._use_api:
            from pyocd.flash.file_programmer import FileProgrammer

            try:
                FileProgrammer(self._session).program(str(image), file_format="elf")
                self._session.target.reset()
            except Exception as exc:
                raise FlashError(f"pyOCD failed to flash {image.name}: {exc}") from None
            return
        cmd = [pyocd_cli(), "flash", "--format", "elf"]
        if self.target:
            cmd += ["--target", self.target]
        if self.probe_id:
            cmd += ["--uid", self.probe_id]
        proc = subprocess.run(cmd + [str(image)], capture_output=True, text=True)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise FlashError(f"pyocd flash failed: {lines[-1] if lines else f'exit status {proc.returncode}'}")

    def reset(self) -> None:
        if self._use_api and self._session is not None:
            self._session.target.reset()
            return
        cmd = [pyocd_cli() or "pyocd", "reset"] + (["--target", self.target] if self.target else [])
        subprocess.run(cmd + (["--uid", self.probe_id] if self.probe_id else []), capture_output=True)

    def stop(self) -> None:
        if self._use_api and self._session is not None:
            try:
                self._session.close()
            except Exception:
                pass
        self._session = None

    def describe(self) -> str:
        return f"pyOCD {self.target or 'auto'} probe {self.probe_id or 'first found'}"
