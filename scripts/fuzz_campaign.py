"""A long fuzzing campaign of the two libFuzzer targets, side by side, one process each:

- the model loader and engine (firmware/tools/ta_fuzz_blob.c: any bytes as a blob, CRC fixed
  up; blob, arena and external inputs in exact-size heap blocks),
- the device app (firmware/tools/ta_fuzz_app.c: any byte stream as the host's side of the
  link; arena, RAM slot and frame memory in exact-size heap blocks),

both with ASan and UBSan, from the seed corpora of tests/support/fuzz_seeds.py. Each stops
after --runs executions or --max-time seconds, whichever comes first. Prints the executions,
wall time and result of each; exits 1 if either found anything (crash inputs are left in
OUT/<target>/). The test suite runs a short bounded version of each.

    nice -n 15 .venv/bin/python scripts/fuzz_campaign.py --runs 10000000 --out build/fuzz-campaign
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.fuzz_seeds import app_seeds, blob_seeds, write_corpus  # noqa: E402
from tests.support.tiny_models import tiny_fc  # noqa: E402
from tinyadapt.convert import convert  # noqa: E402
from tinyadapt.convert.cheader import blob_to_c_header  # noqa: E402


def build(out: Path) -> tuple[Path, Path, bytes]:
    blob = convert(tiny_fc(0)).blob
    header = out / "tiny_fc.h"
    header.write_text(blob_to_c_header(blob, "tiny_fc_model", "tiny_fc_0.tflite"))
    for cmd in (["make", "-s", "-C", str(REPO / "firmware"), "fuzz-blob", f"BUILD={out / 'fw'}"],
                ["make", "-s", "-C", str(REPO / "firmware/ports"), "fuzz", f"BUILD={out / 'app'}",
                 f"MODEL_HEADER={header}", f"PYTHON={sys.executable}"]):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out / "fw/fuzz/ta_fuzz_blob", out / "app/fuzz/ta_fuzz_app", blob


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000_000, help="executions per target (default 10,000,000)")
    ap.add_argument("--out", type=Path, default=REPO / "build/fuzz-campaign", help="build, corpora and logs")
    ap.add_argument("--max-time", type=int, default=0, help="seconds per target, 0 = no limit (libFuzzer "
                    "-max_total_time)")
    ap.add_argument("--seed", type=int, default=1, help="libFuzzer -seed")
    ap.add_argument("--only", choices=("loader", "protocol"), help="run one target (default: both)")
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    blob_fuzzer, app_fuzzer, builtin = build(out)
    targets = {
        "loader": [str(blob_fuzzer), "-rss_limit_mb=2048",
                   str(write_corpus(out / "corpus-loader", blob_seeds()))],
        "protocol": [str(app_fuzzer), "-max_len=8192", "-timeout=10",
                     str(write_corpus(out / "corpus-protocol", app_seeds(builtin, out)))],
    }
    if args.only:
        targets = {args.only: targets[args.only]}
    procs = {}
    for name, (exe, *rest) in targets.items():
        (out / name).mkdir(exist_ok=True)
        cmd = [exe, f"-runs={args.runs}", f"-max_total_time={args.max_time}", f"-seed={args.seed}",
               "-print_final_stats=1",
               f"-artifact_prefix={out / name}/", *rest]
        print(f"{name}: {' '.join(cmd)}  2> {out / name}.log", flush=True)
        procs[name] = (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(out / f"{name}.log", "w"),
                                        cwd=out / name), time.monotonic())
    failed = False
    for name, (proc, t0) in procs.items():
        rc = proc.wait()
        wall = time.monotonic() - t0
        log = (out / f"{name}.log").read_text(errors="replace")
        done = re.search(r"stat::number_of_executed_units: (\d+)", log)
        execs = int(done.group(1)) if done else 0
        crashes = sorted(p.name for p in (out / name).iterdir())
        ok = rc == 0 and execs > 0 and not crashes
        failed |= not ok
        print(f"{name:<9} {execs:>12,} executions in {wall:>7.0f} s wall ({execs / max(wall, 1):,.0f}/s), "
              f"exit {rc}, {'nothing found' if ok else 'FOUND: ' + (', '.join(crashes) or 'see log')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
