"""A model running on a device: backend + link + client, with the model selected.

    with open_device(blob, board="qemu-an386") as dev:          # QEMU, built and started here
        outs, result = dev.run_sample([x])
    with open_device(blob, port="/dev/ttyACM0") as dev:         # a flashed board
        ...

On QEMU the model goes into the RAM slot with `-device loader` (no UART transfer) when it
fits the slot; otherwise an image with the model compiled in is built and slot 0 is used.
On a serial board the model is written over the link with LOAD_* when it fits the RAM slot,
else the board's compiled-in model is used only when it is this very blob (HELLO names the
compiled-in blob's size and CRC). Either way SELECT's answer names the selected blob, and a
session never runs a model other than the one asked for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyadapt.convert.blob import BlobInfo, read_blob
from tinyadapt.device.client import (SLOT_BUILTIN, SLOT_RAM, BlobIdentity, DeviceClient, DeviceInfo, InvokeResult,
                                     Metrics)
from tinyadapt.device.link import DEFAULT_RETRIES, DEFAULT_TIMEOUT, Link
from tinyadapt.errors import DeviceError

log = logging.getLogger(__name__)


@dataclass
class DeviceOptions:
    """Where and how to reach a device (the CLI's --board / --port / --baud / fault flags)."""
    board: str | None = None          # boards/<name>.toml; a real board on --target qemu emulates its budget
    port: str | None = None           # serial port of a flashed board (or a pyserial URL)
    baudrate: int = 115200
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    faults: object | None = None      # tinyadapt.device.faults.FaultConfig (QEMU only)
    kernels: str = "dsp"
    model_name: str = "model"
    nvm: str | None = None            # QEMU: file behind the NVM region; "default": .tinyadapt/nvm/<board>.bin; None: no NVM
    activity: object | None = None    # tinyadapt.report.activity.Activity: told each step (build, start, load)


@dataclass
class DeviceSession:
    backend: object
    link: Link
    client: DeviceClient
    info: DeviceInfo
    blob_info: BlobInfo
    slot: int
    image: Path | None = None
    board: str = ""
    extra: dict = field(default_factory=dict)

    # -- running ---------------------------------------------------------------------------
    def run_sample(self, inputs: list[np.ndarray], profile: bool = False) -> tuple[list[np.ndarray], InvokeResult]:
        data = [np.ascontiguousarray(x).tobytes() for x in inputs]
        outs, result = self.client.run(data, profile=profile)
        arrays = []
        for raw, index in zip(outs, self.blob_info.outputs):
            t = self.blob_info.tensors[index]
            arrays.append(np.frombuffer(raw, dtype=t.dtype).reshape(t.shape).copy())
        return arrays, result

    def metrics(self) -> Metrics:
        return self.client.metrics()

    @property
    def counter_unit(self) -> str:
        return self.info.counter_unit

    def describe(self) -> str:
        return self.backend.describe()

    def close(self) -> None:
        try:
            self.link.close()
        finally:
            self.backend.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _io_sizes(info: BlobInfo) -> tuple[list[int], list[int]]:
    def size(i):
        t = info.tensors[i]
        return int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize

    return [size(i) for i in info.inputs], [size(i) for i in info.outputs]


def _select(client: DeviceClient, blob: bytes, blob_info: BlobInfo, slot: int) -> None:
    """SELECT `slot`, refusing any blob but `blob` (by size and CRC), then cross-check the sizes."""
    client.select(slot, expect=blob)
    ins, outs = _io_sizes(blob_info)
    m = client.model
    if m.input_sizes != ins or m.output_sizes != outs or m.n_ops != len(blob_info.ops):
        where = "the compiled-in model" if slot == SLOT_BUILTIN else f"slot {slot}"
        raise DeviceError(f"{where} on the device is not this model (device: inputs {m.input_sizes} B, outputs "
                          f"{m.output_sizes} B, {m.n_ops} ops; model: inputs {ins} B, outputs {outs} B, "
                          f"{len(blob_info.ops)} ops)")


def open_device(blob: bytes, opts: DeviceOptions | None = None, target: str = "qemu") -> DeviceSession:
    """Start or open the device, say HELLO and select `blob` on it. The caller closes it."""
    opts = opts or DeviceOptions()
    if opts.activity is None:
        from tinyadapt.report.activity import QUIET

        opts.activity = QUIET
    if target == "qemu":
        return _open_qemu(blob, opts)
    if not opts.port:
        raise DeviceError("a device target needs --port (the serial port of a flashed board)")
    return _open_serial(blob, opts)


def _hello(backend, opts: DeviceOptions) -> tuple[Link, DeviceClient, DeviceInfo]:
    link = Link(backend.open_port(), timeout=opts.timeout, retries=opts.retries)
    client = DeviceClient(link)
    try:
        info = client.hello()
    except BaseException:
        link.close()
        raise
    return link, client, info


def _open_qemu(blob: bytes, opts: DeviceOptions) -> DeviceSession:
    from tinyadapt.device.backends.qemu import QemuBackend
    from tinyadapt.device.boards import DEFAULT_QEMU_BOARD, load_board
    from tinyadapt.device.build import build_image

    board = load_board(opts.board or DEFAULT_QEMU_BOARD)
    blob_info = read_blob(blob)
    image = build_image(board, emulate=True, kernels=opts.kernels, activity=opts.activity)
    slot_addr, slot_size = image.ram_slot
    preload = []
    if len(blob) <= slot_size and blob_info.arena_size <= image.arena_bytes:
        slot = SLOT_RAM
        preload = [(blob, slot_addr)]
    else:
        log.info("model of %d bytes does not fit the %d-byte RAM slot: compiling it in", len(blob), slot_size)
        image = build_image(board, blob=blob, name=opts.model_name, emulate=True, kernels=opts.kernels,
                            activity=opts.activity)
        slot = SLOT_BUILTIN
    nvm = None
    if opts.nvm:
        from tinyadapt.device.nvm import nvm_file

        nvm = nvm_file(board.name, None if opts.nvm == "default" else opts.nvm, image.built_for.raw.get("nvm_size", 0))
    backend = QemuBackend(image.built_for.qemu_machine, image.elf, preload=preload, faults=opts.faults, nvm=nvm)
    opts.activity.step(f"starting QEMU {image.built_for.qemu_machine}")
    backend.start()
    try:
        link, client, info = _hello(backend, opts)
        try:
            _select(client, blob, blob_info, slot)
        except BaseException:
            link.close()
            raise
    except BaseException:
        backend.stop()
        raise
    return DeviceSession(backend, link, client, info, blob_info, slot, image.elf, board.name,
                         extra={"built_for": image.built_for.name})


def _open_serial(blob: bytes, opts: DeviceOptions) -> DeviceSession:
    from tinyadapt.device.backends.serial_port import SerialBackend

    blob_info = read_blob(blob)
    backend = SerialBackend(opts.port, baudrate=opts.baudrate)
    opts.activity.step(f"opening {opts.port}")
    backend.start()
    try:
        link, client, info = _hello(backend, opts)
        try:
            if info.ram_slot_size >= len(blob):
                log.info("loading the %d-byte model into the RAM slot over the link", len(blob))
                opts.activity.step(f"loading the model ({len(blob):,} bytes) over the link")
                client.load_model(blob, SLOT_RAM)
                slot = SLOT_RAM
            elif info.builtin == BlobIdentity.of(blob):
                log.info("the model does not fit the RAM slot; the compiled-in model is this blob")
                slot = SLOT_BUILTIN
            else:
                has = (f"the firmware's compiled-in model is another one ({info.builtin})" if info.builtin
                       else "the firmware has no compiled-in model")
                raise DeviceError(f"the model ({BlobIdentity.of(blob)}) does not fit the device's "
                                  f"{info.ram_slot_size:,}-byte RAM slot and {has}: build an image with it "
                                  "('tinyadapt build --model') and flash it")
            _select(client, blob, blob_info, slot)
        except BaseException:
            link.close()
            raise
    except BaseException:
        backend.stop()
        raise
    return DeviceSession(backend, link, client, info, blob_info, slot, None, info.board)
