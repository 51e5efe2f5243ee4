"""The C engine built as a shared library and driven through ctypes (`--target host`).

The library is built from firmware/ with `make host` on first use (and rebuilt when a
source changes), so the host target always runs exactly the code the device runs.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import subprocess
from pathlib import Path

import numpy as np

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.blob import read_blob
from tinyadapt.errors import EngineError, TinyAdaptError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
FIRMWARE_DIR = Path(os.environ.get("TINYADAPT_FIRMWARE", REPO_ROOT / "firmware"))
BUILD_DIR = Path(os.environ.get("TINYADAPT_BUILD", REPO_ROOT / "build"))

_lib = None


def build_library() -> Path:
    """Run `make host` (a no-op when up to date) under a lock; return the library path."""
    out_dir = BUILD_DIR / "firmware"
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / "host" / "libtinyadapt.so"
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), "host", f"BUILD={out_dir}"],
                              capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise TinyAdaptError(f"building the host engine failed: {detail[-1] if detail else 'make error'}")
    return lib


def library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(str(build_library()))
        lib.ta_host_state_size.restype = ctypes.c_size_t
        lib.ta_host_open.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                                     ctypes.c_size_t]
        lib.ta_host_invoke.argtypes = [ctypes.c_void_p]
        lib.ta_host_invoke_ops.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        lib.ta_host_io.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint,
                                   ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint)]
        lib.ta_host_bind_input.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_size_t]
        lib.ta_host_status_name.restype = ctypes.c_char_p
        lib.ta_host_tensor.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p),
                                       ctypes.POINTER(ctypes.c_uint)]
        lib.ta_host_status_name.argtypes = [ctypes.c_int]
        _lib = lib
    return _lib


def status_name(status: int) -> str:
    return library().ta_host_status_name(status).decode()


def _aligned(nbytes: int, align: int = 16) -> tuple[np.ndarray, int]:
    raw = np.zeros(nbytes + align, dtype=np.uint8)
    start = (-raw.ctypes.data) % align
    return raw, raw.ctypes.data + start


class HostEngine:
    """One model loaded into the C engine with its own arena."""

    def __init__(self, blob: bytes, arena_size: int | None = None):
        lib = library()
        self.info = read_blob(blob)
        self._blob_mem, self._blob_ptr = _aligned(len(blob))
        ctypes.memmove(self._blob_ptr, blob, len(blob))
        self.arena_size = self.info.arena_size if arena_size is None else arena_size
        self._arena_mem, self._arena_ptr = _aligned(max(self.arena_size, 1))
        self._state = ctypes.create_string_buffer(lib.ta_host_state_size())
        st = lib.ta_host_open(self._state, self._blob_ptr, len(blob), self._arena_ptr, self.arena_size)
        if st != 0:
            raise EngineError(f"the engine rejected the model: {status_name(st)}")
        # Inputs kept outside the arena (a patch stage reads them window by window) get their
        # own buffers, as a camera frame in external memory would be on a device.
        self._external = []
        for i, index in enumerate(self.info.inputs):
            t = self.info.tensors[index]
            if t.kind == bf.KIND_EXTERNAL:
                mem, ptr = _aligned(t.size)
                self._external.append(mem)
                st = lib.ta_host_bind_input(self._state, i, ptr, t.size)
                if st != 0:
                    raise EngineError(f"the engine refused storage for input {i}: {status_name(st)}")

    def _io(self, is_output: int, i: int) -> tuple[int, int]:
        ptr, size = ctypes.c_void_p(), ctypes.c_uint()
        st = library().ta_host_io(self._state, is_output, i, ctypes.byref(ptr), ctypes.byref(size))
        if st != 0:
            raise EngineError(f"engine: no {'output' if is_output else 'input'} {i}: {status_name(st)}")
        return ptr.value, size.value

    def invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run one sample: inputs must already have the model's dtypes and element counts."""
        for i, x in enumerate(inputs):
            ptr, size = self._io(0, i)
            data = np.ascontiguousarray(x).tobytes()
            if len(data) != size:
                raise EngineError(f"input {i}: {len(data)} bytes given, the model takes {size}")
            ctypes.memmove(ptr, data, size)
        st = library().ta_host_invoke(self._state)
        if st != 0:
            raise EngineError(f"engine invoke failed: {status_name(st)}")
        outs = []
        for i, index in enumerate(self.info.outputs):
            t = self.info.tensors[index]
            ptr, size = self._io(1, i)
            outs.append(np.frombuffer(ctypes.string_at(ptr, size), dtype=t.dtype).reshape(t.shape).copy())
        return outs

    # -- single tensors and slices of the graph (early-exit TTA reads the backbone at its cut
    # points and overwrites exit-head parameters in place, as the device's overlay would) --

    def _tensor_ptr(self, index: int) -> tuple[int, int]:
        ptr, size = ctypes.c_void_p(), ctypes.c_uint()
        st = library().ta_host_tensor(self._state, index, ctypes.byref(ptr), ctypes.byref(size))
        if st != 0:
            raise EngineError(f"engine: tensor {index} has no storage: {status_name(st)}")
        return ptr.value, size.value

    def tensor(self, index: int) -> np.ndarray:
        """A copy of tensor `index` (an activation is valid while the arena plan keeps it)."""
        t = self.info.tensors[index]
        ptr, size = self._tensor_ptr(index)
        return np.frombuffer(ctypes.string_at(ptr, size), dtype=t.dtype).reshape(t.shape).copy()

    def write_tensor(self, index: int, value: np.ndarray) -> None:
        """Overwrite tensor `index` (an input, or a constant in this engine's copy of the blob)."""
        t = self.info.tensors[index]
        data = np.ascontiguousarray(value, dtype=t.dtype).tobytes()
        ptr, size = self._tensor_ptr(index)
        if len(data) != size:
            raise EngineError(f"tensor {index}: {len(data)} bytes given, it holds {size}")
        ctypes.memmove(ptr, data, size)

    def invoke_ops(self, first: int, end: int) -> None:
        st = library().ta_host_invoke_ops(self._state, first, end)
        if st != 0:
            raise EngineError(f"engine invoke of ops [{first}, {end}) failed: {status_name(st)}")

    @property
    def state_ptr(self) -> int:
        return ctypes.addressof(self._state)


def _train_library() -> ctypes.CDLL:
    lib = library()
    if not getattr(lib, "_train_bound", False):
        lib.ta_host_train_state_size.restype = ctypes.c_size_t
        lib.ta_host_train_open.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                                           ctypes.c_size_t, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        lib.ta_host_train_input.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                            ctypes.POINTER(ctypes.c_uint)]
        lib.ta_host_train_step.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_float,
                                           ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int),
                                           ctypes.POINTER(ctypes.c_uint)]
        lib.ta_host_train_params.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                             ctypes.POINTER(ctypes.c_size_t)]
        lib.ta_host_train_load_params.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        lib.ta_host_train_reset.argtypes = [ctypes.c_void_p]
        lib.ta_host_train_tensor.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p),
                                             ctypes.POINTER(ctypes.c_uint)]
        lib._train_bound = True
    return lib


LOSS_KINDS = {"cross_entropy": 0, "entropy": 1}


class HostTrainer:
    """A blob with a TRAIN section in the C engine + trainer (ta_train.h): the `host` target of
    `tinyadapt train`, running exactly the device's training code."""

    def __init__(self, blob: bytes):
        lib = _train_library()
        self._blob_mem, self._blob_ptr = _aligned(len(blob))
        ctypes.memmove(self._blob_ptr, blob, len(blob))
        self._blob, self._slots = bytes(blob), None
        self._state = ctypes.create_string_buffer(lib.ta_host_train_state_size())
        ram = ctypes.c_size_t(0)
        # The device's loader judges the blob first; the host reader trusts what it accepted.
        st = lib.ta_host_train_open(self._state, self._blob_ptr, len(blob), None, 0, None, ctypes.byref(ram))
        if st != 0:
            raise EngineError(f"the engine rejected the model: {status_name(st)}")
        self.info = read_blob(blob)
        if self.info.n_forward_ops is None:
            raise EngineError("the model blob has no TRAIN section (plan it with tinyadapt.train)")
        self.param_ram_size = ram.value
        self.arena_size = self.info.arena_size
        self._arena_mem, self._arena_ptr = _aligned(max(self.arena_size, 1))
        self._ram_mem, self._ram_ptr = _aligned(max(self.param_ram_size, 4))
        st = lib.ta_host_train_open(self._state, self._blob_ptr, len(blob), self._arena_ptr, self.arena_size,
                                    self._ram_ptr, ctypes.byref(ram))
        if st != 0:
            raise EngineError(f"the trainer rejected the model: {status_name(st)}")
        t = self.info.tensors[self.info.inputs[0]]
        self.input_dtype, self.input_size = t.dtype, t.size

    def _write_input(self, x: np.ndarray) -> None:
        ptr, size = ctypes.c_void_p(), ctypes.c_uint()
        st = _train_library().ta_host_train_input(self._state, ctypes.byref(ptr), ctypes.byref(size))
        if st != 0:
            raise EngineError(f"engine: no input: {status_name(st)}")
        data = np.ascontiguousarray(x, dtype=self.input_dtype).tobytes()
        if len(data) != size.value:
            raise EngineError(f"input: {len(data)} bytes given, the model takes {size.value}")
        ctypes.memmove(ptr.value, data, size.value)

    def _run(self, kind: int, x: np.ndarray, label: int, lr: float) -> tuple[float, int, int]:
        self._write_input(x)
        loss, pred, upd = ctypes.c_float(), ctypes.c_int(), ctypes.c_uint()
        st = _train_library().ta_host_train_step(self._state, kind, int(label), float(lr), ctypes.byref(loss),
                                                 ctypes.byref(pred), ctypes.byref(upd))
        if st != 0:
            raise EngineError(f"training step failed: {status_name(st)}")
        return float(loss.value), int(pred.value), int(upd.value)

    def step(self, x: np.ndarray, label: int, lr: float, loss: str = "cross_entropy") -> tuple[float, int, int]:
        """One SGD step: (loss before the update, prediction before it, parameters written)."""
        return self._run(LOSS_KINDS[loss], x, label, lr)

    def eval(self, x: np.ndarray, label: int = -1) -> tuple[float, int]:
        loss, pred, _ = self._run(-1, x, label, 0.0)
        return loss, pred

    def params(self) -> bytes:
        ptr, n = ctypes.c_void_p(), ctypes.c_size_t()
        st = _train_library().ta_host_train_params(self._state, ctypes.byref(ptr), ctypes.byref(n))
        if st != 0:
            raise EngineError(f"trainer: {status_name(st)}")
        return ctypes.string_at(ptr.value, n.value) if n.value else b""

    def load_params(self, data: bytes) -> None:
        buf = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
        st = _train_library().ta_host_train_load_params(self._state, buf, len(data))
        if st != 0:
            raise EngineError(f"trainer refused the parameter image: {status_name(st)}")

    def reset(self) -> None:
        st = _train_library().ta_host_train_reset(self._state)
        if st != 0:
            raise EngineError(f"trainer: {status_name(st)}")

    def tensor(self, index: int) -> np.ndarray:
        """Tensor `index` as the engine sees it now (parameters: with their updates; RAM holds
        only the kept channels of a partly updated filter, so those are merged in here)."""
        from tinyadapt.train.params import param_slots

        if self._slots is None:
            self._slots = param_slots(self.info, self._blob)[0]
        for s in self._slots:
            if s.filter == index and s.master_at is not None:
                return s.weights(self.params())
        ptr, size = ctypes.c_void_p(), ctypes.c_uint()
        st = _train_library().ta_host_train_tensor(self._state, index, ctypes.byref(ptr), ctypes.byref(size))
        if st != 0 or not ptr.value:
            raise EngineError(f"no tensor {index}")
        t = self.info.tensors[index]
        return np.frombuffer(ctypes.string_at(ptr.value, size.value), dtype=t.dtype).reshape(t.shape).copy()
