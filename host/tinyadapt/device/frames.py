"""Protocol v1 frames (docs/PROTOCOL.md): header, payload and CRC, COBS-encoded, 0x00-terminated.

    offset 0  u8  version   1
           1  u8  type      1 request, 2 response, 3 NAK
           2  u16 seq       request number; a response echoes it (a NAK carries 0xFFFF)
           4  u8  cmd       command code
           5  i8  status    responses: ta_status_t (0 = OK); requests: 0
           6  u16 len       payload bytes, at most MAX_PAYLOAD
           8  len payload
       8+len  u32 crc       CRC-32/IEEE of bytes [0, 8 + len)

`encode_frame` builds the bytes to send; `FrameDecoder` turns a received byte stream back
into frames, reporting each corrupt one and resynchronising at the next 0x00.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

from tinyadapt.device import cobs
from tinyadapt.errors import ProtocolError

PROTO_VERSION = 1
MAX_PAYLOAD = 1024          # TA_PROTO_MAX_PAYLOAD_LIMIT; HELLO reports what a build accepts
HEADER_SIZE = 8
CRC_SIZE = 4
OVERHEAD = HEADER_SIZE + CRC_SIZE
NAK_SEQ = 0xFFFF
MAX_WIRE_SIZE = cobs.max_encoded_size(OVERHEAD + MAX_PAYLOAD) + 1   # with the delimiter

_HEADER = struct.Struct("<BBHBbH")
_CRC = struct.Struct("<I")


class FrameType(enum.IntEnum):
    REQUEST = 1
    RESPONSE = 2
    NAK = 3


class Cmd(enum.IntEnum):
    HELLO = 0x01
    RESET = 0x02
    LOAD_BEGIN = 0x10
    LOAD_CHUNK = 0x11
    LOAD_END = 0x12
    SELECT = 0x13
    INPUT_WRITE = 0x20
    INVOKE = 0x21
    OUTPUT_READ = 0x22
    PROFILE_READ = 0x23
    INFER = 0x24
    METRICS = 0x30
    TRAIN_STEP = 0x40
    EVAL = 0x41
    SAVE = 0x42
    RESET_TO_BASE = 0x43
    TRAIN_INFO = 0x44
    PARAMS_READ = 0x45
    ADAPT_SELECT = 0x50
    ADAPT_INFER = 0x51
    ADAPT_RESET = 0x52
    ADAPT_SAVE = 0x53
    ADAPT_STATUS = 0x54


class Feature(enum.IntFlag):
    """HELLO feature bits (firmware/include/tinyadapt/ta_protocol.h TA_FEATURE_*)."""
    PROFILE = 1 << 0            # INVOKE can record a per-op profile
    INSTR_COUNTER = 1 << 1      # counts are retired instructions
    DSP_KERNELS = 1 << 2        # built with the DSP kernels
    BUILTIN_MODEL = 1 << 3      # slot 0 holds a compiled-in model
    CYCLE_COUNTER = 1 << 4      # counts are core clock cycles
    TIME_COUNTER = 1 << 5       # counts are nanoseconds of wall time
    TRAIN = 1 << 6              # TRAIN_* commands
    NVM = 1 << 7                # an NVM region: SAVE persists parameters
    ADAPT = 1 << 8              # ADAPT_* commands (early-exit TTA)


# ta_status_t (firmware/include/tinyadapt/ta_status.h), for error messages.
STATUS_NAMES = {
    0: "TA_OK", -1: "TA_ERR_ARG", -2: "TA_ERR_MAGIC", -3: "TA_ERR_VERSION", -4: "TA_ERR_TRUNCATED",
    -5: "TA_ERR_CRC", -6: "TA_ERR_CORRUPT", -7: "TA_ERR_UNSUPPORTED", -8: "TA_ERR_SHAPE",
    -9: "TA_ERR_ARENA", -10: "TA_ERR_OVERFLOW", -11: "TA_ERR_STATE",
}


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"status {status}")


def cmd_name(cmd: int) -> str:
    try:
        return Cmd(cmd).name
    except ValueError:
        return f"0x{cmd:02x}"


class FrameError(ProtocolError):
    """A received frame is malformed: COBS, length or CRC."""


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    cmd: int
    status: int = 0
    payload: bytes = b""
    version: int = PROTO_VERSION

    def describe(self) -> str:
        kind = {1: "request", 2: "response", 3: "NAK"}.get(self.type, f"type {self.type}")
        return f"{kind} seq {self.seq} {cmd_name(self.cmd)} status {self.status} ({len(self.payload)} bytes)"


def pack_frame(frame: Frame) -> bytes:
    """The decoded frame: header, payload, CRC (no COBS, no delimiter)."""
    if len(frame.payload) > 0xFFFF:
        raise ValueError(f"payload of {len(frame.payload)} bytes does not fit a frame")
    body = _HEADER.pack(frame.version, frame.type, frame.seq & 0xFFFF, frame.cmd, frame.status,
                        len(frame.payload)) + bytes(frame.payload)
    return body + _CRC.pack(zlib.crc32(body) & 0xFFFFFFFF)


def encode_frame(frame: Frame) -> bytes:
    """The bytes to put on the wire: COBS(header | payload | crc) 0x00."""
    return cobs.encode(pack_frame(frame)) + b"\0"


def request(seq: int, cmd: int, payload: bytes = b"") -> bytes:
    return encode_frame(Frame(FrameType.REQUEST, seq, cmd, 0, payload))


def parse_frame(decoded: bytes, max_payload: int = MAX_PAYLOAD) -> Frame:
    """Check and split one decoded frame; raises FrameError (short, bad length, bad CRC)."""
    if len(decoded) < OVERHEAD:
        raise FrameError(f"frame of {len(decoded)} bytes is shorter than the {OVERHEAD}-byte minimum")
    version, ftype, seq, cmd, status, length = _HEADER.unpack_from(decoded)
    if length > max_payload:
        raise FrameError(f"frame announces a {length}-byte payload, more than the {max_payload} allowed")
    if len(decoded) != OVERHEAD + length:
        raise FrameError(f"frame announces a {length}-byte payload but holds {len(decoded) - OVERHEAD}")
    (crc,) = _CRC.unpack_from(decoded, HEADER_SIZE + length)
    if zlib.crc32(decoded[:HEADER_SIZE + length]) & 0xFFFFFFFF != crc:
        raise FrameError("frame CRC mismatch")
    if version != PROTO_VERSION:
        raise FrameError(f"frame of protocol version {version}, this host speaks {PROTO_VERSION}")
    return Frame(ftype, seq, cmd, status, bytes(decoded[HEADER_SIZE:HEADER_SIZE + length]), version)


def decode_frame(wire: bytes, max_payload: int = MAX_PAYLOAD) -> Frame:
    """Decode one wire frame (with or without its trailing 0x00)."""
    if wire.endswith(b"\0"):
        wire = wire[:-1]
    return parse_frame(cobs.decode(wire), max_payload)


class FrameDecoder:
    """Splits a byte stream at 0x00 into frames.

    `feed(data)` returns a list whose items are Frame objects or FrameError objects (one per
    corrupt frame, in stream order). Garbage costs at most the frame it lands in: decoding
    restarts after every 0x00. A run longer than any valid frame is dropped as one error
    once its delimiter arrives, without being buffered.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self.max_wire = cobs.max_encoded_size(OVERHEAD + max_payload)
        self._buf = bytearray()
        self._overlong = False
        self.frames = 0
        self.errors = 0
        self.bytes_in = 0

    def reset(self) -> None:
        self._buf.clear()
        self._overlong = False

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        self.bytes_in += len(data)
        out: list[Frame | FrameError] = []
        start = 0
        while True:
            zero = data.find(b"\0", start)
            if zero < 0:
                self._take(data[start:])
                return out
            self._take(data[start:zero])
            start = zero + 1
            item = self._finish()
            if item is not None:
                out.append(item)

    def _take(self, chunk: bytes) -> None:
        if self._overlong or not chunk:
            return
        if len(self._buf) + len(chunk) > self.max_wire:
            self._overlong = True
            self._buf.clear()
            return
        self._buf += chunk

    def _finish(self) -> Frame | FrameError | None:
        if self._overlong:
            self._overlong = False
            self.errors += 1
            return FrameError(f"frame longer than the {self.max_wire}-byte maximum")
        if not self._buf:
            return None      # back-to-back delimiters: an empty frame is nothing, not an error
        wire = bytes(self._buf)
        self._buf.clear()
        try:
            frame = parse_frame(cobs.decode(wire), self.max_payload)
        except ProtocolError as exc:
            self.errors += 1
            return exc if isinstance(exc, FrameError) else FrameError(str(exc))
        self.frames += 1
        return frame
