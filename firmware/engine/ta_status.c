#include "tinyadapt/ta_status.h"

/* Indexed by -status; designated initializers keep names and codes together. */
static const char *const k_status_names[TA_STATUS_COUNT_] = {
    [-TA_OK] = "TA_OK",
    [-TA_ERR_ARG] = "TA_ERR_ARG",
    [-TA_ERR_MAGIC] = "TA_ERR_MAGIC",
    [-TA_ERR_VERSION] = "TA_ERR_VERSION",
    [-TA_ERR_TRUNCATED] = "TA_ERR_TRUNCATED",
    [-TA_ERR_CRC] = "TA_ERR_CRC",
    [-TA_ERR_CORRUPT] = "TA_ERR_CORRUPT",
    [-TA_ERR_UNSUPPORTED] = "TA_ERR_UNSUPPORTED",
    [-TA_ERR_SHAPE] = "TA_ERR_SHAPE",
    [-TA_ERR_ARENA] = "TA_ERR_ARENA",
    [-TA_ERR_OVERFLOW] = "TA_ERR_OVERFLOW",
    [-TA_ERR_STATE] = "TA_ERR_STATE",
};

const char *ta_status_name(ta_status_t status)
{
    if (status > 0 || -status >= TA_STATUS_COUNT_ || k_status_names[-status] == 0) {
        return "TA_ERR_?";
    }
    return k_status_names[-status];
}
