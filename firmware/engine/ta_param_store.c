/*
 * Two-slot atomic parameter store over a board NVM (see ta_param_store.h for
 * the layout and the commit rule).
 */
#include <stddef.h>
#include <string.h>

#include "tinyadapt/ta_model.h"
#include "tinyadapt/ta_param_store.h"

#define HDR TA_PARAM_STORE_HEADER_SIZE
#define CRC_OFFSET 28u
#define CHUNK 64u /* stack buffer for streaming CRCs over NVM reads */

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static int is_pow2(uint32_t v) { return v != 0 && (v & (v - 1u)) == 0; }

ta_status_t ta_param_store_init(ta_param_store_t *s, const ta_nvm_t *nvm, uint32_t offset, uint32_t size)
{
    TA_ENSURE(s != NULL && nvm != NULL, TA_ERR_ARG);
    memset(s, 0, sizeof(*s));
    TA_ENSURE(nvm->erase != NULL && nvm->program != NULL && nvm->read != NULL, TA_ERR_ARG);
    TA_ENSURE(is_pow2(nvm->page_size) && is_pow2(nvm->prog_unit) && nvm->prog_unit <= HDR, TA_ERR_ARG);
    TA_ENSURE(nvm->size % nvm->page_size == 0, TA_ERR_ARG);
    TA_ENSURE(offset % nvm->page_size == 0 && offset <= nvm->size && size <= nvm->size - offset, TA_ERR_ARG);
    const uint32_t slot = (size / 2u) & ~(nvm->page_size - 1u);
    TA_ENSURE(slot >= nvm->page_size && slot > HDR, TA_ERR_ARG);
    s->nvm = nvm;
    s->offset = offset;
    s->slot_size = slot;
    return TA_OK;
}

uint32_t ta_param_store_capacity(const ta_param_store_t *s)
{
    return s->nvm != NULL ? s->slot_size - HDR : 0u;
}

static uint32_t slot_base(const ta_param_store_t *s, uint8_t slot) { return s->offset + slot * s->slot_size; }

/* CRC of `len` NVM bytes at `at`, continuing from `crc`; copies them to dst when not NULL. */
static ta_status_t crc_nvm(const ta_nvm_t *nvm, uint32_t at, uint32_t len, uint32_t *crc, uint8_t *dst)
{
    uint8_t buf[CHUNK];
    while (len > 0) {
        const uint32_t n = len < CHUNK ? len : CHUNK;
        uint8_t *p = dst != NULL ? dst : buf;
        TA_TRY(nvm->read(nvm->ctx, at, p, n));
        *crc = ta_crc32(*crc, p, n);
        at += n;
        len -= n;
        if (dst != NULL) {
            dst += n;
        }
    }
    return TA_OK;
}

/* Header of `slot` if the slot holds a complete, CRC-valid record. */
static int slot_valid(const ta_param_store_t *s, uint8_t slot, ta_param_record_t *rec)
{
    uint8_t h[HDR];
    const uint32_t base = slot_base(s, slot);
    if (s->nvm->read(s->nvm->ctx, base, h, HDR) != TA_OK) {
        return 0;
    }
    const uint32_t len = rd32(h + 16);
    if (rd32(h) != TA_PARAM_STORE_MAGIC || (uint32_t)(h[4] | (h[5] << 8)) != TA_PARAM_STORE_VERSION ||
        len > s->slot_size - HDR) {
        return 0;
    }
    uint32_t crc = ta_crc32(0, h, CRC_OFFSET);
    if (crc_nvm(s->nvm, base + HDR, len, &crc, NULL) != TA_OK || crc != rd32(h + CRC_OFFSET)) {
        return 0;
    }
    rec->slot = slot;
    rec->tag = (uint16_t)(h[6] | (h[7] << 8));
    rec->revision = rd32(h + 8);
    rec->model_crc = rd32(h + 12);
    rec->len = len;
    return 1;
}

ta_status_t ta_param_store_find(const ta_param_store_t *s, ta_param_record_t *rec)
{
    TA_ENSURE(s != NULL && s->nvm != NULL && rec != NULL, TA_ERR_ARG);
    ta_param_record_t r[2];
    const int v0 = slot_valid(s, 0, &r[0]);
    const int v1 = slot_valid(s, 1, &r[1]);
    TA_ENSURE(v0 || v1, TA_ERR_STATE);
    /* Serial-number order, so the revision may wrap around 2^32. */
    const int pick1 = v1 && (!v0 || (int32_t)(r[1].revision - r[0].revision) > 0);
    *rec = r[pick1 ? 1 : 0];
    return TA_OK;
}

ta_status_t ta_param_store_load(const ta_param_store_t *s, uint16_t tag, uint32_t model_crc, uint8_t *dst,
                                uint32_t len, ta_param_record_t *rec)
{
    TA_ENSURE(s != NULL && rec != NULL && (dst != NULL || len == 0), TA_ERR_ARG);
    memset(rec, 0, sizeof(*rec));
    TA_TRY(ta_param_store_find(s, rec));
    TA_ENSURE(rec->len != 0 && rec->tag == tag && rec->model_crc == model_crc && rec->len == len, TA_ERR_STATE);
    /* Read and check in one pass: the CRC is over what landed in dst. */
    uint8_t h[HDR];
    const uint32_t base = slot_base(s, rec->slot);
    TA_TRY(s->nvm->read(s->nvm->ctx, base, h, HDR));
    uint32_t crc = ta_crc32(0, h, CRC_OFFSET);
    TA_TRY(crc_nvm(s->nvm, base + HDR, len, &crc, dst));
    TA_ENSURE(crc == rd32(h + CRC_OFFSET), TA_ERR_CRC);
    return TA_OK;
}

ta_status_t ta_param_store_save(ta_param_store_t *s, uint16_t tag, uint32_t model_crc, const uint8_t *data,
                                uint32_t len, ta_param_record_t *rec)
{
    TA_ENSURE(s != NULL && s->nvm != NULL && (data != NULL || len == 0), TA_ERR_ARG);
    TA_ENSURE(len <= ta_param_store_capacity(s), TA_ERR_OVERFLOW);
    const ta_nvm_t *nvm = s->nvm;
    ta_param_record_t cur;
    uint32_t revision = 1;
    uint8_t target = 0;
    if (ta_param_store_find(s, &cur) == TA_OK) {
        revision = cur.revision + 1u;
        target = (uint8_t)(1u - cur.slot); /* never touch the slot that holds the newest record */
    }
    const uint32_t base = slot_base(s, target);
    const uint32_t unit = nvm->prog_unit;

    /* 1. Erase the pages the record needs, the header's first: from here on the
     *    target slot is invalid until step 3 completes. */
    const uint32_t used = HDR + ((len + unit - 1u) & ~(unit - 1u));
    for (uint32_t at = 0; at < used; at += nvm->page_size) {
        TA_TRY(nvm->erase(nvm->ctx, base + at));
    }

    /* 2. The data, whole units straight from the caller, the tail padded with 0xFF. */
    const uint32_t whole = len & ~(unit - 1u);
    if (whole > 0) {
        TA_TRY(nvm->program(nvm->ctx, base + HDR, data, whole));
    }
    if (whole < len) {
        uint8_t tail[HDR];
        memset(tail, 0xFF, sizeof(tail));
        memcpy(tail, data + whole, len - whole);
        TA_TRY(nvm->program(nvm->ctx, base + HDR + whole, tail, unit));
    }

    /* 3. Commit: the header, last. */
    uint8_t h[HDR];
    memset(h, 0, sizeof(h));
    wr32(h, TA_PARAM_STORE_MAGIC);
    h[4] = (uint8_t)TA_PARAM_STORE_VERSION;
    h[5] = (uint8_t)(TA_PARAM_STORE_VERSION >> 8);
    h[6] = (uint8_t)tag;
    h[7] = (uint8_t)(tag >> 8);
    wr32(h + 8, revision);
    wr32(h + 12, model_crc);
    wr32(h + 16, len);
    uint32_t crc = ta_crc32(0, h, CRC_OFFSET);
    if (len > 0) {
        crc = ta_crc32(crc, data, len);
    }
    wr32(h + CRC_OFFSET, crc);
    TA_TRY(nvm->program(nvm->ctx, base, h, HDR));

    /* Read back: the flash must now hold exactly this record. */
    ta_param_record_t got;
    TA_TRY(ta_param_store_find(s, &got) == TA_OK ? TA_OK : TA_ERR_CRC);
    TA_ENSURE(got.slot == target && got.revision == revision, TA_ERR_CRC);
    if (rec != NULL) {
        *rec = got;
    }
    return TA_OK;
}
