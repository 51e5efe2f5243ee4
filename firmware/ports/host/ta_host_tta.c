/*
 * The early-exit runner (engine/ta_tta.c) for Python ctypes: one opaque ta_tta_t over engines
 * opened with ta_host_open, so the host target takes the exit decisions with the device's code.
 */
#include <stddef.h>
#include <string.h>

#include "tinyadapt/ta_tta.h"

ta_engine_t *ta_host_engine(void *state);

size_t ta_host_tta_size(void) { return sizeof(ta_tta_t); }

int ta_host_tta_open(void *tta, void *backbone, void *const *heads, unsigned n_exits, const uint16_t *cut_ops,
                     const uint16_t *cut_tensors, const float *thresholds, const uint32_t *macs_backbone,
                     const uint32_t *macs_head, uint32_t macs_full)
{
    if (tta == NULL || backbone == NULL || heads == NULL || n_exits == 0 || n_exits > TA_TTA_MAX_EXITS) {
        return TA_ERR_ARG;
    }
    ta_tta_t *t = (ta_tta_t *)tta;
    memset(t, 0, sizeof(*t));
    t->backbone = ta_host_engine(backbone);
    t->n_exits = (uint8_t)n_exits;
    t->macs_full = macs_full;
    for (unsigned k = 0; k < n_exits; ++k) {
        t->heads[k] = ta_host_engine(heads[k]);
        t->exits[k].cut_op = cut_ops[k];
        t->exits[k].cut_tensor = cut_tensors[k];
        t->exits[k].threshold = thresholds[k];
        t->exits[k].macs_backbone = macs_backbone[k];
        t->exits[k].macs_head = macs_head[k];
    }
    return ta_tta_check(t);
}

/* out[0..3]: exit, prediction, macs, macs_skipped; *entropy the answering head's entropy */
static void write_result(const ta_tta_result_t *r, int32_t *out, float *entropy)
{
    out[0] = r->exit;
    out[1] = r->prediction;
    out[2] = (int32_t)r->macs;
    out[3] = (int32_t)r->macs_skipped;
    *entropy = r->entropy;
}

int ta_host_tta_infer(void *tta, int32_t *out, float *entropy)
{
    ta_tta_result_t r;
    ta_status_t st = ta_tta_infer((ta_tta_t *)tta, &r);
    if (st == TA_OK) {
        write_result(&r, out, entropy);
    }
    return st;
}

/* ---- normalisation adaptation (ta_tta_norm_t), for the host session ---------------------- */

/* the structure, then its per-channel storage (ta_tta_norm_carve) */
static size_t norm_struct(void) { return (sizeof(ta_tta_norm_t) + 15u) & ~(size_t)15u; }

size_t ta_host_tta_norm_size(unsigned channels) { return norm_struct() + ta_tta_norm_need(channels); }

/* norm: ta_host_tta_norm_size(channels) bytes, 16-aligned; f: z_scale, momentum, dead_zone;
 * arrays: src_mu, src_var, gamma, beta, gamma_scale (M each, owned by the caller while the
 * norm lives). Installs the overlays on `head`. */
int ta_host_tta_norm_open(void *norm, void *head, unsigned channels, unsigned z_tensor, unsigned gamma_tensor,
                          unsigned beta_tensor, const float *f, int32_t z_zero_point, const float *const *arrays)
{
    ta_tta_norm_t *n = (ta_tta_norm_t *)norm;
    if (n == NULL || head == NULL || f == NULL || arrays == NULL) {
        return TA_ERR_ARG;
    }
    memset(n, 0, sizeof(*n));
    n->channels = (uint16_t)channels;
    n->z_tensor = (uint16_t)z_tensor;
    n->gamma_tensor = (uint16_t)gamma_tensor;
    n->beta_tensor = (uint16_t)beta_tensor;
    n->z_scale = f[0];
    n->momentum = f[1];
    n->dead_zone = f[2];
    n->z_zero_point = z_zero_point;
    n->src_mu = arrays[0];
    n->src_var = arrays[1];
    n->gamma = arrays[2];
    n->beta = arrays[3];
    n->gamma_scale = arrays[4];
    ta_tta_norm_carve(n, (uint8_t *)norm + norm_struct());
    return ta_tta_norm_bind(n, ta_host_engine(head));
}

void ta_host_tta_norm_update(void *norm, const int8_t *z, unsigned positions)
{
    ta_tta_norm_t *n = (ta_tta_norm_t *)norm;
    ta_tta_norm_update(n, z, positions);
    ta_tta_norm_fold(n);
}

/* get (set = 0) or set (set = 1, then fold) the running statistics */
void ta_host_tta_norm_stats(void *norm, float *mu, float *var, int set)
{
    ta_tta_norm_t *n = (ta_tta_norm_t *)norm;
    for (unsigned c = 0; c < n->channels; ++c) {
        if (set) {
            n->mu[c] = mu[c];
            n->var[c] = var[c];
        } else {
            mu[c] = n->mu[c];
            var[c] = n->var[c];
        }
    }
    if (set) {
        ta_tta_norm_fold(n);
    }
}

/* ---- the adaptation loop (ta_tta_adapt_t), for the host session --------------------------- */

size_t ta_host_tta_input_size(void) { return sizeof(ta_tta_input_t); }
size_t ta_host_tta_adapt_size(void) { return sizeof(ta_tta_adapt_t); }

/* src_mu, src_var, mu, var: `channels` floats each, owned by the caller while the state lives */
int ta_host_tta_input_open(void *input, unsigned channels, float momentum, float dead_zone, const float *src_mu,
                           const float *src_var, float *mu, float *var)
{
    ta_tta_input_t *n = (ta_tta_input_t *)input;
    if (n == NULL || src_mu == NULL || src_var == NULL || mu == NULL || var == NULL || channels == 0 ||
        channels > 0xFFFFu) {
        return TA_ERR_ARG;
    }
    memset(n, 0, sizeof(*n));
    n->channels = (uint16_t)channels;
    n->momentum = momentum;
    n->dead_zone = dead_zone;
    n->src_mu = src_mu;
    n->src_var = src_var;
    n->mu = mu;
    n->var = var;
    ta_tta_input_reset(n);
    return TA_OK;
}

uint32_t ta_host_tta_adapt_need(void *tta, void *const *norms, void *input, unsigned n_classes)
{
    ta_tta_t t = *(const ta_tta_t *)tta;
    for (unsigned k = 0; k < t.n_exits; ++k) {
        t.norm[k] = norms != NULL ? (ta_tta_norm_t *)norms[k] : NULL;
    }
    return ta_tta_adapt_need(&t, (const ta_tta_input_t *)input, n_classes);
}

/* norms: one ta_tta_norm_t per exit ("norm" part) or NULL; input: NULL without the "input"
 * part; u: window, min_source, pause, seed, flags (bit 0 early, bit 1 probation); f: narrow, shadow_rate, worse_margin,
 * widen_margin, narrow_margin, probe_share; work: ta_host_tta_adapt_need() bytes, 4-aligned */
int ta_host_tta_adapt_open(void *adapt, void *tta, void *const *norms, void *input, unsigned n_classes,
                           const uint32_t *u, const float *f, void *work, uint32_t work_size)
{
    ta_tta_adapt_t *a = (ta_tta_adapt_t *)adapt;
    ta_tta_t *t = (ta_tta_t *)tta;
    if (a == NULL || t == NULL || u == NULL || f == NULL || n_classes > 0xFFFFu) {
        return TA_ERR_ARG;
    }
    memset(a, 0, sizeof(*a));
    for (unsigned k = 0; k < t->n_exits; ++k) {
        t->norm[k] = norms != NULL ? (ta_tta_norm_t *)norms[k] : NULL;
    }
    a->runner = t;
    a->input = (ta_tta_input_t *)input;
    a->norm = norms != NULL;
    a->n_classes = (uint16_t)n_classes;
    a->cfg.window = u[0];
    a->cfg.min_source = u[1];
    a->cfg.pause = u[2];
    a->cfg.seed = u[3];
    a->cfg.early = (uint8_t)(u[4] & 1u);
    a->cfg.probation = (uint8_t)((u[4] >> 1) & 1u);
    a->cfg.narrow = f[0];
    a->cfg.shadow_rate = f[1];
    a->cfg.worse_margin = f[2];
    a->cfg.widen_margin = f[3];
    a->cfg.narrow_margin = f[4];
    a->cfg.probe_share = f[5];
    a->work = (uint8_t *)work;
    a->work_size = work_size;
    return ta_tta_adapt_start(a);
}

/* out: exit, prediction, macs, macs_skipped, rollbacks, updates, paused; *entropy as infer */
int ta_host_tta_adapt_step(void *adapt, int32_t *out, float *entropy)
{
    ta_tta_adapt_t *a = (ta_tta_adapt_t *)adapt;
    ta_tta_result_t r;
    ta_status_t st = ta_tta_adapt_step(a, &r);
    if (st != TA_OK) {
        return st;
    }
    write_result(&r, out, entropy);
    out[4] = (int32_t)a->rollbacks;
    out[5] = (int32_t)a->updates;
    out[6] = (int32_t)a->paused;
    return TA_OK;
}

void ta_host_tta_adapt_reset(void *adapt) { ta_tta_adapt_reset((ta_tta_adapt_t *)adapt); }

/* the input adaptation alone on an engine's input 0 (tests check it against NumPy) */
int ta_host_tta_input_apply(void *input, void *engine)
{
    ta_tensor_t in;
    ta_status_t st = ta_engine_input(ta_host_engine(engine), 0, &in);
    return st != TA_OK ? st : ta_tta_input_apply((ta_tta_input_t *)input, &in);
}

/* where exit k's head runs in the backbone's arena on the device (ta_tta_head_base) */
uint32_t ta_host_tta_head_base(void *tta, unsigned k, uint32_t head_arena)
{
    const ta_tta_t *t = (const ta_tta_t *)tta;
    return ta_tta_head_base(t->backbone, t->exits[k].cut_op, head_arena);
}
