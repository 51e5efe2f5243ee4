"""An independent check of a memory plan: no two live tensors share a byte.

A training blob's backward ops (TRAIN section) are ops like any other here: the tensors they
read (saved activations, gradients) live until their last backward reader, so the same check
proves the whole training step's arena.

Written separately from tinyadapt.plan.memory on purpose: it recomputes every lifetime
from the op list alone and accepts shared bytes only in the two legal forms:
  - alias: a RESHAPE output at its input's offset with its input's size;
  - in place: an elementwise op's output at the offset of a same-size input whose last
    reader is that op, or a smaller output of a depthwise or pointwise conv that has scratch;
    in a patch stage, a pointwise conv's input region starting inside its output region (at
    or past its start: ta_op_conv2d.c orders the chunks for that), given scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.blob import read_blob

ELEMENTWISE = {"ADD", "SUB", "MUL", "LOGISTIC", "HARD_SWISH", "REQUANTIZE"}
# Ops that may write a smaller output over their input, given scratch: depthwise saves one
# channel plane there, a pointwise conv one chunk of output pixels (see _pointwise below).
SHRINKING_IN_PLACE = {"DEPTHWISE_CONV_2D", "CONV_2D"}
ALIASING = {"RESHAPE", "RESHAPE_BACKWARD"}


@dataclass
class CheckOp:
    kind: str
    inputs: list[int]
    outputs: list[int]
    scratch: tuple[int, int] | None = None  # (offset, size)
    shrink_ok: bool = True  # CONV_2D: only a pointwise one with a pixel of scratch may run in place
    inside_ok: bool = False  # a patch stage's pointwise conv: its input region may start inside its output's


def check_layout(sizes: dict[int, int], offsets: dict[int, int], ops: list[CheckOp],
                 inputs: list[int], outputs: list[int], arena_size: int) -> None:
    n = len(ops)
    first: dict[int, int] = {t: 0 for t in inputs}
    last: dict[int, int] = {t: 0 for t in inputs}
    for i, op in enumerate(ops):
        for t in op.outputs:
            first.setdefault(t, i)
            last[t] = max(last.get(t, i), i)
        for t in op.inputs:
            if t in sizes:
                first.setdefault(t, i)
                last[t] = max(last.get(t, i), i)
    for t in outputs:
        last[t] = n

    legal = set()
    for i, op in enumerate(ops):
        out = op.outputs[0]
        if out not in sizes:
            continue  # a backward op may skip its first output (nobody needs that gradient)
        for t in op.inputs:
            if t not in sizes:
                continue
            same = offsets[t] == offsets[out] and sizes[t] == sizes[out]
            if same and op.kind in ALIASING:
                legal.add(frozenset((t, out)))
            if same and op.kind in ELEMENTWISE and last[t] == i:
                legal.add(frozenset((t, out)))
            if (offsets[t] == offsets[out] and sizes[out] <= sizes[t]
                    and op.kind.removeprefix("STAGE_") in SHRINKING_IN_PLACE and op.shrink_ok
                    and last[t] == i and op.scratch is not None and op.scratch[1] > 0):
                legal.add(frozenset((t, out)))
            if (op.inside_ok and offsets[out] <= offsets[t] < offsets[out] + sizes[out] and last[t] == i
                    and op.scratch is not None and op.scratch[1] > 0):
                legal.add(frozenset((t, out)))

    for t, size in sizes.items():
        assert offsets[t] % 4 == 0, f"tensor {t} at unaligned offset {offsets[t]}"
        assert offsets[t] + size <= arena_size, f"tensor {t} [{offsets[t]}, +{size}) past arena {arena_size}"

    live = [t for t in sizes if t in first]
    for a_i, a in enumerate(live):
        for b in live[a_i + 1:]:
            if first[a] > last[b] or first[b] > last[a]:
                continue
            if offsets[a] >= offsets[b] + sizes[b] or offsets[b] >= offsets[a] + sizes[a]:
                continue
            # Alias chains (reshape of reshape) make transitively legal pairs.
            if frozenset((a, b)) in legal or _chained(a, b, legal):
                continue
            raise AssertionError(
                f"tensors {a} [{offsets[a]}, +{sizes[a]}) live {first[a]}..{last[a]} and "
                f"{b} [{offsets[b]}, +{sizes[b]}) live {first[b]}..{last[b]} overlap")
    for i, op in enumerate(ops):
        if op.scratch is None or op.scratch[1] == 0:
            continue
        off, size = op.scratch
        assert off + size <= arena_size
        for t in live:
            if first[t] <= i <= last[t]:
                assert off >= offsets[t] + sizes[t] or offsets[t] >= off + size, \
                    f"op {i} scratch [{off}, +{size}) overlaps live tensor {t}"


def _chained(a: int, b: int, legal: set) -> bool:
    seen, frontier = {a}, [a]
    while frontier:
        x = frontier.pop()
        for pair in legal:
            if x in pair:
                (y,) = pair - {x} or {x}
                if y == b:
                    return True
                if y not in seen:
                    seen.add(y)
                    frontier.append(y)
    return False


def check_blob(blob: bytes) -> None:
    info = read_blob(blob)
    acts = {t.index for t in info.tensors if t.kind == bf.KIND_ACTIVATION}
    sizes = {t.index: t.size for t in info.tensors if t.index in acts}
    offsets = {t.index: t.offset for t in info.tensors if t.index in acts}
    ops = [CheckOp(op.name, [t for t in op.inputs if t in acts], list(op.outputs),
                   (op.scratch_offset, op.scratch_size), _pointwise(info, op)) for op in info.ops]
    if info.patch is not None:
        ops = _patch_stage_ops(info, ops, sizes, offsets)
    check_layout(sizes, offsets, ops, info.inputs, info.outputs, info.arena_size)


def _pointwise(info, op, wider: bool = False) -> bool:
    """A CONV_2D writes over its input only if output pixel k reads input pixel k alone (a 1x1
    filter [C_out, 1, 1, C_in], same spatial size) and a whole output pixel fits the scratch
    (and, but for wider, the output pixel is no wider than the input's)."""
    if op.name != "CONV_2D":
        return True
    x, f, y = (info.tensors[t].shape for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
    return f[1:3] == (1, 1) and x[:3] == y[:3] and (wider or y[3] <= x[3]) and op.scratch_size >= y[3]


def _patch_stage_ops(info, ops: list[CheckOp], sizes: dict, offsets: dict) -> list[CheckOp]:
    """Model a patch stage as what occupies the arena while it runs: one region buffer per
    region tensor (live across the stage ops that touch it, from the start for the stage
    inputs, which are copied in when a tile starts), and the full stage inputs and output,
    live for the whole stage. Buffers get ids past the tensor indices. In stream mode the
    stream buffers (rows kept from one tile to the next) live for the whole stage; each
    tile's region in a strip must keep its columns, and its rows never move backwards."""
    p = info.patch
    n = p.n_stage_ops
    region = {}
    for k, (t, off, cap) in enumerate(zip(p.tensors, p.offsets, p.capacities)):
        region[t] = len(info.tensors) + k
        sizes[region[t]] = cap
        offsets[region[t]] = off
        for tile in p.regions:  # every tile's region fits its buffer
            y0, y1, x0, x1 = tile[k]
            rec = info.tensors[t]
            assert (y1 - y0) * (x1 - x0) * rec.shape[3] * rec.dtype.itemsize <= cap
    produced = {t for op in info.ops[:n] for t in op.outputs}
    streams = {}
    if p.mode == bf.PATCH_MODE_STREAM:
        for k, t in enumerate(p.tensors):
            rec = info.tensors[t]
            assert p.bands >= 1 and len(p.regions) % p.bands == 0
            for tile in range(1, len(p.regions)):
                if tile % p.bands == 0:
                    continue  # a new strip starts from scratch
                prev, cur = p.regions[tile - 1][k], p.regions[tile][k]
                assert cur[2:] == prev[2:] and cur[0] >= prev[0] and cur[1] >= prev[1]
                row = (cur[3] - cur[2]) * rec.shape[3] * rec.dtype.itemsize
                if t in produced:  # kept rows fit (stage inputs are copied in whole)
                    assert max(0, prev[1] - cur[0]) * row <= p.stream_capacities[k]
            if p.stream_capacities[k]:
                streams[t] = len(info.tensors) + len(p.tensors) + k
                sizes[streams[t]] = p.stream_capacities[k]
                offsets[streams[t]] = p.stream_offsets[k]
    produced = {t for op in info.ops[:n] for t in op.outputs}
    full = [t for t in p.tensors if info.tensors[t].kind == bf.KIND_ACTIVATION]
    stage_in = [t for t in full if t not in produced]
    stage_out = [t for t in full if t in produced]
    staged = []
    for i, op in enumerate(info.ops[:n]):
        ins = [region[t] for t in op.inputs if t in region]
        outs = [region[t] for t in op.outputs]
        if i == 0:
            ins += stage_in + stage_out + [region[t] for t in stage_in]
            outs += list(streams.values())
        if i == n - 1:
            ins += stage_in + stage_out + list(streams.values())
        ins += [t for t in op.outputs if t in stage_out]
        staged.append(CheckOp(f"STAGE_{op.name}", ins, outs, (op.scratch_offset, op.scratch_size),
                              op.name != "CONV_2D", op.name == "CONV_2D" and _pointwise(info, op, wider=True)))
    return staged + ops[n:]
