// Integer matrix-vector kernels for GGML block formats and the bf16 GEMM of mixed-precision training, written in C
// because Swift cannot reach the AVX-512 VNNI / BF16 and AVX2 dot-product instructions. Every entry point
// dispatches at run time (cpuid) to the best implementation this CPU supports: AVX-512 (BF16, VNNI), then AVX2,
// then portable scalar code.
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
    /// AVX-512 VNNI plus AVX-512 BF16 (`vdpbf16ps`, `vcvtne2ps2bf16`): the integer kernels run as at
    /// `SEED_ISA_AVX512_VNNI`; the bf16 GEMM uses its own micro-kernel.
    SEED_ISA_AVX512_BF16 = 3,
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

/// `y[t * y_stride + r] = Σ_c w[r, c] x_t[c]` for rows `r` in `[row_begin, row_end)` of a Q4_1 matrix (as in
/// `seed_gemv_q4_1_q8`) and `tokens` activation vectors `x_t`, each quantized by `seed_quantize_q8`: token `t`'s
/// bytes at `xq + 32 * blocks * t`, its block scales at `xs + blocks * t`. Each weight row is read from memory once
/// for all tokens. Every token's result is bit-identical to what `seed_gemv_q4_1_q8` gives for it alone.
void seed_gemm_q4_1_q8(
    const void *w, size_t row_bytes, int64_t row_begin, int64_t row_end, int64_t blocks, int64_t tokens,
    const int8_t *xq, const seed_q8_block *xs, float *y, int64_t y_stride);

/// As `seed_gemm_q4_1_q8`, for a Q4_0 matrix.
void seed_gemm_q4_0_q8(
    const void *w, size_t row_bytes, int64_t row_begin, int64_t row_end, int64_t blocks, int64_t tokens,
    const int8_t *xq, const seed_q8_block *xs, float *y, int64_t y_stride);

/// As `seed_gemm_q4_1_q8`, for a Q8_0 matrix.
void seed_gemm_q8_0_q8(
    const void *w, size_t row_bytes, int64_t row_begin, int64_t row_end, int64_t blocks, int64_t tokens,
    const int8_t *xq, const seed_q8_block *xs, float *y, int64_t y_stride);

// ---- bf16 GEMM ------------------------------------------------------------------------------------------------
//
// C[M,N] (+)= op(A)[M,K] · op(B)[K,N] with float32 operands rounded to bfloat16 (round to nearest even; NaN stays a
// quiet NaN; float32 subnormals become signed zeros, as `vcvtne2ps2bf16` does) while they are packed, products
// summed in float32, float32 output. The products of two bf16 values are exact in float32, so the only rounding
// besides the inputs' is the float32 summation.
//
// Packed layouts (uint16 bf16 elements; K is padded with zeros to `kp = seed_bf16_padded_depth(K)`, a multiple of
// 2; the two elements of a K-pair are adjacent, so one 32-bit word holds a pair):
//   - A: panels of SEED_BF16_TILE_ROWS rows; panel p starts at element p · TILE_ROWS · kp; within it the word of
//     (row r, pair q) is at element 2 · (q · TILE_ROWS + r). Rows past M are zero.
//   - B: panels of SEED_BF16_TILE_COLUMNS columns, the same way: the word of (column j, pair q) of panel p is at
//     element p · TILE_COLUMNS · kp + 2 · (q · TILE_COLUMNS + j). Columns past N are zero.
// Every ISA packs the same bits. The AVX-512 BF16 micro-kernel (`vdpbf16ps`) adds each K-pair's two products to
// the float32 accumulator in one instruction; the portable one adds them one at a time (even element first). So
// results agree across ISAs up to float32 summation order, never in how inputs were rounded.

/// Rows of C per micro-kernel tile (the A panel height).
#define SEED_BF16_TILE_ROWS 12
/// Columns of C per micro-kernel tile (the B panel width).
#define SEED_BF16_TILE_COLUMNS 32

/// `k` rounded up to the packed depth (even).
static inline int64_t seed_bf16_padded_depth(int64_t k) { return (k + 1) / 2 * 2; }

/// bf16 bits of `x` rounded to nearest even (the packers' rounding; for tests and checks).
uint16_t seed_float_to_bf16(float x);

/// `dst[i] = bf16(src[i])` for `i < count` on the current ISA (for tests: every ISA must give the same bits).
void seed_float_to_bf16_array(const float *src, int64_t count, uint16_t *dst);

/// Packs A panels `[panel_begin, panel_end)` of `op(A)` (`[m, k]`; `A` is `[m, k]` with rows `lda` apart, or when
/// `transpose` is nonzero `[k, m]` with rows `lda` apart) into `dst` (the whole packed A; see the layout above).
void seed_bf16_pack_a(
    const float *a, int64_t lda, int transpose, int64_t m, int64_t k, int64_t panel_begin, int64_t panel_end,
    uint16_t *dst);

/// Packs B panels `[panel_begin, panel_end)` of `op(B)` (`[k, n]`; `B` is `[k, n]` with rows `ldb` apart, or when
/// `transpose` is nonzero `[n, k]` with rows `ldb` apart) into `dst` (the whole packed B).
void seed_bf16_pack_b(
    const float *b, int64_t ldb, int transpose, int64_t k, int64_t n, int64_t panel_begin, int64_t panel_end,
    uint16_t *dst);

/// `C[i, j] (+)= Σ_k A[i, k] B[k, j]` for the rows of A panels `[row_panel_begin, row_panel_end)` and the columns of
/// B panels `[column_panel_begin, column_panel_end)` (clipped to `m` × `n`), from packed A and B of depth `kp`.
/// Adds to C when `accumulate` is nonzero, else overwrites it. Each element of C is a sum over K in increasing
/// order, blocked the same way whatever the panel ranges, so the result does not depend on how C is split.
void seed_bf16_gemm_packed(
    const uint16_t *packed_a, const uint16_t *packed_b, int64_t m, int64_t n, int64_t kp, int64_t row_panel_begin,
    int64_t row_panel_end, int64_t column_panel_begin, int64_t column_panel_end, float *c, int64_t ldc,
    int accumulate);

#ifdef __cplusplus
}
#endif

#endif
