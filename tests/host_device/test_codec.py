"""The wire codec on its own: COBS, frames and CRC, stream resynchronisation, the fault injector."""

from __future__ import annotations

import random
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyadapt.device import cobs
from tinyadapt.device.faults import DirectionStats, FaultConfig, FaultInjector, FaultProxy
from tinyadapt.device.frames import (MAX_PAYLOAD, Cmd, Frame, FrameDecoder, FrameError, FrameType, decode_frame,
                                     encode_frame, pack_frame, parse_frame)

SEED = 20261123


# -- COBS ------------------------------------------------------------------------------------
@pytest.mark.parametrize("data, wire", [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),              # a full block, nothing after
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
])
def test_cobs_known_vectors(data, wire):
    # The published COBS examples, with the firmware's choice of no trailing empty block.
    assert cobs.encode(data) == wire
    assert cobs.decode(wire) == data


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=3000))
def test_cobs_round_trip_random(data):
    enc = cobs.encode(data)
    assert 0 not in enc
    assert len(enc) <= cobs.max_encoded_size(len(data))
    assert cobs.decode(enc) == data


def test_cobs_round_trip_zero_heavy_and_block_edges():
    rng = random.Random(SEED)
    for n in list(range(0, 520)) + [1023, 1024, 1036, 4096]:
        for fill in (lambda: 0, lambda: rng.randrange(1, 256), lambda: rng.choice((0, 0, 0, 7, 255))):
            data = bytes(fill() for _ in range(n))
            assert cobs.decode(cobs.encode(data)) == data, f"n={n} seed={SEED}"


@pytest.mark.parametrize("bad", [b"", b"\x00", b"\x05\x01\x02", b"\x03\x01\x00", b"\x02", b"\x02\x01\x04\x01\x02"])
def test_cobs_rejects_malformed(bad):
    with pytest.raises(cobs.CobsError):
        cobs.decode(bad)


# -- frames ----------------------------------------------------------------------------------
def test_frame_layout_matches_the_spec():
    f = Frame(FrameType.RESPONSE, 0x1234, Cmd.INFER, -5, b"\x01\x02\x03")
    raw = pack_frame(f)
    assert raw[:8] == bytes([1, 2, 0x34, 0x12, 0x24, 0xFB, 3, 0]) and raw[8:11] == b"\x01\x02\x03"
    assert struct.unpack("<I", raw[11:]) == (zlib.crc32(raw[:11]),)
    assert parse_frame(raw) == f
    wire = encode_frame(f)
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    assert decode_frame(wire) == f


def test_every_single_bit_flip_is_rejected():
    f = Frame(FrameType.REQUEST, 7, Cmd.INPUT_WRITE, 0, bytes(range(200)))
    raw = pack_frame(f)
    for bit in range(len(raw) * 8):
        bad = bytearray(raw)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(FrameError):
            parse_frame(bytes(bad))


@pytest.mark.parametrize("mutate, why", [
    (lambda r: r[:11], "shorter"),
    (lambda r: r[:6] + struct.pack("<H", 5) + r[8:], "announces"),
    (lambda r: r[:-1] + bytes([r[-1] ^ 0x80]), "CRC"),
])
def test_frame_rejections_say_why(mutate, why):
    raw = pack_frame(Frame(FrameType.RESPONSE, 1, Cmd.HELLO, 0, b"abcd"))
    with pytest.raises(FrameError, match=why):
        parse_frame(mutate(raw))


def test_frame_payload_limit():
    raw = pack_frame(Frame(FrameType.RESPONSE, 1, Cmd.OUTPUT_READ, 0, bytes(MAX_PAYLOAD + 1)))
    with pytest.raises(FrameError, match="more than"):
        parse_frame(raw)
    assert len(parse_frame(pack_frame(Frame(FrameType.RESPONSE, 1, Cmd.OUTPUT_READ, 0, bytes(MAX_PAYLOAD))))
               .payload) == MAX_PAYLOAD


# -- the stream decoder ----------------------------------------------------------------------
def _frames(n, rng):
    return [Frame(FrameType.RESPONSE, k, Cmd.INFER, 0, bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))))
            for k in range(n)]


def test_decoder_reassembles_frames_split_anywhere():
    rng = random.Random(SEED)
    frames = _frames(40, rng)
    stream = b"".join(encode_frame(f) for f in frames)
    dec, got = FrameDecoder(), []
    i = 0
    while i < len(stream):
        step = rng.randrange(1, 64)
        got += dec.feed(stream[i:i + step])
        i += step
    assert got == frames and dec.errors == 0


def test_decoder_resyncs_after_garbage():
    rng = random.Random(SEED)
    frames = _frames(20, rng)
    dec, got = FrameDecoder(), []
    for f in frames:
        garbage = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 80))) + b"\x00"
        got += dec.feed(garbage + encode_frame(f))
    good = [x for x in got if isinstance(x, Frame)]
    assert good == frames, "every frame after a garbage burst must still decode"
    assert all(isinstance(x, FrameError) for x in got if not isinstance(x, Frame))


def test_decoder_drops_overlong_run_without_buffering_it():
    dec = FrameDecoder()
    assert dec.feed(b"\x07" * 100_000) == []
    assert dec.pending <= dec.max_wire
    items = dec.feed(b"\x00" + encode_frame(Frame(FrameType.NAK, 0xFFFF, 0)))
    assert isinstance(items[0], FrameError) and "longer" in str(items[0])
    assert items[1] == Frame(FrameType.NAK, 0xFFFF, 0)


def test_decoder_ignores_empty_frames():
    dec = FrameDecoder()
    f = Frame(FrameType.RESPONSE, 3, Cmd.METRICS, 0, b"x")
    assert dec.feed(b"\x00\x00" + encode_frame(f) + b"\x00\x00") == [f]
    assert dec.errors == 0


# -- the fault injector (no sockets) ---------------------------------------------------------
def test_fault_injector_is_seeded_and_counts_what_it_does():
    rng = random.Random(SEED)
    data = b"".join(encode_frame(f) for f in _frames(400, rng))[:50_000]

    def run(seed):
        stats = DirectionStats()
        out = FaultInjector(0.01, 0.01, random.Random(seed), stats).process(data)
        return out, stats

    a, sa = run(1)
    b, sb = run(1)
    c, _ = run(2)
    assert a == b and sa == sb and a != c
    assert sa.dropped and sa.corrupted and sa.duplicated and sa.frames_duplicated
    assert 300 < sa.dropped + sa.corrupted + sa.duplicated < 700        # ~1 % of 50,000 bytes
    assert 0 < sa.frames_duplicated < 20                                # ~1 % of ~330 frames
    assert sa.bytes_out == len(a)


def test_fault_injector_rate_zero_is_transparent():
    data = bytes(range(256)) * 50
    assert FaultInjector(0.0, 0.0, random.Random(0), DirectionStats()).process(data) == data


def test_fault_proxy_refuses_non_loopback():
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(("8.8.8.8", 53), FaultConfig())
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(("127.0.0.1", 1), FaultConfig(), listen_host="0.0.0.0")
    with pytest.raises(ValueError):
        FaultConfig(rate=0.9)
