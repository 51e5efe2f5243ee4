"""The memory planner, checked by an independent overlap checker (tests/support/arena_check.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyadapt.convert import blob_format as bf
from tinyadapt.convert.lowering import BlobTensor, Lowered
from tinyadapt.plan.memory import plan_memory
from tests.support.arena_check import CheckOp, check_layout

N_RANDOM_GRAPHS = 300
KINDS = ["CONV_2D", "ADD", "RESHAPE", "LOGISTIC", "CONCATENATION", "MEAN"]


def random_graph(rng: np.random.Generator):
    """A random DAG of ops over activation tensors, with aliasing and in-place candidates."""
    tensors = [BlobTensor(name="in", dtype=np.dtype(np.int8), shape=(int(rng.integers(1, 4000)),),
                          kind=bf.KIND_ACTIVATION)]
    ops = []
    for i in range(int(rng.integers(1, 25))):
        kind = str(rng.choice(KINDS))
        n_in = 2 if kind in ("ADD", "CONCATENATION") else 1
        ins = [int(rng.integers(max(0, len(tensors) - 4), len(tensors))) for _ in range(n_in)]
        if kind in ("RESHAPE", "LOGISTIC", "ADD"):
            size = tensors[ins[0]].nbytes
        else:
            size = int(rng.integers(1, 4000))
        tensors.append(BlobTensor(name=f"t{i}", dtype=np.dtype(np.int8), shape=(size,), kind=bf.KIND_ACTIVATION))
        ops.append(Lowered(opcode=0, inputs=ins, outputs=[len(tensors) - 1], params=b"",
                           scratch_bytes=int(rng.integers(0, 500)) if kind == "CONV_2D" and rng.random() < 0.3 else 0,
                           alias_input=0 if kind == "RESHAPE" else None,
                           inplace_input=0 if kind in ("LOGISTIC", "ADD") else None))
        ops[-1].kind = kind
    outputs = [len(tensors) - 1] + ([int(rng.integers(1, len(tensors)))] if rng.random() < 0.3 else [])
    return tensors, ops, [0], sorted(set(outputs))


@pytest.mark.parametrize("seed", range(N_RANDOM_GRAPHS))
def test_random_graph_plans_never_overlap(seed):
    rng = np.random.default_rng(seed)
    tensors, ops, inputs, outputs = random_graph(rng)
    plan = plan_memory(tensors, ops, inputs, outputs)
    used = {t for op in ops for t in op.inputs + op.outputs} | set(inputs)
    sizes = {t: tensors[t].nbytes for t in used}
    check_ops = [CheckOp(op.kind if op.kind != "ADD" or op.inputs[0] != op.inputs[1] else "ADD", op.inputs,
                         op.outputs, (plan.scratch_offsets.get(i, 0), op.scratch_bytes))
                 for i, op in enumerate(ops)]
    check_layout(sizes, plan.tensor_offsets, check_ops, inputs, outputs, plan.arena_size)
    # The arena can never be smaller than the largest set of bytes live at one op.
    assert plan.arena_size >= max(plan.live_bytes(i) for i in range(len(ops)))
    assert plan.arena_size <= sum(b.size for b in plan.buffers)


def test_planner_rejects_nothing_live_twice_in_a_chain():
    """x -> logistic (in place) -> reshape (alias) -> logistic (in place): one buffer serves all."""
    t = [BlobTensor(name=str(i), dtype=np.dtype(np.int8), shape=(100,), kind=bf.KIND_ACTIVATION) for i in range(4)]
    ops = [Lowered(0, [0], [1], b"", inplace_input=0), Lowered(0, [1], [2], b"", alias_input=0),
           Lowered(0, [2], [3], b"", inplace_input=0)]
    plan = plan_memory(t, ops, [0], [3])
    assert plan.arena_size == 100
    assert len({plan.tensor_offsets[i] for i in range(4)}) == 1


def test_in_place_refused_while_the_input_is_still_needed():
    t = [BlobTensor(name=str(i), dtype=np.dtype(np.int8), shape=(64,), kind=bf.KIND_ACTIVATION) for i in range(3)]
    # op0: t1 = logistic(t0) could run in place, but op1 reads t0 again.
    ops = [Lowered(0, [0], [1], b"", inplace_input=0), Lowered(0, [0, 1], [2], b"")]
    plan = plan_memory(t, ops, [0], [2])
    assert plan.tensor_offsets[0] != plan.tensor_offsets[1]


def test_checker_catches_overlapping_live_tensors():
    """The checker itself must fail on a bad layout, or the tests above prove nothing."""
    ops = [CheckOp("CONV_2D", [0], [1]), CheckOp("ADD", [0, 1], [2])]
    sizes = {0: 64, 1: 64, 2: 64}
    with pytest.raises(AssertionError, match="overlap"):
        check_layout(sizes, {0: 0, 1: 32, 2: 128}, ops, [0], [2], 192)
    with pytest.raises(AssertionError, match="overlap"):  # in place over an input that is read later
        check_layout(sizes, {0: 0, 1: 0, 2: 64}, ops, [0], [2], 128)
    check_layout(sizes, {0: 0, 1: 64, 2: 0}, ops, [0], [2], 128)  # ADD in place over t0: legal


def test_optional_in_place_only_where_it_lowers_the_arena():
    """Optional in-place ops (pointwise conv: slower in place) stay out of place unless the
    arena needs them: here only op 2 (at the 1000 + 1000 byte peak) runs in place, not op 0
    (op 1's 96 + 1000 bytes set the arena either way)."""
    sizes = [96, 96, 1000, 1000]
    t = [BlobTensor(name=str(i), dtype=np.dtype(np.int8), shape=(s,), kind=bf.KIND_ACTIVATION)
         for i, s in enumerate(sizes)]
    ops = [Lowered(0, [0], [1], b"", inplace_input=0, inplace_optional=True), Lowered(0, [1], [2], b""),
           Lowered(0, [2], [3], b"", inplace_input=0, inplace_optional=True)]
    plan = plan_memory(t, ops, [0], [3])
    assert plan.in_place == {2} and plan.arena_size == 1096
    # Without the peak op, no optional op is worth its time.
    plan = plan_memory(t, ops[:2], [0], [2])
    assert plan.in_place == set() and plan.arena_size == 1096
