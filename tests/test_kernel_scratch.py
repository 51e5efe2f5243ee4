"""Kernel scratch planned in the arena: the host planner's sizes (tinyadapt.plan.scratch) are the
firmware's (ta_*_scratch_size, called here through the host library), on every convolution of
every model in models/ and models/exports, on patch-stage regions, and on random geometries;
and the blob reserves them, so the arena plan is the kernels' whole working memory."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert import convert
from tinyadapt.convert.blob import read_blob
from tinyadapt.engine.host import library
from tinyadapt.plan import scratch
from tinyadapt.plan.patch import candidate_plans

REPO = Path(__file__).resolve().parents[1]
MODELS = sorted((REPO / "models").glob("*/*.tflite"))
CONV = bf.OPCODES["CONV_2D"]
DEPTHWISE = bf.OPCODES["DEPTHWISE_CONV_2D"]


class _Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


class _Params(ctypes.Structure):  # ta_conv_params_t
    _fields_ = [(f, ctypes.c_int32) for f in ("stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top",
                                              "pad_left", "depth_multiplier", "input_offset", "output_offset",
                                              "act_min", "act_max")]


def c_size(kind: str, p: scratch.ConvParams, in_d, f_d, out_d) -> int:
    fn = getattr(library(), {"conv": "ta_conv2d_s8_scratch_size", "depthwise": "ta_depthwise_conv2d_s8_scratch_size",
                             "inplace": "ta_depthwise_conv2d_inplace_s8_scratch_size"}[kind])
    fn.restype = ctypes.c_uint32
    params = _Params(p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.pad_top, p.pad_left, p.depth_multiplier,
                     0, 0, -128, 127)
    return fn(ctypes.byref(params), *(ctypes.byref(_Dims(*map(int, d))) for d in (in_d, f_d, out_d)))


PY = {"conv": scratch.conv2d, "depthwise": scratch.depthwise, "inplace": scratch.depthwise_inplace}


@pytest.fixture(scope="module", params=[p.relative_to(REPO / "models").as_posix() for p in MODELS])
def model(request):
    return convert((REPO / "models" / request.param).read_bytes(), name=Path(request.param).stem)


def test_every_model_is_covered():
    names = {p.stem for p in MODELS}
    assert {"digits_cnn", "mobilenetv2_96", "mnv2_035_128", "torch_mix_64", "torch_mnv2_100_224"} <= names, names


def test_planner_and_firmware_agree_on_every_convolution(model):
    """Each conv's planned scratch is what the firmware's size function asks for (plus, for an
    in-place pointwise conv, its chunk of output pixels), read back from the blob itself."""
    blob = read_blob(model.blob)
    checked = 0
    for i, op in enumerate(model.ops):
        if op.opcode not in (CONV, DEPTHWISE):
            continue
        p = scratch.ConvParams.unpack(op.params)
        dims = [tuple(model.tensors[t].shape) for t in (op.inputs[0], op.inputs[1], op.outputs[0])]
        kind = "conv" if op.opcode == CONV else "depthwise"
        kernel = c_size(kind, p, *dims)
        assert PY[kind](p, *dims) == kernel, (model.source, i, kind, p, dims)
        inplace = c_size("inplace", p, *dims)
        assert scratch.depthwise_inplace(p, *dims) == inplace, (model.source, i, p, dims)
        planned = blob.ops[i].scratch_size
        if i not in model.plan.in_place:
            assert planned == kernel, (model.source, i, planned, kernel)
        elif op.opcode == DEPTHWISE:
            assert planned == kernel + inplace, (model.source, i, planned, kernel, inplace)
        else:  # pointwise in place: the 1x1 kernel needs nothing, the chunk of outputs is the scratch
            assert kernel == 0 and planned >= dims[2][3]
        checked += 1
    assert checked > 0


def test_patch_stage_scratch_covers_every_tile(model):
    """Patch plans reserve, for each stage conv, what the firmware asks for on every tile's
    regions (checked here with the C function) and on the full op (prepare's check)."""
    plans = candidate_plans(model.tensors, model.ops, model.inputs, model.outputs, max_grid=3)
    if not plans:  # only a 1-D model (feature maps one row or column wide) has none to check
        maps = [t.shape for t in model.tensors if len(t.shape) == 4]
        assert maps and all(1 in s[1:3] for s in maps), f"{model.source}: 2-D model without a patch plan"
        return
    for plan in plans[:4]:
        plan_tensors, plan_ops = plan.problem[0], plan.problem[1]
        for i, op in enumerate(model.ops[:plan.stage.n_ops]):
            if op.opcode not in (CONV, DEPTHWISE):
                continue
            p = scratch.ConvParams.unpack(op.params)
            f_d = tuple(model.tensors[op.inputs[1]].shape)
            kind = "conv" if op.opcode == CONV else "depthwise"
            reserved = plan.memory.scratch_sizes.get(i, 0)
            full = c_size(kind, p, tuple(model.tensors[op.inputs[0]].shape), f_d,
                          tuple(model.tensors[op.outputs[0]].shape))
            assert reserved >= full
            src, dst = op.inputs[0], op.outputs[0]
            if src not in plan.region_tensors or dst not in plan.region_tensors:
                continue
            a, b = plan.region_tensors.index(src), plan.region_tensors.index(dst)
            in_place = i in plan.memory.in_place
            for k, regions in enumerate(plan.regions):
                iy0, iy1, ix0, ix1 = regions[a]
                oy0, oy1, ox0, ox1 = regions[b]
                if plan.stream and k % plan.grid:
                    oy0 = max(oy0, plan.regions[k - 1][b][1])
                if oy0 >= oy1:
                    continue
                q = p.shifted(iy0 + p.pad_top - oy0 * p.stride_h, ix0 + p.pad_left - ox0 * p.stride_w)
                in_d = (1, iy1 - iy0, ix1 - ix0, model.tensors[src].shape[3])
                out_d = (1, oy1 - oy0, ox1 - ox0, model.tensors[dst].shape[3])
                need = c_size(kind, q, in_d, f_d, out_d) + (c_size("inplace", q, in_d, f_d, out_d) if in_place else 0)
                assert reserved >= need, (model.source, plan.mode, plan.grid, i, k, reserved, need)


def test_random_geometries_agree():
    rng = np.random.default_rng(7)
    for _ in range(3000):
        k_h, k_w = (3, 3) if rng.random() < 0.4 else (int(rng.integers(1, 11)), int(rng.integers(1, 11)))
        dm = 1 if rng.random() < 0.5 else int(rng.integers(2, 9))
        c = int(rng.integers(1, 300))
        p = scratch.ConvParams(int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 3)),
                               int(rng.integers(1, 3)), int(rng.integers(0, k_h)), int(rng.integers(0, k_w)), dm)
        in_d = (int(rng.integers(1, 3)), int(rng.integers(1, 64)), int(rng.integers(1, 64)), c)
        out_h = max(1, (in_d[1] + 2 * p.pad_top - (k_h - 1) * p.dilation_h - 1) // p.stride_h + 1)
        out_w = max(1, (in_d[2] + 2 * p.pad_left - (k_w - 1) * p.dilation_w - 1) // p.stride_w + 1)
        conv_f = (int(rng.integers(1, 80)), k_h, k_w, c)
        dw_f = (1, k_h, k_w, c * dm)
        assert scratch.conv2d(p, in_d, conv_f, (in_d[0], out_h, out_w, conv_f[0])) == \
            c_size("conv", p, in_d, conv_f, (in_d[0], out_h, out_w, conv_f[0]))
        out_dw = (in_d[0], out_h, out_w, c * dm)
        assert scratch.depthwise(p, in_d, dw_f, out_dw) == c_size("depthwise", p, in_d, dw_f, out_dw), (p, in_d, dw_f)
        assert scratch.depthwise_inplace(p, in_d, dw_f, out_dw) == c_size("inplace", p, in_d, dw_f, out_dw), \
            (p, in_d, dw_f)
