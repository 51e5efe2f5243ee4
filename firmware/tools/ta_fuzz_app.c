/*
 * libFuzzer target for the whole device app: the fuzz input is the byte stream
 * the host would send (frames, noise, model blobs inside LOAD_CHUNKs). The app
 * runs over an in-memory HAL until the input is used up; every byte it sends
 * back must split into well-formed response or NAK frames. Built with ASan and
 * UBSan by `make -C firmware/ports fuzz`; any crash, sanitizer report or
 * malformed reply aborts.
 *
 * The arena, the RAM slot, the frame memory (where the app binds a model's external
 * inputs) and the NVM region (where SAVE / ADAPT_SAVE keep parameters) are heap blocks of
 * exactly the sizes the app is told, so ASan sees an access one byte past any of them; the
 * NVM starts erased on every run, so a run does not depend on the ones before it; the loader and engine on exact-size blobs and arenas are fuzzed by
 * ta_fuzz_blob.c. Only this harness allocates; the app and the engine stay heap-free.
 */
#define _POSIX_C_SOURCE 200112L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ta_cobs.h"
#include "ta_frame.h"
#include "tinyadapt/ta_app.h"

/* Room for the seeds' models (a few KiB each); small, because the app repaints the whole
 * arena on every start-up and SELECT, i.e. several times per run. */
#define ARENA_SIZE (16u * 1024u)
#define SLOT_SIZE (16u * 1024u)
#define FRAME_SIZE (4u * 1024u)
#define NVM_PAGE_SIZE 1024u
#define NVM_SIZE (16u * NVM_PAGE_SIZE) /* two stores (training, TTA) of two slots each */
#define NVM_PROG_UNIT 4u

static uint8_t *g_arena, *g_slot, *g_frame, *g_nvm;
static int g_trace; /* TA_FUZZ_TRACE set: one line per reply on stderr, so a test can check
                       that the seeds reach the commands they are meant to exercise */

static uint8_t *exact_block(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, 16, size) != 0) {
        fprintf(stderr, "ta_fuzz_app: out of memory\n");
        abort();
    }
    return (uint8_t *)p;
}

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    uint8_t out[4096]; /* one outgoing frame being collected */
    size_t out_len;
} fuzz_link_t;

static int32_t fuzz_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms)
{
    fuzz_link_t *l = (fuzz_link_t *)ctx;
    (void)timeout_ms;
    if (l->pos >= l->size) {
        return TA_ERR_STATE; /* end of input: the link is closed, ta_app_main returns */
    }
    size_t n = l->size - l->pos;
    n = n < cap ? n : cap;
    n = n < 13 ? n : 13; /* odd-sized reads: frames straddle read boundaries */
    memcpy(buf, l->data + l->pos, n);
    l->pos += n;
    return (int32_t)n;
}

static void check_frame(const uint8_t *wire, size_t len)
{
    uint8_t raw[4096];
    const int32_t n = ta_cobs_decode(wire, (uint32_t)len, raw, sizeof(raw));
    ta_frame_t f;
    if (n < 0 || ta_frame_parse(raw, (uint32_t)n, 1024, &f) != TA_OK ||
        (f.type != TA_FRAME_RESPONSE && f.type != TA_FRAME_NAK) || (f.status != 0 && f.len != 0)) {
        fprintf(stderr, "ta_fuzz_app: the device sent a malformed frame (%zu bytes)\n", len);
        abort();
    }
    if (g_trace) {
        fprintf(stderr, "reply cmd=0x%02x seq=%u status=%d\n", f.cmd, f.seq, f.status);
    }
}

static ta_status_t fuzz_write(void *ctx, const uint8_t *buf, uint32_t len)
{
    fuzz_link_t *l = (fuzz_link_t *)ctx;
    for (uint32_t i = 0; i < len; ++i) {
        if (buf[i] == 0) {
            check_frame(l->out, l->out_len);
            l->out_len = 0;
        } else if (l->out_len < sizeof(l->out)) {
            l->out[l->out_len++] = buf[i];
        } else {
            fprintf(stderr, "ta_fuzz_app: the device sent an overlong frame\n");
            abort();
        }
    }
    return TA_OK;
}

/* Flash rules as the boards have them: erase a page to 0xFF; programming only clears bits. */
static ta_status_t nvm_erase(void *ctx, uint32_t off)
{
    (void)ctx;
    if (off % NVM_PAGE_SIZE != 0 || off >= NVM_SIZE) {
        return TA_ERR_ARG;
    }
    memset(g_nvm + off, 0xFF, NVM_PAGE_SIZE);
    return TA_OK;
}

static ta_status_t nvm_program(void *ctx, uint32_t off, const uint8_t *data, uint32_t len)
{
    (void)ctx;
    if (off % NVM_PROG_UNIT != 0 || len % NVM_PROG_UNIT != 0 || off > NVM_SIZE || len > NVM_SIZE - off) {
        return TA_ERR_ARG;
    }
    for (uint32_t i = 0; i < len; ++i) {
        g_nvm[off + i] &= data[i];
    }
    return TA_OK;
}

static ta_status_t nvm_read(void *ctx, uint32_t off, uint8_t *data, uint32_t len)
{
    (void)ctx;
    if (off > NVM_SIZE || len > NVM_SIZE - off) {
        return TA_ERR_ARG;
    }
    memcpy(data, g_nvm + off, len);
    return TA_OK;
}

static const ta_nvm_t g_nvm_hal = {
    .size = NVM_SIZE,
    .page_size = NVM_PAGE_SIZE,
    .prog_unit = NVM_PROG_UNIT,
    .erase = nvm_erase,
    .program = nvm_program,
    .read = nvm_read,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_link_t link;
    if (g_arena == NULL) { /* once: the fuzzer's leak check must not see per-run blocks */
        g_arena = exact_block(ARENA_SIZE);
        g_slot = exact_block(SLOT_SIZE);
        g_frame = exact_block(FRAME_SIZE);
        g_nvm = exact_block(NVM_SIZE);
        g_trace = getenv("TA_FUZZ_TRACE") != NULL;
    }
    memset(g_nvm, 0xFF, NVM_SIZE);
    memset(&link, 0, sizeof(link));
    link.data = data;
    link.size = size;
    const ta_hal_t hal = {
        .ctx = &link,
        .read = fuzz_read,
        .write = fuzz_write,
        .board_name = "fuzz",
        .core_name = "host",
        .nvm = &g_nvm_hal,
    };
    const ta_app_config_t cfg = {g_arena, ARENA_SIZE, g_slot, SLOT_SIZE, g_frame, FRAME_SIZE};
    if (ta_app_main(&hal, &cfg) != TA_ERR_STATE || link.out_len != 0) {
        fprintf(stderr, "ta_fuzz_app: the app stopped for another reason than the end of input\n");
        abort();
    }
    return 0;
}
