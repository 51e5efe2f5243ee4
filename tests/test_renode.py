"""Renode for the nRF52840 DK: boards/renode/nrf52840-dk.{repl,resc} and tests/renode/nrf52840-dk.robot.

Renode cannot be installed on this machine (no Debian package, no registry): the test that runs
the Robot suite with `renode-test` is skipped when it is not on PATH. What can be checked without
it is checked here: the bytes the Robot test sends and waits for are a HELLO request and the
beginning of its response as docs/PROTOCOL.md defines them (encoded with tests/device/wire.py,
the spec-side client the QEMU device tests use), and the Renode files agree with
boards/nrf52840-dk.toml.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.device import wire

REPO = Path(__file__).resolve().parents[1]
BOARD = "nrf52840-dk"
ROBOT = REPO / "tests" / "renode" / f"{BOARD}.robot"
RESC = REPO / "boards" / "renode" / f"{BOARD}.resc"
REPL = REPO / "boards" / "renode" / f"{BOARD}.repl"
NO_RENODE = "renode is not installed (not available on this machine; see boards/README.md, \"Renode\")"


def board() -> dict:
    return tomllib.loads((REPO / "boards" / f"{BOARD}.toml").read_text())


def robot_variables(path: Path) -> dict[str, list[str]]:
    """The *** Variables *** table: name -> cells (continuation lines joined), comments dropped."""
    section, rows = None, []
    for line in path.read_text().splitlines():
        if line.startswith("***"):
            section = line.strip("* ").lower()
            continue
        if section != "variables" or not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c for c in re.split(r"\s{2,}|\t", line.strip()) if c]
        if cells[0] == "...":
            rows[-1].extend(cells[1:])
        else:
            rows.append(cells)
    return {row[0]: row[1:] for row in rows}


def hexbytes(cells: list[str]) -> bytes:
    return bytes(int(tok, 16) for cell in cells for tok in cell.split())


def hello_response(names: tuple[str, str], arena: int, features: int, builtin: tuple[int, int] = (0, 0)) -> bytes:
    """A HELLO response payload as docs/PROTOCOL.md lays it out (numbers: any plausible values)."""
    board_name, core = (n.encode() for n in names)
    payload = struct.pack("<BBBBIIIHBB", 1, 0, 1, 2, arena, board()["ram_slot_size"], features, 1024,
                          len(board_name), len(core)) + board_name + core + struct.pack("<II", *builtin)
    return payload


def test_robot_sends_a_hello_request_as_the_host_does():
    v = robot_variables(ROBOT)
    sent = bytes(int(b, 16) for b in v["@{HELLO_REQUEST}"])
    # 0x00, COBS(frame), 0x00 0x00: the host's framing (docs/PROTOCOL.md, "Framing").
    assert sent[0] == 0 and sent[-2:] == b"\x00\x00" and 0 not in sent[1:-2]
    frame = wire.Frame.decode(wire.cobs_decode(sent[1:-2]))  # checks length and CRC
    assert (frame.version, frame.type, frame.cmd, frame.status, frame.payload) == (1, wire.REQUEST, wire.HELLO, 0, b"")
    assert sent == wire.wire(frame.encode()) + b"\x00"


@pytest.mark.parametrize("arena,features,builtin", [(215504, 0x11, (0, 0)), (0x00010000, 0x19, (1688, 0x00A1B200)),
                                                   (0x01020304, 0x11, (0, 0))])
def test_robot_waits_for_the_start_of_the_hello_response(arena, features, builtin):
    """Whatever the numbers in the payload (zero bytes move COBS's code bytes around), the
    response to the robot's request contains both patterns the robot waits for."""
    v = robot_variables(ROBOT)
    request = wire.Frame.decode(wire.cobs_decode(bytes(int(b, 16) for b in v["@{HELLO_REQUEST}"])[1:-2]))
    b = board()
    payload = hello_response((b["name"], b["core"]), arena, features, builtin)
    on_wire = wire.cobs_encode(wire.Frame(wire.RESPONSE, request.seq, wire.HELLO, 0, payload).encode())
    header, names = hexbytes(v["${HELLO_RESPONSE_HEADER}"]), hexbytes(v["${HELLO_RESPONSE_NAMES}"])
    assert on_wire.startswith(header)
    assert names in on_wire and on_wire.index(names) > len(header)
    # A NAK or an error status for the same request would not match the header.
    for status in (-1, -5):
        bad = wire.cobs_encode(wire.Frame(wire.RESPONSE, request.seq, wire.HELLO, status, b"").encode())
        assert not bad.startswith(header)
    nak = wire.cobs_encode(wire.Frame(wire.NAK, 0xFFFF, 0, -5, b"").encode())
    assert header not in nak


def test_renode_files_match_the_board():
    b = board()
    repl, resc, robot = REPL.read_text(), RESC.read_text(), ROBOT.read_text()
    # The platform is Renode's own description of this board (boards/<board>.toml renode_platform) ...
    assert re.search(r'^using "%s"$' % re.escape(b["renode_platform"]), repl, re.M)
    # ... plus a DWT cycle counter at the board's clock (the port's counter and read timeouts).
    dwt = re.search(r"^dwt: Miscellaneous\.DWT @ sysbus 0xE0001000\n\s+frequency: (\d+)$", repl, re.M)
    assert dwt and int(dwt.group(1)) == b["clock_hz"]
    # The script loads this repl and, by default, the Makefile's image for the board; UARTE0
    # (boards/<board>.toml uart; Renode's uart0 at 0x40002000 = uart_base) is the link.
    assert b["uart"] == "UARTE0" and b["uart_base"] == 0x40002000
    assert "machine LoadPlatformDescription $ORIGIN/nrf52840-dk.repl" in resc
    assert f"$elf?=@build/device/{BOARD}/tinyadapt.elf" in resc
    assert "connector Connect sysbus.uart0" in resc and "showAnalyzer sysbus.uart0" in resc
    assert re.search(r"^start$", resc, re.M)
    v = robot_variables(ROBOT)
    assert v["${UART}"] == ["sysbus.uart0"]
    assert v["${RESC}"] == ["${CURDIR}/../../boards/renode/nrf52840-dk.resc"]
    assert v["${ELF}"] == [f"${{CURDIR}}/../../build/device/{BOARD}/tinyadapt.elf"]
    assert "include @${RESC}" in robot


@pytest.mark.skipif(shutil.which("renode-test") is None, reason=NO_RENODE)
def test_renode_boots_the_image_and_it_answers_hello(tmp_path):
    from tests.device.conftest import make

    make(f"BOARD={BOARD}", build=tmp_path / "build")
    elf = tmp_path / "build" / BOARD / "tinyadapt.elf"
    cmd = ["renode-test", "--variable", f"ELF:{elf}", "-r", str(tmp_path / "results"), str(ROBOT)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
