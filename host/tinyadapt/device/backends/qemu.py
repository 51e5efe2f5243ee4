"""QEMU: a firmware image running on an emulated Cortex-M board, its UART on a local TCP port.

    with QemuBackend("mps2-an386", "build/qemu-an386/tinyadapt.elf", preload=[(blob, 0x20000000)]) as q:
        link = Link(q.open_port())

The emulator runs with `-icount shift=7` (deterministic instruction counts), semihosting
(so the firmware can exit with a status) and its UART0 on 127.0.0.1:PORT in server mode
with `wait=on` (the CPU holds until the host connects: nothing is lost) and `nodelay=on`
(about 85 us per round trip instead of 44 ms). Model blobs too large for the ~20 KiB/s UART
are placed in memory before start with `-device loader`.

NVM: with `nvm=PATH` the firmware's NVM region is backed by that host file (the semihosting
argument `nvm=PATH`, see firmware/ports/qemu_mps2/ta_qemu_nvm.h): read at boot, written through
on every erase/program, so saved parameters survive the emulator's restarts (and its SIGKILL,
torn like flash). tinyadapt.device.nvm.nvm_file() creates and checks the file.

No emulator outlives its owner: every QEMU started here is killed by PID in stop() (the
backend is a context manager), by an atexit hook, and, should this process die without
running either (SIGKILL, or a signal whose default action ends it), by the kernel through
PR_SET_PDEATHSIG (for emulators started from the main thread: the kernel ties that signal
to the thread that forked). Signal handlers are the application's business, not a library's: the
`tinyadapt` command turns SIGTERM/SIGHUP into an exception that unwinds the `with` blocks;
a program embedding this module does what it wants with its signals.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tinyadapt.device.backends import Capability, DeviceBackend
from tinyadapt.errors import DeviceError

log = logging.getLogger(__name__)

QEMU = os.environ.get("TINYADAPT_QEMU", "qemu-system-arm")
ICOUNT_SHIFT = 7
CONNECT_TIMEOUT = 10.0

_live: dict[int, subprocess.Popen] = {}
_live_lock = threading.Lock()


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.kill()       # SIGKILL to this PID only
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a SIGKILLed process always goes
        log.warning("QEMU (pid %d) did not exit after SIGKILL", proc.pid)


def kill_all_emulators() -> None:
    """Kill every emulator this process started and has not stopped yet."""
    with _live_lock:
        procs = list(_live.values())
        _live.clear()
    for proc in procs:
        _kill(proc)


def live_emulator_pids() -> list[int]:
    with _live_lock:
        return [pid for pid, p in _live.items() if p.poll() is None]


atexit.register(kill_all_emulators)


def _die_with_parent(parent: int) -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG
    except Exception:
        pass
    if os.getppid() != parent:   # the parent died before prctl: nobody would kill us later
        os._exit(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_available() -> bool:
    return shutil.which(QEMU) is not None


class QemuBackend(DeviceBackend):
    name = "qemu"
    capabilities = Capability.SERIAL | Capability.RUNS_IMAGE | Capability.PRELOAD | Capability.EMULATED

    def __init__(self, machine: str, image: str | Path, *, preload: list[tuple[bytes, int]] | None = None,
                 icount_shift: int | None = ICOUNT_SHIFT, extra_args: list[str] | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT, port_timeout: float = 0.5, faults=None,
                 nvm: str | Path | None = None):
        """`faults`: a tinyadapt.device.faults.FaultConfig to put a fault-injecting proxy
        between the host and the emulator's UART (for reliability tests)."""
        super().__init__()
        self.machine = machine
        self.image = Path(image)
        self.preload = list(preload or [])
        self.icount_shift = icount_shift
        self.extra_args = list(extra_args or [])
        self.connect_timeout = connect_timeout
        self.port_timeout = port_timeout
        self.proc: subprocess.Popen | None = None
        self.tcp_port: int | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._port = None
        self.faults = faults
        self.proxy = None
        self.nvm = Path(nvm) if nvm else None

    # -- lifecycle -------------------------------------------------------------------------
    def command(self, tcp_port: int) -> list[str]:
        cmd = [QEMU, "-machine", self.machine, "-kernel", str(getattr(self, "_kernel", self.image)),
               "-serial", f"tcp:127.0.0.1:{tcp_port},server=on,wait=on,nodelay=on",
               "-semihosting-config", "enable=on,target=native" + (f",arg=nvm={self.nvm}" if self.nvm else ""),
               "-display", "none", "-monitor", "none"]
        if self.icount_shift is not None:
            cmd += ["-icount", f"shift={self.icount_shift}"]
        for k, (_blob, addr) in enumerate(self.preload):
            cmd += ["-device", f"loader,file={self._blob_path(k)},addr=0x{addr:x}"]
        return cmd + self.extra_args

    def _blob_path(self, k: int) -> Path:
        return Path(self._tmp.name) / f"preload{k}.bin"

    def add_preload(self, blob: bytes, addr: int) -> None:
        if self.proc is not None:
            raise DeviceError("QEMU is already running: preload blobs before start()")
        self.preload.append((blob, addr))

    def start(self) -> None:
        if self.proc is not None:
            return
        if not qemu_available():
            raise DeviceError(f"{QEMU} not found: install QEMU (Debian: apt-get install qemu-system-arm)")
        if not self.image.is_file():
            raise DeviceError(f"firmware image {self.image} does not exist (build it with 'tinyadapt build')")
        if self.nvm is not None and not self.nvm.is_file():
            raise DeviceError(f"NVM file {self.nvm} does not exist (tinyadapt.device.nvm.nvm_file creates it)")
        self._tmp = tempfile.TemporaryDirectory(prefix="tinyadapt-qemu-")
        for k, (blob, _addr) in enumerate(self.preload):
            self._blob_path(k).write_bytes(blob)
        self._kernel = self.image
        if self.preload:
            from tinyadapt.device.elf import drop_empty_segments

            self._kernel = Path(self._tmp.name) / self.image.name
            regions = [(addr, len(blob)) for blob, addr in self.preload]
            self._kernel.write_bytes(drop_empty_segments(self.image.read_bytes(), regions))
        try:
            for attempt in range(3):     # another process may grab the free port first
                self.tcp_port = free_port()
                self._spawn(self.command(self.tcp_port))
                try:
                    self._port = self._connect()
                    break
                except _BindFailed:
                    self._reap()
                    if attempt == 2:
                        raise DeviceError("QEMU could not listen on a local TCP port (3 tries)") from None
        except BaseException:
            self.stop()
            raise
        log.info("QEMU %s (pid %d) on 127.0.0.1:%d", self.machine, self.proc.pid, self.tcp_port)

    def _spawn(self, cmd: list[str]) -> None:
        log.debug("starting %s", " ".join(cmd))
        self._log_path = Path(self._tmp.name) / "qemu.log"
        with open(self._log_path, "wb") as logf:
            with _live_lock:   # registered before anything can interrupt us
                # PR_SET_PDEATHSIG fires when the *thread* that forked ends, not the process: from
                # a worker thread that finishes before the emulator is done with, it would kill
                # QEMU under its user. There, stop() and the atexit hook must do.
                guard = threading.current_thread() is threading.main_thread()
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                             preexec_fn=functools.partial(_die_with_parent, os.getpid())
                                             if guard else None, close_fds=True)
                _live[self.proc.pid] = self.proc

    def _reap(self) -> None:
        if self.proc is not None:
            with _live_lock:
                _live.pop(self.proc.pid, None)
            _kill(self.proc)
            self.proc = None

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self._log_path.read_text(errors="replace").strip().splitlines()
        except (OSError, AttributeError):
            return ""
        return " | ".join(text[-lines:])

    def _retry(self, connect):
        """Call connect() until QEMU listens; fail early when QEMU exits."""
        import serial

        deadline = time.monotonic() + self.connect_timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                tail = self.log_tail()
                if "bind" in tail.lower() or "address already in use" in tail.lower():
                    raise _BindFailed()
                raise DeviceError(f"QEMU exited with status {code} before accepting a connection"
                                  + (f": {tail}" if tail else ""))
            try:
                return connect()
            except (serial.SerialException, OSError):
                if time.monotonic() > deadline:
                    raise DeviceError(f"QEMU did not accept a connection on 127.0.0.1:{self.tcp_port} "
                                      f"within {self.connect_timeout:.0f} s") from None
                time.sleep(0.02)

    def _connect(self):
        import serial

        if self.faults is None:
            return self._retry(lambda: serial.serial_for_url(f"socket://127.0.0.1:{self.tcp_port}",
                                                             timeout=self.port_timeout))
        from tinyadapt.device.faults import FaultProxy

        sock = self._retry(lambda: socket.create_connection(("127.0.0.1", self.tcp_port), timeout=1.0))
        self.proxy = FaultProxy(sock, self.faults, upstream_alive=self.alive)
        self.proxy.start()
        return serial.serial_for_url(self.proxy.url, timeout=self.port_timeout)

    def open_port(self):
        """The connected pyserial socket:// port (one per emulator run; the caller owns it)."""
        if self._port is None:
            raise DeviceError("QEMU is not running (call start() first)")
        port, self._port = self._port, None
        return port

    def stop(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except Exception:
                pass
            self._port = None
        if self.proxy is not None:
            self.proxy.stop()
        self._reap()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def describe(self) -> str:
        where = f"127.0.0.1:{self.tcp_port}" if self.tcp_port else "not started"
        return f"QEMU {self.machine} running {self.image.name} ({where})"


class _BindFailed(Exception):
    pass
