"""The reliable request/response link over any pyserial port (UART, pty, socket:// to QEMU).

One request is outstanding at a time (docs/PROTOCOL.md "Reliability"):

- requests are numbered seq = 0, 1, 2, ... (mod 65536); a retransmission reuses the seq, and
  the device executes each seq at most once (it answers a repeat from its cache), so a
  retransmission never runs a command twice;
- a NAK, or a corrupt frame from the device, proves the device is alive and something was
  lost: the request is retransmitted at once;
- silence for `timeout` seconds also retransmits; `retries` silent periods in a row declare
  the device dead with one line: "device stopped answering after N retries (last command X)".
  A short timeout doubles with each silent period, up to BACKOFF_SECONDS (0.5, 1, 2, 2 s by
  default: 5.5 s of silence), so an emulator starved of CPU on a loaded host is not taken
  for a dead one, while a hung device is still reported within seconds;
- a frame that stops arriving mid-way (its 0x00 delimiter was lost) is dropped after
  `gap_timeout` seconds without a byte, and the request is retransmitted at once;
- every transmission is framed as 0x00 COBS(frame) 0x00 0x00: the leading delimiter flushes
  line noise the device may hold, the doubled trailing one survives the loss of one byte.
  Empty frames are ignored by both ends (docs/PROTOCOL.md "Framing");
- responses carrying another seq (late duplicates of earlier answers) are ignored;
- a closed link (QEMU killed, cable pulled) fails at once, not after the timeouts.

Every request is bounded: at most `max_attempts` transmissions, so a hopelessly noisy link
also ends in a DeviceError instead of looping.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

from tinyadapt.device.frames import Cmd, Frame, FrameDecoder, FrameError, FrameType, cmd_name, request
from tinyadapt.errors import DeviceError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 0.5
DEFAULT_RETRIES = 3
DEFAULT_MAX_ATTEMPTS = 64
DEFAULT_GAP_TIMEOUT = 0.05    # a device sends a frame in one go: a longer pause mid-frame is a lost delimiter
BACKOFF_SECONDS = 2.0         # silent periods grow up to this (longer timeouts stay as they are)


@dataclass
class LinkStats:
    requests: int = 0           # requests answered
    transmissions: int = 0      # request frames sent, retransmissions included
    retransmits: int = 0
    naks: int = 0               # NAKs received
    timeouts: int = 0           # waits that expired
    bad_frames: int = 0         # corrupt frames received (COBS, length, CRC)
    stale_frames: int = 0       # well-formed answers to another seq, ignored
    bytes_tx: int = 0
    bytes_rx: int = 0
    last_rtt: float = 0.0       # seconds from first transmission to the answer, last request
    last_attempts: int = 0      # transmissions the last request needed (1 = answered at once)
    truncated_frames: int = 0   # partial frames dropped after a pause (lost delimiter)

    def as_dict(self) -> dict:
        return asdict(self)


class Link:
    """Request/response transport over an open pyserial-compatible port.

    The port needs read(n), write(b), `timeout` (settable), `in_waiting` and close(); the link
    owns it from now on and closes it in close().
    """

    def __init__(self, port, *, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, gap_timeout: float = DEFAULT_GAP_TIMEOUT,
                 name: str = "device"):
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.max_attempts = max_attempts
        self.gap_timeout = gap_timeout
        self.name = name
        self.stats = LinkStats()
        self._decoder = FrameDecoder()
        self._seq = 0
        self._closed = False
        self._dead: str | None = None

    # -- the byte stream -------------------------------------------------------------------
    def _write(self, data: bytes, cmd: int) -> None:
        try:
            self.port.write(data)
        except Exception as exc:  # pyserial raises SerialException (an OSError) or OSError
            self._fail_closed(exc, cmd)
        self.stats.bytes_tx += len(data)

    def _read_some(self, wait: float, cmd: int) -> bytes:
        """Bytes available within `wait` seconds (b"" on timeout)."""
        try:
            self.port.timeout = max(wait, 0.0)
            data = self.port.read(1)
            if data and self.port.in_waiting:
                self.port.timeout = 0
                data += self.port.read(65536)
        except Exception as exc:
            self._fail_closed(exc, cmd)
        self.stats.bytes_rx += len(data)
        return data

    def _fail_closed(self, exc: BaseException, cmd: int):
        reason = str(exc).strip() or type(exc).__name__
        self._dead = f"{self.name} stopped answering: the link closed ({reason}; last command {cmd_name(cmd)})"
        raise DeviceError(self._dead) from None

    # -- requests --------------------------------------------------------------------------
    @property
    def next_seq(self) -> int:
        return self._seq

    def request(self, cmd: int, payload: bytes = b"", *, timeout: float | None = None) -> Frame:
        """Send one request and return the device's response frame (any status).

        Raises DeviceError when the device stays silent for `retries` retransmissions, the
        link closes, or `max_attempts` transmissions bring no valid answer.
        """
        if self._closed:
            raise DeviceError(f"the link to {self.name} is closed")
        if self._dead:
            raise DeviceError(self._dead)
        answer_timeout = self.timeout if timeout is None else timeout
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        wire = b"\0" + request(seq, cmd, payload) + b"\0"
        attempts, silent = 0, 0
        t_first = time.perf_counter()

        def transmit(reason: str, wait: float = answer_timeout) -> float:
            nonlocal attempts
            if attempts >= self.max_attempts:
                self._dead = (f"{self.name} gave no valid answer to {cmd_name(cmd)} after {attempts} "
                              f"attempts: the link is too noisy")
                raise DeviceError(self._dead)
            if attempts:
                self.stats.retransmits += 1
                log.debug("retransmit seq %d %s (%s)", seq, cmd_name(cmd), reason)
            attempts += 1
            self.stats.transmissions += 1
            self._write(wire, cmd)
            return time.monotonic() + wait

        deadline = transmit("first")
        heard = False           # any byte from the device since the last transmission
        last_byte = 0.0
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if self._decoder.pending and now - last_byte >= self.gap_timeout:
                self._decoder.reset()
                self.stats.truncated_frames += 1
                self.stats.bad_frames += 1
                deadline = transmit("truncated frame")
                heard, silent = False, 0
                continue
            if remaining <= 0:
                self.stats.timeouts += 1
                silent = 0 if heard else silent + 1
                if silent > self.retries:
                    self._dead = (f"{self.name} stopped answering after {self.retries} retries "
                                  f"(last command {cmd_name(cmd)})")
                    raise DeviceError(self._dead)
                deadline = transmit("timeout", max(answer_timeout, min(answer_timeout * 2 ** silent,
                                                                       BACKOFF_SECONDS)))
                heard = False
                continue
            poll = min(remaining, self.gap_timeout) if self._decoder.pending else remaining
            data = self._read_some(poll, cmd)
            if not data:
                continue
            heard = True
            last_byte = time.monotonic()
            resend = None
            for item in self._decoder.feed(data):
                if isinstance(item, FrameError):
                    self.stats.bad_frames += 1
                    log.debug("dropped a corrupt frame: %s", item)
                    resend = resend or "corrupt frame received"
                    continue
                if item.type == FrameType.NAK:
                    self.stats.naks += 1
                    resend = resend or "NAK"
                    continue
                if item.type == FrameType.RESPONSE and item.seq == seq and item.cmd == cmd:
                    self.stats.requests += 1
                    self.stats.last_rtt = time.perf_counter() - t_first
                    self.stats.last_attempts = attempts
                    return item
                self.stats.stale_frames += 1
                log.debug("ignored a stale frame: %s", item.describe())
            if resend:
                deadline = transmit(resend)
                heard = False
                silent = 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.port.close()
        except Exception:  # closing a dead port must not hide the error that got us here
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["Link", "LinkStats", "Cmd", "DEFAULT_TIMEOUT", "DEFAULT_RETRIES"]
