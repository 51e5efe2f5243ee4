# Builder of the repo-local PlatformIO platform "tinyadapt-qemu-mps2" (see boards/README.md).
#
# QEMU's mps2 machines have no PlatformIO platform, so this one does what a framework-less
# Cortex-M platform (ststm32, nordicnrf52 without a framework) does: arm-none-eabi-gcc,
# -mthumb -mcpu=<board build.cpu>, the project's linker script, an ELF and a flat .bin.
# Everything tinyadapt-specific (flags, memory layout, per-file optimisation) comes from
# platformio.ini and boards/platformio/tinyadapt_build.py, exactly as for the real boards.
#
# Targets: the default builds firmware (tinyadapt.elf/.bin); `pio run -e qemu-an386 -t exec`
# boots the image in qemu-system-arm with UART0 on a TCP socket (as firmware/ports/README.md).

from os.path import join

from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()
cpu = board.get("build.cpu")

env.Replace(
    AR="arm-none-eabi-gcc-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-gcc-ranlib",
    SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    # What PlatformIO's size check counts as flash and as RAM (the tinyadapt arena and RAM
    # slot are NOLOAD sections of their own: the linker script already checks they fit).
    SIZEPROGREGEXP=r"^(?:\.text|\.data|\.rodata|\.ARM.exidx)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGSUFFIX=".elf",
)

# A pre: extra script may have named the program already.
if env.get("PROGNAME", "program") == "program":
    env.Replace(PROGNAME="firmware")

env.Append(
    ASFLAGS=["-x", "assembler-with-cpp", "-mthumb", "-mcpu=%s" % cpu],
    CCFLAGS=["-mthumb", "-mcpu=%s" % cpu],
    LINKFLAGS=["-mthumb", "-mcpu=%s" % cpu],
    LIBS=["m"],
    BUILDERS=dict(
        ElfToBin=Builder(
            action=env.VerboseAction("$OBJCOPY -O binary $SOURCES $TARGET", "Building $TARGET"),
            suffix=".bin",
        )
    ),
)

target_elf = env.BuildProgram()
target_bin = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), target_elf)
env.Alias("buildprog", target_bin, target_bin)

AlwaysBuild(env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")))

# `-t exec`: run the image on the QEMU machine this board names (build.mcu), the link on
# custom_qemu_serial (default: TCP port 5555, waiting for the host to connect).
serial = env.GetProjectOption("custom_qemu_serial", "tcp:127.0.0.1:5555,server=on,wait=on,nodelay=on")
qemu = " ".join([
    "qemu-system-arm", "-M", board.get("build.mcu"), "-kernel", "$SOURCE",
    "-serial", serial, "-icount", "shift=7", "-semihosting-config", "enable=on,target=native",
    "-display", "none", "-monitor", "none",
])
AlwaysBuild(env.Alias("exec", target_elf, env.VerboseAction(qemu, "Running $SOURCE in QEMU")))

Default([target_bin])
