"""Soak the serial link: N samples through the fault-injecting proxy
(host/tinyadapt/device/faults.py) between the host and the firmware on QEMU, every byte in
both directions dropped, corrupted or duplicated with probability --rate (and every frame
resent with the same probability). Checks that no sample is lost or answered twice: each
answer equals the host engine's output for that sample, and the device ran exactly one
inference per sample (a retransmitted request is answered from the device's cache).

Prints the figures: samples, inferences the device ran, retransmissions, NAKs, duplicates
suppressed, corrupt frames, timeouts, the proxy's injected faults, and wall time.

    .venv/bin/python scripts/soak_link.py --samples 10000 --rate 0.01 --seed 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from tinyadapt.convert import convert  # noqa: E402
from tinyadapt.device.faults import FaultConfig  # noqa: E402
from tinyadapt.engine.host import HostEngine  # noqa: E402
from tinyadapt.session.device import DeviceOptions, open_device  # noqa: E402

MODEL = REPO / "models/digits/digits_cnn.tflite"
DATA = REPO / "models/digits/digits_test.npz"


def soak(samples: int, rate: float, seed: int, board: str = "qemu-an386") -> dict:
    blob = convert(MODEL).blob
    x = np.load(DATA)["x"]
    host = HostEngine(blob)
    expected = [host.invoke([x[k:k + 1]])[0] for k in range(len(x))]
    faults = FaultConfig(rate=rate, seed=seed, lifetime=24 * 3600.0)
    wrong = []
    t0 = time.monotonic()
    with open_device(blob, DeviceOptions(board=board, faults=faults)) as dev:
        before = dev.metrics()
        for i in range(samples):
            k = i % len(x)
            (out,), _ = dev.run_sample([x[k:k + 1]])
            if not np.array_equal(out, expected[k]):
                wrong.append(i)
        after = dev.metrics()
        link = dev.link.stats.as_dict()
        injected = dev.backend.proxy.stats.as_dict()
    wall = time.monotonic() - t0
    ran = after.invokes - before.invokes
    return {
        "samples": samples, "answered_correctly": samples - len(wrong), "wrong_answers": wrong[:20],
        "inferences_run_on_device": ran, "answered_twice": ran - samples,
        "retransmissions": link["retransmits"], "naks_received_by_host": link["naks"],
        "naks_sent_by_device": after.naks_sent - before.naks_sent,
        "duplicates_suppressed_by_device": after.duplicates - before.duplicates,
        "stale_answers_ignored_by_host": link["stale_frames"], "corrupt_frames_at_host": link["bad_frames"],
        "corrupt_frames_at_device": after.crc_errors - before.crc_errors, "timeouts": link["timeouts"],
        "injected": {k: injected[k] for k in ("bytes_in", "dropped", "corrupted", "duplicated", "frames_duplicated")},
        "rate": rate, "seed": seed, "board": board, "wall_seconds": round(wall, 1),
        "ok": not wrong and ran == samples,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=0.01, help="per-byte fault probability (default 0.01)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--board", default="qemu-an386")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = soak(args.samples, args.rate, args.seed, args.board)
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        inj = r["injected"]
        print(f"samples {r['samples']:,}: {r['answered_correctly']:,} answered correctly, "
              f"{r['inferences_run_on_device']:,} inferences run on the device ({r['answered_twice']} answered twice)")
        print(f"faults injected at {r['rate']:.1%} per byte (seed {r['seed']}): {inj['bytes_in']:,} bytes, "
              f"{inj['dropped']:,} dropped, {inj['corrupted']:,} corrupted, {inj['duplicated']:,} duplicated, "
              f"{inj['frames_duplicated']:,} frames resent")
        print(f"link: {r['retransmissions']:,} retransmissions, {r['timeouts']:,} timeouts, "
              f"{r['naks_received_by_host']:,} NAKs received ({r['naks_sent_by_device']:,} sent by the device), "
              f"{r['duplicates_suppressed_by_device']:,} duplicate requests answered from the device's cache, "
              f"{r['stale_answers_ignored_by_host']:,} stale answers ignored")
        print(f"corrupt frames dropped: {r['corrupt_frames_at_device']:,} at the device, "
              f"{r['corrupt_frames_at_host']:,} at the host")
        print(f"wall time {r['wall_seconds']:,.1f} s on {r['board']}: {'OK' if r['ok'] else 'FAILED'}")
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
