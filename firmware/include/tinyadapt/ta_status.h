/*
 * Status codes shared by every tinyadapt function.
 *
 * TA_OK is zero and every error is negative, so a function that returns a
 * count (bytes decoded, frames read) can share the return value.
 */
#ifndef TA_STATUS_H
#define TA_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TA_OK = 0,
    TA_ERR_ARG = -1,          /* a caller passed an impossible argument */
    TA_ERR_MAGIC = -2,        /* the blob does not start with the model magic */
    TA_ERR_VERSION = -3,      /* the blob's format version is not this engine's */
    TA_ERR_TRUNCATED = -4,    /* a length or offset points past the end of the blob */
    TA_ERR_CRC = -5,          /* the blob's CRC does not match its contents */
    TA_ERR_CORRUPT = -6,      /* a table entry is out of range or inconsistent */
    TA_ERR_UNSUPPORTED = -7,  /* an op or dtype this build does not implement */
    TA_ERR_SHAPE = -8,        /* tensor shapes do not fit the op */
    TA_ERR_ARENA = -9,        /* the arena is too small or misaligned */
    TA_ERR_OVERFLOW = -10,    /* a size computation would overflow */
    TA_ERR_STATE = -11,       /* called in the wrong order (e.g. invoke before init) */
    TA_STATUS_COUNT_ = 12     /* number of codes above, for the name table */
} ta_status_t;

#if defined(__GNUC__) || defined(__clang__)
#define TA_CHECK_RESULT __attribute__((warn_unused_result))
#else
#define TA_CHECK_RESULT
#endif

/* Propagate an error to the caller. */
#define TA_TRY(expr)                      \
    do {                                  \
        ta_status_t ta_try_s_ = (expr);   \
        if (ta_try_s_ != TA_OK) {         \
            return ta_try_s_;             \
        }                                 \
    } while (0)

/* Return `status` when `cond` is false: for checks on untrusted data. */
#define TA_ENSURE(cond, status) \
    do {                        \
        if (!(cond)) {          \
            return (status);    \
        }                       \
    } while (0)

/** Human-readable name of a status ("TA_ERR_CRC"); "TA_ERR_?" for unknown codes. */
const char *ta_status_name(ta_status_t status);

#ifdef __cplusplus
}
#endif

#endif /* TA_STATUS_H */
