"""scripts/soak_link.py, short: a few hundred samples through the fault-injecting proxy at 1 %
per byte. The long run (10,000 samples) and its figures are in docs/DEVICE.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("qemu_image")


def test_soak_no_sample_lost_or_answered_twice():
    proc = subprocess.run([sys.executable, str(REPO / "scripts/soak_link.py"), "--samples", "250", "--seed", "5",
                           "--json"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert r["ok"] and r["answered_correctly"] == r["inferences_run_on_device"] == 250 and r["answered_twice"] == 0
    # The faults really happened and were really recovered from.
    inj = r["injected"]
    assert inj["dropped"] > 0 and inj["corrupted"] > 0 and inj["duplicated"] > 0 and inj["frames_duplicated"] > 0
    assert r["retransmissions"] > 0 and r["naks_received_by_host"] > 0 and r["duplicates_suppressed_by_device"] > 0
