"""A minimal client for the device serial protocol (docs/PROTOCOL.md), for the device tests.

COBS framing, CRC-32, request/response with retransmit on NAK or timeout. The full host
client lives in tinyadapt.device; this one stays small so the tests check the device
against the spec, not against another implementation of the same code.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
import zlib
from dataclasses import dataclass

VERSION = 1
REQUEST, RESPONSE, NAK = 1, 2, 3
HEADER = struct.Struct("<BBHBbH")  # version, type, seq, cmd, status, len

HELLO, RESET = 0x01, 0x02
LOAD_BEGIN, LOAD_CHUNK, LOAD_END, SELECT = 0x10, 0x11, 0x12, 0x13
INPUT_WRITE, INVOKE, OUTPUT_READ, PROFILE_READ, INFER = 0x20, 0x21, 0x22, 0x23, 0x24
METRICS = 0x30
MAX_PAYLOAD = 1024

STATUS = {0: "TA_OK", -1: "TA_ERR_ARG", -2: "TA_ERR_MAGIC", -3: "TA_ERR_VERSION", -4: "TA_ERR_TRUNCATED",
          -5: "TA_ERR_CRC", -6: "TA_ERR_CORRUPT", -7: "TA_ERR_UNSUPPORTED", -8: "TA_ERR_SHAPE",
          -9: "TA_ERR_ARENA", -10: "TA_ERR_OVERFLOW", -11: "TA_ERR_STATE"}


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block.clear()
    out += bytes([len(block) + 1]) + block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            raise ValueError("bad COBS")
        out += data[i + 1:i + code]
        i += code
        if code != 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


@dataclass
class Frame:
    type: int
    seq: int
    cmd: int
    status: int
    payload: bytes
    version: int = VERSION

    def encode(self) -> bytes:
        body = HEADER.pack(self.version, self.type, self.seq, self.cmd, self.status, len(self.payload)) + self.payload
        return body + struct.pack("<I", crc32(body))

    @staticmethod
    def decode(raw: bytes) -> "Frame":
        if len(raw) < 12:
            raise ValueError("short frame")
        version, ftype, seq, cmd, status, n = HEADER.unpack_from(raw)
        if n + 12 != len(raw):
            raise ValueError("length mismatch")
        if struct.unpack_from("<I", raw, 8 + n)[0] != crc32(raw[:8 + n]):
            raise ValueError("bad CRC")
        return Frame(ftype, seq, cmd, status, raw[8:8 + n], version)


def wire(frame_bytes: bytes) -> bytes:
    """One frame as sent: a leading delimiter flushes any line noise, then COBS, then 0x00."""
    return b"\x00" + cobs_encode(frame_bytes) + b"\x00"


class DeviceError(Exception):
    pass


class TcpLink:
    """QEMU's -serial tcp:...,server=on: connect, retrying until QEMU listens."""

    def __init__(self, port: int, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, timeout: float) -> bytes:
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not r:
            return b""
        data = self.sock.recv(65536)
        if not data:
            raise DeviceError("device closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


class FdLink:
    """A pty (or any fd pair) opened in raw mode."""

    def __init__(self, path: str):
        import termios
        import tty
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd, termios.TCSANOW)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def read(self, timeout: float) -> bytes:
        r, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        return os.read(self.fd, 65536) if r else b""

    def close(self) -> None:
        os.close(self.fd)


class Client:
    def __init__(self, link, timeout: float = 2.0, retries: int = 3):
        self.link = link
        self.timeout = timeout
        self.retries = retries
        self.seq = 0
        self.rx = bytearray()
        self.naks = 0
        self.retransmits = 0

    def read_frame(self, timeout: float) -> Frame | None:
        """The next well-formed frame, or None at the deadline; corrupt frames are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\x00" in self.rx:
                cut = self.rx.index(0)
                chunk = bytes(self.rx[:cut])
                del self.rx[:cut + 1]
                if not chunk:
                    continue
                try:
                    return Frame.decode(cobs_decode(chunk))
                except ValueError:
                    continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.rx += self.link.read(left)

    def send_frame(self, frame: Frame) -> None:
        self.link.write(wire(frame.encode()))

    def request(self, cmd: int, payload: bytes = b"", seq: int | None = None, check: bool = True) -> Frame:
        """Send one request and wait for its response, retransmitting on NAK or timeout."""
        if seq is None:
            seq = self.seq
            self.seq = (self.seq + 1) & 0xFFFF
        frame = Frame(REQUEST, seq, cmd, 0, payload)
        for attempt in range(self.retries + 1):
            if attempt:
                self.retransmits += 1
            self.send_frame(frame)
            deadline = time.monotonic() + self.timeout
            while True:
                resp = self.read_frame(deadline - time.monotonic())
                if resp is None:
                    break  # timeout: retransmit
                if resp.type == NAK:
                    self.naks += 1
                    break
                if resp.type == RESPONSE and resp.seq == seq:
                    if check and resp.status != 0:
                        raise DeviceError(f"cmd 0x{cmd:02x}: {STATUS.get(resp.status, resp.status)}")
                    return resp
                # a late duplicate of an earlier response: ignore
        raise DeviceError(f"cmd 0x{cmd:02x} seq {seq}: no response after {self.retries} retries")

    # ---- commands ---------------------------------------------------------------------

    def hello(self) -> dict:
        p = self.request(HELLO).payload
        (proto, major, minor, n_slots, arena, slot, features, max_payload, bl, cl) = struct.unpack_from(
            "<BBBBIIIHBB", p)
        assert len(p) == 28 + bl + cl, f"HELLO payload of {len(p)} bytes"
        builtin_size, builtin_crc = struct.unpack_from("<II", p, 20 + bl + cl)
        return dict(proto=proto, engine=(major, minor), n_slots=n_slots, arena_size=arena, ram_slot_size=slot,
                    features=features, max_payload=max_payload, board=p[20:20 + bl].decode(),
                    core=p[20 + bl:20 + bl + cl].decode(), builtin_size=builtin_size, builtin_crc=builtin_crc)

    def select(self, slot: int) -> dict:
        p = self.request(SELECT, bytes([slot])).payload
        arena, n_in, n_out, n_ops = struct.unpack_from("<IBBH", p)
        sizes = struct.unpack_from(f"<{n_in + n_out}I", p, 8)
        assert len(p) == 16 + 4 * (n_in + n_out), f"SELECT payload of {len(p)} bytes"
        blob_size, blob_crc = struct.unpack_from("<II", p, 8 + 4 * (n_in + n_out))
        return dict(arena_needed=arena, n_ops=n_ops, input_sizes=list(sizes[:n_in]),
                    output_sizes=list(sizes[n_in:]), blob_size=blob_size, blob_crc=blob_crc)

    def load(self, blob: bytes, slot: int = 1, chunk: int = MAX_PAYLOAD - 4) -> None:
        self.request(LOAD_BEGIN, struct.pack("<B3xII", slot, len(blob), crc32(blob)))
        for off in range(0, len(blob), chunk):
            self.request(LOAD_CHUNK, struct.pack("<I", off) + blob[off:off + chunk])
        self.request(LOAD_END)

    def infer(self, data: bytes) -> tuple[int, bytes]:
        p = self.request(INFER, data).payload
        return struct.unpack_from("<Q", p)[0], p[8:]

    def input_write(self, index: int, data: bytes, offset: int = 0) -> None:
        self.request(INPUT_WRITE, struct.pack("<B3xI", index, offset) + data)

    def invoke(self, profile: bool = False) -> tuple[int, int]:
        return struct.unpack("<QI", self.request(INVOKE, bytes([1 if profile else 0])).payload)

    def output_read(self, index: int, length: int, offset: int = 0) -> bytes:
        return self.request(OUTPUT_READ, struct.pack("<B3xIH", index, offset, length)).payload

    def profile_read(self, first: int, count: int) -> list[tuple[int, int]]:
        p = self.request(PROFILE_READ, struct.pack("<HH", first, count)).payload
        return [(op, n) for op, _, n in struct.iter_unpack("<HHI", p)]

    METRIC_NAMES = ("frames_rx", "frames_tx", "crc_errors", "naks_sent", "duplicates", "invokes",
                    "arena_used", "arena_size", "stack_used", "stack_size")

    def metrics(self) -> dict:
        return dict(zip(self.METRIC_NAMES, struct.unpack("<10I", self.request(METRICS).payload)))
