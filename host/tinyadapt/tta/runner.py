"""The C early-exit runner (firmware/engine/ta_tta.c) and its entropy, through ctypes: the host
target takes exactly the device's exit decisions."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from tinyadapt.engine.host import HostEngine, library, status_name
from tinyadapt.errors import EngineError

_bound = False


def _lib() -> ctypes.CDLL:
    global _bound
    lib = library()
    if not _bound:
        lib.ta_tta_entropy_int8.restype = ctypes.c_float
        lib.ta_tta_entropy_int8.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_float, ctypes.c_int32,
                                            ctypes.POINTER(ctypes.c_int32)]
        lib.ta_host_tta_size.restype = ctypes.c_size_t
        lib.ta_host_tta_open.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint,
                                         ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                         ctypes.c_void_p, ctypes.c_uint32]
        lib.ta_host_tta_infer.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float)]
        _bound = True
    return lib


def entropy_int8(logits: np.ndarray, scale: float, zero_point: int) -> tuple[float, int]:
    """(entropy in nats, arg max) of int8 logits, computed by the device's C code."""
    q = np.ascontiguousarray(logits, np.int8).reshape(-1)
    best = ctypes.c_int32()
    h = _lib().ta_tta_entropy_int8(q.ctypes.data, q.size, scale, zero_point, ctypes.byref(best))
    return float(h), int(best.value)


@dataclass
class ExitResult:
    exit: int
    prediction: int
    entropy: float
    macs: int
    macs_skipped: int


class Runner:
    """ta_tta_t over a backbone engine and one engine per head (all kept alive here)."""

    def __init__(self, backbone: HostEngine, heads: list[HostEngine], cut_ops: list[int], cut_tensors: list[int],
                 thresholds: list[float], macs_backbone: list[int], macs_head: list[int], macs_full: int):
        lib = _lib()
        self.backbone, self.heads = backbone, heads
        n = len(heads)
        self._heads = (ctypes.c_void_p * n)(*[h.state_ptr for h in heads])
        self._arrays = [np.asarray(cut_ops, np.uint16), np.asarray(cut_tensors, np.uint16),
                        np.asarray(thresholds, np.float32), np.asarray(macs_backbone, np.uint32),
                        np.asarray(macs_head, np.uint32)]
        self._state = ctypes.create_string_buffer(lib.ta_host_tta_size())
        st = lib.ta_host_tta_open(self._state, backbone.state_ptr, self._heads, n,
                                  *[a.ctypes.data for a in self._arrays], macs_full)
        if st != 0:
            raise EngineError(f"the early-exit runner rejected the prepared model: {status_name(st)}")

    def infer(self, x: np.ndarray) -> ExitResult:
        self.backbone.write_tensor(self.backbone.info.inputs[0], x)
        out = np.zeros(4, np.int32)
        h = ctypes.c_float()
        st = _lib().ta_host_tta_infer(self._state, out.ctypes.data, ctypes.byref(h))
        if st != 0:
            raise EngineError(f"early-exit inference failed: {status_name(st)}")
        return ExitResult(int(out[0]), int(out[1]), float(h.value), int(out[2]), int(out[3]))

    def head_bases(self, head_arenas: list[int]) -> list[int]:
        """Where each head's arena starts in the backbone's on the device (ta_tta_head_base):
        inside it where the backbone's plan leaves room at the cut."""
        lib = _lib()
        lib.ta_host_tta_head_base.restype = ctypes.c_uint32
        lib.ta_host_tta_head_base.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint32]
        return [int(lib.ta_host_tta_head_base(self._state, k, a)) for k, a in enumerate(head_arenas)]


class HeadNorm:
    """The normalisation adaptation of one head (ta_tta_norm_t) on a host engine: the running
    statistics and their fold into the affine's overlays are the device's C code."""

    def __init__(self, head: HostEngine, pm, k: int, momentum: float, dead_zone: float):
        lib = _lib()
        if not getattr(lib, "_norm_bound", False):
            lib.ta_host_tta_norm_size.restype = ctypes.c_size_t
            lib.ta_host_tta_norm_size.argtypes = [ctypes.c_uint]
            lib.ta_host_tta_norm_open.argtypes = [ctypes.c_void_p, ctypes.c_void_p] + [ctypes.c_uint] * 4 + [
                ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p]
            lib.ta_host_tta_norm_update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint]
            lib.ta_host_tta_norm_stats.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
            lib._norm_bound = True
        self.head = head
        self.arrays = norm_arrays(pm, k)
        self.m = len(self.arrays[0])
        q = pm.quant[k]
        self._f = np.array([q.z[0], momentum, dead_zone], np.float32)
        self._ptrs = (ctypes.c_void_p * 5)(*[a.ctypes.data for a in self.arrays])
        # the structure and its per-channel storage (sized to this head), 8-aligned
        self._mem = np.zeros(lib.ta_host_tta_norm_size(self.m) // 8 + 1, np.uint64)
        self._state = ctypes.c_void_p(self._mem.ctypes.data)
        s = pm.slots[k]
        st = lib.ta_host_tta_norm_open(self._state, head.state_ptr, self.m, s.z, s.gamma, s.beta, self._f.ctypes.data,
                                       int(q.z[1]), self._ptrs)
        if st != 0:
            raise EngineError(f"head {k}: normalisation adaptation refused: {status_name(st)}")

    def update(self, z: np.ndarray) -> None:
        z = np.ascontiguousarray(z, np.int8)
        _lib().ta_host_tta_norm_update(self._state, z.ctypes.data, z.size // self.m)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        mu, var = np.zeros(self.m, np.float32), np.zeros(self.m, np.float32)
        _lib().ta_host_tta_norm_stats(self._state, mu.ctypes.data, var.ctypes.data, 0)
        return mu, var

    def set_stats(self, mu: np.ndarray, var: np.ndarray) -> None:
        mu, var = np.ascontiguousarray(mu, np.float32), np.ascontiguousarray(var, np.float32)
        _lib().ta_host_tta_norm_stats(self._state, mu.ctypes.data, var.ctypes.data, 1)


def norm_arrays(pm, k: int) -> list[np.ndarray]:
    """src_mu, src_var, gamma, beta, gamma_scale of head k as float32 (what the device gets)."""
    h, q = pm.source_heads[k], pm.quant[k]
    return [np.ascontiguousarray(a, np.float32) for a in (pm.z_mean[k], pm.z_var[k], h.gamma, h.beta, q.gamma_scale)]


class Adapter:
    """The adaptation loop (ta_tta_adapt_t: "input" and / or "norm" with the health check) over a
    Runner, on the host target: the device's ADAPT_SELECT mode 1-3 runs the same C code."""

    def __init__(self, runner: Runner, pm, norms: list[HeadNorm] | None, use_input: bool, cfg):
        lib = _lib()
        if not getattr(lib, "_adapt_bound", False):
            lib.ta_host_tta_input_size.restype = ctypes.c_size_t
            lib.ta_host_tta_adapt_size.restype = ctypes.c_size_t
            lib.ta_host_tta_input_open.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_float, ctypes.c_float,
                                                   ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
            lib.ta_host_tta_adapt_need.restype = ctypes.c_uint32
            lib.ta_host_tta_adapt_need.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint]
            lib.ta_host_tta_adapt_open.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_uint, ctypes.c_void_p,
                                                                           ctypes.c_void_p, ctypes.c_void_p,
                                                                           ctypes.c_uint32]
            lib.ta_host_tta_adapt_step.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float)]
            lib.ta_host_tta_adapt_reset.argtypes = [ctypes.c_void_p]
            lib.ta_host_tta_input_apply.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib._adapt_bound = True
        self.runner, self.norms = runner, norms
        self._input = None
        if use_input:
            self._src = [np.ascontiguousarray(pm.input_mean, np.float32), np.ascontiguousarray(pm.input_var, np.float32)]
            self._stats = np.zeros((2, len(self._src[0])), np.float32)      # the running mu, var
            self._input = ctypes.create_string_buffer(lib.ta_host_tta_input_size())
            st = lib.ta_host_tta_input_open(self._input, len(self._src[0]), cfg.momentum, cfg.dead_zone,
                                            self._src[0].ctypes.data, self._src[1].ctypes.data,
                                            self._stats[0].ctypes.data, self._stats[1].ctypes.data)
            if st != 0:
                raise EngineError(f"input adaptation refused: {status_name(st)}")
        self._norms = (ctypes.c_void_p * len(norms))(*[n._state.value for n in norms]) if norms else None
        need = lib.ta_host_tta_adapt_need(runner._state, self._norms, self._input, pm.n_classes)
        self.need = int(need)   # the device's work area for this loop
        self._work = np.zeros(max(4, need) // 4 + 1, np.uint32)
        u, f = safety_arrays(cfg)
        self._u, self._f = u, f
        self._state = ctypes.create_string_buffer(lib.ta_host_tta_adapt_size())
        st = lib.ta_host_tta_adapt_open(self._state, runner._state, self._norms, self._input, pm.n_classes,
                                        u.ctypes.data, f.ctypes.data, self._work.ctypes.data, self._work.nbytes)
        if st != 0:
            raise EngineError(f"adaptation refused: {status_name(st)}")
        self.rollbacks = self.updates = self.paused = 0

    def step(self, x: np.ndarray) -> ExitResult:
        bb = self.runner.backbone
        bb.write_tensor(bb.info.inputs[0], x)
        out = np.zeros(7, np.int32)
        h = ctypes.c_float()
        st = _lib().ta_host_tta_adapt_step(self._state, out.ctypes.data, ctypes.byref(h))
        if st != 0:
            raise EngineError(f"adaptation step failed: {status_name(st)}")
        self.rollbacks, self.updates, self.paused = int(out[4]), int(out[5]), int(out[6])
        return ExitResult(int(out[0]), int(out[1]), float(h.value), int(out[2]), int(out[3]))

    def reset(self) -> None:
        _lib().ta_host_tta_adapt_reset(self._state)

    def normalise_input(self, x: np.ndarray) -> np.ndarray:
        """The "input" part alone on `x` (updating its statistics): what the backbone would get."""
        bb = self.runner.backbone
        bb.write_tensor(bb.info.inputs[0], x)
        st = _lib().ta_host_tta_input_apply(self._input, bb.state_ptr)
        if st != 0:
            raise EngineError(f"input adaptation failed: {status_name(st)}")
        return bb.tensor(bb.info.inputs[0]).reshape(np.shape(x))


def safety_arrays(cfg) -> tuple[np.ndarray, np.ndarray]:
    """The health check's settings as ta_tta_safety_t holds them (u32 and f32 halves)."""
    u = np.array([cfg.window, cfg.min_source, cfg.pause, cfg.seed, int(cfg.early_worse) | int(cfg.probation) << 1],
                 np.uint32)
    f = np.array([cfg.narrow, cfg.shadow_rate, cfg.worse_margin, cfg.widen_margin, cfg.narrow_margin,
                  cfg.probe_share], np.float32)
    return u, f
