"""A prepared TTA model (the folder `tinyadapt tta-prepare` writes, docs/TTA.md) opened on the
host target: the backbone and each exit head in the C engine, plus the heads' float masters.

    OUT/manifest.json   format, exits (cut op, cut tensor, threshold, MACs, arenas), figures
    OUT/backbone.tflite the unchanged int8 model
    OUT/head_<k>.tflite exit head k, int8 (quant.py)
    OUT/heads.npz       per head: float parameters (the master copy adaptation starts from),
                        fixed quantization, source statistics of the conv output per channel
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyadapt.convert import ConvertedModel, convert
from tinyadapt.engine.host import HostEngine
from tinyadapt.errors import InputError
from tinyadapt.tta.heads import HeadParams
from tinyadapt.tta.quant import HeadQuant, int_params

FORMAT = "tinyadapt-tta"
VERSION = 1


def to_model_input(x: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    """Samples as the model's input dtype: float data is quantized for an int8 input."""
    if x.dtype == dtype:
        return x
    if np.dtype(dtype) == np.int8 and np.issubdtype(x.dtype, np.floating):
        v = np.asarray(x, np.float64) / scale
        return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point, -128, 127).astype(np.int8)
    if np.dtype(dtype) == np.float32 and np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32)
    raise InputError(f"samples of dtype {x.dtype} do not fit the model's {np.dtype(dtype).name} input")


@dataclass
class HeadSlots:
    """Blob tensor indices of a head's adaptable parameters and of its intermediates."""
    gamma: int
    beta: int
    fc_w: int
    fc_b: int
    z: int
    a: int


def head_slots(conv: ConvertedModel) -> HeadSlots:
    ops = conv.ops
    return HeadSlots(gamma=ops[1].inputs[1], beta=ops[1].inputs[2], fc_w=ops[3].inputs[1], fc_b=ops[3].inputs[2],
                     z=ops[0].outputs[0], a=ops[1].outputs[0])


class PreparedModel:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        try:
            self.manifest = json.loads((self.folder / "manifest.json").read_text())
        except FileNotFoundError:
            raise InputError(f"{folder} is not a prepared TTA model (no manifest.json; make one with tta-prepare)") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {self.folder / 'manifest.json'}: {exc}") from None
        if self.manifest.get("format") != FORMAT or self.manifest.get("version") != VERSION:
            raise InputError(f"{folder}: not a {FORMAT} v{VERSION} manifest")
        self.backbone_model = convert(str(self.folder / self.manifest["backbone"]))
        self.exits = self.manifest["exits"]
        self.head_models = [convert(str(self.folder / e["head"])) for e in self.exits]
        self.slots = [head_slots(h) for h in self.head_models]
        data = np.load(self.folder / "heads.npz")
        self.source_heads = [HeadParams(*(data[f"h{k}_{n}"] for n in ("conv", "gamma", "beta", "fc_w", "fc_b")))
                             for k in range(len(self.exits))]
        self.quant = [HeadQuant.from_json(e["quant"]) for e in self.exits]
        self.z_mean = [data[f"h{k}_z_mean"] for k in range(len(self.exits))]
        self.z_var = [data[f"h{k}_z_var"] for k in range(len(self.exits))]
        self.n_classes = int(self.manifest["n_classes"])
        self.input_mean = np.asarray(self.manifest["input_mean"])
        self.input_var = np.asarray(self.manifest["input_var"])
        self.macs_full = int(self.manifest["macs_full"])
        t = self.backbone_model.tensors[self.backbone_model.inputs[0]]
        self.input_dtype, self.input_scale, self.input_zp, self.input_shape = t.dtype, t.scale, t.zero_point, t.shape

    def train_plans(self):
        """Each head's training step (train-core's planner): affine (depthwise 1x1) and FC,
        weights and biases, entropy loss at the logits."""
        if getattr(self, "_plans", None) is None:
            from tinyadapt.train.graph import build_training
            from tinyadapt.train.scheme import UpdateScheme

            self._plans = [build_training(h, UpdateScheme(bias_depth=2, weights={1: 1.0, 2: 1.0}))
                           for h in self.head_models]
        return self._plans

    def trainers(self):
        from tinyadapt.engine.host import HostTrainer

        return [HostTrainer(p.blob) for p in self.train_plans()]

    def open(self) -> "OpenModel":
        return OpenModel(self)


class OpenModel:
    """Engines for one session: the backbone, one per head (their parameters adaptable)."""

    def __init__(self, pm: PreparedModel):
        self.pm = pm
        self.backbone = HostEngine(pm.backbone_model.blob)
        self.heads = [HostEngine(h.blob) for h in pm.head_models]

    def runner(self, thresholds: list[float] | None = None):
        from tinyadapt.tta.runner import Runner

        ex = self.pm.exits
        return Runner(self.backbone, self.heads, [e["cut_op"] for e in ex], [e["cut_tensor"] for e in ex],
                      thresholds if thresholds is not None else [e["threshold"] for e in ex],
                      [e["macs_backbone"] for e in ex], [e["macs_head"] for e in ex], self.pm.macs_full)

    def set_head(self, k: int, h: HeadParams) -> None:
        """Requantize `h`'s adaptable parameters into head k's int8 / int32 slots."""
        ip, s = int_params(h, self.pm.quant[k]), self.pm.slots[k]
        eng = self.heads[k]
        eng.write_tensor(s.gamma, ip["gamma"].reshape(-1))
        eng.write_tensor(s.beta, ip["beta"])
        eng.write_tensor(s.fc_w, ip["fc_w"])
        eng.write_tensor(s.fc_b, ip["fc_b"])

    def head_params_bytes(self) -> bytes:
        """Every head's adaptable int8/int32 parameters: what the TTA store persists."""
        out = bytearray()
        for k, s in enumerate(self.pm.slots):
            for idx in (s.gamma, s.beta, s.fc_w, s.fc_b):
                out += self.heads[k].tensor(idx).tobytes()
        return bytes(out)
