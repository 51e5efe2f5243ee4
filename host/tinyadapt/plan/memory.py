"""Arena planning: tensor lifetimes, buffer sharing, and offsets.

A *buffer* is a run of arena bytes with a lifetime [first, last] in op indices. Tensors
that are the same bytes share a buffer:
  - alias: RESHAPE's output is its input's bytes (no copy at run time);
  - in place: an elementwise op, a depthwise conv or a narrowing pointwise conv may write its
    output over an input that dies at that op.
Buffers whose lifetimes overlap never share bytes; the others are packed by a greedy
first-fit (the strategy of TFLM's GreedyMemoryPlanner), tried under a few orderings,
keeping the smallest arena.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyadapt.convert import blob_format as bf

ALIGN = 4


@dataclass
class Buffer:
    size: int
    first: int
    last: int
    tensors: list[int] = field(default_factory=list)  # blob tensor indices; empty for scratch
    scratch_op: int | None = None
    offset: int = 0


@dataclass
class MemoryPlan:
    arena_size: int
    buffers: list[Buffer]
    tensor_offsets: dict[int, int]
    scratch_offsets: dict[int, int]
    scratch_sizes: dict[int, int] = field(default_factory=dict)  # op index -> bytes
    in_place: set[int] = field(default_factory=set)               # ops whose output overwrites an input

    def live_bytes(self, op_index: int) -> int:
        """Arena bytes in use while op `op_index` runs (an in-place op's input and output share
        their first bytes, so this is the union of the live buffers' ranges)."""
        spans = sorted((b.offset, b.offset + b.size) for b in self.buffers if b.first <= op_index <= b.last)
        total, end = 0, 0
        for lo, hi in spans:
            if hi > end:
                total += hi - max(lo, end)
                end = hi
        return total


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class _Groups:
    """Union-find over blob tensor indices."""

    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, t: int) -> int:
        self.parent.setdefault(t, t)
        while self.parent[t] != t:
            self.parent[t] = self.parent[self.parent[t]]
            t = self.parent[t]
        return t

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(b)] = self.find(a)


class _NBytes(dict):
    """tensors[t].nbytes, computed once per tensor (the planner asks many times)."""

    def __init__(self, tensors):
        super().__init__()
        self.tensors = tensors

    def __missing__(self, t: int) -> int:
        self[t] = self.tensors[t].nbytes
        return self[t]


def plan_memory(tensors, ops, inputs: list[int], outputs: list[int]) -> MemoryPlan:
    """tensors: BlobTensor list; ops: Lowered list in execution order;
    inputs/outputs: model input/output blob tensor indices.

    Optional in-place ops (they run slower in place) stay in place only where that makes the
    arena smaller. Starting from all of them in place, each is taken out again unless the
    arena grows without it (usually one or two ops at the peak need it, and the others would
    only cost time: +6 % instructions on a MobileNetV1 whose every pointwise conv after a
    patch stage ran in place). The result is kept only if it beats none in place. All in
    place may itself be larger than none (first fit is greedy: one more pinned pair can push
    a buffer up), so the pruning runs either way."""
    life = _Lifetimes(tensors, ops, inputs, outputs)
    plan = _plan_memory(life, ops, outputs, optional=frozenset())
    candidates = [i for i, op in enumerate(ops) if op.inplace_optional and op.inplace_input is not None]
    if candidates:
        keep = frozenset(candidates)
        tighter = _plan_memory(life, ops, outputs, optional=keep)
        for i in candidates:
            trial = _plan_memory(life, ops, outputs, optional=keep - {i})
            if trial.arena_size <= tighter.arena_size:
                keep, tighter = keep - {i}, trial
        if tighter.arena_size < plan.arena_size:
            return tighter
    return plan


class _Lifetimes:
    """Each activation tensor's first and last op and its size: the same for every choice of
    optional in-place ops, so computed once per model."""

    def __init__(self, tensors, ops, inputs: list[int], outputs: list[int]):
        n_ops = len(ops)
        self.is_act = is_act = [t.kind == bf.KIND_ACTIVATION for t in tensors]
        self.first = first = {}
        self.last = last = {}

        def touch(t: int, i: int) -> None:
            if t >= 0 and is_act[t]:
                first[t] = min(first.get(t, i), i)
                last[t] = max(last.get(t, i), i)

        for t in inputs:
            touch(t, 0)
        for i, op in enumerate(ops):
            for t in op.inputs + op.outputs:
                touch(t, i)
        for t in outputs:
            touch(t, max(n_ops - 1, 0))
            last[t] = n_ops  # outputs are read after the last op
        self.nbytes = _NBytes(tensors)


def _plan_memory(life: _Lifetimes, ops, outputs: list[int], optional: frozenset) -> MemoryPlan:
    """optional: indices of the optional in-place ops that may run in place."""
    is_act, first, last, nbytes = life.is_act, life.first, life.last, life.nbytes
    groups = _Groups()
    scratch = {i: op.scratch_bytes for i, op in enumerate(ops) if op.scratch_bytes > 0}
    in_place = set()
    pins: list[tuple[int, int, int]] = []  # (a, b, d): tensor b starts d bytes after tensor a
    glast = dict(last)  # per group root: the last op that reads any member

    def group_last(root: int) -> int:
        return glast[root]

    def union(a: int, b: int) -> None:
        ra, rb = groups.find(a), groups.find(b)
        groups.union(a, b)
        glast[ra] = max(glast[ra], glast[rb])

    for i, op in enumerate(ops):
        out = op.outputs[0] if op.outputs else -1
        if op.alias_input is not None:
            src = op.inputs[op.alias_input]
            if src >= 0 and is_act[src] and nbytes[src] == nbytes[out]:
                union(src, out)
                continue
        if op.inplace_input is not None and (not op.inplace_optional or i in optional):
            src = op.inputs[op.inplace_input]
            # Elementwise kernels read element k of every input before writing element k,
            # in-place depthwise saves each channel plane first, and in-place pointwise conv
            # writes each chunk of pixels after reading it, so the output may take over
            # an input whose last reader is this op (if its scratch costs less than it saves).
            if op.inplace_offset is not None:
                # A widening pointwise conv: the input goes inplace_offset bytes into the output.
                if (src >= 0 and is_act[src] and src not in outputs and op.inplace_scratch < nbytes[src]
                        and group_last(groups.find(src)) == i):
                    pins.append((out, src, op.inplace_offset))
                    in_place.add(i)
                    scratch[i] = scratch.get(i, 0) + op.inplace_scratch
                continue
            size_ok = (src >= 0 and is_act[src] and
                       (nbytes[src] == nbytes[out] if not op.inplace_smaller else nbytes[out] <= nbytes[src]))
            if (size_ok and src not in outputs
                    and op.inplace_scratch < nbytes[out]
                    and group_last(groups.find(src)) == i):
                if nbytes[out] == nbytes[src]:
                    union(src, out)
                else:
                    # A smaller output only shares the input's start: one buffer for both
                    # would keep all the input's bytes alive for as long as the output lives.
                    pins.append((src, out, 0))
                in_place.add(i)
                if op.inplace_scratch:
                    scratch[i] = scratch.get(i, 0) + op.inplace_scratch

    by_root: dict[int, Buffer] = {}
    for t in first:
        root = groups.find(t)
        b = by_root.get(root)
        if b is None:
            b = by_root[root] = Buffer(size=0, first=first[t], last=last[t])
        b.size = max(b.size, _align(nbytes[t]))
        b.first = min(b.first, first[t])
        b.last = max(b.last, last[t])
        b.tensors.append(t)
    buffers = list(by_root.values())
    index = {id(b): k for k, b in enumerate(buffers)}
    pinned = [(index[id(by_root[groups.find(a)])], index[id(by_root[groups.find(b)])], d) for a, b, d in pins]
    for i, size in scratch.items():
        buffers.append(Buffer(size=_align(size), first=i, last=i, scratch_op=i))

    overlaps = _lifetime_neighbours(buffers)
    best = None
    for key in (lambda b: (-b.size, b.first),
                lambda b: (-(b.last - b.first), -b.size),
                lambda b: (b.first, -b.size),
                lambda b: (-(b.last - b.first + 1) * b.size, b.first)):
        offsets, arena = _first_fit(buffers, key, pinned, overlaps)
        if best is None or arena < best[1]:
            best = (offsets, arena)
    offsets, arena = best
    for b, off in zip(buffers, offsets):
        b.offset = off
    tensor_offsets = {t: b.offset for b in buffers for t in b.tensors}
    scratch_offsets = {b.scratch_op: b.offset for b in buffers if b.scratch_op is not None}
    return MemoryPlan(arena_size=arena, buffers=buffers, tensor_offsets=tensor_offsets,
                      scratch_offsets=scratch_offsets, scratch_sizes=scratch, in_place=in_place)


def _lifetime_neighbours(buffers: list[Buffer]) -> list[list[int]]:
    """For each buffer, the buffers that share some op with it (a sweep in order of first op):
    first fit only has to keep clear of these."""
    by_first = sorted(range(len(buffers)), key=lambda k: buffers[k].first)
    neighbours: list[list[int]] = [[] for _ in buffers]
    for n, k in enumerate(by_first):
        for j in by_first[n + 1:]:
            if buffers[j].first > buffers[k].last:
                break
            neighbours[k].append(j)
            neighbours[j].append(k)
    return neighbours


def _first_fit(buffers: list[Buffer], key, pinned: list[tuple[int, int, int]],
               overlaps: list[list[int]]) -> tuple[list[int], int]:
    """Greedy first fit in `key` order. Buffers pinned together (an in-place op's input and
    output: the same start, or the input some bytes into the output) form one unit placed at
    one offset: the lowest where every member is clear of the placed buffers that share its
    lifetime (overlaps[k]: the buffers whose lifetime meets buffer k's)."""
    unit = list(range(len(buffers)))
    rel = [0] * len(buffers)  # offset from the unit's root (pins chain, never close a cycle)

    def find(k: int) -> int:
        while unit[k] != k:
            k = unit[k]
        return k

    def shift(k: int) -> int:
        total = 0
        while unit[k] != k:
            total += rel[k]
            k = unit[k]
        return total

    for a, b, d in pinned:
        ra, rb = find(a), find(b)
        if ra != rb:  # b's root goes where b lands d bytes after a
            unit[rb] = ra
            rel[rb] = shift(a) + d - shift(b)
    members: dict[int, list[int]] = {}
    for k in range(len(buffers)):
        members.setdefault(find(k), []).append(k)
    at = {k: shift(k) for k in range(len(buffers))}
    for ks in members.values():  # members at offsets >= 0 from the unit's start
        low = min(at[k] for k in ks)
        for k in ks:
            at[k] -= low
    # A unit goes where its first member in `key` order would.
    order = sorted(members.values(), key=lambda ks: min(key(buffers[k]) for k in ks))
    offsets = [0] * len(buffers)
    placed = [False] * len(buffers)
    arena = 0
    for ks in order:
        busy = sorted((offsets[j], offsets[j] + buffers[j].size, k) for k in ks for j in overlaps[k]
                      if placed[j])
        off = 0
        moved = True
        while moved:  # raise `off` past any clash until every member fits
            moved = False
            for lo, hi, k in busy:
                if off + at[k] < hi and lo < off + at[k] + buffers[k].size:
                    off = _align(hi - at[k])
                    moved = True
        for k in ks:
            offsets[k] = off + at[k]
            arena = max(arena, off + at[k] + buffers[k].size)
            placed[k] = True
    return offsets, arena
