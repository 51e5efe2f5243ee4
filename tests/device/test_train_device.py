"""On-device training over the protocol (TRAIN_STEP, EVAL, SAVE, RESET_TO_BASE, TRAIN_INFO,
PARAMS_READ) on QEMU mps2-an386 with its file-backed NVM, and on the POSIX port:

- the emulated Cortex-M4 and the host target (the same C trainer through ctypes) give
  bit-identical parameter images after the same steps, the same losses and predictions;
- SAVE survives an emulator restart: the next boot applies the parameters (TRAIN_INFO says
  restored, with the revision) and predicts like the host trainer;
- RESET_TO_BASE restores the blob's parameters, and with the persist flag the next boot
  starts from them; parameters saved for another model are never applied;
- bad requests get the documented status, never a crash.

The digits CNN (models/digits) with the default update scheme: 3 updated layers, a
14 KiB parameter image.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.device import wire

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "models" / "digits"
BOARD = "qemu-an386"
LR = 0.05
TA_ERR_ARG, TA_ERR_UNSUPPORTED, TA_ERR_STATE = -1, -7, -11


@pytest.fixture(scope="module")
def digits():
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh installs it)")
    from tinyadapt.convert import convert
    from tinyadapt.train.graph import build_training, weight_layers
    from tinyadapt.train.scheme import UpdateScheme, default_scheme

    cm = convert(DIGITS / "digits_cnn.tflite")
    n = len(weight_layers(cm))
    plan = build_training(cm, default_scheme(n))
    other = build_training(cm, UpdateScheme(bias_depth=1, weights={n - 1: 1.0}))   # another blob, another CRC
    data = np.load(DIGITS / "digits_test.npz")
    return plan.blob, other.blob, data["x"], data["y"]


def open_qemu(blob: bytes, nvm: Path | None):
    from tinyadapt.session.device import DeviceOptions, open_device

    return open_device(blob, DeviceOptions(board=BOARD, nvm=str(nvm) if nvm else None, timeout=5.0))


def host_trainer(blob: bytes):
    from tinyadapt.engine.host import HostTrainer

    return HostTrainer(blob)


def test_qemu_trains_bit_identically_to_host_and_saved_params_survive_a_restart(digits, tmp_path):
    blob, _, xs, ys = digits
    nvm = tmp_path / "nvm.bin"
    host = host_trainer(blob)
    host_steps = [host.step(x[None], int(y), LR) for x, y in zip(xs[:12], ys[:12])]
    with open_qemu(blob, nvm) as dev:
        c = dev.client
        info = c.train_info()
        assert info.ready and info.nvm and not info.stored and info.restore_status == TA_ERR_STATE
        assert info.param_bytes == host.param_ram_size and info.updated_layers == 3
        assert info.image_bytes == len(host.params()) < info.param_bytes
        steps = [c.train_step(int(y), LR, x.tobytes()) for x, y in zip(xs[:12], ys[:12])]
        assert [(s.loss, s.prediction, s.updated_params) for s in steps] == \
               [(np.float32(h[0]), h[1], h[2]) for h in host_steps]
        assert all(s.instructions > 0 for s in steps)
        assert c.params_read(info.image_bytes) == host.params()          # bit for bit
        saved = c.save()
        assert (saved.revision, saved.bytes) == (1, info.image_bytes)
        after = c.train_info()
        assert after.steps == 12 and after.stored and after.stored_revision == 1
        assert after.stored_model_crc == after.model_crc
        assert 0 < after.step_arena_used <= after.step_arena_size
    # A new emulator on the same NVM file: the parameters come back at boot.
    with open_qemu(blob, nvm) as dev:
        c = dev.client
        info = c.train_info()
        assert info.restored and info.stored_revision == 1 and info.restore_status == 0
        assert c.params_read(info.image_bytes) == host.params()
        for x, y in zip(xs[20:26], ys[20:26]):
            r = c.eval(int(y), x.tobytes())
            loss, pred = host.eval(x[None], int(y))
            assert (r.loss, r.prediction) == (np.float32(loss), pred)
        assert c.save().revision == 2                  # saves alternate slots, revisions go on


def test_reset_to_base_and_its_persisted_form(digits, tmp_path):
    blob, _, xs, ys = digits
    nvm = tmp_path / "nvm.bin"
    base = host_trainer(blob).params()
    with open_qemu(blob, nvm) as dev:
        c = dev.client
        size = c.train_info().image_bytes
        for x, y in zip(xs[:4], ys[:4]):
            c.train_step(int(y), LR, x.tobytes())
        adapted = c.params_read(size)
        assert adapted != base
        assert c.save().revision == 1
        assert c.reset_to_base() == 0                    # RAM only
        assert c.params_read(size) == base
    with open_qemu(blob, nvm) as dev:                  # the saved set still boots
        c = dev.client
        assert c.train_info().restored and c.params_read(size) == adapted
        assert c.reset_to_base(persist=True) == 2       # a tombstone record, atomically
        info = c.train_info()
        assert info.stored and info.stored_bytes == 0 and not info.restored
    with open_qemu(blob, nvm) as dev:
        c = dev.client
        info = c.train_info()
        assert not info.restored and info.restore_status == TA_ERR_STATE
        assert c.params_read(size) == base


def test_params_of_another_model_are_never_applied(digits, tmp_path):
    blob, other, xs, ys = digits
    nvm = tmp_path / "nvm.bin"
    with open_qemu(blob, nvm) as dev:
        c = dev.client
        c.train_step(int(ys[0]), LR, xs[0].tobytes())
        c.save()
        crc = c.train_info().model_crc
    with open_qemu(other, nvm) as dev:
        c = dev.client
        info = c.train_info()
        assert info.stored and info.stored_model_crc == crc != info.model_crc
        assert not info.restored and info.restore_status == TA_ERR_STATE
        assert c.params_read(info.image_bytes) == host_trainer(other).params()


def test_train_commands_refuse_bad_requests(digits, tiny_model):
    from tinyadapt.errors import DeviceCommandError

    blob, _, xs, ys = digits
    with open_qemu(blob, None) as dev:                # no NVM file: no store
        c = dev.client
        assert not c.train_info().nvm
        cases = [
            (lambda: c.train_step(0, LR, b"\x00" * 3), TA_ERR_ARG),                   # not the input's size
            (lambda: c.train_step(10, LR, xs[0].tobytes()), TA_ERR_ARG),            # label out of range
            (lambda: c.train_step(0, float("nan"), xs[0].tobytes()), TA_ERR_ARG),   # learning rate
            (lambda: c.save(), TA_ERR_UNSUPPORTED),
            (lambda: c.reset_to_base(persist=True), TA_ERR_UNSUPPORTED),
            (lambda: c.params_read(c.train_info().image_bytes + 1), -10),           # past the image
        ]
        for call, status in cases:
            with pytest.raises(DeviceCommandError) as err:
                call()
            assert err.value.status == status
        link = c.link
        from tinyadapt.device.frames import Cmd

        assert link.request(Cmd.TRAIN_STEP, struct.pack("<B3xif", 7, 0, LR)).status == TA_ERR_ARG   # loss kind
        assert link.request(Cmd.RESET_TO_BASE, b"\x02").status == TA_ERR_ARG                       # unknown flag
        assert c.train_step(int(ys[0]), LR, xs[0].tobytes()).updated_params > 0                   # still fine
    model = tiny_model[0]
    with open_qemu(model.blob, None) as dev:          # a model without a TRAIN section
        c = dev.client
        assert not c.train_info().ready
        with pytest.raises(DeviceCommandError) as err:
            c.train_step(0, LR, b"\x00")
        assert err.value.status == TA_ERR_STATE


def test_posix_port_saves_to_its_nvm_file_across_restarts(digits, tmp_path, images):
    """The native port: --nvm FILE, a SAVE, a new process, the parameters restored."""
    blob, _, xs, ys = digits
    exe = images("posix")
    (tmp_path / "blob.bin").write_bytes(blob)
    nvm = tmp_path / "nvm.bin"

    def start():
        from tests.device.conftest import start_posix

        dev = start_posix(exe, ["--ram-slot", str(tmp_path / "blob.bin"), "--nvm", str(nvm)])
        dev.client.hello()
        assert dev.client.request(wire.SELECT, b"\x01").status == 0
        return dev

    def info(dev) -> tuple:
        return struct.unpack("<13I", dev.client.request(0x44).payload)

    dev = start()
    try:
        flags = info(dev)[0]
        assert flags & 0x3 == 0x3 and not flags & 0x4          # ready, NVM, nothing restored
        for x, y in zip(xs[:3], ys[:3]):
            dev.client.request(0x40, struct.pack("<B3xif", 0, int(y), LR) + x.tobytes())
        size = info(dev)[12]                                    # the image: what SAVE persists
        before = b"".join(dev.client.request(0x45, struct.pack("<IH", off, min(1024, size - off))).payload
                         for off in range(0, size, 1024))
        assert struct.unpack("<I", dev.client.request(0x42).payload[:4])[0] == 1
    finally:
        dev.stop()
    assert nvm.stat().st_size == 1 << 20
    dev = start()
    try:
        fields = info(dev)
        assert fields[0] & 0x4 and fields[3] == 1                # restored, revision 1
        after = b"".join(dev.client.request(0x45, struct.pack("<IH", off, min(1024, size - off))).payload
                         for off in range(0, size, 1024))
        assert after == before
    finally:
        dev.stop()


def test_training_targets_agree_on_cortex_m7(digits, tmp_path):
    """open_trainer: the host target and QEMU mps2-an500 (Cortex-M7) through the same interface,
    with the device-only measurements (instructions per step, step SRAM high-water)."""
    from tinyadapt.session.device import DeviceOptions
    from tinyadapt.session.train_device import open_trainer

    blob, _, xs, ys = digits
    host = open_trainer(blob, "host")
    with open_trainer(blob, "qemu", DeviceOptions(board="qemu-an500", nvm=str(tmp_path / "nvm.bin"))) as dev:
        for x, y in zip(xs[30:38], ys[30:38]):
            assert dev.step(x[None], int(y), LR) == pytest.approx(host.step(x[None], int(y), LR), rel=0, abs=0)
        assert dev.params() == host.params()
        assert dev.instructions_per_step > 0 and dev.counter_unit == "instructions"
        assert dev.peak_sram_bytes == dev.info.step_arena_used + host.param_ram_size
        assert dev.info.step_arena_used == dev.info.step_arena_size    # the plan is tight: every byte used


def test_profiled_step_splits_forward_backward_and_update(digits):
    """TRAIN_STEP's profile flag: every op of the step timed by blob index (forward ops, loss,
    backward ops), each updating op with its parameter update's share; TRAIN_PROFILE_READ."""
    from tinyadapt.convert.blob import read_blob

    blob, _, xs, ys = digits
    info = read_blob(blob)
    n_ops, nf = len(info.ops), info.n_forward_ops
    with open_qemu(blob, None) as dev:
        c = dev.client
        plain = c.train_step(int(ys[0]), LR, xs[0].tobytes())
        r = c.train_step(int(ys[1]), LR, xs[1].tobytes(), profile=True)
        ops = c.train_profile_read(0, n_ops)
        assert [o[1] for o in ops] == [op.opcode for op in info.ops]
        assert all(o[2] > 0 for o in ops) and all(o[3] <= o[2] for o in ops)
        updating = [o for o in ops[nf + 1:] if o[3] > 0]
        assert len(updating) == c.train_info().updated_layers and all(o[3] == 0 for o in ops[:nf + 1])
        assert sum(o[2] for o in ops) < r.instructions < sum(o[2] for o in ops) + 1000 * n_ops
        assert r.instructions > plain.instructions       # the per-op counter reads cost a little
        from tinyadapt.device.frames import Cmd

        assert c.link.request(Cmd.TRAIN_PROFILE_READ, struct.pack("<HH", 0, n_ops + 1)).status == TA_ERR_ARG
        assert c.link.request(Cmd.TRAIN_STEP, struct.pack("<BB2xif", 0, 2, 0, LR)).status == TA_ERR_ARG  # flag
