"""The protocol client against the real firmware on QEMU (mps2-an386): commands, model loading,
determinism, and what happens when the device hangs or dies."""

from __future__ import annotations

import os
import signal
import struct
import time

import numpy as np
import pytest

from tests.support.tiny_models import tiny_fc
from tinyadapt.convert import convert
from tinyadapt.device.backends import Capability, available_backends, backend_class
from tinyadapt.device.backends.qemu import QemuBackend, live_emulator_pids
from tinyadapt.device.client import SLOT_RAM, DeviceClient
from tinyadapt.device.frames import Cmd, Feature
from tinyadapt.device.link import Link
from tinyadapt.engine.host import HostEngine
from tinyadapt.errors import DeviceCommandError, DeviceError


@pytest.fixture(scope="module")
def tiny_blob():
    return convert(tiny_fc(0)).blob


def start(image, blob=None, **kw) -> tuple[QemuBackend, DeviceClient]:
    slot_addr, _ = image.ram_slot
    q = QemuBackend(image.built_for.qemu_machine, image.elf, preload=[(blob, slot_addr)] if blob else [], **kw)
    q.start()
    return q, DeviceClient(Link(q.open_port()))


def test_backends_are_registered_entry_points():
    eps = available_backends()
    assert {"qemu", "serial", "pyocd"} <= set(eps)
    assert backend_class("qemu") is QemuBackend
    assert Capability.SERIAL in QemuBackend.capabilities and Capability.FLASH in backend_class("pyocd").capabilities
    with pytest.raises(DeviceError, match="no device backend named"):
        backend_class("nope")


def test_hello_select_and_infer_match_the_host_engine(qemu_image, tiny_blob):
    q, c = start(qemu_image, tiny_blob)
    with q:
        info = c.hello()
        assert info.proto_version == 1 and info.board == "qemu-an386" and info.core == "cortex-m4"
        assert info.features & Feature.INSTR_COUNTER and info.max_payload == 1024
        assert info.ram_slot_size == qemu_image.ram_slot[1]
        m = c.select(SLOT_RAM)
        assert (m.input_sizes, m.output_sizes, m.n_ops) == ([1], [1], 3)
        host = HostEngine(tiny_blob)
        xs = np.arange(-128, 128, dtype=np.int8).reshape(256, 1, 1)
        for x in xs:
            (out,), result = c.run([x.tobytes()])
            assert out == host.invoke([x])[0].tobytes(), f"input {int(x[0, 0])}"
            assert 3000 < result.instructions < 20000
        # the long way round (INPUT_WRITE / INVOKE / OUTPUT_READ) gives the same bytes
        (out,), result = c.run([xs[200].tobytes()], profile=True)
        assert out == host.invoke([xs[200]])[0].tobytes()
        assert result.n_ops_profiled == 3 and [p.opcode for p in result.profile] == [3, 3, 3]
        assert sum(p.instructions for p in result.profile) <= result.instructions
        metrics = c.metrics()
        assert metrics.invokes == 257 and metrics.duplicates == 0 and metrics.crc_errors == 0
        assert 0 < metrics.arena_used <= metrics.arena_size and 0 < metrics.stack_used < metrics.stack_size


def test_instruction_counts_repeat_exactly_across_emulator_runs(qemu_image, digits):
    model, x, _ = digits
    blob = convert(model).blob
    runs = []
    for _ in range(2):
        q, c = start(qemu_image, blob)
        with q:
            c.hello()
            c.select(SLOT_RAM)
            runs.append([c.run([x[k].tobytes()])[1].instructions for k in range(20)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 1, "counts depend on the data (ReLU, max pooling), so they should differ per sample"


def test_load_model_over_the_link(qemu_image, digits):
    model, x, _ = digits
    blob = convert(model).blob
    host = HostEngine(blob)
    q, c = start(qemu_image)
    with q:
        c.hello()
        # a transfer with the wrong CRC is refused at LOAD_END
        c.link.request(Cmd.LOAD_BEGIN, struct.pack("<B3xII", SLOT_RAM, len(blob), 0xDEADBEEF))
        for off in range(0, len(blob), 1020):
            c.link.request(Cmd.LOAD_CHUNK, struct.pack("<I", off) + blob[off:off + 1020])
        with pytest.raises(DeviceCommandError, match="LOAD_END.*TA_ERR_CRC"):
            c._call(Cmd.LOAD_END)
        c.load_model(blob)
        c.select(SLOT_RAM)
        for k in range(5):
            (out,), _ = c.run([x[k].tobytes()])
            assert out == host.invoke([x[k]])[0].tobytes()


def test_select_of_a_missing_slot_is_a_command_error(qemu_image):
    q, c = start(qemu_image)
    with q:
        c.hello()
        with pytest.raises(DeviceCommandError) as err:
            c.select(0)          # no compiled-in model in the generic image
        assert err.value.command == "SELECT" and err.value.status < 0


def test_a_hung_device_is_reported_in_one_line_within_seconds(qemu_image, tiny_blob):
    q, c = start(qemu_image, tiny_blob)
    with q:
        c.hello()
        c.select(SLOT_RAM)
        c.infer(b"\x01")
        os.kill(q.pid, signal.SIGSTOP)         # the emulator stops; its socket stays open
        t0 = time.monotonic()
        with pytest.raises(DeviceError) as err:
            c.infer(b"\x02")
        elapsed = time.monotonic() - t0
        msg = str(err.value)
        assert msg == "device stopped answering after 3 retries (last command INFER)"
        assert 1.5 < elapsed < 8.0, elapsed
        with pytest.raises(DeviceError, match="stopped answering"):
            c.metrics()                         # a dead link stays dead, at once
    assert q.pid is None and not live_emulator_pids()   # SIGKILL works on a stopped process too


def test_a_killed_emulator_fails_at_once(qemu_image, tiny_blob):
    q, c = start(qemu_image, tiny_blob)
    with q:
        c.hello()
        c.select(SLOT_RAM)
        os.kill(q.pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match=r"stopped answering.*link closed.*last command INFER"):
            c.infer(b"\x02")
        assert time.monotonic() - t0 < 1.0


def test_emulator_never_outlives_an_exception(qemu_image):
    with pytest.raises(RuntimeError):
        with QemuBackend("mps2-an386", qemu_image.elf) as q:
            pid = q.pid
            raise RuntimeError("boom")
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_missing_image_and_bad_machine_are_one_line_errors(qemu_image, tmp_path):
    with pytest.raises(DeviceError, match="does not exist"):
        QemuBackend("mps2-an386", tmp_path / "none.elf").start()
    with pytest.raises(DeviceError, match="QEMU exited with status"):
        QemuBackend("no-such-machine", qemu_image.elf).start()
