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

/* out: exit, prediction, macs, macs_skipped; *entropy the answering head's entropy */
int ta_host_tta_infer(void *tta, int32_t *out, float *entropy)
{
    ta_tta_result_t r;
    ta_status_t st = ta_tta_infer((ta_tta_t *)tta, &r);
    if (st != TA_OK) {
        return st;
    }
    out[0] = r.exit;
    out[1] = r.prediction;
    out[2] = (int32_t)r.macs;
    out[3] = (int32_t)r.macs_skipped;
    *entropy = r.entropy;
    return TA_OK;
}

/* ---- normalisation adaptation (ta_tta_norm_t), for the host session ---------------------- */

size_t ta_host_tta_norm_size(void) { return sizeof(ta_tta_norm_t); }

/* f: z_scale, momentum, dead_zone; arrays: src_mu, src_var, gamma, beta, gamma_scale (M each,
 * owned by the caller while the norm lives). Installs the overlays on `head`. */
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
