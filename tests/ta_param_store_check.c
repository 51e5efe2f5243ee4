/*
 * Power-cut check of the parameter store (firmware/engine/ta_param_store.c) on a
 * simulated flash: every save is cut at EVERY byte it erases or programs (the
 * byte at the cut half-done: a torn erase leaves the page part old, part erased,
 * or all garbage; a torn program leaves the unit partly programmed), then the
 * store "reboots" on what is left and must find exactly the old image or the
 * new one, with its revision, never a mix; a full save after the cut must then
 * succeed and win. The simulated flash enforces the flash rules (erase a page to
 * 0xFF; program only erased, aligned units, each once), so a store that breaks
 * them fails here.
 *
 * Built and run by tests/test_param_store.py:  ta_param_store_check [seed]
 * Prints "TA_PARAM_STORE_CHECK OK <cuts>" or the first failure (exit 1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyadapt/ta_model.h"
#include "tinyadapt/ta_param_store.h"

#define MAX_NVM 8192u

typedef struct {
    uint8_t mem[MAX_NVM];
    uint32_t size, page, unit;
    long budget;  /* byte events left before the power cut; < 0: no cut */
    int garbage;  /* a torn erase fills the page with garbage instead of part-erasing it */
    int cut;      /* the cut happened */
    long events;  /* byte events so far (sizing the tear loop) */
} sim_t;

static unsigned g_rng = 1;
static unsigned rnd(void)
{
    g_rng = g_rng * 1103515245u + 12345u;
    return (g_rng >> 16) & 0x7FFFu;
}

static void fail(const char *what, long a, long b)
{
    printf("FAIL: %s (%ld, %ld)\n", what, a, b);
    exit(1);
}

/* One byte event: 1 if it may happen, 0 if the power is (now) gone. */
static int tick(sim_t *m)
{
    m->events++;
    if (m->cut) {
        return 0;
    }
    if (m->budget == 0) {
        m->cut = 1;
        return 0;
    }
    if (m->budget > 0) {
        m->budget--;
    }
    return 1;
}

static ta_status_t sim_erase(void *ctx, uint32_t off)
{
    sim_t *m = (sim_t *)ctx;
    if (off % m->page != 0 || off >= m->size) {
        fail("erase of an unaligned or outside page", (long)off, (long)m->page);
    }
    for (uint32_t i = 0; i < m->page; ++i) {
        if (!tick(m)) {
            if (m->garbage) {
                for (uint32_t j = 0; j < m->page; ++j) {
                    m->mem[off + j] = (uint8_t)rnd();
                }
            } else {
                m->mem[off + i] = (uint8_t)(m->mem[off + i] | rnd()); /* half-erased byte */
            }
            return TA_ERR_STATE;
        }
        m->mem[off + i] = 0xFF;
    }
    return TA_OK;
}

static ta_status_t sim_program(void *ctx, uint32_t off, const uint8_t *data, uint32_t len)
{
    sim_t *m = (sim_t *)ctx;
    if (off % m->unit != 0 || len % m->unit != 0 || off > m->size || len > m->size - off) {
        fail("program of an unaligned or outside range", (long)off, (long)len);
    }
    for (uint32_t i = 0; i < len; ++i) {
        if (m->mem[off + i] != 0xFF) {
            fail("program of a byte not erased", (long)(off + i), m->mem[off + i]);
        }
    }
    for (uint32_t i = 0; i < len; ++i) {
        if (!tick(m)) {
            m->mem[off + i] = (uint8_t)(data[i] | rnd()); /* some bits cleared, not all */
            return TA_ERR_STATE;
        }
        m->mem[off + i] = data[i];
    }
    return TA_OK;
}

static ta_status_t sim_read(void *ctx, uint32_t off, uint8_t *data, uint32_t len)
{
    sim_t *m = (sim_t *)ctx;
    if (off > m->size || len > m->size - off) {
        fail("read outside the region", (long)off, (long)len);
    }
    memcpy(data, m->mem + off, len);
    return TA_OK;
}

static sim_t g_sim;
static ta_nvm_t g_nvm;

static void sim_reset(uint32_t size, uint32_t page, uint32_t unit)
{
    memset(&g_sim, 0, sizeof(g_sim));
    memset(g_sim.mem, 0xFF, sizeof(g_sim.mem));
    g_sim.size = size;
    g_sim.page = page;
    g_sim.unit = unit;
    g_sim.budget = -1;
    g_nvm = (ta_nvm_t){&g_sim, 0, size, page, unit, sim_erase, sim_program, sim_read};
}

#define MODEL_CRC 0xC0FFEE11u
#define MAX_LEN 4096u

typedef struct {
    uint8_t data[MAX_LEN];
    uint32_t len;
    uint32_t revision;
} image_t;

static void make_image(image_t *im, uint32_t len, uint32_t revision)
{
    im->len = len;
    im->revision = revision;
    for (uint32_t i = 0; i < len; ++i) {
        im->data[i] = (uint8_t)rnd();
    }
}

static ta_param_store_t open_store(void)
{
    ta_param_store_t s;
    if (ta_param_store_init(&s, &g_nvm, 0, g_sim.size) != TA_OK) {
        fail("init", 0, 0);
    }
    return s;
}

/* After a reboot: 1 if the store holds exactly `a`, 2 if exactly `b`, 0 if empty; fails on anything else. */
static int booted_with(const image_t *a, const image_t *b)
{
    g_sim.budget = -1;
    g_sim.cut = 0;
    ta_param_store_t s = open_store();
    ta_param_record_t rec;
    static uint8_t got[MAX_LEN];
    const ta_status_t found = ta_param_store_find(&s, &rec);
    if (found == TA_ERR_STATE) {
        return 0;
    }
    if (found != TA_OK) {
        fail("find", found, 0);
    }
    const image_t *want = rec.revision == (a ? a->revision : 0) && a ? a : (b && rec.revision == b->revision ? b : NULL);
    if (want == NULL) {
        fail("booted with an unexpected revision", (long)rec.revision, a ? (long)a->revision : -1);
    }
    if (rec.len != want->len || rec.tag != TA_PARAM_TAG_TRAIN || rec.model_crc != MODEL_CRC) {
        fail("record header differs from the image saved", (long)rec.len, (long)want->len);
    }
    if (want->len == 0) {
        return want == a ? 1 : 2;
    }
    memset(got, 0x5A, sizeof(got));
    const ta_status_t st = ta_param_store_load(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, got, want->len, &rec);
    if (st != TA_OK) {
        fail("load", st, 0);
    }
    if (memcmp(got, want->data, want->len) != 0) {
        fail("loaded bytes are a mix", (long)want->revision, (long)want->len);
    }
    return want == a ? 1 : 2;
}

static void save_ok(const image_t *im)
{
    g_sim.budget = -1;
    g_sim.cut = 0;
    ta_param_store_t s = open_store();
    ta_param_record_t rec;
    const ta_status_t st = ta_param_store_save(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, im->data, im->len, &rec);
    if (st != TA_OK || rec.revision != im->revision || rec.len != im->len) {
        fail("full save", st, (long)rec.revision);
    }
}

/* Events one save of `im` takes from the current state (measured on a copy). */
static long save_events(const image_t *im)
{
    static uint8_t keep[MAX_NVM];
    memcpy(keep, g_sim.mem, g_sim.size);
    g_sim.events = 0;
    save_ok(im);
    const long n = g_sim.events;
    memcpy(g_sim.mem, keep, g_sim.size);
    return n;
}

static long g_cuts;

/* From the state in the simulated flash (whose newest image is `old`, or none),
 * cut a save of `next` at every byte event; each time reboot, check, then save
 * `after` fully and check it wins. */
static void cut_everywhere(const image_t *old, const image_t *next, image_t *after)
{
    static uint8_t state[MAX_NVM];
    memcpy(state, g_sim.mem, g_sim.size);
    const long total = save_events(next);
    int saw_old = 0, saw_new = 0;
    for (int garbage = 0; garbage < 2; ++garbage) {
        for (long k = 0; k <= total; ++k) {
            memcpy(g_sim.mem, state, g_sim.size);
            g_sim.budget = k;
            g_sim.cut = 0;
            g_sim.garbage = garbage;
            ta_param_store_t s = open_store();
            ta_param_record_t rec;
            const ta_status_t st = ta_param_store_save(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, next->data, next->len, &rec);
            if ((st == TA_OK) != (k == total)) {
                fail("save status does not match the cut", st, k);
            }
            g_cuts++;
            const int got = booted_with(old, next);
            if (got == 0 && old != NULL) {
                fail("lost the old image after a cut", k, total);
            }
            if (k == total && got != 2) {
                fail("completed save not found", k, total);
            }
            saw_old |= got != 2;
            saw_new |= got == 2;
            /* The device keeps going: the next save must work and win. */
            after->revision = (got == 2 ? next->revision : (old ? old->revision : 0)) + 1u;
            save_ok(after);
            if (booted_with(NULL, after) != 2) {
                fail("save after a cut did not win", k, total);
            }
            /* A second cut, during that next save, at a random point. */
            memcpy(g_sim.mem, state, g_sim.size);
            g_sim.budget = k;
            g_sim.cut = 0;
            s = open_store();
            ta_status_t ignored = ta_param_store_save(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, next->data, next->len, &rec);
            /* (the half-done byte at the cut is random: which image survived is read again) */
            const int got_again = booted_with(old, next);
            const image_t *survivor = got_again == 2 ? next : old;
            after->revision = (survivor ? survivor->revision : 0) + 1u;
            g_sim.budget = (long)(rnd() % (unsigned)(total + 1));
            g_sim.cut = 0;
            s = open_store();
            ignored = ta_param_store_save(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, after->data, after->len, &rec);
            (void)ignored; /* cut: its status only says the power went */
            const int got2 = booted_with(survivor, after);
            if (got2 == 0 && survivor != NULL) {
                fail("lost the image after two cuts", k, (long)g_sim.budget);
            }
        }
    }
    if (!saw_old || !saw_new) {
        fail("the cuts did not cover both outcomes", saw_old, saw_new);
    }
    memcpy(g_sim.mem, state, g_sim.size);
}

static void scenario(uint32_t size, uint32_t page, uint32_t unit, uint32_t len_a, uint32_t len_b, uint32_t len_c)
{
    static image_t a, b, c, after;
    sim_reset(size, page, unit);
    make_image(&a, len_a, 1);
    make_image(&b, len_b, 2);
    make_image(&c, len_c, 3);
    make_image(&after, len_b, 0);
    cut_everywhere(NULL, &a, &after); /* fresh flash */
    save_ok(&a);
    cut_everywhere(&a, &b, &after);   /* slot 1 written, slot 0 holds a */
    save_ok(&b);
    cut_everywhere(&b, &c, &after);   /* slot 0 (holding the older a) is erased and rewritten */
}

/* ---- the rest of the contract ------------------------------------------------- */

static void check_contract(void)
{
    sim_reset(4096, 512, 4);
    ta_param_store_t s;
    if (ta_param_store_init(&s, &g_nvm, 0, 4096) != TA_OK || ta_param_store_capacity(&s) != 2048 - 32) {
        fail("capacity", (long)ta_param_store_capacity(&s), 2048 - 32);
    }
    /* Bad areas and NVMs. */
    if (ta_param_store_init(&s, &g_nvm, 100, 1024) != TA_ERR_ARG || ta_param_store_init(&s, &g_nvm, 0, 8192) != TA_ERR_ARG ||
        ta_param_store_init(&s, &g_nvm, 0, 512) != TA_ERR_ARG || ta_param_store_init(NULL, &g_nvm, 0, 1024) != TA_ERR_ARG) {
        fail("init accepted a bad area", 0, 0);
    }
    ta_nvm_t odd = g_nvm;
    odd.page_size = 384;
    if (ta_param_store_init(&s, &odd, 0, 4096) != TA_ERR_ARG) {
        fail("init accepted a page size that is not a power of two", 0, 0);
    }
    odd = g_nvm;
    odd.prog_unit = 64;
    if (ta_param_store_init(&s, &odd, 0, 4096) != TA_ERR_ARG) {
        fail("init accepted a program unit above the header size", 0, 0);
    }
    if (ta_param_store_init(&s, &g_nvm, 0, 4096) != TA_OK) {
        fail("init", 0, 0);
    }
    ta_param_record_t rec;
    static uint8_t buf[4096], got[4096];
    for (uint32_t i = 0; i < sizeof(buf); ++i) {
        buf[i] = (uint8_t)rnd();
    }
    if (ta_param_store_find(&s, &rec) != TA_ERR_STATE) {
        fail("erased flash holds a record", 0, 0);
    }
    if (ta_param_store_save(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, buf, 2048 - 31, &rec) != TA_ERR_OVERFLOW) {
        fail("save above the capacity", 0, 0);
    }
    if (ta_param_store_save(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, buf, 2048 - 32, &rec) != TA_OK || rec.revision != 1) {
        fail("save at the capacity", 0, 0);
    }
    /* Another model, tag or size: nothing applied, dst untouched. */
    memset(got, 0x77, sizeof(got));
    if (ta_param_store_load(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC ^ 1u, got, 2048 - 32, &rec) != TA_ERR_STATE ||
        ta_param_store_load(&s, TA_PARAM_TAG_TTA, MODEL_CRC, got, 2048 - 32, &rec) != TA_ERR_STATE ||
        ta_param_store_load(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, got, 100, &rec) != TA_ERR_STATE || got[0] != 0x77 ||
        rec.revision != 1 || rec.model_crc != MODEL_CRC) {
        fail("a record of another model, tag or size was applied", 0, 0);
    }
    /* A tombstone wins over the older record and loads as "nothing". */
    if (ta_param_store_save(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, NULL, 0, &rec) != TA_OK || rec.revision != 2 ||
        ta_param_store_load(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, got, 2048 - 32, &rec) != TA_ERR_STATE || rec.len != 0) {
        fail("tombstone", 0, 0);
    }
    if (ta_param_store_save(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, buf, 1000, &rec) != TA_OK || rec.revision != 3 ||
        rec.slot != 0) {
        fail("save after a tombstone", (long)rec.revision, rec.slot);
    }
    /* Bit rot in the newest slot: the older one (the tombstone, revision 2) is used. */
    g_sim.mem[32 + 500] ^= 0x10;
    if (ta_param_store_find(&s, &rec) != TA_OK || rec.revision != 2) {
        fail("a corrupt newest slot was not skipped", (long)rec.revision, 0);
    }
    g_sim.mem[32 + 500] ^= 0x10;
    /* Revisions wrap: a record at 0xFFFFFFFF is followed by 0, which is newer. */
    sim_reset(4096, 512, 4);
    uint8_t h[32];
    memset(h, 0, sizeof(h));
    const uint32_t fields[5] = {TA_PARAM_STORE_MAGIC, TA_PARAM_STORE_VERSION | (TA_PARAM_TAG_TRAIN << 16), 0xFFFFFFFFu,
                                MODEL_CRC, 8};
    memcpy(h, fields, sizeof(fields)); /* the host is little-endian, like the format */
    const uint32_t crc = ta_crc32(ta_crc32(0, h, 28), buf, 8);
    memcpy(h + 28, &crc, 4);
    memcpy(g_sim.mem + 2048, h, 32);
    memcpy(g_sim.mem + 2048 + 32, buf, 8);
    s = open_store();
    if (ta_param_store_find(&s, &rec) != TA_OK || rec.revision != 0xFFFFFFFFu || rec.slot != 1) {
        fail("hand-made record not found", (long)rec.revision, 0);
    }
    if (ta_param_store_save(&s, TA_PARAM_TAG_TRAIN, MODEL_CRC, buf + 8, 16, &rec) != TA_OK || rec.revision != 0 ||
        rec.slot != 0 || ta_param_store_find(&s, &rec) != TA_OK || rec.revision != 0) {
        fail("revision wrap-around", (long)rec.revision, rec.slot);
    }
}

int main(int argc, char **argv)
{
    g_rng = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 1u;
    check_contract();
    /* (region, page, program unit, three image lengths): tails not a multiple of the unit,
     * images over several pages, a tombstone, the largest program unit (32 B, STM32H7). */
    scenario(4096, 256, 1, 700, 333, 1);
    scenario(4096, 512, 4, 1021, 0, 1500);
    scenario(4096, 1024, 8, 1500, 17, 1100);
    scenario(2048, 256, 32, 900, 95, 600);
    printf("TA_PARAM_STORE_CHECK OK %ld\n", g_cuts);
    return 0;
}
