/*
 * POSIX port: the device app as a native process, for fast host tests of the
 * protocol and the app without an emulator.
 *
 *   ta_posix [--pty] [--fd N] [--stdio] [--ram-slot FILE] [--ram-slot-size BYTES] [--nvm FILE]
 *
 *   --pty (default)  open a pseudo-terminal, print "TA_PTY <path>" on stdout
 *                    and serve on it; the host opens <path> like a serial port
 *   --fd N           serve on an inherited file descriptor (socketpair, pipe)
 *   --stdio          read stdin, write stdout; exits at end of input
 *   --ram-slot FILE  place a model blob in slot 1 before serving (what QEMU's
 *                    -device loader does for the emulated boards)
 *   --ram-slot-size BYTES  a smaller RAM slot (0: none), standing in for a board
 *                    whose slot a model does not fit
 *   --nvm FILE       NVM region (saved parameters) backed by FILE, created
 *                    erased (0xFF) when missing; written through with pwrite
 *                    row by row like the QEMU port, so a killed process
 *                    leaves what a power cut leaves
 *
 * The counter is CLOCK_MONOTONIC in nanoseconds (wall time, not instructions).
 * RESET re-initialises the app in place. Exit status: 0, or 1 when the link
 * closes or a setup step fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tinyadapt/ta_app.h"

#ifndef TA_POSIX_ARENA_SIZE
#define TA_POSIX_ARENA_SIZE (8u << 20)
#endif
#ifndef TA_POSIX_RAM_SLOT_SIZE
#define TA_POSIX_RAM_SLOT_SIZE (8u << 20)
#endif
#ifndef TA_POSIX_FRAME_SIZE
#define TA_POSIX_FRAME_SIZE (1u << 20)
#endif

static uint8_t g_arena[TA_POSIX_ARENA_SIZE] __attribute__((aligned(16)));
static uint8_t g_ram_slot[TA_POSIX_RAM_SLOT_SIZE] __attribute__((aligned(16)));
static uint8_t g_frame[TA_POSIX_FRAME_SIZE] __attribute__((aligned(16)));

/* ---- file-backed NVM ------------------------------------------------------------------ */

#define NVM_SIZE (1u << 20)
#define NVM_PAGE 4096u
#define NVM_UNIT 4u
#define NVM_ROW 256u

static uint8_t g_nvm_mem[NVM_SIZE];
static int g_nvm_fd = -1;

static ta_status_t nvm_write_through(uint32_t off, uint32_t len)
{
    while (len > 0) {
        const uint32_t n = len < NVM_ROW ? len : NVM_ROW;
        if (pwrite(g_nvm_fd, g_nvm_mem + off, n, (off_t)off) != (ssize_t)n) {
            return TA_ERR_STATE;
        }
        off += n;
        len -= n;
    }
    return TA_OK;
}

static ta_status_t nvm_erase(void *ctx, uint32_t off)
{
    (void)ctx;
    if (off % NVM_PAGE != 0 || off >= NVM_SIZE) {
        return TA_ERR_ARG;
    }
    memset(g_nvm_mem + off, 0xFF, NVM_PAGE);
    return pwrite(g_nvm_fd, g_nvm_mem + off, NVM_PAGE, (off_t)off) == (ssize_t)NVM_PAGE ? TA_OK : TA_ERR_STATE;
}

static ta_status_t nvm_program(void *ctx, uint32_t off, const uint8_t *data, uint32_t len)
{
    (void)ctx;
    if (off % NVM_UNIT != 0 || len % NVM_UNIT != 0 || off > NVM_SIZE || len > NVM_SIZE - off) {
        return TA_ERR_ARG;
    }
    for (uint32_t i = 0; i < len; ++i) {
        g_nvm_mem[off + i] &= data[i]; /* flash programming only clears bits */
    }
    return nvm_write_through(off, len);
}

static ta_status_t nvm_read(void *ctx, uint32_t off, uint8_t *data, uint32_t len)
{
    (void)ctx;
    if (off > NVM_SIZE || len > NVM_SIZE - off) {
        return TA_ERR_ARG;
    }
    memcpy(data, g_nvm_mem + off, len);
    return TA_OK;
}

static const ta_nvm_t g_nvm = {NULL, 0, NVM_SIZE, NVM_PAGE, NVM_UNIT, nvm_erase, nvm_program, nvm_read};

static int open_nvm(const char *path)
{
    g_nvm_fd = open(path, O_RDWR | O_CREAT, 0644);
    if (g_nvm_fd < 0) {
        fprintf(stderr, "ta_posix: %s: %s\n", path, strerror(errno));
        return -1;
    }
    const off_t size = lseek(g_nvm_fd, 0, SEEK_END);
    if (size == 0) {
        memset(g_nvm_mem, 0xFF, sizeof(g_nvm_mem));
        return nvm_write_through(0, NVM_SIZE) == TA_OK ? 0 : -1;
    }
    if (size != (off_t)NVM_SIZE || pread(g_nvm_fd, g_nvm_mem, NVM_SIZE, 0) != (ssize_t)NVM_SIZE) {
        fprintf(stderr, "ta_posix: %s is not a %u-byte NVM image\n", path, NVM_SIZE);
        return -1;
    }
    return 0;
}

typedef struct {
    int rfd;
    int wfd;
} posix_link_t;

static int32_t link_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms)
{
    posix_link_t *link = (posix_link_t *)ctx;
    struct pollfd p = {link->rfd, POLLIN, 0};
    const int wait = timeout_ms == TA_HAL_WAIT_FOREVER ? -1 : (timeout_ms > 0x7FFFFFFFu ? 0x7FFFFFFF : (int)timeout_ms);
    for (;;) {
        const int r = poll(&p, 1, wait);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return TA_ERR_STATE;
        }
        if (r == 0) {
            return 0;
        }
        const ssize_t n = read(link->rfd, buf, cap);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        return n > 0 ? (int32_t)n : TA_ERR_STATE; /* 0: end of stream; EIO: pty closed */
    }
}

static ta_status_t link_write(void *ctx, const uint8_t *buf, uint32_t len)
{
    posix_link_t *link = (posix_link_t *)ctx;
    while (len > 0) {
        const ssize_t n = write(link->wfd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return TA_ERR_STATE;
        }
        buf += n;
        len -= (uint32_t)n;
    }
    return TA_OK;
}

static uint32_t clock_ns(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

/* Open a pty in raw mode; keep our own handle on the slave so the master never sees EOF. */
static int open_pty(char *path, size_t path_cap)
{
    const int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        return -1;
    }
    const char *name = ptsname(master);
    if (name == NULL || strlen(name) >= path_cap) {
        return -1;
    }
    strcpy(path, name);
    const int slave = open(path, O_RDWR | O_NOCTTY);
    if (slave < 0) {
        return -1;
    }
    struct termios tio;
    if (tcgetattr(slave, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(slave, TCSANOW, &tio);
    }
    return master; /* `slave` stays open for the life of the process */
}

static uint32_t g_ram_slot_size = TA_POSIX_RAM_SLOT_SIZE;

static int load_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "ta_posix: %s: %s\n", path, strerror(errno));
        return -1;
    }
    const size_t n = fread(g_ram_slot, 1, g_ram_slot_size, f);
    const int too_big = fgetc(f) != EOF;
    fclose(f);
    if (too_big) {
        fprintf(stderr, "ta_posix: %s is larger than the %u-byte RAM slot\n", path, (unsigned)g_ram_slot_size);
        return -1;
    }
    (void)n;
    return 0;
}

int main(int argc, char **argv)
{
    static posix_link_t link = {-1, -1};
    const char *slot_file = NULL;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
            link.rfd = link.wfd = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--stdio") == 0) {
            link.rfd = STDIN_FILENO;
            link.wfd = STDOUT_FILENO;
        } else if (strcmp(argv[i], "--pty") == 0) {
            link.rfd = link.wfd = -1;
        } else if (strcmp(argv[i], "--ram-slot") == 0 && i + 1 < argc) {
            slot_file = argv[++i];
        } else if (strcmp(argv[i], "--ram-slot-size") == 0 && i + 1 < argc) {
            char *end = NULL;
            const unsigned long n = strtoul(argv[++i], &end, 0);
            if (end == argv[i] || *end != '\0' || n > TA_POSIX_RAM_SLOT_SIZE) {
                fprintf(stderr, "ta_posix: --ram-slot-size takes 0 .. %u bytes\n", TA_POSIX_RAM_SLOT_SIZE);
                return 2;
            }
            g_ram_slot_size = (uint32_t)n;
        } else if (strcmp(argv[i], "--nvm") == 0 && i + 1 < argc) {
            if (open_nvm(argv[++i]) != 0) {
                return 1;
            }
        } else {
            fprintf(stderr, "usage: %s [--pty | --fd N | --stdio] [--ram-slot FILE] [--ram-slot-size BYTES] [--nvm FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    if (slot_file != NULL && load_file(slot_file) != 0) {
        return 1;
    }
    if (link.rfd < 0) {
        char path[256];
        const int master = open_pty(path, sizeof(path));
        if (master < 0) {
            fprintf(stderr, "ta_posix: cannot open a pty: %s\n", strerror(errno));
            return 1;
        }
        link.rfd = link.wfd = master;
        printf("TA_PTY %s\n", path);
        fflush(stdout);
    }

    static ta_hal_t hal = {
        .ctx = &link,
        .read = link_read,
        .write = link_write,
        .flush = NULL,
        .counter = clock_ns,
        .counter_mul = 1,
        .counter_div = 1,
        .counter_hz = 1000000000u,
        .counter_unit = TA_HAL_COUNT_NANOSECONDS,
        .reset = NULL,
        .board_name = "posix",
        .core_name = "host",
        .stack_lo = 0,
        .stack_hi = 0,
    };
    hal.nvm = g_nvm_fd >= 0 ? &g_nvm : NULL;
    const ta_app_config_t cfg = {g_arena, sizeof(g_arena), g_ram_slot_size > 0 ? g_ram_slot : NULL, g_ram_slot_size,
                                 g_frame, sizeof(g_frame)};
    const ta_status_t st = ta_app_main(&hal, &cfg);
    fprintf(stderr, "ta_posix: link closed (%s)\n", ta_status_name(st));
    return 1;
}
