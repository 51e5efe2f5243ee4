/*
 * File-backed NVM for the QEMU mps2 boards (see ta_qemu_nvm.h).
 * Semihosting calls: Arm "Semihosting for AArch32 and AArch64", section 6.
 */
#include "ta_qemu_nvm.h"

#include <stddef.h>
#include <string.h>

#ifndef TA_NVM_PAGE_SIZE
#define TA_NVM_PAGE_SIZE 4096u
#endif
#ifndef TA_NVM_PROG_UNIT
#define TA_NVM_PROG_UNIT 4u
#endif

extern uint8_t __nvm_origin[], __nvm_size[]; /* linker symbols: an address and a size */

#define SYS_OPEN 0x01u
#define SYS_WRITE 0x05u
#define SYS_READ 0x06u
#define SYS_SEEK 0x0Au
#define SYS_FLEN 0x0Cu
#define SYS_GET_CMDLINE 0x15u
#define OPEN_MODE_RPLUS_B 3u /* "r+b": read and write, no truncation */

static int32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

typedef struct {
    uint8_t *mem;
    int32_t handle;
} qemu_nvm_t;

static qemu_nvm_t g_qnvm;
static ta_nvm_t g_nvm;

/* Write region bytes [off, off + len) through to the file, one row per call. */
static ta_status_t write_through(qemu_nvm_t *q, uint32_t off, uint32_t len)
{
    while (len > 0) {
        const uint32_t n = len < TA_QEMU_NVM_ROW ? len : TA_QEMU_NVM_ROW;
        const uint32_t seek[2] = {(uint32_t)q->handle, off};
        const uint32_t wr[3] = {(uint32_t)q->handle, (uint32_t)(uintptr_t)(q->mem + off), n};
        TA_ENSURE(semihost(SYS_SEEK, seek) == 0, TA_ERR_STATE);
        TA_ENSURE(semihost(SYS_WRITE, wr) == 0, TA_ERR_STATE); /* returns the bytes NOT written */
        off += n;
        len -= n;
    }
    return TA_OK;
}

static ta_status_t nvm_erase(void *ctx, uint32_t off)
{
    qemu_nvm_t *q = (qemu_nvm_t *)ctx;
    TA_ENSURE(off % TA_NVM_PAGE_SIZE == 0 && off < g_nvm.size, TA_ERR_ARG);
    memset(q->mem + off, 0xFF, TA_NVM_PAGE_SIZE);
    /* One call for the page: a cut leaves it erased or not (QEMU writes it in one go). */
    const uint32_t seek[2] = {(uint32_t)q->handle, off};
    const uint32_t wr[3] = {(uint32_t)q->handle, (uint32_t)(uintptr_t)(q->mem + off), TA_NVM_PAGE_SIZE};
    TA_ENSURE(semihost(SYS_SEEK, seek) == 0 && semihost(SYS_WRITE, wr) == 0, TA_ERR_STATE);
    return TA_OK;
}

static ta_status_t nvm_program(void *ctx, uint32_t off, const uint8_t *data, uint32_t len)
{
    qemu_nvm_t *q = (qemu_nvm_t *)ctx;
    TA_ENSURE(off % TA_NVM_PROG_UNIT == 0 && len % TA_NVM_PROG_UNIT == 0, TA_ERR_ARG);
    TA_ENSURE(off <= g_nvm.size && len <= g_nvm.size - off, TA_ERR_ARG);
    /* Flash programming only clears bits: AND, so a store that programs a unit
     * twice without an erase gets what real flash would give it. */
    for (uint32_t i = 0; i < len; ++i) {
        q->mem[off + i] &= data[i];
    }
    return write_through(q, off, len);
}

static ta_status_t nvm_read(void *ctx, uint32_t off, uint8_t *data, uint32_t len)
{
    qemu_nvm_t *q = (qemu_nvm_t *)ctx;
    TA_ENSURE(off <= g_nvm.size && len <= g_nvm.size - off, TA_ERR_ARG);
    memcpy(data, q->mem + off, len);
    return TA_OK;
}

/* The PATH of the first "nvm=PATH" word of the semihosting command line, in buf. */
static const char *nvm_path(char *buf, uint32_t cap)
{
    uint32_t args[2] = {(uint32_t)(uintptr_t)buf, cap - 1u};
    if (semihost(SYS_GET_CMDLINE, args) != 0) {
        return NULL;
    }
    buf[args[1] < cap ? args[1] : cap - 1u] = '\0';
    for (char *p = buf; *p != '\0';) {
        while (*p == ' ') {
            ++p;
        }
        char *end = p;
        while (*end != '\0' && *end != ' ') {
            ++end;
        }
        if (end - p > 4 && strncmp(p, "nvm=", 4) == 0) {
            *end = '\0';
            return p + 4;
        }
        p = end;
    }
    return NULL;
}

const ta_nvm_t *ta_qemu_nvm_init(void)
{
    const uint32_t size = (uint32_t)(uintptr_t)__nvm_size;
    if (size == 0 || size % TA_NVM_PAGE_SIZE != 0) {
        return NULL;
    }
    static char cmdline[512];
    const char *path = nvm_path(cmdline, sizeof(cmdline));
    if (path == NULL) {
        return NULL;
    }
    const uint32_t open_args[3] = {(uint32_t)(uintptr_t)path, OPEN_MODE_RPLUS_B, (uint32_t)strlen(path)};
    const int32_t h = semihost(SYS_OPEN, open_args);
    if (h < 0) {
        return NULL;
    }
    const uint32_t flen_args[1] = {(uint32_t)h};
    const uint32_t rd[3] = {(uint32_t)h, (uint32_t)(uintptr_t)__nvm_origin, size};
    if (semihost(SYS_FLEN, flen_args) != (int32_t)size || semihost(SYS_READ, rd) != 0) {
        return NULL; /* the host makes the file the region's size, 0xFF-filled when new */
    }
    g_qnvm.mem = __nvm_origin;
    g_qnvm.handle = h;
    g_nvm = (ta_nvm_t){&g_qnvm, (uintptr_t)__nvm_origin, size, TA_NVM_PAGE_SIZE, TA_NVM_PROG_UNIT,
                       nvm_erase, nvm_program, nvm_read};
    return &g_nvm;
}
