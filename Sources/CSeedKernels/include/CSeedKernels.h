// Integer matrix-vector kernels for GGML block formats, written in C because Swift cannot reach the AVX-512 VNNI
// and AVX2 integer dot-product instructions. Every entry point dispatches at run time (cpuid) to the best
// implementation this CPU supports: AVX-512 VNNI, then AVX2, then portable scalar code.
//
// The activation vector is quantized once per matrix input to 8 bits per 32-element block (`seed_quantize_q8`),
// like llama.cpp's Q8_1: element i is approximately `scale[i / 32] * q[i]`. The kernels then multiply the
// weights' small integers by these bytes and apply both scales per block.
#ifndef SEED_C_KERNELS_H
#define SEED_C_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Per-block quantization data of an activation vector: `scale` maps the 32 bytes back to floats, `sum` is the
/// sum of the 32 values they stand for, `scale * Σ q` (used for the Q4_1 offset and the Q4_0 bias). The sum of
/// the quantized values, not of the originals: then Σ (d q + m) x̂ is what is computed, the product with the
/// rounded activations, whose error Σ (d q + m)(x̂ - x) involves the centred weights. With the exact Σx instead,
/// the error is d Σ q (x̂ - x) over the uncentred nibbles 0..15, measured twice as large on SmolLM2's logits.
typedef struct {
    float scale;
    float sum;
} seed_q8_block;

/// Instruction-set levels the kernels can run at.
typedef enum {
    SEED_ISA_SCALAR = 0,
    SEED_ISA_AVX2 = 1,
    SEED_ISA_AVX512_VNNI = 2,
} seed_isa;

/// The best level this CPU supports.
seed_isa seed_kernels_detected_isa(void);

/// The level the kernels currently use (the detected one unless overridden).
seed_isa seed_kernels_isa(void);

/// Overrides the level (clamped to the detected one); returns the level now in use. For tests and benchmarks:
/// not safe to call while kernels run on other threads.
seed_isa seed_kernels_set_isa(seed_isa isa);

/// Quantizes `x[0 ..< 32 * blocks]` to bytes `q` (same length) and per-block `scales[blocks]`:
/// `scale = max|x| / 127`, `q = round(x / scale)` (ties to even), `sum = scale * Σ q`. The bytes are stored in the
/// kernels' order: blocks in pairs, the pair's two low halves (elements 0..<16) first, then its two high halves;
/// a last unpaired block in natural order.
void seed_quantize_q8(const float *x, int64_t blocks, int8_t *q, seed_q8_block *scales);

/// The inverse of `seed_quantize_q8`: `out[i] = scale[i / 32] * q[i]` in natural order (for tests and checks).
void seed_dequantize_q8(const int8_t *q, const seed_q8_block *scales, int64_t blocks, float *out);

/// `y[r] = Σ_c w[r, c] x[c]` for rows `r` in `[row_begin, row_end)` of a Q4_1 matrix whose rows are
/// `row_bytes` apart and `blocks` blocks long, against an activation vector quantized by `seed_quantize_q8`.
void seed_gemv_q4_1_q8(
    const void *w, size_t row_bytes, int64_t row_begin, int64_t row_end, int64_t blocks, const int8_t *xq,
    const seed_q8_block *xs, float *y);

/// As `seed_gemv_q4_1_q8`, for a Q4_0 matrix.
void seed_gemv_q4_0_q8(
    const void *w, size_t row_bytes, int64_t row_begin, int64_t row_end, int64_t blocks, const int8_t *xq,
    const seed_q8_block *xs, float *y);

/// As `seed_gemv_q4_1_q8`, for a Q8_0 matrix.
void seed_gemv_q8_0_q8(
    const void *w, size_t row_bytes, int64_t row_begin, int64_t row_end, int64_t blocks, const int8_t *xq,
    const seed_q8_block *xs, float *y);

#ifdef __cplusplus
}
#endif

#endif
