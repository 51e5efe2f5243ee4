# PlatformIO extra script (pre:) shared by every environment of platformio.ini. It adds what
# firmware/ports/Makefile does and platformio.ini's own options cannot say:
#
#   - the architecture flags of build_flags (-mthumb -mcpu -mfpu -mfloat-abi) on the link and
#     assembler lines too: build_flags puts them on the compile line only, and the link needs
#     them to pick the hard-float newlib;
#   - the Makefile's link options: newlib-nano, no syscalls, no C start files (the start-up is
#     firmware/ports/cortex_m/ta_startup.c), a map file, the memory-usage report;
#   - optimisation as OPT / KERNEL_OPT: custom_opt (-Os) everywhere, custom_kernel_opt (-O2)
#     last on the command line of every file under firmware/kernels/;
#   - the program name: tinyadapt.elf / tinyadapt.bin / tinyadapt.map, as the Makefile;
#   - a check, before anything is compiled, that the environment's board name, core, FPU, clock
#     and memory (-Wl,--defsym=...) are those of boards/<custom_ta_board>.toml, the one place a
#     board is described (boards/README.md). tests/test_platformio.py checks the same offline.

import os
import re
import shlex
import sys

Import("env")  # noqa: F821  (SCons injects Import)

PROJECT_DIR = env.subst("$PROJECT_DIR")  # noqa: F821

ARCH_FLAG = re.compile(r"^-m(thumb|cpu=.+|fpu=.+|float-abi=.+)$")
MEMORY_KEYS = ("flash_origin", "flash_size", "ram_origin", "ram_size", "ram_slot_size", "stack_size")


def option(name, default=None):
    return env.GetProjectOption(name, default)  # noqa: F821


def flag_tokens():
    raw = option("build_flags", [])
    lines = raw if isinstance(raw, list) else [raw]
    return [tok for line in lines for tok in shlex.split(line)]


def load_board(name):
    path = os.path.join(PROJECT_DIR, "boards", name + ".toml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        import tomllib
        return tomllib.loads(text)
    except ImportError:  # Python < 3.11: the board files' flat subset, as the Makefile reads them
        sys.path.insert(0, os.path.join(PROJECT_DIR, "firmware", "ports", "tools"))
        from board_mk import parse_toml
        return parse_toml(text)


def check_against_board(tokens):
    """Fail early, naming every mismatch, if this environment is not its boards/*.toml."""
    name = option("custom_ta_board")
    if not name:
        sys.stderr.write("tinyadapt: environment %s has no custom_ta_board (the boards/<name>.toml it builds)\n"
                         % env["PIOENV"])  # noqa: F821
        env.Exit(1)  # noqa: F821
    board = load_board(name)
    defsyms = dict(m.groups() for m in (re.match(r"^-Wl,--defsym=__(\w+)=(\S+)$", t) for t in tokens) if m)
    defines = dict(m.groups() for m in (re.match(r"^-D(\w+)=(.*)$", t) for t in tokens) if m)
    want_fpu = ["-mfloat-abi=soft"] if board["fpu"] == "none" else ["-mfloat-abi=hard", "-mfpu=" + board["fpu"]]
    problems = []
    for key in MEMORY_KEYS:
        got = defsyms.get(key)
        if got is None or int(got, 0) != board[key]:
            problems.append("-Wl,--defsym=__%s=%s, boards/%s.toml says 0x%08X" % (key, got, name, board[key]))
    for flag in ["-mcpu=" + board["core"]] + want_fpu:
        if flag not in tokens:
            problems.append("%s missing from build_flags" % flag)
    if defines.get("TA_BOARD_NAME") != '"%s"' % name:
        problems.append("TA_BOARD_NAME=%s, expected \"%s\"" % (defines.get("TA_BOARD_NAME"), name))
    if defines.get("TA_CORE_NAME") != '"%s"' % board["core"]:
        problems.append("TA_CORE_NAME=%s, expected \"%s\"" % (defines.get("TA_CORE_NAME"), board["core"]))
    if defines.get("TA_CLOCK_HZ") != "%du" % board["clock_hz"]:
        problems.append("TA_CLOCK_HZ=%s, expected %du" % (defines.get("TA_CLOCK_HZ"), board["clock_hz"]))
    if "+<ports/%s/*.c>" % board["port"] not in " ".join(option("build_src_filter", []) or []):
        problems.append("build_src_filter does not build firmware/ports/%s" % board["port"])
    if problems:
        sys.stderr.write("tinyadapt: environment %s does not match boards/%s.toml:\n  %s\n"
                         % (env["PIOENV"], name, "\n  ".join(problems)))  # noqa: F821
        env.Exit(1)  # noqa: F821


tokens = flag_tokens()
check_against_board(tokens)

arch = [t for t in tokens if ARCH_FLAG.match(t)]
env.Replace(PROGNAME="tinyadapt")  # noqa: F821
env.Append(  # noqa: F821
    ASFLAGS=arch,
    CCFLAGS=[option("custom_opt", "-Os")],
    LINKFLAGS=arch + ["--specs=nano.specs", "--specs=nosys.specs", "-nostartfiles",
                      "-Wl,-Map=${BUILD_DIR}/tinyadapt.map", "-Wl,--print-memory-usage"],
)

KERNEL_OPT = option("custom_kernel_opt", "-O2")


def kernel_opt(env, node):
    # Appended after every other flag (platform defaults, custom_opt, build_flags), so it wins.
    return env.Object(node, CCFLAGS=env["CCFLAGS"] + [KERNEL_OPT])


env.AddBuildMiddleware(kernel_opt, "*firmware/kernels/*")  # noqa: F821  (not "*kernels/*": a checkout path may contain it)
