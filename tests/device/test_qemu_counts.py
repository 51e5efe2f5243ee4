"""Instruction counts on the emulated boards: with -icount shift=7 they are exact and
repeat run to run, so a kernel change shows up as an exact difference."""

from __future__ import annotations

import struct

import pytest

INPUTS = [-128, -1, 0, 5, 64, 127]


def counts(client) -> list[int]:
    return [client.infer(struct.pack("<b", x))[0] for x in INPUTS]


@pytest.mark.parametrize("board", ["qemu-an386", "qemu-an500"])
def test_instruction_counts_repeat_exactly_across_runs(launch, board):
    first = launch(board).client
    run1 = counts(first)
    assert counts(first) == run1  # the same inputs again in the same boot
    second = launch(board).client  # a second emulator, booted afresh
    assert counts(second) == run1
    # tiny_fc: 3 small FULLY_CONNECTED layers (16 + 256 + 16 MACs) -> thousands of instructions.
    assert all(1000 < n < 20000 for n in run1), run1


def test_per_op_profile_accounts_for_the_invoke(launch):
    client = launch("qemu-an386").client
    client.input_write(0, b"\x05")
    total, n = client.invoke(profile=True)
    ops = client.profile_read(0, n)
    assert n == 3 and [op for op, _ in ops] == [3, 3, 3]
    per_op = sum(c for _, c in ops)
    # What is not in an op is the engine's per-op dispatch and the hook itself: a few % here.
    assert 0.7 * total < per_op < total
    # The 16x16 layer dominates.
    assert ops[1][1] > ops[0][1] and ops[1][1] > ops[2][1]
    # Profiling is off the hot path: without it the hook is not installed, so the reported
    # invoke is the ops and the dispatch alone, and it repeats exactly.
    client.input_write(0, b"\x05")
    plain = client.invoke(profile=False)[0]
    client.input_write(0, b"\x05")
    assert client.invoke(profile=False)[0] == plain
    assert per_op * 0.9 < plain < total, (plain, per_op, total)
