"""Streaming a data set through a model on a device, resumable after a crash.

Progress lives in one JSON state file, replaced atomically (write to a temporary file, fsync,
rename), so it always describes a consistent prefix of the data: samples 0 .. done-1 have
their outputs (and instruction counts) recorded, no other sample does. A sample counts once
its answer is in the state file; a device that dies mid-sample leaves that sample out, and
`--resume` starts again at `done`. So no sample is lost, and none is counted twice.

State file (schema 1):
    kind "tinyadapt-stream-state", model, model_crc32, data, data_sha256, labels, labels_sha256,
    total, done, correct (with labels), output_dtypes, output_shapes,
    outputs (one base64 string per model output: the raw bytes of samples 0..done-1),
    predictions (argmax of output 0 per sample done), instructions (one count per sample done,
    in counter_unit: instructions, cycles or nanoseconds; the key predates the other units),
    segments (one per run: start, end, board, status), complete, counter_unit, updated

Everything recorded is cut to the first `done` samples when saved, so an interruption between
recording a sample's parts and counting it cannot leave half a sample in the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyadapt.convert.blob import BlobInfo
from tinyadapt.errors import DeviceError, InputError, TinyAdaptError
from tinyadapt.session.samples import accepted_shapes, stack_shape

log = logging.getLogger(__name__)

STATE_SCHEMA = 1
STATE_KIND = "tinyadapt-stream-state"
CHECKPOINT_SECONDS = 0.25


# -- data ------------------------------------------------------------------------------------
def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_array(path: str, what: str, key: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {path} does not exist")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        from tinyadapt.cli.files import load_npy

        return load_npy(p, what)
    try:
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if key not in z:
                    raise InputError(f"{path} has no array '{key}' (it has: {', '.join(z.files)})")
                return z[key]
        if suffix in (".csv", ".txt"):
            return np.loadtxt(p, delimiter="," if suffix == ".csv" else None, ndmin=2 if what == "data" else 1)
    except InputError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        if suffix == ".npz" and ("zip" in str(exc).lower() or "pickle" in str(exc)):
            raise InputError(f"{path} is not a NumPy .npz archive") from None
        raise InputError(f"cannot read {what} file {path}: {exc}") from None
    raise InputError(f"{what} file {path}: use .npy, .npz or .csv")


def load_stream_data(path: str, blob_info: BlobInfo) -> np.ndarray:
    """Samples [N, *input shape] in the model input's dtype; float data for an int8 (or uint8)
    input is quantized with the input's scale and zero point."""
    if len(blob_info.inputs) != 1:
        raise InputError(f"stream takes models with one input; this one has {len(blob_info.inputs)}")
    t = blob_info.tensors[blob_info.inputs[0]]
    shape, dtype = tuple(t.shape), np.dtype(t.dtype)
    x = _read_array(path, "data", "x")
    per = int(np.prod(shape))
    if x.ndim == 2 and x.shape[1] == per and tuple(x.shape[1:]) != shape:
        x = x.reshape((len(x),) + shape)            # CSV rows: one flattened sample each
    stacked = stack_shape(x.shape, shape)
    if stacked is None:
        raise InputError(f"{path} has shape {list(x.shape)}; the model input takes {accepted_shapes(shape)}"
                         + (f", or CSV rows of {per} values" if per > 1 else ""))
    x = x.reshape(stacked[0])
    if x.dtype == dtype:
        return np.ascontiguousarray(x)
    integer = dtype in (np.dtype(np.int8), np.dtype(np.uint8))
    lo, hi = (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)) if integer else (0, 0)
    if integer and np.issubdtype(x.dtype, np.floating):
        if np.all(np.isfinite(x)) and np.all(x == np.round(x)) and x.min() >= lo and x.max() <= hi \
                and Path(path).suffix.lower() in (".csv", ".txt"):
            return x.astype(dtype)                  # a CSV of int8 / uint8 values
        if not t.scale:
            raise InputError(f"{path} holds floats, and the model's {dtype.name} input has no quantization scale")
        log.info("quantizing float data with the input's scale %g and zero point %d", t.scale, t.zero_point)
        return np.clip(np.round(x / t.scale) + t.zero_point, lo, hi).astype(dtype)
    if dtype == np.float32 and np.issubdtype(x.dtype, np.number):
        return x.astype(np.float32)
    if integer and np.issubdtype(x.dtype, np.integer) and x.min(initial=0) >= lo and x.max(initial=0) <= hi:
        return x.astype(dtype)
    raise InputError(f"{path} has dtype {x.dtype}; the model input takes {dtype.name}")


def load_labels(path: str, n: int) -> np.ndarray:
    y = _read_array(path, "labels", "y").reshape(-1)
    if len(y) != n:
        raise InputError(f"{path} has {len(y)} labels for {n} samples")
    if not np.all(y == np.round(y)):
        raise InputError(f"{path}: labels must be class indices (integers)")
    return y.astype(np.int64)


# -- state -----------------------------------------------------------------------------------
@dataclass
class StreamState:
    path: Path
    model: str
    model_crc32: int
    data: str
    data_sha256: str
    labels: str | None
    labels_sha256: str | None
    total: int
    output_dtypes: list[str]
    output_shapes: list[list[int]]
    done: int = 0
    outputs: list[bytearray] = field(default_factory=list)
    predictions: list[int] = field(default_factory=list)
    instructions: list[int] = field(default_factory=list)
    label_values: np.ndarray | None = field(default=None, repr=False)
    segments: list[dict] = field(default_factory=list)
    complete: bool = False
    counter_unit: str | None = None   # unit of `instructions` (older state files: not recorded)

    def _sizes(self) -> list[int]:
        return [int(np.prod(s)) * np.dtype(t).itemsize for s, t in zip(self.output_shapes, self.output_dtypes)]

    @property
    def correct(self) -> int | None:
        if self.label_values is None:
            return None
        preds = np.asarray(self.predictions[:self.done], dtype=np.int64)
        return int(np.sum(preds == self.label_values[:self.done]))

    def record(self, outs: list[np.ndarray], instructions: int) -> None:
        """Append one answered sample; it counts once `done` moves past it (the last step)."""
        k = self.done
        for buf, o, n in zip(self.outputs, outs, self._sizes()):
            del buf[k * n:]
            buf += np.ascontiguousarray(o).tobytes()
        del self.predictions[k:], self.instructions[k:]
        self.predictions.append(int(np.argmax(outs[0].reshape(-1))))
        self.instructions.append(int(instructions))
        self.done = k + 1

    def to_json(self) -> dict:
        d, sizes = self.done, self._sizes()
        return {"schema": STATE_SCHEMA, "kind": STATE_KIND, "model": self.model, "model_crc32": self.model_crc32,
                "data": self.data, "data_sha256": self.data_sha256, "labels": self.labels,
                "labels_sha256": self.labels_sha256, "total": self.total, "done": self.done,
                "correct": self.correct, "output_dtypes": self.output_dtypes,
                "output_shapes": self.output_shapes,
                "outputs": [base64.b64encode(bytes(o[:d * n])).decode() for o, n in zip(self.outputs, sizes)],
                "predictions": self.predictions[:d], "instructions": self.instructions[:d], "segments": self.segments, "complete": self.complete,
                "counter_unit": self.counter_unit,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def save(self) -> None:
        from tinyadapt.cli.files import atomic_write

        data = json.dumps(self.to_json(), indent=1).encode()
        try:
            atomic_write(self.path, data, fsync=True)
        except TinyAdaptError as exc:
            raise TinyAdaptError(f"cannot save the stream state: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> StreamState:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"state file {path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read state file {path}: {exc}") from None
        if not isinstance(d, dict) or d.get("kind") != STATE_KIND or d.get("schema") != STATE_SCHEMA:
            raise InputError(f"{path} is not a tinyadapt stream state file (schema {STATE_SCHEMA})")
        try:
            st = cls(path, d["model"], d["model_crc32"], d["data"], d["data_sha256"], d["labels"], d["labels_sha256"],
                     d["total"], d["output_dtypes"], d["output_shapes"], d["done"],
                     [bytearray(base64.b64decode(o)) for o in d["outputs"]], list(d["predictions"]),
                     list(d["instructions"]), None, list(d["segments"]), bool(d["complete"]),
                     d.get("counter_unit"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"state file {path} is damaged: {exc}") from None
        sizes = st._sizes()
        if len(st.instructions) != st.done or len(st.predictions) != st.done or any(len(o) != st.done * n for o, n in zip(st.outputs, sizes)):
            raise InputError(f"state file {path} is inconsistent: {st.done} samples done but the outputs or "
                             "counts recorded disagree")
        return st

    def output_arrays(self) -> list[np.ndarray]:
        return [np.frombuffer(bytes(o), dtype=t).reshape([self.done] + list(s))
                for o, t, s in zip(self.outputs, self.output_dtypes, self.output_shapes)]


def new_state(path: str | Path, model: str, blob: bytes, blob_info: BlobInfo, data: str, labels: str | None,
              total: int) -> StreamState:
    tensors = [blob_info.tensors[i] for i in blob_info.outputs]
    return StreamState(Path(path), str(model), zlib.crc32(blob) & 0xFFFFFFFF, str(data), file_sha256(data),
                       labels, file_sha256(labels) if labels else None, total,
                       [np.dtype(t.dtype).name for t in tensors], [list(t.shape) for t in tensors],
                       outputs=[bytearray() for _ in tensors])


def check_resume(state: StreamState, blob: bytes, data: str, labels: str | None) -> None:
    """The state must belong to this model and these files, unchanged."""
    if zlib.crc32(blob) & 0xFFFFFFFF != state.model_crc32:
        raise InputError(f"{state.path} was written for another model (or a changed one) than {state.model}")
    if file_sha256(data) != state.data_sha256:
        raise InputError(f"{state.path} was written for other data: {data} differs from the streamed file")
    if (labels is None) != (state.labels is None) or (labels and file_sha256(labels) != state.labels_sha256):
        raise InputError(f"{state.path} was written with other labels (pass the same --labels as before)")


# -- the loop --------------------------------------------------------------------------------
@dataclass
class StreamResult:
    state: StreamState
    started_at: int
    answered: int
    seconds: float
    error: str | None = None


def stream_samples(dev, state: StreamState, samples: np.ndarray, labels: np.ndarray | None, *,
                   progress=None, checkpoint_seconds: float = CHECKPOINT_SECONDS, limit: int | None = None) -> StreamResult:
    """Run samples[state.done:] on the device session `dev`, recording each answer in `state`.

    `progress(done, total, correct, rate)` is called after each sample. On a device error the
    state is saved and a DeviceError names the sample and the state file; the caller prints it.
    """
    start = state.done
    state.label_values = labels
    unit = getattr(dev, "counter_unit", None)
    if unit and state.done and state.counter_unit not in (None, unit):
        state.counter_unit = "mixed"     # resumed on a device that counts in another unit
    elif unit and not (state.done and state.counter_unit is None):
        state.counter_unit = unit
    segment = {"start": start, "end": start, "board": getattr(dev, "board", ""), "status": "running"}
    state.segments.append(segment)
    t0 = time.perf_counter()
    last_save = t0
    end = state.total if limit is None else min(state.total, start + limit)
    error = None
    correct = state.correct
    try:
        for k in range(start, end):
            outs, result = dev.run_sample([samples[k]])
            state.record(outs, result.instructions)
            segment["end"] = state.done
            if labels is not None:
                correct += int(state.predictions[k] == labels[k])
            now = time.perf_counter()
            if progress:
                progress(state.done, state.total, correct, (state.done - start) / max(now - t0, 1e-9))
            if now - last_save >= checkpoint_seconds:
                state.save()
                last_save = now
    except DeviceError as exc:
        error = str(exc)
        segment["status"] = error
        segment["end"] = state.done
        state.save()
        raise DeviceError(f"{exc}; {state.done} of {state.total} samples done, progress saved: "
                          f"rerun with --resume {state.path}") from None
    except BaseException as exc:   # Ctrl-C, SIGTERM, a bug: keep what is done
        segment["status"] = f"interrupted ({type(exc).__name__})"
        segment["end"] = state.done
        state.save()
        raise
    state.complete = state.done == state.total
    segment["status"] = "complete" if state.complete else "stopped"
    state.save()
    return StreamResult(state, start, state.done - start, time.perf_counter() - t0, error)
