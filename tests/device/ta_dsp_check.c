/*
 * Differential check of the DSP kernels (firmware/kernels/dsp) against the reference
 * kernels (firmware/kernels/ref), both compiled into this one program: the reference
 * functions are renamed ref_* as they are included. Seeded random cases cover every fast
 * path and fallback: 1x1 GEMM, general and strided convolutions, dilations, negative
 * (sub-region) padding, odd channel counts, depth multipliers, in-place depthwise with
 * exact and roomy scratch, FC with batches and filter offsets, accumulators that wrap
 * (huge biases), every shift in [-31, 31], negative and INT32_MIN multipliers, and
 * invalid arguments (which must give the same status).
 *
 * Built by tests/device/test_dsp_kernels.py twice: for the host (the DSP files' portable
 * C path) and for QEMU mps2-an386 (Cortex-M4, the real SMLAD/SXTB16 path, output and
 * exit status over semihosting). Prints "TA_DSP_CHECK OK <cases>" or each mismatch.
 *
 *   ta_dsp_check [seed] [cases]     (on the board: -DTA_CHECK_SEED=... -DTA_CHECK_CASES=...)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyadapt/ops/ta_conv2d.h"
#include "tinyadapt/ops/ta_depthwise_conv2d.h"
#include "tinyadapt/ops/ta_fully_connected.h"
#include "tinyadapt/ops/ta_add.h"
#include "tinyadapt/ops/ta_maxpool.h"
#include "tinyadapt/ops/ta_mean.h"

#define ta_conv2d_s8 ref_conv2d_s8
#include "../../firmware/kernels/ref/ta_conv2d_s8.c"
#undef ta_conv2d_s8
#define ta_depthwise_conv2d_s8 ref_depthwise_conv2d_s8
#include "../../firmware/kernels/ref/ta_depthwise_conv2d_s8.c"
#undef ta_depthwise_conv2d_s8
#define ta_depthwise_conv2d_inplace_s8 ref_depthwise_conv2d_inplace_s8
#include "../../firmware/kernels/ref/ta_depthwise_conv2d_inplace_s8.c"
#undef ta_depthwise_conv2d_inplace_s8
#define ta_fully_connected_s8 ref_fully_connected_s8
#include "../../firmware/kernels/ref/ta_fully_connected_s8.c"
#undef ta_fully_connected_s8
#define ta_add_s8 ref_add_s8
#include "../../firmware/kernels/ref/ta_add_s8.c"
#undef ta_add_s8
#define ta_sub_s8 ref_sub_s8
#include "../../firmware/kernels/ref/ta_sub_s8.c"
#undef ta_sub_s8
#define ta_maxpool_s8 ref_maxpool_s8
#include "../../firmware/kernels/ref/ta_maxpool_s8.c"
#undef ta_maxpool_s8
#define ta_mean_s8 ref_mean_s8
#include "../../firmware/kernels/ref/ta_mean_s8.c"
#undef ta_mean_s8

#include "../../firmware/engine/ops/ta_conv_scratch.c"
#include "../../firmware/kernels/dsp/ta_conv2d_s8.c"
#include "../../firmware/kernels/dsp/ta_depthwise_conv2d_inplace_s8.c"
#include "../../firmware/kernels/dsp/ta_depthwise_conv2d_s8.c"
#include "../../firmware/kernels/dsp/ta_fully_connected_s8.c"
#include "../../firmware/kernels/dsp/ta_add_s8.c"
#include "../../firmware/kernels/dsp/ta_sub_s8.c"
#include "../../firmware/kernels/dsp/ta_maxpool_s8.c"
#include "../../firmware/kernels/dsp/ta_mean_s8.c"

/* ---- output and exit: stdio on the host, semihosting on the emulated board ---------- */

#if defined(__arm__) && !defined(__linux__)
static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void say(const char *s) { (void)semihost(0x04, s); } /* SYS_WRITE0 */

static void finish(int code)
{
    const uint32_t args[2] = {0x20026u, (uint32_t)code}; /* ADP_Stopped_ApplicationExit */
    (void)semihost(0x20, args);                          /* SYS_EXIT_EXTENDED */
    for (;;) {
    }
}

void _init(void);
void _fini(void);
void _init(void) {}
void _fini(void) {}
#else
static void say(const char *s) { fputs(s, stdout); }
static void finish(int code) { exit(code); }
#endif

static char line[200];

/* printf's %s %d %ld %lu into `line`: newlib-nano's snprintf would need malloc. */
static void fmt(const char *f, ...)
{
    va_list ap;
    size_t n = 0;
    va_start(ap, f);
    for (; *f && n + 24 < sizeof line; ++f) {
        if (*f != '%') {
            line[n++] = *f;
            continue;
        }
        ++f;
        int is_long = 0;
        if (*f == 'l') {
            is_long = 1;
            ++f;
        }
        if (*f == 's') {
            for (const char *t = va_arg(ap, const char *); *t && n + 24 < sizeof line; ++t) {
                line[n++] = *t;
            }
            continue;
        }
        unsigned long u;
        int neg = 0;
        if (*f == 'u') {
            u = is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
        } else {
            const long v = is_long ? va_arg(ap, long) : va_arg(ap, int);
            neg = v < 0;
            u = neg ? 0ul - (unsigned long)v : (unsigned long)v;
        }
        char digits[24];
        int k = 0;
        do {
            digits[k++] = (char)('0' + u % 10u);
            u /= 10u;
        } while (u);
        if (neg) {
            line[n++] = '-';
        }
        while (k) {
            line[n++] = digits[--k];
        }
    }
    line[n] = 0;
    va_end(ap);
}

/* ---- seeded random numbers ------------------------------------------------------------ */

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static int32_t rint_in(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }
static int chance(int percent) { return (int)(rnd() % 100u) < percent; }

static void fill_s8(int8_t *p, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        p[i] = (int8_t)(rnd() & 0xFFu);
    }
}

/* Requantization parameters: mostly what QuantizeMultiplier makes, sometimes anything. */
static void fill_requant(int32_t *mult, int32_t *shift, int32_t n, int wild)
{
    for (int32_t i = 0; i < n; ++i) {
        mult[i] = (int32_t)(0x40000000u + (rnd() & 0x3FFFFFFFu));
        shift[i] = chance(80) ? rint_in(-12, 2) : rint_in(-31, 31);
        if (wild && chance(10)) {
            const int32_t odd[] = {0, 1, -1, INT32_MAX, INT32_MIN, (int32_t)rnd()};
            mult[i] = odd[rnd() % 6u];
        }
    }
}

static void fill_bias(int32_t *b, int32_t n)
{
    const int huge = chance(15);
    for (int32_t i = 0; i < n; ++i) {
        b[i] = huge ? (int32_t)rnd() : rint_in(-20000, 20000);
    }
}

static void act_range(int32_t *lo, int32_t *hi)
{
    *lo = chance(50) ? -128 : rint_in(-128, 20);
    *hi = chance(50) ? 127 : rint_in(*lo, 127);
}

/* ---- comparison ----------------------------------------------------------------------- */

static long failures;
static long compared[8]; /* conv, depthwise, inplace, fc, add/sub, maxpool, mean */

/* The case being compared, printed with its first mismatch. */
static ta_conv_params_t cur_p;
static ta_dims_t cur_in, cur_f, cur_out;

static void describe_case(void)
{
    fmt("  in %ldx%ldx%ldx%ld filter %ldx%ldx%ldx%ld out %ldx%ldx%ldx%ld", (long)cur_in.n, (long)cur_in.h,
        (long)cur_in.w, (long)cur_in.c, (long)cur_f.n, (long)cur_f.h, (long)cur_f.w, (long)cur_f.c, (long)cur_out.n,
        (long)cur_out.h, (long)cur_out.w, (long)cur_out.c);
    say(line);
    fmt(" stride %ld,%ld dilation %ld,%ld pad %ld,%ld dm %ld offsets %ld,%ld act %ld..%ld\n", (long)cur_p.stride_h,
        (long)cur_p.stride_w, (long)cur_p.dilation_h, (long)cur_p.dilation_w, (long)cur_p.pad_top,
        (long)cur_p.pad_left, (long)cur_p.depth_multiplier, (long)cur_p.input_offset, (long)cur_p.output_offset,
        (long)cur_p.act_min, (long)cur_p.act_max);
    say(line);
}

static void set_case(const ta_conv_params_t *p, const ta_dims_t *in, const ta_dims_t *f, const ta_dims_t *out)
{
    cur_p = *p;
    cur_in = *in;
    cur_f = *f;
    cur_out = *out;
}

static int compare(const char *what, long case_no, const int8_t *ref, const int8_t *dsp, size_t n, int st_ref,
                   int st_dsp)
{
    if (st_ref != st_dsp) {
        fmt("MISMATCH %s case %ld: status ref %d dsp %d\n", what, case_no, st_ref, st_dsp);
        say(line);
        ++failures;
        return 0;
    }
    int shown = 0;
    for (size_t i = 0; i < n; ++i) {
        if (ref[i] != dsp[i]) {
            if (shown++ < 8) {
                fmt("MISMATCH %s case %ld: [%lu] ref %d dsp %d\n", what, case_no,
                         (unsigned long)i, ref[i], dsp[i]);
                say(line);
            }
        }
    }
    if (shown) {
        if (!strcmp(what, "conv") || !strcmp(what, "depthwise") || !strcmp(what, "inplace")) {
            describe_case();
        }
        fmt("  %s case %ld: %d of %lu bytes differ\n", what, case_no, shown, (unsigned long)n);
        say(line);
        ++failures;
    }
    return shown == 0;
}

#define MAX_ACT 6144
#define MAX_FILTER 6144
#define MAX_CH 200

static int8_t out_ref[MAX_ACT + 16], out_dsp[MAX_ACT + 16], ip_ref[MAX_ACT], scratch_ref[MAX_ACT];
static int32_t bias[MAX_CH], mult[MAX_CH], shift[MAX_CH];

/* What the DSP kernels read (input, filter, in-place buffer, scratch) is allocated at its
 * exact size for each case: on the host, with AddressSanitizer, a word read one byte
 * past the end is then an error, not a silent pass. */
#if defined(__arm__) && !defined(__linux__)
static int8_t pool[4 * MAX_ACT];
static size_t pool_used;
static int8_t *exact(size_t n)
{
    int8_t *p = pool + pool_used;
    pool_used += n;
    return p;
}
/* A kernel scratch: word-aligned, as the arena's. */
static int8_t *exact_scratch(size_t n)
{
    pool_used = (pool_used + 3u) & ~(size_t)3u;
    return exact(n);
}
static void release_all(void) { pool_used = 0; }
#else
static void *held[8];
static int n_held;
static int8_t *exact(size_t n)
{
    held[n_held] = malloc(n ? n : 1);
    return (int8_t *)held[n_held++];
}
static int8_t *exact_scratch(size_t n) { return exact(n); } /* malloc's are word-aligned */
static void release_all(void)
{
    while (n_held > 0) {
        free(held[--n_held]);
    }
}
#endif

/* The scratch a kernel gets: mostly what ta_*_scratch_size asks for (the planner's), else
 * none or one byte too little (the kernel must then take a path without it). Garbage-filled:
 * nothing may depend on its contents. */
static int8_t *kernel_scratch(uint32_t need, int32_t *size)
{
    const int r = rint_in(0, 9);
    *size = r < 8 ? (int32_t)need : (r == 8 || need == 0 ? 0 : (int32_t)need - 1);
    if (*size == 0 && chance(50)) {
        return NULL;
    }
    int8_t *s = exact_scratch((size_t)*size);
    fill_s8(s, (size_t)*size);
    return s;
}

static int32_t out_extent(int32_t in, int32_t k, int32_t stride, int32_t dil, int32_t pad)
{
    /* As many outputs as TFLM's SAME/VALID would give, or a few more/fewer (sub-regions). */
    const int32_t reach = (k - 1) * dil + 1;
    int32_t n = (in + 2 * pad - reach) / stride + 1;
    if (chance(15)) {
        n += rint_in(-1, 2);
    }
    return n < 1 ? 1 : n;
}

static void conv_params(ta_conv_params_t *p, int32_t k_h, int32_t k_w)
{
    p->stride_h = chance(60) ? 1 : rint_in(1, 3);
    p->stride_w = chance(60) ? 1 : rint_in(1, 3);
    p->dilation_h = chance(80) ? 1 : rint_in(1, 3);
    p->dilation_w = chance(80) ? 1 : rint_in(1, 3);
    p->pad_top = chance(70) ? rint_in(0, (k_h - 1) * p->dilation_h) : rint_in(-3, k_h);
    p->pad_left = chance(70) ? rint_in(0, (k_w - 1) * p->dilation_w) : rint_in(-3, k_w);
    p->depth_multiplier = 1;
    p->input_offset = rint_in(-127, 128);
    p->output_offset = rint_in(-128, 127);
    act_range(&p->act_min, &p->act_max);
}

static void check_conv(long case_no)
{
    ta_conv_params_t p;
    ta_dims_t in_d, f_d, out_d;
    const int gemm = chance(40);
    in_d.n = chance(80) ? 1 : 2;
    in_d.h = rint_in(1, 9);
    in_d.w = rint_in(1, 9);
    in_d.c = chance(50) ? rint_in(1, 24) : 4 * rint_in(1, 8);
    f_d.n = rint_in(1, 12);
    f_d.h = gemm ? 1 : rint_in(1, 5);
    f_d.w = gemm ? 1 : rint_in(1, 5);
    f_d.c = in_d.c;
    conv_params(&p, f_d.h, f_d.w);
    if (gemm) {
        p.stride_h = p.stride_w = 1;
        p.pad_top = p.pad_left = 0;
    }
    out_d.n = in_d.n;
    out_d.c = f_d.n;
    out_d.h = gemm ? in_d.h : out_extent(in_d.h, f_d.h, p.stride_h, p.dilation_h, p.pad_top);
    out_d.w = gemm ? in_d.w : out_extent(in_d.w, f_d.w, p.stride_w, p.dilation_w, p.pad_left);
    const size_t n_in = (size_t)in_d.n * in_d.h * in_d.w * in_d.c;
    const size_t n_f = (size_t)f_d.n * f_d.h * f_d.w * f_d.c;
    const size_t n_out = (size_t)out_d.n * out_d.h * out_d.w * out_d.c;
    if (n_in > MAX_ACT || n_f > MAX_FILTER || n_out > MAX_ACT || out_d.c > MAX_CH) {
        return;
    }
    int8_t *in_buf = exact(n_in), *filt = exact(n_f);
    fill_s8(in_buf, n_in);
    fill_s8(filt, n_f);
    fill_bias(bias, out_d.c);
    fill_requant(mult, shift, out_d.c, 1);
    const int32_t *b = chance(85) ? bias : NULL;
    memset(out_ref, 0x55, n_out + 16);
    memset(out_dsp, 0x55, n_out + 16);
    set_case(&p, &in_d, &f_d, &out_d);
    int32_t room;
    int8_t *scratch = kernel_scratch(ta_conv2d_s8_scratch_size(&p, &in_d, &f_d, &out_d), &room);
    const int s1 = ref_conv2d_s8(&p, &in_d, in_buf, &f_d, filt, b, mult, shift, &out_d, out_ref, NULL, 0);
    const int s2 = ta_conv2d_s8(&p, &in_d, in_buf, &f_d, filt, b, mult, shift, &out_d, out_dsp, scratch, room);
    ++compared[0];
    compare("conv", case_no, out_ref, out_dsp, n_out + 16, s1, s2);
}

static void check_depthwise(long case_no)
{
    ta_conv_params_t p;
    ta_dims_t in_d, f_d, out_d;
    const int k3 = chance(50);
    in_d.n = chance(85) ? 1 : 2;
    in_d.h = rint_in(1, 10);
    in_d.w = rint_in(1, 10);
    in_d.c = chance(50) ? rint_in(1, 20) : 4 * rint_in(1, 6);
    f_d.n = 1;
    const int wide = !k3 && chance(25); /* 1x5, 10x8 (micro_speech), ...: the SMLAD tap-pair path */
    f_d.h = k3 ? 3 : rint_in(1, wide ? 10 : 5);
    f_d.w = k3 ? 3 : rint_in(1, wide ? 10 : 5);
    if (wide) {
        in_d.h = rint_in(1, 24);
        in_d.w = rint_in(1, 24);
        in_d.c = chance(50) ? 1 : rint_in(1, 5);
    }
    conv_params(&p, f_d.h, f_d.w);
    p.depth_multiplier = chance(60) ? 1 : rint_in(2, 9);
    if (wide && chance(50)) {
        p.depth_multiplier = chance(50) ? 8 : 4 * rint_in(1, 3);
    }
    if (k3 && chance(70)) {
        p.dilation_h = p.dilation_w = 1;
    }
    f_d.c = in_d.c * p.depth_multiplier;
    out_d.n = in_d.n;
    out_d.c = f_d.c;
    out_d.h = out_extent(in_d.h, f_d.h, p.stride_h, p.dilation_h, p.pad_top);
    out_d.w = out_extent(in_d.w, f_d.w, p.stride_w, p.dilation_w, p.pad_left);
    const size_t n_in = (size_t)in_d.n * in_d.h * in_d.w * in_d.c;
    const size_t n_f = (size_t)f_d.h * f_d.w * f_d.c;
    const size_t n_out = (size_t)out_d.n * out_d.h * out_d.w * out_d.c;
    if (n_in > MAX_ACT || n_f > MAX_FILTER || n_out > MAX_ACT || out_d.c > MAX_CH) {
        return;
    }
    int8_t *in_buf = exact(n_in), *filt = exact(n_f);
    fill_s8(in_buf, n_in);
    fill_s8(filt, n_f);
    fill_bias(bias, out_d.c);
    fill_requant(mult, shift, out_d.c, 1);
    const int32_t *b = chance(85) ? bias : NULL;
    memset(out_ref, 0x55, n_out + 16);
    memset(out_dsp, 0x55, n_out + 16);
    set_case(&p, &in_d, &f_d, &out_d);
    int32_t room;
    int8_t *scratch = kernel_scratch(ta_depthwise_conv2d_s8_scratch_size(&p, &in_d, &f_d, &out_d), &room);
    const int s1 = ref_depthwise_conv2d_s8(&p, &in_d, in_buf, &f_d, filt, b, mult, shift, &out_d, out_ref, NULL, 0);
    const int s2 =
        ta_depthwise_conv2d_s8(&p, &in_d, in_buf, &f_d, filt, b, mult, shift, &out_d, out_dsp, scratch, room);
    ++compared[1];
    compare("depthwise", case_no, out_ref, out_dsp, n_out + 16, s1, s2);
}

static void check_inplace(long case_no)
{
    ta_conv_params_t p;
    ta_dims_t in_d, f_d, out_d;
    const int k3 = chance(75);
    const int big = chance(15); /* planes too big for the DSP kernel's padded stack copy */
    in_d.n = 1;
    in_d.h = big ? rint_in(30, 48) : rint_in(1, 12);
    in_d.w = big ? rint_in(30, 48) : rint_in(1, 12);
    in_d.c = big ? rint_in(1, 2) : rint_in(1, 24);
    if (!big && chance(25)) { /* late MobileNet layers: tiny planes, many channels (grouped path) */
        in_d.h = rint_in(1, 6);
        in_d.w = rint_in(1, 6);
        in_d.c = chance(50) ? 4 * rint_in(1, 40) : rint_in(4, 160);
    }
    f_d.n = 1;
    f_d.h = k3 ? 3 : rint_in(1, 5);
    f_d.w = k3 ? 3 : rint_in(1, 5);
    conv_params(&p, f_d.h, f_d.w);
    if (k3 && chance(70)) {
        p.dilation_h = p.dilation_w = 1;
    }
    f_d.c = in_d.c;
    out_d.n = 1;
    out_d.c = in_d.c;
    out_d.h = out_extent(in_d.h, f_d.h, p.stride_h, p.dilation_h, p.pad_top);
    out_d.w = out_extent(in_d.w, f_d.w, p.stride_w, p.dilation_w, p.pad_left);
    if ((int64_t)out_d.h * out_d.w > (int64_t)in_d.h * in_d.w && chance(80)) {
        out_d.h = in_d.h; /* mostly valid cases; the rest must be refused alike */
        out_d.w = in_d.w;
    }
    const size_t n_in = (size_t)in_d.h * in_d.w * in_d.c;
    const size_t n_f = (size_t)f_d.h * f_d.w * f_d.c;
    if (n_in > MAX_ACT || n_f > MAX_FILTER || out_d.c > MAX_CH) {
        return;
    }
    /* Mostly what ta_depthwise_conv2d_inplace_s8_scratch_size asks for (the planner's request:
     * copies, packed taps and a plane), else one plane (the kernel then works without its
     * copies), a little more, or (rarely) too little. */
    const int32_t plane = in_d.h * in_d.w;
    int32_t room = chance(60) ? (int32_t)ta_depthwise_conv2d_inplace_s8_scratch_size(&p, &in_d, &f_d, &out_d)
                              : plane + (chance(50) ? 0 : rint_in(1, 8));
    if (chance(3)) {
        room = plane - 1;
    }
    if (room > MAX_ACT) {
        return;
    }
    int8_t *ip_dsp = exact(n_in), *filt = exact(n_f), *scratch_dsp = exact_scratch((size_t)room);
    fill_s8(ip_ref, n_in);
    memcpy(ip_dsp, ip_ref, n_in);
    fill_s8(filt, n_f);
    fill_bias(bias, out_d.c);
    fill_requant(mult, shift, out_d.c, 1);
    const int32_t *b = chance(85) ? bias : NULL;
    /* Scratch holds garbage: nothing may depend on it. */
    fill_s8(scratch_ref, (size_t)room);
    memcpy(scratch_dsp, scratch_ref, (size_t)room);
    set_case(&p, &in_d, &f_d, &out_d);
    const int s1 = ref_depthwise_conv2d_inplace_s8(&p, &in_d, ip_ref, &f_d, filt, b, mult, shift, &out_d, scratch_ref,
                                                   room);
    const int s2 = ta_depthwise_conv2d_inplace_s8(&p, &in_d, ip_dsp, &f_d, filt, b, mult, shift, &out_d, scratch_dsp,
                                                  room);
    /* The whole buffer: the output, and whatever the kernels leave behind it. */
    ++compared[2];
    compare("inplace", case_no, ip_ref, ip_dsp, n_in, s1, s2);
}

static void check_fc(long case_no)
{
    ta_fc_params_t p;
    const int32_t batches = chance(60) ? 1 : rint_in(1, 4);
    const int32_t in_depth = chance(50) ? rint_in(1, 70) : 4 * rint_in(1, 40);
    const int32_t out_depth = rint_in(1, 13);
    p.input_offset = chance(95) ? rint_in(-127, 128) : (int32_t)(rnd() % 70001u) - 35000;
    p.filter_offset = chance(80) ? 0 : rint_in(-127, 128);
    p.output_offset = rint_in(-128, 127);
    act_range(&p.act_min, &p.act_max);
    if ((size_t)batches * in_depth > MAX_ACT || (size_t)out_depth * in_depth > MAX_FILTER || out_depth > MAX_CH) {
        return;
    }
    int8_t *in_buf = exact((size_t)batches * in_depth), *filt = exact((size_t)out_depth * in_depth);
    fill_s8(in_buf, (size_t)batches * in_depth);
    fill_s8(filt, (size_t)out_depth * in_depth);
    /* What the engine's prepare lets through (multipliers >= 0, shifts in [-31, 31]), and
     * no accumulators near INT32_MAX: the reference adds the output offset to the
     * requantized value without wrapping, which would be undefined behaviour there. */
    for (int32_t i = 0; i < out_depth; ++i) {
        bias[i] = rint_in(-20000, 20000);
        mult[i] = chance(95) ? (int32_t)(0x40000000u + (rnd() & 0x3FFFFFFFu)) : 0;
        shift[i] = chance(80) ? rint_in(-12, 2) : rint_in(-31, 6);
    }
    const int32_t *b = chance(85) ? bias : NULL;
    const size_t n_out = (size_t)batches * out_depth;
    memset(out_ref, 0x55, n_out + 16);
    memset(out_dsp, 0x55, n_out + 16);
    const int s1 = ref_fully_connected_s8(&p, batches, in_depth, out_depth, in_buf, filt, b, mult, shift, out_ref);
    const int s2 = ta_fully_connected_s8(&p, batches, in_depth, out_depth, in_buf, filt, b, mult, shift, out_dsp);
    ++compared[3];
    compare("fc", case_no, out_ref, out_dsp, n_out + 16, s1, s2);
}

/* Requantization on its own, against ta_nn_requantize, at the edges and at random. */
static void check_requant(long n)
{
    const int32_t xs[] = {0, 1, -1, 2, -2, INT32_MAX, INT32_MIN, INT32_MIN + 1, INT32_MAX - 1, 1 << 30, -(1 << 30),
                          (1 << 30) - 1, 12345, -12345};
    const int32_t ms[] = {0, 1, -1, INT32_MAX, INT32_MIN + 1, 1 << 30, (1 << 30) + 1, 0x7FFFFFFE, -(1 << 30)};
    long bad = 0;
    for (int32_t s = -31; s <= 31; ++s) {
        for (size_t i = 0; i < sizeof xs / sizeof xs[0]; ++i) {
            for (size_t j = 0; j < sizeof ms / sizeof ms[0]; ++j) {
                const ta_nn_requant_t q = ta_nn_requant_make(ms[j], s);
                const int32_t r = ta_nn_requantize(xs[i], ms[j], s);
                bad += ta_nn_requant(xs[i], &q) != r;
                bad += ta_nn_requant_is_r2(&q) && ta_nn_requant_r2(xs[i], &q) != r;
            }
        }
    }
    /* Every tie of both roundings near zero: m = 2^30 and 2^30 + 1 halve x (nearly) exactly. */
    for (int32_t x = -3000; x <= 3000; ++x) {
        for (int32_t s = -12; s <= 1; ++s) {
            for (int32_t m = 1 << 30; m <= (1 << 30) + 1; ++m) {
                const ta_nn_requant_t q = ta_nn_requant_make(m, s);
                const int32_t r = ta_nn_requantize(x, m, s);
                bad += ta_nn_requant(x, &q) != r;
                bad += ta_nn_requant_is_r2(&q) && ta_nn_requant_r2(x, &q) != r;
            }
        }
    }
    for (long k = 0; k < n; ++k) {
        const int32_t x = chance(50) ? (int32_t)rnd() : rint_in(-100000, 100000);
        const int32_t m = chance(80) ? (int32_t)(0x40000000u + (rnd() & 0x3FFFFFFFu)) : (int32_t)rnd();
        const int32_t s = rint_in(-31, 31);
        if (m == INT32_MIN) {
            continue;
        }
        const ta_nn_requant_t q = ta_nn_requant_make(m, s);
        const int32_t r = ta_nn_requantize(x, m, s);
        const int32_t a = ta_nn_requant(x, &q), a2 = ta_nn_requant_is_r2(&q) ? ta_nn_requant_r2(x, &q) : r;
        if (a != r || a2 != r) {
            if (bad < 8) {
                fmt("MISMATCH requant x=%ld m=%ld s=%ld: ref %ld fast %ld r2 %ld\n", (long)x, (long)m,
                         (long)s, (long)r, (long)a, (long)a2);
                say(line);
            }
            ++bad;
        }
    }
    if (bad) {
        fmt("  requant: %ld mismatches\n", bad);
        say(line);
        ++failures;
    }
}

/* Invalid arguments: both versions must refuse them the same way. */
static void check_arguments(void)
{
    ta_conv_params_t p = {1, 1, 1, 1, 0, 0, 1, 0, 0, -128, 127};
    ta_dims_t d = {1, 4, 4, 4}, f = {4, 1, 1, 4}, fd = {1, 3, 3, 4};
    int8_t x[64] = {0}, w[64] = {0}, y[64], y2[64], s[64];
    int32_t m[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}, sh[4] = {0, 0, 0, 0};
    int st[2][8];
    sh[2] = 32;
    st[0][0] = ref_conv2d_s8(&p, &d, x, &f, w, NULL, m, sh, &d, y, NULL, 0);
    st[1][0] = ta_conv2d_s8(&p, &d, x, &f, w, NULL, m, sh, &d, y2, NULL, 0);
    st[0][1] = ref_depthwise_conv2d_s8(&p, &d, x, &fd, w, NULL, m, sh, &d, y, NULL, 0);
    st[1][1] = ta_depthwise_conv2d_s8(&p, &d, x, &fd, w, NULL, m, sh, &d, y2, NULL, 0);
    sh[2] = 0;
    st[0][2] = ref_conv2d_s8(&p, &d, NULL, &f, w, NULL, m, sh, &d, y, NULL, 0);
    st[1][2] = ta_conv2d_s8(&p, &d, NULL, &f, w, NULL, m, sh, &d, y2, NULL, 0);
    st[0][3] = ref_depthwise_conv2d_inplace_s8(&p, &d, x, &fd, w, NULL, m, sh, &d, s, 15);
    st[1][3] = ta_depthwise_conv2d_inplace_s8(&p, &d, x, &fd, w, NULL, m, sh, &d, s, 15);
    p.stride_h = 0;
    st[0][4] = ref_depthwise_conv2d_s8(&p, &d, x, &fd, w, NULL, m, sh, &d, y, NULL, 0);
    st[1][4] = ta_depthwise_conv2d_s8(&p, &d, x, &fd, w, NULL, m, sh, &d, y2, NULL, 0);
    p.stride_h = 1;
    p.depth_multiplier = 2;
    st[0][5] = ref_depthwise_conv2d_inplace_s8(&p, &d, x, &fd, w, NULL, m, sh, &d, s, 64);
    st[1][5] = ta_depthwise_conv2d_inplace_s8(&p, &d, x, &fd, w, NULL, m, sh, &d, s, 64);
    const ta_fc_params_t fp = {0, 0, 0, -128, 127};
    st[0][6] = ref_fully_connected_s8(&fp, 1, 0, 4, x, w, NULL, m, sh, y);
    st[1][6] = ta_fully_connected_s8(&fp, 1, 0, 4, x, w, NULL, m, sh, y2);
    st[0][7] = ref_fully_connected_s8(&fp, 1, 4, 4, x, NULL, NULL, m, sh, y);
    st[1][7] = ta_fully_connected_s8(&fp, 1, 4, 4, x, NULL, NULL, m, sh, y2);
    for (int i = 0; i < 8; ++i) {
        if (st[0][i] != st[1][i] || st[0][i] != TA_ERR_ARG) {
            fmt("MISMATCH argument check %d: ref %d dsp %d (want %d)\n", i, st[0][i],
                     st[1][i], TA_ERR_ARG);
            say(line);
            ++failures;
        }
    }
}

/* ADD / SUB: same shapes (residuals) or broadcast, TFLM-style parameters (left shift 20,
 * multipliers below one), sometimes an INT32_MIN multiplier (the reference element). */
static void check_add(long case_no)
{
    int32_t d1[4], d2[4], dout[4];
    const int nd = rint_in(1, 4);
    for (int i = 0; i < nd; ++i) {
        dout[i] = rint_in(1, i == nd - 1 ? 40 : 6);
        d1[i] = dout[i];
        d2[i] = dout[i];
        if (chance(25)) {
            (chance(50) ? d1 : d2)[i] = 1; /* broadcast along this axis */
        }
        if (d1[i] != dout[i] && d2[i] != dout[i]) {
            d1[i] = dout[i];
        }
    }
    size_t n1 = 1, n2 = 1, no = 1;
    for (int i = 0; i < nd; ++i) {
        n1 *= (size_t)d1[i];
        n2 *= (size_t)d2[i];
        no *= (size_t)dout[i];
    }
    if (no > MAX_ACT) {
        return;
    }
    ta_add_params_t p;
    p.input1_offset = rint_in(-127, 128);
    p.input2_offset = rint_in(-127, 128);
    p.output_offset = rint_in(-128, 127);
    p.left_shift = chance(80) ? 20 : rint_in(0, 22);
    p.input1_multiplier = (int32_t)(0x40000000u + (rnd() & 0x3FFFFFFFu));
    p.input2_multiplier = (int32_t)(0x40000000u + (rnd() & 0x3FFFFFFFu));
    p.output_multiplier = (int32_t)(0x40000000u + (rnd() & 0x3FFFFFFFu));
    p.input1_shift = -rint_in(0, 3);
    p.input2_shift = -rint_in(0, 3);
    p.output_shift = -rint_in(10, 31);
    if (chance(5)) {
        p.output_multiplier = INT32_MIN;
    }
    act_range(&p.act_min, &p.act_max);
    int8_t *x = exact(n1), *y = exact(n2);
    fill_s8(x, n1);
    fill_s8(y, n2);
    const int sub = chance(40);
    memset(out_ref, 0x55, no + 16);
    memset(out_dsp, 0x55, no + 16);
    int s1, s2;
    if (sub) {
        s1 = ref_sub_s8(&p, nd, d1, x, nd, d2, y, nd, dout, out_ref);
        s2 = ta_sub_s8(&p, nd, d1, x, nd, d2, y, nd, dout, out_dsp);
    } else {
        s1 = ref_add_s8(&p, nd, d1, x, nd, d2, y, nd, dout, out_ref);
        s2 = ta_add_s8(&p, nd, d1, x, nd, d2, y, nd, dout, out_dsp);
    }
    ++compared[4];
    compare(sub ? "sub" : "add", case_no, out_ref, out_dsp, no + 16, s1, s2);
}

/* MAX_POOL_2D: odd channel counts, windows cut by padding or empty (outputs past the
 * input), activation bounds inside and outside int8. */
static void check_maxpool(long case_no)
{
    ta_maxpool_params_t p;
    ta_dims_t in_d, out_d;
    in_d.n = chance(85) ? 1 : 2;
    in_d.h = rint_in(1, 12);
    in_d.w = rint_in(1, 12);
    in_d.c = chance(50) ? 4 * rint_in(1, 10) : rint_in(1, 40);
    p.filter_h = rint_in(1, 4);
    p.filter_w = rint_in(1, 4);
    p.stride_h = rint_in(1, 3);
    p.stride_w = rint_in(1, 3);
    p.pad_h = rint_in(0, p.filter_h);
    p.pad_w = rint_in(0, p.filter_w);
    act_range(&p.act_min, &p.act_max);
    if (chance(10)) {
        p.act_min = rint_in(-400, 100);
        p.act_max = rint_in(-100, 400);
    }
    out_d.n = in_d.n;
    out_d.c = in_d.c;
    out_d.h = rint_in(1, in_d.h + 2);
    out_d.w = rint_in(1, in_d.w + 2);
    const size_t n_in = (size_t)in_d.n * in_d.h * in_d.w * in_d.c;
    const size_t n_out = (size_t)out_d.n * out_d.h * out_d.w * out_d.c;
    if (n_in > MAX_ACT || n_out > MAX_ACT) {
        return;
    }
    int8_t *x = exact(n_in);
    fill_s8(x, n_in);
    memset(out_ref, 0x55, n_out + 16);
    memset(out_dsp, 0x55, n_out + 16);
    const int s1 = ref_maxpool_s8(&p, &in_d, x, &out_d, out_ref);
    const int s2 = ta_maxpool_s8(&p, &in_d, x, &out_d, out_dsp);
    ++compared[5];
    compare("maxpool", case_no, out_ref, out_dsp, n_out + 16, s1, s2);
}

/* MEAN over any axis set of up to 5 axes (the fast path: a run of axes before a kept
 * innermost one; long reductions cross the 256-row int16 flush). */
static void check_mean(long case_no)
{
    ta_mean_params_t p;
    int32_t dims[5];
    p.ndim = rint_in(1, 5);
    size_t n = 1;
    for (int i = 0; i < p.ndim; ++i) {
        dims[i] = rint_in(1, chance(20) ? 40 : 7);
        n *= (size_t)dims[i];
    }
    if (chance(5) && p.ndim >= 2) {
        dims[0] = 1;
        dims[p.ndim - 1] = 4;
        dims[p.ndim - 2] = 300; /* more than 256 rows: the int16 lanes are flushed */
        n = 1;
        for (int i = 0; i < p.ndim; ++i) {
            n *= (size_t)dims[i];
        }
    }
    if (n > MAX_ACT) {
        return;
    }
    p.axis_mask = (int32_t)(rnd() & ((1u << p.ndim) - 1u));
    p.input_zp = rint_in(-128, 127);
    p.output_zp = rint_in(-128, 127);
    p.multiplier = (int32_t)(0x40000000u + (rnd() & 0x3FFFFFFFu));
    p.shift = rint_in(-31, 4);
    int8_t *x = exact(n);
    fill_s8(x, n);
    if (chance(30)) { /* the int16 lanes' worst case: every byte -128 (or 127) */
        memset(x, chance(50) ? 0x80 : 0x7F, n);
    }
    memset(out_ref, 0x55, n + 16);
    memset(out_dsp, 0x55, n + 16);
    const int s1 = ref_mean_s8(&p, dims, x, out_ref);
    const int s2 = ta_mean_s8(&p, dims, x, out_dsp);
    ++compared[6];
    compare("mean", case_no, out_ref, out_dsp, n + 16, s1, s2);
}

int main(int argc, char **argv)
{
#ifndef TA_CHECK_SEED
#define TA_CHECK_SEED 20240601ul
#endif
#ifndef TA_CHECK_CASES
#define TA_CHECK_CASES 1000
#endif
    unsigned long seed = TA_CHECK_SEED;
    long cases = TA_CHECK_CASES;
#if !(defined(__arm__) && !defined(__linux__))
    if (argc > 1) {
        seed = strtoul(argv[1], NULL, 0);
    }
    if (argc > 2) {
        cases = strtol(argv[2], NULL, 0);
    }
#else
    (void)argc;
    (void)argv;
#endif
    rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)seed;
    check_arguments();
    check_requant(cases * 50);
    for (long i = 0; i < cases; ++i) {
        check_conv(i);
        release_all();
        check_depthwise(i);
        release_all();
        check_inplace(i);
        release_all();
        check_fc(i);
        release_all();
        check_add(i);
        release_all();
        check_maxpool(i);
        release_all();
        check_mean(i);
        release_all();
        if (failures > 20) {
            break;
        }
    }
    if (failures) {
        fmt("TA_DSP_CHECK FAILED %ld (seed %lu)\n", failures, seed);
        say(line);
        finish(1);
    }
    fmt("TA_DSP_CHECK OK conv %ld depthwise %ld inplace %ld fc %ld add/sub %ld maxpool %ld mean %ld (seed %lu)\n",
        compared[0], compared[1], compared[2], compared[3], compared[4], compared[5], compared[6], seed);
    say(line);
    finish(0);
    return 0;
}
