"""The serial protocol (docs/PROTOCOL.md) end to end, on the emulated Cortex-M boards and
the native POSIX port: every test boots its own device and talks to it over the real link
(QEMU's UART over TCP, or a pty)."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from tests.device import wire

DEVICES = ["qemu-an386", "qemu-an500", "posix"]
FEATURE_PROFILE, FEATURE_INSTR, FEATURE_BUILTIN, FEATURE_TIME = 1 << 0, 1 << 1, 1 << 3, 1 << 5


def host_outputs(model, inputs: list[int]) -> list[bytes]:
    from tinyadapt.engine.host import HostEngine

    engine = HostEngine(model.blob)
    return [engine.invoke([np.array([[x]], dtype=np.int8)])[0].tobytes() for x in inputs]


def identity(blob: bytes) -> tuple[int, int]:
    """(total_size, CRC-32) from a blob's header: what HELLO and SELECT report."""
    return struct.unpack_from("<II", blob, 8)


@pytest.mark.parametrize("board", DEVICES)
def test_hello_describes_the_device(launch, tiny_model, board):
    info = launch(board).client.hello()
    size, crc = identity(tiny_model[0].blob)
    assert (info["builtin_size"], info["builtin_crc"]) == (size, crc) and size == len(tiny_model[0].blob)
    assert info["proto"] == 1
    assert info["n_slots"] == 2
    assert info["max_payload"] == 1024
    assert info["features"] & FEATURE_PROFILE and info["features"] & FEATURE_BUILTIN
    assert info["board"] == board
    if board == "posix":
        assert info["core"] == "host" and info["features"] & FEATURE_TIME
    else:
        assert info["core"] == {"qemu-an386": "cortex-m4", "qemu-an500": "cortex-m7"}[board]
        assert info["features"] & FEATURE_INSTR
        assert info["ram_slot_size"] == 1 << 20  # boards/qemu-*.toml
        assert info["arena_size"] > 2 << 20      # the rest of the 4 MiB RAM


@pytest.mark.parametrize("board", DEVICES)
def test_infer_equals_host_engine_for_every_input(launch, tiny_model, board):
    model = tiny_model[0]
    client = launch(board).client
    size, crc = identity(model.blob)
    assert client.select(0) == dict(arena_needed=model.plan.arena_size, n_ops=3, input_sizes=[1], output_sizes=[1],
                                    blob_size=size, blob_crc=crc)
    inputs = list(range(-128, 128))
    expected = host_outputs(model, inputs)
    got = [client.infer(struct.pack("<b", x))[1] for x in inputs]
    mismatches = [(x, e, g) for x, e, g in zip(inputs, expected, got) if e != g]
    assert not mismatches, f"(input, host, device) differing: {mismatches}"


@pytest.mark.parametrize("board", DEVICES)
def test_split_commands_equal_infer(launch, tiny_model, board):
    client = launch(board).client
    _, out = client.infer(struct.pack("<b", 42))
    client.input_write(0, struct.pack("<b", 42))
    count, n_profiled = client.invoke(profile=True)
    assert n_profiled == 3
    assert client.output_read(0, 1) == out
    profile = client.profile_read(0, 3)
    assert [op for op, _ in profile] == [3, 3, 3]  # TA_OP_FULLY_CONNECTED
    assert 0 < sum(n for _, n in profile) <= count
    # Without the profile flag nothing is reported and PROFILE_READ refuses.
    assert client.invoke(profile=False)[1] == 0
    assert client.request(wire.PROFILE_READ, struct.pack("<HH", 0, 1), check=False).status == -1


@pytest.mark.parametrize("board", DEVICES)
def test_load_over_the_link_then_select_ram_slot(launch, tiny_model, board):
    model, blob_path, _ = tiny_model
    client = launch(board).client
    client.load(model.blob, chunk=500)  # several chunks
    selected = client.select(1)
    assert selected["n_ops"] == 3 and (selected["blob_size"], selected["blob_crc"]) == identity(model.blob)
    expected = host_outputs(model, [-100, 7, 99])
    assert [client.infer(struct.pack("<b", x))[1] for x in (-100, 7, 99)] == expected
    # A transfer whose CRC does not match is refused at LOAD_END, and slot 1 is deselected.
    blob = bytearray(model.blob)
    client.request(wire.LOAD_BEGIN, struct.pack("<B3xII", 1, len(blob), wire.crc32(bytes(blob)) ^ 1))
    client.request(wire.LOAD_CHUNK, struct.pack("<I", 0) + bytes(blob[:900]))
    client.request(wire.LOAD_CHUNK, struct.pack("<I", 900) + bytes(blob[900:]))
    assert client.request(wire.LOAD_END, check=False).status == -5  # TA_ERR_CRC
    assert client.request(wire.INFER, b"\x01", check=False).status == -11  # TA_ERR_STATE: nothing selected
    # A blob the loader rejects (bad magic) is refused with the loader's status.
    blob[0] ^= 0xFF
    client.request(wire.LOAD_BEGIN, struct.pack("<B3xII", 1, len(blob), wire.crc32(bytes(blob))))
    client.request(wire.LOAD_CHUNK, struct.pack("<I", 0) + bytes(blob[:1000]))
    client.request(wire.LOAD_CHUNK, struct.pack("<I", 1000) + bytes(blob[1000:]))
    assert client.request(wire.LOAD_END, check=False).status == -2  # TA_ERR_MAGIC


@pytest.mark.parametrize("board", DEVICES)
def test_ram_slot_placed_by_the_loader(launch, tiny_model, board):
    model, blob_path, _ = tiny_model
    client = launch(board, ram_slot_blob=blob_path).client
    assert client.select(1)["arena_needed"] == model.plan.arena_size
    assert client.infer(struct.pack("<b", -3))[1] == host_outputs(model, [-3])[0]


@pytest.mark.parametrize("board", DEVICES)
def test_bad_crc_gets_a_nak_and_the_link_recovers(launch, board):
    client = launch(board).client
    client.hello()
    raw = bytearray(wire.Frame(wire.REQUEST, client.seq, wire.METRICS, 0, b"").encode())
    raw[-1] ^= 0x55
    client.link.write(wire.wire(bytes(raw)))
    nak = client.read_frame(2.0)
    assert nak is not None and (nak.type, nak.seq, nak.cmd, nak.payload) == (wire.NAK, 0xFFFF, 0, b"")
    assert nak.status == -5  # why: TA_ERR_CRC
    # Short frames and wrong lengths are NAKed too.
    client.link.write(b"\x00" + wire.cobs_encode(b"\x01\x01\x00") + b"\x00")
    assert client.read_frame(2.0).type == wire.NAK
    good = wire.Frame(wire.REQUEST, client.seq, wire.METRICS, 0, b"").encode()
    client.link.write(wire.wire(good[:6] + b"\x05\x00" + good[8:]))  # len says 5, there are 0
    assert client.read_frame(2.0).type == wire.NAK
    m = client.metrics()
    assert m["naks_sent"] == 3 and m["crc_errors"] == 3


@pytest.mark.parametrize("board", DEVICES)
def test_garbage_between_frames_is_survived(launch, tiny_model, board):
    client = launch(board).client
    rng = random.Random(1234)
    expected = host_outputs(tiny_model[0], list(range(-20, 20)))
    for i, x in enumerate(range(-20, 20)):
        noise = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 60)))
        if i % 3 == 0:
            noise += b"\x00"  # noise that ends in a delimiter: its own (bad) frame
        client.link.write(noise)  # otherwise it merges with the next frame, which is NAKed and resent
        assert client.infer(struct.pack("<b", x))[1] == expected[i]
    # Noise longer than any frame is dropped without overrunning the receive buffer.
    client.link.write(bytes(rng.randrange(1, 256) for _ in range(3000)) + b"\x00")
    assert client.infer(struct.pack("<b", 1))[1] == host_outputs(tiny_model[0], [1])[0]
    m = client.metrics()
    assert m["crc_errors"] >= 14 and m["invokes"] == 41
    assert client.naks >= 14


@pytest.mark.parametrize("board", DEVICES)
def test_duplicate_seq_is_answered_from_the_cache(launch, board):
    client = launch(board).client
    client.hello()
    seq = client.seq
    first = client.request(wire.INFER, b"\x10")
    # The same request again (as after a lost response): same bytes back, not executed again.
    client.send_frame(wire.Frame(wire.REQUEST, seq, wire.INFER, 0, b"\x10"))
    again = client.read_frame(2.0)
    assert again == first
    after = client.metrics()
    assert after["invokes"] == 1
    assert after["duplicates"] == 1
    # A new seq executes; HELLO always executes, even with a repeated seq.
    client.request(wire.INFER, b"\x10")
    assert client.metrics()["invokes"] == 2
    client.request(wire.HELLO, seq=client.seq - 1)
    client.request(wire.HELLO, seq=client.seq - 1)
    assert client.metrics()["duplicates"] == after["duplicates"]


@pytest.mark.parametrize("board", DEVICES)
def test_bad_requests_get_error_statuses(launch, board):
    client = launch(board).client

    def status(cmd, payload=b""):
        return client.request(cmd, payload, check=False).status

    assert status(0x7F) == -7                          # unknown command: TA_ERR_UNSUPPORTED
    assert status(0x4F) == -7                          # reserved TRAIN_* code, not in this build
    assert status(wire.INFER, b"\x01\x02") == -1       # input 0 is 1 byte
    assert status(wire.OUTPUT_READ, struct.pack("<B3xIH", 0, 0, 2)) == -10  # past the output
    assert status(wire.OUTPUT_READ, struct.pack("<B3xIH", 1, 0, 1)) == -1   # no output 1
    assert status(wire.INPUT_WRITE, struct.pack("<B3xI", 0, 1) + b"\x00") == -10
    assert status(wire.LOAD_CHUNK, struct.pack("<I", 0) + b"x") == -11  # no LOAD_BEGIN: TA_ERR_STATE
    assert status(wire.LOAD_BEGIN, struct.pack("<B3xII", 0, 16, 0)) == -7  # slot 0 is flash
    too_big = client.hello()["ram_slot_size"] + 1
    assert status(wire.LOAD_BEGIN, struct.pack("<B3xII", 1, too_big, 0)) == -10
    assert status(wire.HELLO, b"x") == -1
    # A failed SELECT leaves no model selected.
    assert status(wire.SELECT, b"\x02") == -1          # no slot 2: TA_ERR_ARG
    assert status(wire.INFER, b"\x01") == -11          # TA_ERR_STATE
    assert client.select(0)["n_ops"] == 3
    # The response to a wrong protocol version carries TA_ERR_VERSION.
    client.send_frame(wire.Frame(wire.REQUEST, 500, wire.HELLO, 0, b"", version=2))
    assert client.read_frame(2.0).status == -3
    assert client.hello()["proto"] == 1


@pytest.mark.parametrize("board", DEVICES)
def test_reset_reinitialises_the_app(launch, board):
    client = launch(board).client
    client.infer(b"\x00")
    assert client.metrics()["invokes"] == 1
    client.request(wire.RESET)
    info = client.hello()
    assert info["proto"] == 1
    m = client.metrics()
    assert m["invokes"] == 0 and m["frames_rx"] == 2  # HELLO and this METRICS
    assert client.infer(b"\x00")[1]  # slot 0 is selected again at start-up


@pytest.mark.parametrize("board", ["qemu-an386", "qemu-an500"])
def test_metrics_report_arena_and_stack_high_water_marks(launch, tiny_model, board):
    client = launch(board).client
    client.infer(b"\x05")
    m = client.metrics()
    # The planner's arena for tiny_fc is 32 bytes, and the device wrote exactly those.
    assert m["arena_used"] == tiny_model[0].plan.arena_size == 32
    assert m["arena_size"] == client.hello()["arena_size"]
    assert 256 < m["stack_used"] < m["stack_size"] == 0x4000
