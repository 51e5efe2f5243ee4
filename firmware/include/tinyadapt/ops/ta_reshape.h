/*
 * RESHAPE (TFLM reshape): the output is the input's bytes under another
 * shape. The host planner normally gives output and input the same arena
 * bytes, so the op does nothing at run time; it copies only when they differ
 * (a constant input, or a blob planned without the alias). Any dtype; the
 * quantization is not looked at (TFLM copies raw bytes too).
 *
 * The op has no parameter struct (params_size 0) and no kernel beyond that
 * copy; TFLite's optional shape operand is dropped by the host, since the
 * output's shape is already in its tensor record.
 *
 * Blob tensors, in order:
 *   in:  input  any dtype, any shape
 *   out: output the input's dtype and byte size
 */
#ifndef TA_RESHAPE_H
#define TA_RESHAPE_H

#endif /* TA_RESHAPE_H */
