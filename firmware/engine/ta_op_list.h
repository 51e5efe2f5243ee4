/* X-macro list of built-in ops: one TA_OP(kernel symbol) per line, from engine/ops/. */
TA_OP(ta_op_fully_connected)
