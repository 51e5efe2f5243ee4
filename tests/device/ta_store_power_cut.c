/*
 * Power-cut target for QEMU: the parameter store (firmware/engine/ta_param_store.c)
 * over the mps2 port's file-backed NVM (firmware/ports/qemu_mps2/ta_qemu_nvm.c),
 * killed for real by the host (tests/device/test_power_cut.py, scripts/power_cut.py).
 *
 * At boot it loads the newest record and checks it is exactly image(revision),
 * then prints over semihosting
 *     TA_STORE BOOT <revision> <len> <crc> OK        (or "TA_STORE BOOT EMPTY")
 *     TA_STORE BOOT <revision> ... MIX               (never expected)
 * With "loop" on the semihosting command line it then saves image(r + 1),
 * image(r + 2), ... forever, printing "TA_STORE SAVING <r>" before each save,
 * until the host kills QEMU (SIGKILL) somewhere in the middle.
 *
 * image(r): length 4096 + (r * 977) % 8192 bytes (1 to 4 NVM pages), bytes from
 * xorshift32 seeded with r; the host recomputes it to check the file itself.
 */
#include <stdint.h>
#include <string.h>

#include "ta_qemu_nvm.h"
#include "tinyadapt/ta_model.h"
#include "tinyadapt/ta_param_store.h"

#define MODEL_CRC 0x5EED5EEDu
#define MAX_IMAGE (4096u + 8192u)

static int32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

static void say(const char *s) { (void)semihost(0x04u, s); } /* SYS_WRITE0 */

static void finish(uint32_t code)
{
    const uint32_t args[2] = {0x20026u, code}; /* SYS_EXIT_EXTENDED, ADP_Stopped_ApplicationExit */
    (void)semihost(0x20u, args);
    for (;;) {
    }
}

void _init(void);
void _fini(void);
void _init(void) {}
void _fini(void) {}

static char *put_u32(char *p, uint32_t v)
{
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}

static uint32_t image(uint32_t r, uint8_t *out)
{
    const uint32_t len = 4096u + (r * 977u) % 8192u;
    uint32_t x = r * 2654435761u + 1u;
    for (uint32_t i = 0; i < len; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[i] = (uint8_t)x;
    }
    return len;
}

static uint8_t g_want[MAX_IMAGE], g_got[MAX_IMAGE];

static int cmdline_has(const char *word)
{
    static char buf[512];
    uint32_t args[2] = {(uint32_t)(uintptr_t)buf, sizeof(buf) - 1u};
    if (semihost(0x15u, args) != 0) { /* SYS_GET_CMDLINE */
        return 0;
    }
    buf[args[1] < sizeof(buf) ? args[1] : sizeof(buf) - 1u] = '\0';
    const size_t n = strlen(word);
    for (const char *p = buf; (p = strstr(p, word)) != NULL; p += n) {
        if ((p == buf || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ')) {
            return 1;
        }
    }
    return 0;
}

int main(void)
{
    const ta_nvm_t *nvm = ta_qemu_nvm_init();
    ta_param_store_t store;
    if (nvm == NULL || ta_param_store_init(&store, nvm, 0, nvm->size / 2u) != TA_OK) {
        say("TA_STORE NO NVM\n");
        finish(2);
    }
    char line[96];
    char *p = line;
    ta_param_record_t rec;
    uint32_t revision = 0;
    if (ta_param_store_find(&store, &rec) != TA_OK) {
        say("TA_STORE BOOT EMPTY\n");
    } else {
        revision = rec.revision;
        const uint32_t len = image(revision, g_want);
        const ta_status_t st = ta_param_store_load(&store, TA_PARAM_TAG_TRAIN, MODEL_CRC, g_got, len, &rec);
        const int same = st == TA_OK && memcmp(g_got, g_want, len) == 0;
        memcpy(p, "TA_STORE BOOT ", 14);
        p = put_u32(p + 14, revision);
        *p++ = ' ';
        p = put_u32(p, rec.len);
        *p++ = ' ';
        p = put_u32(p, ta_crc32(0, g_got, rec.len <= MAX_IMAGE ? rec.len : 0));
        memcpy(p, same ? " OK\n" : " MIX\n", same ? 5 : 6);
        say(line);
        if (!same) {
            finish(3);
        }
    }
    if (!cmdline_has("loop")) {
        finish(0);
    }
    for (;;) {
        ++revision;
        const uint32_t len = image(revision, g_want);
        p = line;
        memcpy(p, "TA_STORE SAVING ", 16);
        p = put_u32(p + 16, revision);
        memcpy(p, "\n", 2);
        say(line);
        if (ta_param_store_save(&store, TA_PARAM_TAG_TRAIN, MODEL_CRC, g_want, len, &rec) != TA_OK) {
            say("TA_STORE SAVE FAILED\n");
            finish(4);
        }
    }
}
