"""Seed corpora of the two libFuzzer targets, shared by the bounded runs in the tests
(tests/test_fuzz_blob.py, tests/device/test_fuzz.py) and the long campaigns
(scripts/fuzz_campaign.py).

- blob seeds (firmware/tools/ta_fuzz_blob.c): real model blobs: the repo's models, the
  public models when ../shared/models is there, patch-planned blobs of both modes (the patch
  section), blobs whose input stays outside the arena (the external-input path) and
  training blobs (the TRAIN section and the trainer).
- app seeds (firmware/tools/ta_fuzz_app.c): byte streams a host sends: HELLO, INFER, the
  split commands, LOAD_* of a blob (one with an external input too), RESET, noise."""

from __future__ import annotations

import struct
from pathlib import Path

from tests.device import wire
from tests.support.paths import REPO, SHARED_MODELS
from tests.support.tiny_models import tiny_fc
from tinyadapt.convert import convert
from tinyadapt.errors import TinyAdaptError

PATCH_SEEDS = (3, 5, 8)
EXTERNAL_SEEDS = (500, 501, 503)


def patch_blobs(seeds=PATCH_SEEDS, external: bool = False) -> dict[str, bytes]:
    """Patch-planned blobs of random models (tests/test_patch.py): per model, the middle
    candidate of each patch mode (tiles; stream: bands and stream buffers); with `external`,
    the first candidate whose input can stay outside the arena."""
    from tests.test_patch import random_model

    out = {}
    for seed in seeds:
        model, _ = random_model(seed)
        plans = convert(model).patch_candidates()
        if external:
            for p in plans:
                try:
                    out[f"external{seed}"] = convert(model, patch=p.spec, external_input=True).blob
                    break
                except TinyAdaptError:
                    continue
            continue
        for mode in ("tiles", "stream"):
            of_mode = [p for p in plans if p.mode == mode]
            if of_mode:
                out[f"patch{seed}{mode}"] = convert(model, patch=of_mode[len(of_mode) // 2].spec).blob
    return out


def training_blobs() -> dict[str, bytes]:
    """Training blobs of the digits CNN: the TRAIN section, the backward ops and the trainer."""
    from tinyadapt.train.graph import build_training
    from tinyadapt.train.scheme import UpdateScheme

    digits = convert(REPO / "models/digits/digits_cnn.tflite")
    return {"train_sparse": build_training(digits, UpdateScheme(2, {3: 0.5, 4: 1.0})).blob,
            "train_full": build_training(digits, UpdateScheme.full(5)).blob}


def blob_seeds() -> dict[str, bytes]:
    seeds = {"tiny_fc": convert(tiny_fc(0)).blob}
    for p in [REPO / "models/digits/digits_cnn.tflite", REPO / "models/basicmotions/basicmotions_imu.tflite",
              *sorted(SHARED_MODELS.glob("*.tflite"))]:
        try:
            seeds[p.stem] = convert(p).blob
        except TinyAdaptError:
            continue  # a public model with an op outside the supported set
    seeds.update(patch_blobs())
    seeds.update(patch_blobs(EXTERNAL_SEEDS, external=True))
    seeds.update(training_blobs())
    return seeds


def _req(seq: int, cmd: int, payload: bytes = b"") -> bytes:
    return wire.wire(wire.Frame(wire.REQUEST, seq, cmd, 0, payload).encode())


def _load(blob: bytes, first_seq: int = 0) -> bytes:
    chunks = [_req(first_seq + 1 + i, wire.LOAD_CHUNK, struct.pack("<I", off) + blob[off:off + 600])
              for i, off in enumerate(range(0, len(blob), 600))]
    return (_req(first_seq, wire.LOAD_BEGIN, struct.pack("<B3xII", 1, len(blob), wire.crc32(blob)))
            + b"".join(chunks) + _req(first_seq + 50, wire.LOAD_END))


def app_seeds(blob: bytes) -> dict[str, bytes]:
    """`blob`: the model compiled into the fuzz build (slot 0), loaded into slot 1 too."""
    external = next(iter(patch_blobs(EXTERNAL_SEEDS[-1:], external=True).values()))  # LOADs within -max_len
    return {
        "hello": _req(0, wire.HELLO) + _req(1, wire.METRICS),
        "infer": _req(0, wire.INFER, b"\x05") + _req(1, wire.INFER, b"\x05") + _req(1, wire.INFER, b"\x05"),
        "split": _req(0, wire.INPUT_WRITE, struct.pack("<B3xI", 0, 0) + b"\x07") + _req(1, wire.INVOKE, b"\x01")
        + _req(2, wire.PROFILE_READ, struct.pack("<HH", 0, 3)) + _req(3, wire.OUTPUT_READ, struct.pack("<B3xIH", 0, 0, 1)),
        "load": _load(blob) + _req(51, wire.SELECT, b"\x01") + _req(52, wire.INFER, b"\x10"),
        "external": _load(external) + _req(51, wire.SELECT, b"\x01")
        + _req(52, wire.INPUT_WRITE, struct.pack("<B3xI", 0, 0) + bytes(range(64)))
        + _req(53, wire.INVOKE, b"\x01") + _req(54, wire.OUTPUT_READ, struct.pack("<B3xIH", 0, 0, 8)),
        "reset": _req(0, wire.RESET) + _req(0, wire.HELLO) + _req(1, wire.SELECT, b"\x00"),
        "noise": b"\x01\x02\xff\x00\x00" + _req(0, wire.HELLO)[1:] + bytes(range(1, 256)) * 5 + b"\x00",
    }


def write_corpus(directory: Path, seeds: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (directory / f"{name}.bin").write_bytes(data)
    return directory
