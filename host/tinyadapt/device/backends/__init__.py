"""Device backends: how the host reaches a board (emulator, serial port, debug probe).

Every backend is one `DeviceBackend` subclass. Lifecycle, the same for all of them:

    backend = SomeBackend(...)      # 1. configure; nothing is started or opened yet
    with backend:                   # 2. start(): spawn the emulator / open the port / attach the probe
        backend.flash(image)        #    (FLASH only) write an image to the board
        port = backend.open_port()  # 3. (SERIAL only) a pyserial port speaking the protocol
        ...
                                    # 4. stop(): always runs on leaving the block, also on errors,
                                    #    Ctrl-C and SIGTERM; idempotent; releases every resource
                                    #    (a QEMU backend kills its emulator, by PID)

What a backend can do is its `capabilities` (a `Capability` flag set), so callers check a
capability instead of a class. Backends are registered as entry points in the
"tinyadapt.backends" group (pyproject.toml), so another package can add a flasher without
touching this one: `available_backends()` lists them, `backend_class(name)` loads one.
"""

from __future__ import annotations

import abc
import enum
import logging
from importlib import metadata

from tinyadapt.errors import DeviceError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tinyadapt.backends"


class Capability(enum.Flag):
    NONE = 0
    SERIAL = enum.auto()          # open_port() gives a link speaking docs/PROTOCOL.md
    FLASH = enum.auto()           # flash(image) writes a firmware image to the board
    RUNS_IMAGE = enum.auto()      # start() runs a given image itself (an emulator)
    PRELOAD = enum.auto()         # preload(blob) places a model blob in the RAM slot before start
    RESET = enum.auto()           # reset() restarts the board from the host side
    EMULATED = enum.auto()        # not real hardware: counts are deterministic instructions


class DeviceBackend(abc.ABC):
    """One way of reaching a board; see the module docstring for the lifecycle."""

    #: entry point name, e.g. "qemu"
    name: str = ""
    #: what this backend can do
    capabilities: Capability = Capability.NONE

    def __init__(self) -> None:
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    def start(self) -> None:
        """Acquire the board: spawn, open or attach. Raises a TinyAdaptError on failure and
        then leaves nothing behind."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Release everything start() acquired. Safe to call twice, or without start()."""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- capabilities ----------------------------------------------------------------------
    def open_port(self):
        """A pyserial-compatible port to the running firmware (Capability.SERIAL)."""
        raise DeviceError(f"the {self.name} backend has no serial link")

    def flash(self, image) -> None:
        """Write a firmware image (ELF) to the board (Capability.FLASH)."""
        raise DeviceError(f"the {self.name} backend cannot flash images")

    def reset(self) -> None:
        """Restart the board from the host side (Capability.RESET)."""
        raise DeviceError(f"the {self.name} backend cannot reset the board")

    def describe(self) -> str:
        """One line for humans: what this backend is connected to."""
        return self.name


def available_backends() -> dict[str, metadata.EntryPoint]:
    """Registered backends by name (entry points of group "tinyadapt.backends")."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


_BUILTIN = {
    "qemu": "tinyadapt.device.backends.qemu:QemuBackend",
    "serial": "tinyadapt.device.backends.serial_port:SerialBackend",
    "pyocd": "tinyadapt.device.backends.pyocd:PyOcdBackend",
}


def backend_class(name: str) -> type[DeviceBackend]:
    """Load the backend registered as `name` (built-ins work even from a source checkout)."""
    eps = available_backends()
    if name in eps:
        cls = eps[name].load()
    elif name in _BUILTIN:
        mod, attr = _BUILTIN[name].split(":")
        import importlib

        cls = getattr(importlib.import_module(mod), attr)
    else:
        known = sorted(set(eps) | set(_BUILTIN))
        raise DeviceError(f"no device backend named '{name}' (available: {', '.join(known)})")
    if not (isinstance(cls, type) and issubclass(cls, DeviceBackend)):
        raise DeviceError(f"backend entry point '{name}' is not a DeviceBackend subclass")
    return cls


__all__ = ["Capability", "DeviceBackend", "available_backends", "backend_class"]
