"""platformio.ini: one environment per board in boards/*.toml, building what firmware/ports/Makefile
builds, with the same flags, linker script and memory layout.

The PlatformIO registry cannot be reached here, so the configuration is read with
`pio project config --json-output` (offline) and compared with the board TOMLs and with the
Makefile's own compile and link commands (`make -n`). The QEMU environments also build for real
with `pio run`, through boards/platformio/offline_core.py (SCons from pip, the system
arm-none-eabi-gcc), and the image they produce answers HELLO on QEMU. The real boards' platforms
(ststm32, nordicnrf52) need the registry: not built here (boards/README.md, "PlatformIO").
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FW = REPO / "firmware"
BOARDS = sorted(p.stem for p in (REPO / "boards").glob("*.toml"))
QEMU_PLATFORM = "symlink://boards/platformio/qemu-mps2"
MEMORY_KEYS = ("flash_origin", "flash_size", "ram_origin", "ram_size", "ram_slot_size", "stack_size")


def pio_command() -> list[str] | None:
    if importlib.util.find_spec("platformio") is not None:
        return [sys.executable, "-m", "platformio"]
    exe = shutil.which("pio") or shutil.which("platformio")
    return [exe] if exe else None


PIO = pio_command()
pytestmark = pytest.mark.skipif(
    PIO is None, reason="platformio is not installed (pip install platformio, or pip install -e '.[test]')")


def board(name: str) -> dict:
    return tomllib.loads((REPO / "boards" / f"{name}.toml").read_text())


def pio_env(core_dir: Path, build_dir: Path | None = None) -> dict:
    env = dict(os.environ, PLATFORMIO_CORE_DIR=str(core_dir), PLATFORMIO_SETTING_ENABLE_TELEMETRY="no")
    if build_dir is not None:
        env["PLATFORMIO_BUILD_DIR"] = str(build_dir)
    return env


def run_pio(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*PIO, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict[str, dict]:
    """`pio project config --json-output`: {section: {option: value}}; offline, under 2 s."""
    proc = run_pio(["project", "config", "--json-output"], pio_env(tmp_path_factory.mktemp("pio-core")), timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {section: dict(options) for section, options in json.loads(proc.stdout)}


def envs(config: dict) -> dict[str, dict]:
    return {section[len("env:"):]: opts for section, opts in config.items() if section.startswith("env:")}


def tokens(lines) -> list[str]:
    return [tok for line in (lines if isinstance(lines, list) else [lines]) for tok in shlex.split(line)]


def selected_sources(src_filter: list[str]) -> set[Path]:
    """The .c files a build_src_filter selects under firmware/ (PlatformIO's +<>/-<> semantics)."""
    chosen: set[Path] = set()
    for op, pattern in re.findall(r"([+-])<([^>]*)>", " ".join(src_filter)):
        matched = {Path(p) for p in glob.glob(str(FW / pattern), recursive=True) if p.endswith(".c")}
        if op == "+":
            assert matched, f"+<{pattern}> matches no .c file under firmware/"
            chosen |= matched
        else:
            chosen -= matched
    return chosen


def make_dry_run(name: str, build: Path) -> tuple[list[str], list[str], set[Path]]:
    """From `make -n BOARD=<name>`: the compile command of the board's port file, the link command,
    and every .c file the Makefile compiles."""
    proc = subprocess.run(["make", "-n", "-B", "-C", str(FW / "ports"), f"BOARD={name}", f"BUILD={build}",
                           f"PYTHON={sys.executable}", "image"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    port = board(name)["port"]
    compiles = [shlex.split(l) for l in proc.stdout.splitlines() if l.startswith("arm-none-eabi-gcc") and " -c " in l]
    compile_cmd = next(c for c in compiles if any(f"/ports/{port}/" in t and t.endswith(".c") for t in c))
    link_cmd = next(shlex.split(l) for l in proc.stdout.splitlines()
                    if l.startswith("arm-none-eabi-gcc") and "tinyadapt.elf" in l and " -c " not in l)
    sources = {Path(c[c.index("-c") + 1]) for c in compiles}
    return compile_cmd, link_cmd, sources


# ---- the configuration, offline -------------------------------------------------------------


def test_every_board_has_an_environment_named_after_it(config):
    by_env = envs(config)
    assert sorted(by_env) == BOARDS
    for name, opts in by_env.items():
        b = board(name)
        assert opts["custom_ta_board"] == name
        assert "framework" not in opts, f"{name}: framework-less (the ports are register-level)"
        if b["qemu_machine"]:
            assert b["platformio_env"] == ""
            assert opts["platform"] == QEMU_PLATFORM
        else:
            # The real boards: PlatformIO's own board id, from the TOML, on the standard platforms.
            assert opts["board"] == b["platformio_env"]
            assert opts["platform"] == ("nordicnrf52" if b["port"] == "nrf52" else "ststm32")
    assert config["platformio"]["default_envs"] == ["qemu-an386"]


def test_qemu_platform_boards_describe_the_qemu_machines(config):
    platform = REPO / "boards" / "platformio" / "qemu-mps2"
    manifest = json.loads((platform / "platform.json").read_text())
    assert manifest["packages"]["toolchain-gccarmnoneeabi"]["type"] == "toolchain"
    assert (platform / "builder" / "main.py").is_file()
    for name, opts in envs(config).items():
        b = board(name)
        if not b["qemu_machine"]:
            continue
        pio_board = json.loads((platform / "boards" / f"{opts['board']}.json").read_text())
        assert pio_board["build"]["mcu"] == b["qemu_machine"]
        assert pio_board["build"]["cpu"] == b["core"]
        assert pio_board["upload"]["maximum_size"] == b["flash_size"]
        assert pio_board["upload"]["maximum_ram_size"] == b["ram_size"]


def test_sources_are_the_makefiles(config, tmp_path):
    assert Path(config["platformio"]["src_dir"]) == FW
    for name, opts in envs(config).items():
        _, _, make_sources = make_dry_run(name, tmp_path / "make")
        assert selected_sources(opts["build_src_filter"]) == make_sources, name


def test_referenced_files_exist(config):
    for name, opts in envs(config).items():
        assert opts["board_build.ldscript"] == "firmware/ports/cortex_m/ta_cortex_m.ld"
        assert (REPO / opts["board_build.ldscript"]).is_file()
        for script in opts["extra_scripts"]:
            assert (REPO / script.split(":", 1)[-1]).is_file(), script
        for tok in tokens(opts["build_flags"]):
            if tok.startswith("-I"):
                assert (REPO / tok[2:]).is_dir(), f"{name}: {tok}"
        if opts["platform"].startswith("symlink://"):
            assert (REPO / opts["platform"][len("symlink://"):] / "platform.json").is_file()


def test_memory_core_and_clock_match_the_board_toml(config):
    for name, opts in envs(config).items():
        b = board(name)
        flags = tokens(opts["build_flags"])
        defsyms = dict(re.match(r"-Wl,--defsym=__(\w+)=(\S+)$", t).groups() for t in flags
                       if t.startswith("-Wl,--defsym="))
        assert {k: int(defsyms[k], 0) for k in MEMORY_KEYS} == {k: b[k] for k in MEMORY_KEYS}, name
        assert int(defsyms["arena_size"], 0) == 0  # all the RAM left, as ARENA_SIZE=0
        assert f"-mcpu={b['core']}" in flags
        assert ["-mfloat-abi=hard", f"-mfpu={b['fpu']}"] == [t for t in flags if t.startswith(("-mfloat-abi", "-mfpu"))]
        assert f'-DTA_BOARD_NAME="{name}"' in flags
        assert f'-DTA_CORE_NAME="{b["core"]}"' in flags
        assert f"-DTA_CLOCK_HZ={b['clock_hz']}u" in flags


def test_compile_and_link_flags_are_the_makefiles(config, tmp_path):
    """Each environment's build_flags are exactly the Makefile's compile flags for that board, plus
    its link-only -Wl options; the extra script adds -Os/-O2 and the link's specs."""
    for name, opts in envs(config).items():
        compile_cmd, link_cmd, _ = make_dry_run(name, tmp_path / "make")
        flags = tokens(opts["build_flags"])
        ini_compile = {f"-I{REPO / t[2:]}" if t.startswith("-I") else t for t in flags if not t.startswith("-Wl,")}
        make_compile = set(compile_cmd[1:]) - {"-Os", "-O2", "-MMD", "-MP", "-c", "-o"}
        make_compile = {t for t in make_compile if not t.endswith((".c", ".o"))}
        assert ini_compile == make_compile, f"{name}: ini-only {ini_compile - make_compile}, " \
                                            f"Makefile-only {make_compile - ini_compile}"
        ini_wl = {t for t in flags if t.startswith("-Wl,") and not t.startswith("-Wl,--defsym=")}
        make_wl = {t for t in link_cmd if t.startswith("-Wl,") and not t.startswith(("-Wl,--defsym=", "-Wl,-Map="))}
        assert ini_wl | {"-Wl,--print-memory-usage"} == make_wl, name  # the extra script adds the report
        ini_defsyms = {t.split("=")[1]: int(t.split("=")[2], 0) for t in flags if t.startswith("-Wl,--defsym=")}
        make_defsyms = {t.split("=")[1]: int(t.split("=")[2], 0) for t in link_cmd if t.startswith("-Wl,--defsym=")}
        assert ini_defsyms == make_defsyms, name
        # The link options the extra script adds are the Makefile's.
        for flag in ("--specs=nano.specs", "--specs=nosys.specs", "-nostartfiles", "-lm"):
            assert flag in link_cmd
        extra = (REPO / "boards/platformio/tinyadapt_build.py").read_text()
        for flag in ("--specs=nano.specs", "--specs=nosys.specs", "-nostartfiles"):
            assert flag in extra
        assert opts["custom_opt"] == "-Os" and opts["custom_kernel_opt"] == "-O2"  # OPT, KERNEL_OPT defaults


# ---- building for real: the QEMU environments, offline --------------------------------------


def offline_build_prerequisites() -> str | None:
    for tool in ("arm-none-eabi-gcc", "make"):
        if shutil.which(tool) is None:
            return f"{tool} not found (scripts/setup.sh installs it)"
    if importlib.util.find_spec("SCons") is None:
        return "SCons is not installed for this Python (pip install scons; it is in the test extra)"
    return None


@pytest.fixture(scope="module")
def offline_core(tmp_path_factory) -> Path:
    why = offline_build_prerequisites()
    if why:
        pytest.skip(why)
    core = tmp_path_factory.mktemp("pio-offline-core")
    proc = subprocess.run([sys.executable, str(REPO / "boards/platformio/offline_core.py"), str(core)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return core


def symbols(elf: Path) -> dict[str, tuple[int, int]]:
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    table = {}
    for parts in (l.split() for l in out.splitlines()):
        if len(parts) == 4:
            table[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
        elif len(parts) == 3:
            table[parts[2]] = (int(parts[0], 16), 0)
    return table


def test_pio_run_builds_the_qemu_image_offline_and_it_answers_hello(offline_core, tmp_path):
    from tests.device.conftest import make, start_qemu

    name = "qemu-an386"
    b = board(name)
    proc = run_pio(["run", "-e", name], pio_env(offline_core, tmp_path / "pio"), timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = tmp_path / "pio" / name
    elf = out / "tinyadapt.elf"
    assert elf.is_file() and (out / "tinyadapt.bin").is_file() and (out / "tinyadapt.map").is_file()
    sym = symbols(elf)
    assert sym["ta_vectors"][0] == b["flash_origin"]
    assert sym["__stack_hi"][0] == b["ram_origin"] + b["ram_size"]
    assert sym["__ram_slot_start"][0] == b["ram_origin"]
    assert sym["__ram_slot_end"][0] - sym["__ram_slot_start"][0] == b["ram_slot_size"]

    # The same code as the Makefile's image: every function and object has the same size (only
    # the link order, hence the addresses, differs).
    make(f"BOARD={name}", build=tmp_path / "make")
    make_sym = symbols(tmp_path / "make" / name / "tinyadapt.elf")
    sized = {k for k, (_, size) in make_sym.items() if size}
    assert {k: sym[k][1] for k in sized if k in sym} == {k: make_sym[k][1] for k in sized}

    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not found: the PIO image was built but not run")
    dev = start_qemu(elf, name)
    try:
        info = dev.client.hello()
    finally:
        dev.stop()
    assert info["board"] == name and info["core"] == b["core"]
    assert info["arena_size"] == sym["__arena_end"][0] - sym["__arena_start"][0]
    assert info["ram_slot_size"] == b["ram_slot_size"]


def test_an_environment_that_disagrees_with_its_toml_is_refused(offline_core, tmp_path):
    ini = (REPO / "platformio.ini").read_text()
    section = ini.index("[env:qemu-an386]")
    end = ini.index("[env:", section + 1)
    wrong = ini[:section] + ini[section:end].replace("__ram_size=0x00400000", "__ram_size=0x00040000") + ini[end:]
    conf = tmp_path / "platformio.ini"
    conf.write_text(wrong)
    proc = run_pio(["run", "-e", "qemu-an386", "--project-conf", str(conf)], pio_env(offline_core, tmp_path / "pio"))
    assert proc.returncode != 0
    assert "does not match boards/qemu-an386.toml" in proc.stdout + proc.stderr
    assert "__ram_size=0x00040000" in proc.stdout + proc.stderr
