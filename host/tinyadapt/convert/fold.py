"""Folding explicit PADs into the conv or pool that reads them (convert time, every plan).

Converters put a PAD in front of a VALID conv where the framework's padding is not TFLite's
SAME: Keras before every stride-2 depthwise ((0,1) on even sizes), PyTorch exports before
every 3x3 conv ((1,1)). The PAD writes a padded copy of its input; the conv then reads it.
Our conv kernels store top/left padding and skip taps outside their input (a skipped tap
adds nothing, exactly as a tap on the input's zero point would), so the conv can read the
unpadded input with the PAD's before-amounts added to its own padding, and the PAD and its
copy disappear. That is exact when:

- CONV_2D / DEPTHWISE_CONV_2D: the pad value is the conv input's zero point (-input_offset);
- MAX_POOL_2D: the pad value is -128 (no int8 beats it, and TFLM's pool maxes over in-range
  taps only); the pool's own checks (padding < filter, every window overlaps the input) hold;
- never AVERAGE_POOL_2D: TFLM divides by the count of in-range taps, so padded taps would
  change the count.

The PAD output must have exactly one reader (that op, as its input 0) and not be a model
output, and only height and width may be padded. A PAD that does not fold stays an op (and
can still run window by window in a patch stage).
"""

from __future__ import annotations

import struct
from dataclasses import replace

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import BlobTensor, Lowered
from tinyadapt.plan import scratch as kernel_scratch

_CONV = {bf.OPCODES["CONV_2D"], bf.OPCODES["DEPTHWISE_CONV_2D"]}
_MAX_POOL = bf.OPCODES["MAX_POOL_2D"]
_PAD = bf.OPCODES["PAD"]


def pad_geometry(op: Lowered) -> tuple[int, list[int], list[int]] | None:
    """(pad value, before[4], after[4]) of a 4-D PAD with a constant value, else None."""
    rank, value, *rest = struct.unpack_from("<14i", op.params)
    if rank != 4 or len([t for t in op.inputs if t >= 0]) != 1:
        return None
    return value, rest[0:4], rest[6:10]


def _folded_params(tensors: list[BlobTensor], pad: Lowered, reader: Lowered) -> bytes | None:
    geometry = pad_geometry(pad)
    if geometry is None:
        return None
    value, before, after = geometry
    if before[0] or after[0] or before[3] or after[3]:
        return None  # batch or channel padding: not a conv's padding
    x = tensors[pad.inputs[0]]
    _, in_h, in_w, _ = x.shape
    if reader.opcode in _CONV:
        f = list(struct.unpack_from("<11i", reader.params))
        _, k_h, k_w, _ = tensors[reader.inputs[1]].shape
        if value != -f[7]:  # input_offset = -zero point of the padded tensor
            return None
        f[4] += before[1]
        f[5] += before[2]
        # The conv's prepare bounds the padding by the filter's reach (TFLM never pads more).
        if f[4] > (k_h - 1) * f[2] or f[5] > (k_w - 1) * f[3]:
            return None
        return struct.pack("<11i", *f)
    if reader.opcode == _MAX_POOL:
        f = list(struct.unpack_from("<8i", reader.params))
        if value != -128:
            return None
        f[4] += before[1]
        f[5] += before[2]
        _, out_h, out_w, _ = tensors[reader.outputs[0]].shape
        for pad_, filt, stride, out, size in ((f[4], f[2], f[0], out_h, in_h), (f[5], f[3], f[1], out_w, in_w)):
            if pad_ >= filt or (out - 1) * stride - pad_ >= size:
                return None  # a window entirely in the padding: the pool refuses it
        return struct.pack("<8i", *f)
    return None


def fold_pads(tensors: list[BlobTensor], ops: list[Lowered], outputs: list[int]) -> list[Lowered]:
    """The op list with every foldable PAD merged into its reader (see the module doc)."""
    readers: dict[int, list[tuple[int, int]]] = {}
    for i, op in enumerate(ops):
        for pos, t in enumerate(op.inputs):
            if t >= 0:
                readers.setdefault(t, []).append((i, pos))
    out = list(ops)
    dropped = set()
    for i, op in enumerate(ops):
        if op.opcode != _PAD or op.outputs[0] in outputs:
            continue
        users = readers.get(op.outputs[0], [])
        if len(users) != 1 or users[0][1] != 0:
            continue
        j = users[0][0]
        params = _folded_params(tensors, op, out[j])
        if params is None:
            continue
        src = op.inputs[0]
        reader = out[j]
        inplace = reader.inplace_input
        scratch = reader.inplace_scratch
        work = reader.scratch_bytes
        if reader.opcode in _CONV:
            # The kernels' scratch follows the new padding and the unpadded input.
            geometry = kernel_scratch.ConvParams.unpack(params)
            dims = (tuple(tensors[src].shape), tuple(tensors[reader.inputs[1]].shape),
                    tuple(tensors[reader.outputs[0]].shape))
            depthwise = reader.opcode == bf.OPCODES["DEPTHWISE_CONV_2D"]
            work = (kernel_scratch.depthwise if depthwise else kernel_scratch.conv2d)(geometry, *dims)
        if reader.opcode == bf.OPCODES["DEPTHWISE_CONV_2D"] and inplace is not None:
            # In place keeps one input plane (and the fast kernel's copies) as scratch; the
            # input is now the unpadded map.
            _, h, w, _ = tensors[src].shape
            _, oh, ow, _ = tensors[reader.outputs[0]].shape
            scratch = kernel_scratch.depthwise_inplace(geometry, *dims)
            if oh * ow > h * w:
                inplace, scratch = None, 0
        elif inplace is not None:
            inplace, scratch = None, 0  # a pointwise conv's in-place path needs no padding
        out[j] = replace(reader, inputs=[src] + reader.inputs[1:], params=params, inplace_input=inplace,
                         scratch_bytes=work, inplace_smaller=inplace is not None, inplace_scratch=scratch,
                         inplace_optional=reader.inplace_optional and inplace is not None)
        dropped.add(i)
        readers.setdefault(src, []).append((j, 0))
    return [op for i, op in enumerate(out) if i not in dropped]


def drop_unused(tensors: list[BlobTensor], ops: list[Lowered], inputs: list[int],
                outputs: list[int]) -> tuple[list[BlobTensor], list[Lowered], list[int], list[int]]:
    """Renumber the tensor table without the tensors no op or model edge refers to (a folded
    PAD's output): an unplanned activation would have no place in the arena."""
    used = {t for op in ops for t in op.inputs + op.outputs if t >= 0} | set(inputs) | set(outputs)
    if len(used) == len(tensors):
        return tensors, ops, inputs, outputs
    keep = [t for t in range(len(tensors)) if t in used]
    new = {old: k for k, old in enumerate(keep)}

    def remap(ts: list[int]) -> list[int]:
        return [new[t] if t >= 0 else t for t in ts]

    ops = [replace(op, inputs=remap(op.inputs), outputs=remap(op.outputs)) for op in ops]
    return [tensors[t] for t in keep], ops, remap(inputs), remap(outputs)
