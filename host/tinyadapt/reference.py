"""Run a .tflite model on the two reference interpreters (TFLite Micro, tflite-runtime).

* :func:`run_tflite` -- tflite-runtime with the BUILTIN_REF op resolver (the
  default XNNPACK/optimized path differs from TFLM by up to 2 LSB).
* :func:`run_tflm` -- TensorFlow Lite Micro's Python interpreter, the one our
  engine must be bit-exact with.
* :func:`tflm_arena_allocations` / :func:`tflm_arena_head` -- TFLM's
  RecordingMicroAllocator figures.

Inputs are matched to the model's inputs in order. An input whose leading
dimension is N while the model's batch is 1 is run one sample at a time and
the outputs are concatenated along axis 0. Interpreter refusals raise
:class:`InterpreterRejected` (a RuntimeError) carrying the interpreter's own
diagnostics.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Sequence

import numpy as np

__all__ = ["InterpreterRejected", "run_tflite", "run_tflm",
           "tflm_arena_allocations", "tflm_arena_head"]

_MIN_ARENA = 64 * 1024
_MAX_ARENA = 64 * 1024 * 1024
# TFLM segfaults (instead of failing cleanly) when the arena cannot even hold
# the interpreter's fixed bookkeeping: observed for arenas <= 450 bytes.
_TFLM_CRASH_ARENA = 512


class InterpreterRejected(RuntimeError):
    """An interpreter refused (or failed to run) a model.

    Attributes: ``interpreter`` ("tflite" or "tflm"), ``stage`` ("load",
    "allocate", "set_input", "invoke"), ``log`` (captured C-level stderr).
    """

    def __init__(self, interpreter: str, stage: str, message: str, log: str = ""):
        self.interpreter = interpreter
        self.stage = stage
        self.log = log
        text = f"{interpreter} rejected the model at {stage}: {message}"
        if log.strip():
            text += "\n--- interpreter log ---\n" + log.strip()
        super().__init__(text)


# ---------------------------------------------------------------- helpers
@contextlib.contextmanager
def _capture_fd2():
    """Capture C-level stderr (fd 2) into a string: ``with ... as out: ...;
    out[0]`` holds the text after the block."""
    out = [""]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out[0] = tmp.read().decode("utf-8", "replace")


def _split_batches(inputs: Sequence[np.ndarray], specs: list[tuple[tuple, np.dtype]]):
    """Return a list (one entry per invoke) of lists of model-shaped inputs."""
    if len(inputs) != len(specs):
        raise ValueError(f"model has {len(specs)} inputs, got {len(inputs)}")
    per_input = []
    for i, (x, (shape, dtype)) in enumerate(zip(inputs, specs)):
        x = np.asarray(x)
        if x.dtype != dtype:
            raise TypeError(f"input {i}: dtype {x.dtype}, model expects {np.dtype(dtype)}")
        if x.shape == shape:
            per_input.append([x])
        elif len(shape) >= 1 and shape[0] == 1 and x.ndim == len(shape) and x.shape[1:] == shape[1:]:
            per_input.append([x[j:j + 1] for j in range(x.shape[0])])
        elif x.size == int(np.prod(shape)):
            per_input.append([x.reshape(shape)])
        else:
            raise ValueError(f"input {i}: shape {x.shape} does not fit model input {shape}")
    counts = {len(p) for p in per_input}
    if len(counts) != 1:
        raise ValueError(f"inputs disagree on batch size: {[len(p) for p in per_input]}")
    return [list(sample) for sample in zip(*per_input)]


def _join(samples: list[list[np.ndarray]]) -> list[np.ndarray]:
    if len(samples) == 1:
        return samples[0]
    return [np.concatenate(outs, axis=0) for outs in zip(*samples)]


# ----------------------------------------------------------- tflite-runtime
def run_tflite(model_bytes: bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run on tflite-runtime's reference kernels (OpResolverType.BUILTIN_REF)."""
    from tflite_runtime.interpreter import Interpreter, OpResolverType

    with _capture_fd2() as log:
        try:
            interp = Interpreter(model_content=bytes(model_bytes),
                                 experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
            err = None
        except (ValueError, RuntimeError) as e:
            err = e
    if err is not None:
        raise InterpreterRejected("tflite", "load", str(err), log[0]) from err

    with _capture_fd2() as log:
        try:
            interp.allocate_tensors()
            err = None
        except (ValueError, RuntimeError) as e:
            err = e
    if err is not None:
        raise InterpreterRejected("tflite", "allocate", str(err), log[0]) from err

    in_details = interp.get_input_details()
    out_details = interp.get_output_details()
    specs = [(tuple(int(d) for d in det["shape"]), np.dtype(det["dtype"])) for det in in_details]
    results = []
    for sample in _split_batches(inputs, specs):
        for det, x in zip(in_details, sample):
            interp.set_tensor(det["index"], x)
        with _capture_fd2() as log:
            try:
                interp.invoke()
                err = None
            except (ValueError, RuntimeError) as e:
                err = e
        if err is not None:
            raise InterpreterRejected("tflite", "invoke", str(err), log[0]) from err
        results.append([np.array(interp.get_tensor(det["index"]), copy=True) for det in out_details])
    return _join(results)


# ---------------------------------------------------------------------- TFLM
_ARENA_TOO_SMALL = re.compile(r"Failed to (allocate|resize)|missing:|Arena size is too small", re.I)


def _tflm_preflight(model_bytes: bytes) -> None:
    """Refuse models known to crash the TFLM process instead of failing."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(model_bytes, 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        codes.append(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()))
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        for k in range(sg.OperatorsLength()):
            op = sg.Operators(k)
            if (codes[op.OpcodeIndex()] == schema.BuiltinOperator.DEPTHWISE_CONV_2D
                    and op.InputsLength() >= 3 and op.Inputs(2) == -1):
                raise InterpreterRejected(
                    "tflm", "load",
                    f"operator {k} is DEPTHWISE_CONV_2D with bias index -1: TFLM segfaults "
                    "in Prepare on this (a 2-input DEPTHWISE_CONV_2D works); refused here "
                    "to keep the test process alive")


def _tflm_interpreter(model_bytes: bytes, arena_size: int | None):
    """Create a TFLM interpreter (tensors allocated). Returns (interp, arena)."""
    from tflite_micro import runtime

    model_bytes = bytes(model_bytes)
    _tflm_preflight(model_bytes)
    if arena_size is not None:
        if arena_size < _TFLM_CRASH_ARENA:
            raise ValueError(f"arena_size {arena_size} < {_TFLM_CRASH_ARENA}: TFLM segfaults "
                             "on arenas this small")
        sizes = [int(arena_size)]
    else:
        sizes, s = [], _MIN_ARENA + 4 * len(model_bytes)
        while s < _MAX_ARENA:
            sizes.append(s)
            s *= 4
        sizes.append(_MAX_ARENA)
    last = None
    for size in sizes:
        with _capture_fd2() as log:
            try:
                interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=size)
                err = None
            except (RuntimeError, ValueError) as e:
                err = e
        if err is None:
            return interp, size
        last = InterpreterRejected("tflm", "allocate", f"{err} (arena {size} bytes)", log[0])
        if not _ARENA_TOO_SMALL.search(log[0]):
            break  # a genuine refusal, not an arena-size problem
    raise last


def run_tflm(model_bytes: bytes, inputs: Sequence[np.ndarray],
             arena_size: int | None = None) -> list[np.ndarray]:
    """Run on the TFLM Python interpreter.

    ``arena_size=None`` picks one automatically: 64 KiB + 4x the model size,
    growing 4x on arena-allocation failure up to 64 MiB.
    """
    interp, _ = _tflm_interpreter(model_bytes, arena_size)
    n_in, n_out = _count_io(model_bytes)
    in_details = [interp.get_input_details(i) for i in range(n_in)]
    specs = [(tuple(int(d) for d in det["shape"]), np.dtype(det["dtype"])) for det in in_details]
    results = []
    for sample in _split_batches(inputs, specs):
        stage, err = "set_input", None
        with _capture_fd2() as log:
            try:
                for i, x in enumerate(sample):
                    interp.set_input(np.ascontiguousarray(x), i)
                stage = "invoke"
                interp.invoke()
            except (RuntimeError, ValueError, IndexError) as e:
                err = e
        if err is not None:
            raise InterpreterRejected("tflm", stage, str(err), log[0]) from err
        results.append([np.array(interp.get_output(i), copy=True) for i in range(n_out)])
    return _join(results)


def _count_io(model_bytes: bytes) -> tuple[int, int]:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    sg = schema.Model.GetRootAs(model_bytes, 0).Subgraphs(0)
    return sg.InputsLength(), sg.OutputsLength()


_ALLOC_RE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def tflm_arena_allocations(model_bytes: bytes, arena_size: int | None = None) -> dict[str, int]:
    """TFLM's RecordingMicroAllocator arena figures: dict(total=, head=, tail=).

    ``head`` is the non-persistent (activation) arena, ``tail`` the persistent
    one; ``total`` = head + tail is the smallest arena TFLM accepts (checked
    on micro_speech: total 7584 accepted, 7583 refused). All allocation
    happens in AllocateTensors, so no invoke is needed (the figures are the
    same before and after one).
    """
    interp, _ = _tflm_interpreter(model_bytes, arena_size)
    with _capture_fd2() as log:
        interp.print_allocations()
    figures = {k: int(v) for k, v in _ALLOC_RE.findall(log[0])}
    if set(figures) != {"total", "head", "tail"}:
        raise RuntimeError(f"could not parse TFLM print_allocations output:\n{log[0]}")
    return figures


def tflm_arena_head(model_bytes: bytes, arena_size: int | None = None) -> int:
    """Bytes of TFLM's non-persistent ("head") arena for this model."""
    return tflm_arena_allocations(model_bytes, arena_size)["head"]
