"""Seed corpora of the two libFuzzer targets, shared by the bounded runs in the tests
(tests/test_fuzz_blob.py, tests/device/test_fuzz.py) and the long campaigns
(scripts/fuzz_campaign.py).

- blob seeds (firmware/tools/ta_fuzz_blob.c): real model blobs: the repo's models, the
  public models when ../shared/models is there, patch-planned blobs of both modes (the patch
  section), blobs whose input stays outside the arena (the external-input path) and
  training blobs (the TRAIN section and the trainer).
- app seeds (firmware/tools/ta_fuzz_app.c): byte streams a host sends: HELLO, INFER, the
  split commands, LOAD_* of a blob (one with an external input too), RESET, noise, and whole
  sessions of the other two things the device does: training (TRAIN_STEP, EVAL, SAVE,
  PARAMS_READ, a restore at the next SELECT, RESET_TO_BASE) on a training blob of `tiny_cnn`, and
  test-time adaptation (ADAPT_SELECT, ADAPT_INFER while adapting, ADAPT_SAVE, ADAPT_STATUS, the
  restore at the next ADAPT_SELECT, ADAPT_RESET) on
  a prepared TTA model of it."""

from __future__ import annotations

import struct
from pathlib import Path

from tests.device import wire
from tests.support.paths import REPO, SHARED_MODELS
from tests.support.tiny_models import tiny_cnn, tiny_fc
from tinyadapt.device.client import LOSS_KINDS
from tinyadapt.device.frames import Cmd
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


def tiny_cnn_training_blob() -> bytes:
    from tinyadapt.train.graph import build_training
    from tinyadapt.train.scheme import UpdateScheme
    return build_training(convert(tiny_cnn(0)), UpdateScheme(2, {2: 0.5, 3: 1.0})).blob


def tiny_cnn_tta_pack(workdir: Path) -> bytes:
    """`tiny_cnn` prepared for TTA (heads trained briefly on random inputs: the fuzzer needs
    the format, not accuracy), packed as the device takes it."""
    import numpy as np

    from tinyadapt.tta.device import pack
    from tinyadapt.tta.model import PreparedModel
    from tinyadapt.tta.prepare import prepare, write
    model = workdir / "tiny_cnn.tflite"
    model.write_bytes(tiny_cnn(0))
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, (120, 8, 8, 2)).astype(np.float32), rng.integers(0, 5, 120)
    out = workdir / "tiny_cnn.tta"
    if not out.exists():
        write(prepare(str(model), x, y, exits=2, epochs=1, log=lambda *a: None), out)
    return pack(PreparedModel(out))


def _train_session(blob: bytes) -> bytes:
    sample = bytes(range(0, 256, 2))  # tiny_cnn's 8x8x2 int8 input
    step = struct.pack("<B3xif", LOSS_KINDS["cross_entropy"], 3, 0.05) + sample
    entropy_step = struct.pack("<B3xif", LOSS_KINDS["entropy"], -1, 0.01) + sample
    return (_load(blob) + _req(51, wire.SELECT, b"\x01") + _req(52, Cmd.TRAIN_STEP, step)
            + _req(53, Cmd.TRAIN_STEP, entropy_step) + _req(54, Cmd.EVAL, struct.pack("<i", 3) + sample)
            + _req(55, Cmd.SAVE) + _req(56, Cmd.TRAIN_INFO) + _req(57, Cmd.PARAMS_READ, struct.pack("<IH", 0, 64))
            + _req(58, wire.SELECT, b"\x01") + _req(59, Cmd.RESET_TO_BASE, b"\x01"))


def _adapt_session(tta: bytes) -> bytes:
    samples = [bytes((k * 37 + i) % 256 for i in range(128)) for k in range(3)]
    return (_load(tta) + _req(51, wire.SELECT, b"\x01") + _req(52, Cmd.ADAPT_SELECT, b"\x03")   # input+norm
            + b"".join(_req(53 + k, Cmd.ADAPT_INFER, s) for k, s in enumerate(samples))
            + _req(56, Cmd.ADAPT_SAVE) + _req(58, Cmd.ADAPT_STATUS) + _req(57, wire.SELECT, b"\x01")
            + _req(59, Cmd.ADAPT_SELECT, b"\x00") + _req(60, Cmd.ADAPT_INFER, samples[0])
            + _req(61, Cmd.ADAPT_RESET, b"\x01"))


def app_seeds(blob: bytes, workdir: Path) -> dict[str, bytes]:
    """`blob`: the model compiled into the fuzz build (slot 0), loaded into slot 1 too; `workdir`
    keeps the prepared TTA model."""
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
        "train": _train_session(tiny_cnn_training_blob()),
        "adapt": _adapt_session(tiny_cnn_tta_pack(workdir)),
    }


def write_corpus(directory: Path, seeds: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (directory / f"{name}.bin").write_bytes(data)
    return directory
