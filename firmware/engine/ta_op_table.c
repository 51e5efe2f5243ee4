/*
 * The ops this build contains. An app that needs fewer ops can compile its
 * own table (define TA_OP_TABLE_CUSTOM) so unused kernels drop out of the link.
 */
#include "tinyadapt/ta_op.h"

#include <stddef.h>

#ifndef TA_OP_TABLE_CUSTOM

#define TA_OP(name) extern const ta_op_kernel_t name;
#include "ta_op_list.h"
#undef TA_OP

static const ta_op_kernel_t *const k_ops[] = {
#define TA_OP(name) &name,
#include "ta_op_list.h"
#undef TA_OP
};

const ta_op_kernel_t *ta_op_find(uint16_t opcode)
{
    for (size_t i = 0; i < sizeof(k_ops) / sizeof(k_ops[0]); ++i) {
        if (k_ops[i]->opcode == opcode) {
            return k_ops[i];
        }
    }
    return NULL;
}

#endif /* TA_OP_TABLE_CUSTOM */
