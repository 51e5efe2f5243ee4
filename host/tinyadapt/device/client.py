"""Typed protocol v1 commands on top of a Link (docs/PROTOCOL.md "Commands").

    client = DeviceClient(link)
    info = client.hello()                 # always first: resets the device's duplicate filter
    client.load_model(blob)               # LOAD_BEGIN / LOAD_CHUNK... / LOAD_END into slot 1
    model = client.select(1, expect=blob) # sizes of inputs and outputs; refuses another model
    outs, instructions = client.run([x_bytes])   # INFER when it fits one frame, else the long way
    m = client.metrics()

Every command whose response status is not TA_OK raises DeviceCommandError naming the
command and the status; a dead link raises DeviceError (from the Link).
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import asdict, dataclass, field

from tinyadapt.device.frames import MAX_PAYLOAD, Cmd, Feature, Frame, cmd_name, status_name
from tinyadapt.device.link import Link
from tinyadapt.errors import DeviceCommandError, DeviceError, ProtocolError

log = logging.getLogger(__name__)

SLOT_BUILTIN = 0
SLOT_RAM = 1

_HELLO = struct.Struct("<BBBBIIIHBB")
_METRICS = struct.Struct("<10I")
_SELECT = struct.Struct("<IBBH")
_IDENTITY = struct.Struct("<II")      # blob total_size, header CRC-32 (HELLO: compiled-in; SELECT: selected)
_PROFILE_ENTRY = struct.Struct("<HHI")
_TRAIN_PROFILE_ENTRY = struct.Struct("<HHII")
_TRAIN_STEP = struct.Struct("<fiIQ")
_EVAL = struct.Struct("<fiQ")
_SAVE = struct.Struct("<IIQ")
_TRAIN_INFO = struct.Struct("<13I")
_INVOKE = struct.Struct("<QI")
_REVISION = struct.Struct("<I")
_ADAPT_SELECT = struct.Struct("<BB2xI")
_ADAPT_INFER = struct.Struct("<B3xifIIQ")
_ADAPT_STATUS = struct.Struct("<6IB3x")
LOSS_KINDS = {"cross_entropy": 0, "entropy": 1}

# A slow INVOKE must not look like a dead device: its timeout grows with the slowest one seen.
FIRST_INVOKE_TIMEOUT = 5.0
HELLO_TIMEOUT = 2.0
MAX_INVOKE_TIMEOUT = 60.0


@dataclass
class DeviceInfo:
    proto_version: int
    engine_version: str
    n_slots: int
    arena_size: int
    ram_slot_size: int
    features: Feature
    max_payload: int
    board: str
    core: str
    builtin: "BlobIdentity | None" = None   # the compiled-in model, None when the image has none

    @property
    def counter_unit(self) -> str:
        if self.features & Feature.INSTR_COUNTER:
            return "instructions"
        if self.features & Feature.CYCLE_COUNTER:
            return "cycles"
        if self.features & Feature.TIME_COUNTER:
            return "nanoseconds"
        return "none"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["features"] = [f.name for f in Feature if f & self.features]
        d["counter_unit"] = self.counter_unit
        return d


@dataclass(frozen=True)
class BlobIdentity:
    """A model blob named by its size and the CRC-32 in its header (which the device's loader
    checks against the bytes): two blobs that differ in one weight differ here."""
    size: int
    crc: int

    @classmethod
    def of(cls, blob: bytes) -> "BlobIdentity":
        if len(blob) < 16:
            raise ProtocolError(f"model blob truncated: {len(blob)} bytes")
        return cls(*_IDENTITY.unpack_from(blob, 8))

    def __str__(self) -> str:
        return f"{self.size:,} bytes, CRC 0x{self.crc:08x}"


@dataclass
class ModelInfo:
    arena_needed: int
    n_ops: int
    input_sizes: list[int]
    output_sizes: list[int]
    identity: BlobIdentity | None = None


@dataclass
class Metrics:
    frames_rx: int
    frames_tx: int
    crc_errors: int
    naks_sent: int
    duplicates: int
    invokes: int
    arena_used: int
    arena_size: int
    stack_used: int
    stack_size: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class StepResult:
    loss: float
    prediction: int
    updated_params: int
    instructions: int        # counter units (HELLO's counter_unit) the step took on the device


@dataclass
class AdaptStatus:
    rollbacks: int
    updates: int
    paused: int              # samples adaptation stays off for
    samples: int
    arena_used: int          # high-water mark of the arena since SELECT (backbone, heads, loop work area)
    state_bytes: int         # adaptation state outside the arena (statistics, the loop's own)
    mode: int                # ADAPT_SELECT mode


@dataclass
class SaveResult:
    revision: int
    bytes: int
    instructions: int


@dataclass
class TrainInfo:
    ready: bool               # the selected model has a TRAIN section and the trainer is bound
    nvm: bool                 # the parameter store is open on the board's NVM
    restored: bool            # SELECT applied stored parameters
    stored: bool              # the store holds a valid record (of any model)
    param_bytes: int
    updated_layers: int
    stored_revision: int
    stored_bytes: int
    stored_model_crc: int
    model_crc: int
    restore_status: int
    steps: int
    step_arena_used: int      # high-water of the training-step arena since SELECT (painted)
    step_arena_size: int      # the blob's planned training-step arena
    store_capacity: int
    image_bytes: int          # the parameter image SAVE persists and PARAMS_READ reads (the masters)

    @property
    def peak_sram_bytes(self) -> int:
        """Device-measured SRAM of a training step: the arena's high-water plus parameter RAM."""
        return self.step_arena_used + self.param_bytes

    def as_dict(self) -> dict:
        return dict(asdict(self), peak_sram_bytes=self.peak_sram_bytes)


@dataclass
class OpProfile:
    index: int
    opcode: int
    instructions: int


@dataclass
class InvokeResult:
    instructions: int
    n_ops_profiled: int = 0
    profile: list[OpProfile] = field(default_factory=list)


class DeviceClient:
    def __init__(self, link: Link):
        self.link = link
        self.info: DeviceInfo | None = None
        self.model: ModelInfo | None = None
        self.max_payload = MAX_PAYLOAD
        self._invoke_timeout = FIRST_INVOKE_TIMEOUT
        self._slow_invoke = 0.0

    # -- plumbing --------------------------------------------------------------------------
    def _call(self, cmd: Cmd, payload: bytes = b"", timeout: float | None = None) -> bytes:
        frame: Frame = self.link.request(cmd, payload, timeout=timeout)
        if frame.status != 0:
            raise DeviceCommandError(f"device refused {cmd.name}: {status_name(frame.status)}",
                                     status=frame.status, command=cmd.name)
        return frame.payload

    def _timed_call(self, cmd: Cmd, payload: bytes) -> bytes:
        """INVOKE / INFER: wait the base timeout plus three times the slowest one seen.

        Only answers to a first transmission are timed: a retried request's time is mostly
        waiting, and letting it in would make every later wait longer still."""
        out = self._call(cmd, payload, timeout=max(self._invoke_timeout, self.link.timeout))
        if self.link.stats.last_attempts == 1:
            self._slow_invoke = max(self._slow_invoke, self.link.stats.last_rtt)
            self._invoke_timeout = min(self.link.timeout + 3 * self._slow_invoke, MAX_INVOKE_TIMEOUT)
        return out

    @staticmethod
    def _expect(cmd: Cmd, payload: bytes, size: int, exact: bool = True) -> None:
        if len(payload) < size or (exact and len(payload) != size):
            raise ProtocolError(f"{cmd.name} response of {len(payload)} bytes, expected {size}")

    def _fixed(self, cmd: Cmd, layout: struct.Struct, payload: bytes = b"", *, timed: bool = False,
               timeout: float | None = None) -> tuple:
        """A command whose answer is exactly one `layout` record, unpacked."""
        p = self._timed_call(cmd, payload) if timed else self._call(cmd, payload, timeout=timeout)
        self._expect(cmd, p, layout.size)
        return layout.unpack(p)

    def _read_entries(self, cmd: Cmd, entry: struct.Struct, first: int, count: int) -> list[tuple]:
        """PROFILE_READ-shaped commands: records [first, first + count), as many per request as fit."""
        per = self.max_payload // entry.size
        out: list[tuple] = []
        while len(out) < count:
            n = min(per, count - len(out))
            p = self._call(cmd, struct.pack("<HH", first + len(out), n))
            self._expect(cmd, p, n * entry.size)
            out += [entry.unpack_from(p, k * entry.size) for k in range(n)]
        return out

    # -- commands --------------------------------------------------------------------------
    def hello(self, timeout: float | None = None) -> DeviceInfo:
        """HELLO; the first one may wait for the device to boot (it paints its arena and stack),
        so it gets at least HELLO_TIMEOUT seconds per attempt."""
        p = self._call(Cmd.HELLO, timeout=timeout or max(self.link.timeout, HELLO_TIMEOUT))
        self._expect(Cmd.HELLO, p, _HELLO.size, exact=False)
        (proto, major, minor, n_slots, arena, ram_slot, features, max_payload, board_len,
         core_len) = _HELLO.unpack_from(p)
        names_end = _HELLO.size + board_len + core_len
        self._expect(Cmd.HELLO, p, names_end + _IDENTITY.size)
        board = p[_HELLO.size:_HELLO.size + board_len].decode(errors="replace")
        core = p[_HELLO.size + board_len:names_end].decode(errors="replace")
        if proto != 1:
            raise ProtocolError(f"the device speaks protocol version {proto}, this host speaks 1")
        builtin = BlobIdentity(*_IDENTITY.unpack_from(p, names_end))
        self.info = DeviceInfo(proto, f"{major}.{minor}", n_slots, arena, ram_slot, Feature(features),
                               max_payload, board, core,
                               builtin if features & Feature.BUILTIN_MODEL and builtin.size else None)
        self.max_payload = min(max_payload, MAX_PAYLOAD)
        log.info("device: %s (%s), engine %s, arena %d B, RAM slot %d B, max payload %d",
                 board, core, self.info.engine_version, arena, ram_slot, max_payload)
        return self.info

    def reset(self) -> None:
        self._call(Cmd.RESET)
        self.model = None

    def load_model(self, blob: bytes, slot: int = SLOT_RAM, progress=None) -> None:
        """Write a model blob into `slot` over the link (about 20 KiB/s into QEMU)."""
        crc = zlib.crc32(blob) & 0xFFFFFFFF
        self._call(Cmd.LOAD_BEGIN, struct.pack("<B3xII", slot, len(blob), crc))
        step = self.max_payload - 4
        for off in range(0, len(blob), step):
            self._call(Cmd.LOAD_CHUNK, struct.pack("<I", off) + blob[off:off + step])
            if progress:
                progress(min(off + step, len(blob)), len(blob))
        self._call(Cmd.LOAD_END, timeout=max(self.link.timeout, 2.0))

    def select(self, slot: int, expect: bytes | BlobIdentity | None = None) -> ModelInfo:
        """SELECT `slot`. With `expect` (the blob meant to run, or its identity), a device whose
        selected blob is another one raises DeviceError, and nothing stays selected for run().
        SELECT of a trainable model also CRC-checks and restores saved parameters: allow for it."""
        self.model = None
        p = self._call(Cmd.SELECT, struct.pack("<B", slot), timeout=max(self.link.timeout, 10.0))
        self._expect(Cmd.SELECT, p, _SELECT.size, exact=False)
        arena, n_in, n_out, n_ops = _SELECT.unpack_from(p)
        ids_at = _SELECT.size + 4 * (n_in + n_out)
        self._expect(Cmd.SELECT, p, ids_at + _IDENTITY.size)
        sizes = struct.unpack_from(f"<{n_in + n_out}I", p, _SELECT.size)
        got = BlobIdentity(*_IDENTITY.unpack_from(p, ids_at))
        if expect is not None:
            want = expect if isinstance(expect, BlobIdentity) else BlobIdentity.of(expect)
            if got != want:
                where = "the compiled-in model (slot 0)" if slot == SLOT_BUILTIN else f"the model in slot {slot}"
                raise DeviceError(f"{where} on the device is not the model asked for (device: {got}; "
                                  f"model: {want})")
        self.model = ModelInfo(arena, n_ops, list(sizes[:n_in]), list(sizes[n_in:]), got)
        return self.model

    def input_write(self, index: int, data: bytes, offset: int = 0) -> None:
        step = self.max_payload - 8
        for off in range(0, len(data), step):
            self._call(Cmd.INPUT_WRITE, struct.pack("<B3xI", index, offset + off) + data[off:off + step])

    def invoke(self, profile: bool = False) -> InvokeResult:
        instructions, n_prof = self._fixed(Cmd.INVOKE, _INVOKE, struct.pack("<B", 1 if profile else 0), timed=True)
        result = InvokeResult(instructions, n_prof)
        if profile and n_prof:
            result.profile = self.profile_read(0, n_prof)
        return result

    def output_read(self, index: int, size: int, offset: int = 0) -> bytes:
        out = bytearray()
        step = self.max_payload
        while len(out) < size:
            n = min(step, size - len(out))
            p = self._call(Cmd.OUTPUT_READ, struct.pack("<B3xIH", index, offset + len(out), n))
            self._expect(Cmd.OUTPUT_READ, p, n)
            out += p
        return bytes(out)

    def profile_read(self, first: int, count: int) -> list[OpProfile]:
        return [OpProfile(first + k, opcode, instr)
                for k, (opcode, _pad, instr) in enumerate(self._read_entries(Cmd.PROFILE_READ, _PROFILE_ENTRY,
                                                                             first, count))]

    def train_profile_read(self, first: int, count: int) -> list[tuple[int, int, int, int]]:
        """The last profiled TRAIN_STEP, per op: (index, opcode, instructions, of which update)."""
        return [(first + k, opcode, instr, update)
                for k, (opcode, _pad, instr, update) in enumerate(
                    self._read_entries(Cmd.TRAIN_PROFILE_READ, _TRAIN_PROFILE_ENTRY, first, count))]

    def infer(self, data: bytes) -> tuple[int, bytes]:
        """One INFER: input 0 in, (instructions, output 0) back."""
        p = self._timed_call(Cmd.INFER, data)
        self._expect(Cmd.INFER, p, 8, exact=False)
        (instructions,) = struct.unpack_from("<Q", p)
        return instructions, p[8:]

    def metrics(self) -> Metrics:
        return Metrics(*self._fixed(Cmd.METRICS, _METRICS))

    # -- early-exit test-time adaptation (0x50-0x51) -----------------------------------------
    def adapt_select(self, mode: int = 0) -> tuple[int, int, bool]:
        """Bind the exit heads that follow the selected RAM-slot blob (mode bit 0: adapt their
        normalisation, bit 1: the input's statistics, with the health check): (exits, arena
        bytes, stored heads restored)."""
        n, restored, arena = self._fixed(Cmd.ADAPT_SELECT, _ADAPT_SELECT, bytes([mode]))
        return n, arena, bool(restored)

    def adapt_infer(self, sample: bytes) -> tuple[int, int, float, int, int, int]:
        """One early-exit inference: (exit, prediction, entropy, macs, macs_skipped, instructions)."""
        if len(sample) > self.max_payload:
            self.input_write(0, sample)
            sample = b""
        return self._fixed(Cmd.ADAPT_INFER, _ADAPT_INFER, sample, timed=True)

    def adapt_reset(self, persist: bool = False) -> int:
        """Back to the source heads; with persist also for the next boot (revision of that)."""
        return self._fixed(Cmd.ADAPT_RESET, _REVISION, bytes([1 if persist else 0]))[0]

    def adapt_save(self) -> tuple[int, int]:
        """Persist the adapted heads atomically (TTA tag of the store): (revision, bytes)."""
        revision, n, _ = self._fixed(Cmd.ADAPT_SAVE, _SAVE)
        return revision, n

    def adapt_status(self) -> AdaptStatus:
        """The adaptation loop's counters and the measured memory (ADAPT_STATUS)."""
        return AdaptStatus(*self._fixed(Cmd.ADAPT_STATUS, _ADAPT_STATUS))

    # -- training (0x40-0x45) ----------------------------------------------------------------
    def _sample_payload(self, head: bytes, sample: bytes | None) -> bytes:
        """The sample rides in the request when it fits, else goes first with INPUT_WRITE."""
        if sample is None:
            return head
        if len(head) + len(sample) <= self.max_payload:
            return head + sample
        self.input_write(0, sample)
        return head

    def train_step(self, label: int, lr: float, sample: bytes | None = None,
                   loss: str = "cross_entropy", profile: bool = False) -> StepResult:
        """One TRAIN_STEP; `profile`: record each op's count (forward, loss and backward ops by
        blob op index), read with profile_read(0, number of ops)."""
        if loss not in LOSS_KINDS:
            raise ProtocolError(f"unknown loss '{loss}' (known: {', '.join(LOSS_KINDS)})")
        head = struct.pack("<BB2xif", LOSS_KINDS[loss], 1 if profile else 0, int(label), float(lr))
        return StepResult(*self._fixed(Cmd.TRAIN_STEP, _TRAIN_STEP, self._sample_payload(head, sample), timed=True))

    def eval(self, label: int = -1, sample: bytes | None = None) -> StepResult:
        loss, pred, count = self._fixed(Cmd.EVAL, _EVAL, self._sample_payload(struct.pack("<i", int(label)), sample),
                                        timed=True)
        return StepResult(loss, pred, 0, count)

    def save(self) -> SaveResult:
        return SaveResult(*self._fixed(Cmd.SAVE, _SAVE, timeout=max(self.link.timeout, 10.0)))

    def reset_to_base(self, persist: bool = False) -> int:
        """Base parameters back in RAM; with `persist` also in the store (the next boot starts
        from them). The revision of that record, or 0."""
        return self._fixed(Cmd.RESET_TO_BASE, _REVISION, struct.pack("<B", 1 if persist else 0),
                           timeout=max(self.link.timeout, 10.0))[0]

    def train_info(self) -> TrainInfo:
        (flags, param_bytes, layers, rev, sbytes, scrc, mcrc, rstatus, steps, used, size, cap,
         image) = self._fixed(Cmd.TRAIN_INFO, _TRAIN_INFO)
        return TrainInfo(bool(flags & 1), bool(flags & 2), bool(flags & 4), bool(flags & 8), param_bytes, layers, rev,
                         sbytes, scrc, mcrc, struct.unpack("<i", struct.pack("<I", rstatus))[0], steps, used, size, cap,
                         image)

    def params_read(self, size: int) -> bytes:
        """The trainer's parameter image (what SAVE persists), `size` = TRAIN_INFO's image_bytes."""
        out = bytearray()
        while len(out) < size:
            n = min(self.max_payload, size - len(out))
            p = self._call(Cmd.PARAMS_READ, struct.pack("<IH", len(out), n))
            self._expect(Cmd.PARAMS_READ, p, n)
            out += p
        return bytes(out)

    # -- one sample ------------------------------------------------------------------------
    def can_infer(self) -> bool:
        m = self.model
        return (m is not None and len(m.input_sizes) == 1 and len(m.output_sizes) == 1
                and m.input_sizes[0] <= self.max_payload and 8 + m.output_sizes[0] <= self.max_payload)

    def run(self, inputs: list[bytes], profile: bool = False) -> tuple[list[bytes], InvokeResult]:
        """Run one sample on the selected model: INFER when it fits a frame, else
        INPUT_WRITE / INVOKE / OUTPUT_READ."""
        if self.model is None:
            raise ProtocolError("no model selected on the device (call select() first)")
        m = self.model
        if len(inputs) != len(m.input_sizes):
            raise ProtocolError(f"the device model takes {len(m.input_sizes)} input(s), {len(inputs)} given")
        for i, (x, size) in enumerate(zip(inputs, m.input_sizes)):
            if len(x) != size:
                raise ProtocolError(f"input {i}: {len(x)} bytes given, the device model takes {size}")
        if self.can_infer() and not profile:
            instructions, out = self.infer(inputs[0])
            if len(out) != m.output_sizes[0]:
                raise ProtocolError(f"INFER returned {len(out)} output bytes, expected {m.output_sizes[0]}")
            return [out], InvokeResult(instructions)
        for i, x in enumerate(inputs):
            self.input_write(i, x)
        result = self.invoke(profile=profile)
        outs = [self.output_read(i, size) for i, size in enumerate(m.output_sizes)]
        return outs, result


__all__ = ["BlobIdentity", "DeviceClient", "DeviceInfo", "ModelInfo", "Metrics", "InvokeResult", "OpProfile",
           "StepResult", "SaveResult", "TrainInfo", "SLOT_BUILTIN",
           "SLOT_RAM", "cmd_name"]
