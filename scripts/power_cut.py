#!/usr/bin/env python3
"""Power-cut proof of the parameter store on QEMU: kill the emulator (SIGKILL) at random
moments while it saves, reboot it, and check it boots with exactly the old or the new
parameter set, never a mix.

    .venv/bin/python scripts/power_cut.py --kills 100            # the long run (report)
    .venv/bin/python scripts/power_cut.py --kills 10 --json      # what the test suite runs
    .venv/bin/python scripts/power_cut.py --app --kills 100      # the real firmware, SAVE over the protocol

--app: the device app (firmware/app) with the digits CNN and its training plan, on its NVM
file. Each round trains one step (the parameters change), sends SAVE and SIGKILLs QEMU after a
random delay within the SAVE's measured duration, boots a new QEMU on the same file, and
checks through TRAIN_INFO and PARAMS_READ that the device restored exactly the last saved
parameter image or the one SAVE was writing (or the base, before any save completed).

Default mode (the store alone, many saves per run): boot tests/device/ta_store_power_cut.c on mps2-an386 over the same NVM file
(firmware/ports/qemu_mps2/ta_qemu_nvm.c: a file written through row by row, so a kill
leaves a half-written page like a power cut leaves flash); it checks what it boots with,
then saves image(r+1), image(r+2), ... in a loop; the host kills it after a random delay
counted from its first "SAVING" line. Then:
  1. the host reads the file itself (tinyadapt.device.nvm, an independent reader of the
     format): the newest valid record must be exactly image(revision) and the other slot
     valid (older), erased or torn; a torn slot means the kill landed inside a save;
  2. QEMU boots again in check mode: the device must load that same revision, and its
     bytes must equal image(revision) (checked on the device and by CRC here);
  3. the revision never goes back, and is the last one the device started or the one
     before (old or new).
Exit status 0 when every round passed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from tinyadapt.device.boards import load_board  # noqa: E402
from tinyadapt.device.nvm import newest, nvm_file, read_store  # noqa: E402

FW = REPO / "firmware"
SRC = REPO / "tests" / "device" / "ta_store_power_cut.c"
MODEL_CRC = 0x5EED5EED
WARN = ["-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wstrict-prototypes", "-Wno-unused-parameter", "-Werror"]


def image(r: int) -> bytes:
    """The firmware's image(r), bit for bit."""
    length = 4096 + (r * 977) % 8192
    x = (r * 2654435761 + 1) & 0xFFFFFFFF
    out = bytearray(length)
    for i in range(length):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    return bytes(out)


def build(board_name: str, out: Path) -> Path:
    b = load_board(board_name)
    raw = b.raw
    elf = out / "ta_store_power_cut.elf"
    syms = {"__flash_origin": b.flash_origin, "__flash_size": b.flash_size, "__ram_origin": b.ram_origin,
            "__ram_size": b.ram_size, "__ram_slot_size": 0, "__stack_size": b.stack_size, "__arena_size": 16,
            "__nvm_origin": raw["nvm_origin"], "__nvm_size": raw["nvm_size"]}
    fpu = raw["fpu"]
    cmd = ["arm-none-eabi-gcc", "-mthumb", f"-mcpu={b.core}", "-mfloat-abi=hard", f"-mfpu={fpu}", "-std=c99", *WARN,
           "-O2", "-ffunction-sections", "-fdata-sections", f"-DTA_NVM_PAGE_SIZE={raw['nvm_page_size']}u",
           f"-DTA_NVM_PROG_UNIT={raw['nvm_prog_unit']}u", f"-I{FW / 'include'}", f"-I{FW / 'ports' / 'cortex_m'}",
           f"-I{FW / 'ports' / 'qemu_mps2'}", str(SRC), str(FW / "engine" / "ta_param_store.c"),
           str(FW / "engine" / "ta_crc32.c"), str(FW / "ports" / "qemu_mps2" / "ta_qemu_nvm.c"),
           str(FW / "ports" / "cortex_m" / "ta_startup.c"), "--specs=nano.specs", "--specs=nosys.specs",
           "-nostartfiles", "-Wl,--gc-sections", *[f"-Wl,--defsym={k}=0x{v:x}" for k, v in syms.items()],
           "-T", str(FW / "ports" / "cortex_m" / "ta_cortex_m.ld"), "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"power_cut.py: building the target failed:\n{proc.stderr[-3000:]}")
    return elf


def qemu_cmd(machine: str, elf: Path, nvm: Path, loop: bool) -> list[str]:
    arg = f"enable=on,target=native,arg=nvm={nvm}" + (",arg=loop" if loop else "")
    return ["qemu-system-arm", "-M", machine, "-kernel", str(elf), "-display", "none", "-monitor", "none",
            "-serial", "null", "-semihosting-config", arg]


def boot_check(machine: str, elf: Path, nvm: Path) -> tuple[int | None, int, int]:
    """Boot in check mode: (revision or None, length, crc) the device loaded; fails on MIX."""
    proc = subprocess.run(qemu_cmd(machine, elf, nvm, loop=False), capture_output=True, text=True, timeout=60)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("TA_STORE")), "")
    if proc.returncode != 0 or not line.startswith("TA_STORE BOOT"):
        raise AssertionError(f"check boot failed (status {proc.returncode}): {proc.stderr[-500:]}")
    words = line.split()
    if words[2] == "EMPTY":
        return None, 0, 0
    return int(words[2]), int(words[3]), int(words[4])


def run_and_kill(machine: str, elf: Path, nvm: Path, rng: random.Random, max_delay: float) -> tuple[int, float]:
    """Start the save loop, kill it `delay` seconds after its first SAVING line:
    (the last revision it announced, delay)."""
    proc = subprocess.Popen(qemu_cmd(machine, elf, nvm, loop=True), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    buf = b""
    try:
        deadline = time.monotonic() + 30
        while b"SAVING" not in buf:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"the save loop did not start: {buf[-300:]!r}")
            if select.select([proc.stderr], [], [], 0.5)[0]:
                buf += os.read(proc.stderr.fileno(), 65536)
        delay = rng.uniform(0.0, max_delay)
        time.sleep(delay)
        proc.kill()                    # SIGKILL: no chance to finish anything
        proc.wait(timeout=10)
        buf += proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    saving = [int(ln.split()[2]) for ln in buf.decode(errors="replace").splitlines()
              if ln.startswith("TA_STORE SAVING") and len(ln.split()) == 3]
    if not saving:
        raise AssertionError("no SAVING line")
    return saving[-1], delay


def app_rounds(args, board, raw, tmp: Path, rng: random.Random) -> dict:
    """--app: kill the device app during SAVE commands (see the module docstring)."""
    import threading

    import numpy as np

    from tinyadapt.convert import convert
    from tinyadapt.device.backends.qemu import QemuBackend
    from tinyadapt.device.build import build_image
    from tinyadapt.device.client import DeviceClient
    from tinyadapt.device.link import Link
    from tinyadapt.engine.host import HostTrainer
    from tinyadapt.train.graph import build_training, weight_layers
    from tinyadapt.train.scheme import default_scheme

    cm = convert(REPO / "models" / "digits" / "digits_cnn.tflite")
    blob = build_training(cm, default_scheme(len(weight_layers(cm)))).blob
    data = np.load(REPO / "models" / "digits" / "digits_test.npz")
    xs, ys = data["x"], data["y"]
    base = HostTrainer(blob).params()
    image = build_image(board)
    slot_addr, _ = image.ram_slot
    nvm = nvm_file(args.board, tmp / "nvm.bin", raw["nvm_size"])

    def boot():
        q = QemuBackend(board.qemu_machine, image.elf, preload=[(blob, slot_addr)], nvm=nvm)
        q.start()
        c = DeviceClient(Link(q.open_port(), timeout=2.0, retries=2))
        c.hello()
        c.select(1)
        return q, c

    counts = {"kills": 0, "booted_old": 0, "booted_new": 0, "mixes": 0, "torn_slot_after_kill": 0}
    q, c = boot()
    size = c.train_info().image_bytes
    saved, revision = base, 0           # what the store holds (base: nothing yet)
    t = time.monotonic()
    c.save()                            # one timed SAVE to size the kill window
    save_wall = time.monotonic() - t
    saved, revision = c.params_read(size), 1
    try:
        for k in range(args.kills):
            i = k % len(xs)
            c.train_step(int(ys[i]), 0.05, xs[i].tobytes())
            new = c.params_read(size)
            errors = []
            thread = threading.Thread(target=lambda: errors.append(_try(c.save)), daemon=True)
            delay = rng.uniform(0.0, save_wall * 1.2)
            thread.start()
            time.sleep(delay)
            q.proc.kill()                  # SIGKILL during SAVE
            q.proc.wait(timeout=10)
            thread.join(timeout=30)
            q.stop()
            slots = read_store(nvm.read_bytes(), 0, raw["nvm_size"] // 2, raw["nvm_page_size"])
            q, c = boot()
            info = c.train_info()
            got = c.params_read(size)
            if got == new and info.restored and info.stored_revision == revision + 1:
                counts["booted_new"] += 1
                saved, revision = new, revision + 1
            elif got == saved and info.stored_revision == revision and (info.restored or revision == 0):
                counts["booted_old"] += 1
            else:
                counts["mixes"] += 1
                raise AssertionError(f"kill {k}: the device booted with revision {info.stored_revision}, parameters "
                                     f"equal to neither the old (revision {revision}) nor the new image")
            counts["torn_slot_after_kill"] += any(s.state == "torn" for s in slots)
            counts["kills"] += 1
    finally:
        q.stop()
    return dict(counts, final_revision=revision, save_seconds=round(save_wall, 4))


def _try(fn):
    try:
        return fn()
    except Exception as exc:            # the emulator died under the request: expected
        return exc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="example: scripts/power_cut.py --kills 100")
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--board", default="qemu-an386")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-delay", type=float, default=0.05, help="kill within this many seconds of the first save")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--app", action="store_true", help="the device app: SAVE commands killed (see above)")
    args = ap.parse_args(argv)
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            print(f"power_cut.py: {tool} not found (scripts/setup.sh installs it)", file=sys.stderr)
            return 2
    board = load_board(args.board)
    raw = board.raw
    rng = random.Random(args.seed)
    counts = {"kills": 0, "torn_slot_after_kill": 0, "booted_old": 0, "booted_new": 0, "mixes": 0}
    revisions = []
    if args.app:
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="tinyadapt-powercut-") as tmp:
            result = app_rounds(args, board, raw, Path(tmp), rng)
        result.update(seconds=round(time.monotonic() - t0, 1), board=args.board, seed=args.seed, mode="app")
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{result['kills']} SIGKILLs during SAVE commands of the device app on {args.board} "
                  f"({result['seconds']:.0f} s; one SAVE takes {result['save_seconds'] * 1000:.0f} ms of wall time): "
                  "every reboot restored exactly the old or the new parameter image, never a mix")
            print(f"  booted with the old image (the SAVE in flight was lost): {result['booted_old']}")
            print(f"  booted with the new image (killed after the commit):     {result['booted_new']}")
            print(f"  kills that left a torn (half-written) slot in the file:   {result['torn_slot_after_kill']}")
            print(f"  final revision {result['final_revision']}")
        return 0
    with tempfile.TemporaryDirectory(prefix="tinyadapt-powercut-") as tmp:
        elf = build(args.board, Path(tmp))
        nvm = nvm_file(args.board, Path(tmp) / "nvm.bin", raw["nvm_size"])
        area = raw["nvm_size"] // 2        # the target's store: the first half of the region
        last = 0
        t0 = time.monotonic()
        for k in range(args.kills):
            announced, delay = run_and_kill(board.qemu_machine, elf, nvm, rng, args.max_delay)
            slots = read_store(nvm.read_bytes(), 0, area, raw["nvm_page_size"])
            top = newest(slots)
            if top is None:
                raise AssertionError(f"kill {k}: no valid record left in the file")
            other = slots[1 - top.index]
            if top.data != image(top.revision) or top.tag != 1 or top.model_crc != MODEL_CRC:
                counts["mixes"] += 1
                raise AssertionError(f"kill {k}: record {top.revision} is not image({top.revision})")
            if other.state == "valid" and other.revision != (top.revision - 1) & 0xFFFFFFFF:
                raise AssertionError(f"kill {k}: slots hold revisions {top.revision} and {other.revision}")
            rev, length, crc = boot_check(board.qemu_machine, elf, nvm)
            if rev != top.revision or length != len(top.data) or crc != zlib.crc32(top.data):
                raise AssertionError(f"kill {k}: device booted with {rev} ({length} B), the file holds {top.revision}")
            if rev < last or rev not in (announced, announced - 1):
                raise AssertionError(f"kill {k}: booted {rev}, the device was saving {announced} (last boot {last})")
            counts["kills"] += 1
            counts["torn_slot_after_kill"] += other.state == "torn"
            counts["booted_new" if rev == announced else "booted_old"] += 1
            revisions.append(rev)
            last = rev
        elapsed = time.monotonic() - t0
    result = dict(counts, final_revision=last, seconds=round(elapsed, 1), board=args.board, seed=args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{counts['kills']} SIGKILLs during saves on {args.board} ({elapsed:.0f} s): every reboot loaded "
              f"exactly the old or the new image, never a mix")
        print(f"  booted with the old set (the save in flight was lost): {counts['booted_old']}")
        print(f"  booted with the new set (killed after its commit):      {counts['booted_new']}")
        print(f"  kills that left a torn (half-written) slot in the file:  {counts['torn_slot_after_kill']}")
        print(f"  final revision {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
