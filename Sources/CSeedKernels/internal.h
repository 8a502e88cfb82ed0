// Declarations shared by the implementation files of CSeedKernels (not part of the public header).
#ifndef SEED_C_KERNELS_INTERNAL_H
#define SEED_C_KERNELS_INTERNAL_H

#include <string.h>

#include "CSeedKernels.h"

// Layout of a quantized activation vector: blocks are taken in pairs; within a pair the low halves (elements
// 0..<16) of the two blocks come first, then their high halves (elements 16..<32), so that one 32-byte load meets
// the low nibbles of two Q4 blocks. A last unpaired block keeps its natural order (32 consecutive bytes).
static inline int64_t seed_q8_offset(int64_t blocks, int64_t block, int64_t element) {
    if (block >= blocks / 2 * 2) return block * 32 + element;
    int64_t pair = block / 2, k = block % 2;
    return pair * 64 + (element < 16 ? 16 * k + element : 32 + 16 * k + element - 16);
}

static inline float seed_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1F;
    uint32_t mantissa = h & 0x3FF;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: renormalise
            exponent = 113;
            while (!(mantissa & 0x400)) {
                mantissa <<= 1;
                exponent--;
            }
            bits = sign | (exponent << 23) | ((mantissa & 0x3FF) << 13);
        }
    } else if (exponent == 31) {
        bits = sign | 0x7F800000 | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// Rounds |v| <= 2^22 to the nearest integer, ties to even (what the vector conversions do in the default rounding
// mode), without calling libm.
static inline int32_t seed_round_to_int(float v) {
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding it leaves the rounded integer in the low mantissa bits
    float shifted = v + magic;
    return (int32_t)(shifted - magic);
}

static inline uint16_t seed_load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline int32_t seed_load_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#define SEED_GEMV_ARGS                                                                                            \
    const void *w, size_t row_bytes, int64_t row_begin, int64_t row_end, int64_t blocks, const int8_t *xq,       \
        const seed_q8_block *xs, float *y

#define SEED_GEMM_ARGS                                                                                            \
    const void *w, size_t row_bytes, int64_t row_begin, int64_t row_end, int64_t blocks, int64_t tokens,         \
        const int8_t *xq, const seed_q8_block *xs, float *y, int64_t y_stride

// The vector gemm kernels: for each row, tokens in groups of four (the row stays in L1 between groups), then one
// group of the remaining 1 ... 3. `call(T)` handles tokens t ..< t + T of row `row` (T is a constant).
#define SEED_GEMM_TOKEN_GROUPS(call)                                                                            \
    for (int64_t r = row_begin; r < row_end; r++) {                                                              \
        const uint8_t *row = (const uint8_t *)w + r * row_bytes;                                                 \
        int64_t t = 0;                                                                                           \
        for (; t + 4 <= tokens; t += 4) call(4);                                                                 \
        switch (tokens - t) {                                                                                    \
        case 3: call(3); break;                                                                                  \
        case 2: call(2); break;                                                                                  \
        case 1: call(1); break;                                                                                  \
        default: break;                                                                                          \
        }                                                                                                        \
    }

// As `SEED_GEMM_TOKEN_GROUPS` with groups of eight (for AVX-512's 32 vector registers), then the remaining 1 ... 7.
#define SEED_GEMM_TOKEN_GROUPS8(call)                                                                           \
    for (int64_t r = row_begin; r < row_end; r++) {                                                              \
        const uint8_t *row = (const uint8_t *)w + r * row_bytes;                                                 \
        int64_t t = 0;                                                                                           \
        for (; t + 8 <= tokens; t += 8) call(8);                                                                 \
        switch (tokens - t) {                                                                                    \
        case 7: call(7); break;                                                                                  \
        case 6: call(6); break;                                                                                  \
        case 5: call(5); break;                                                                                  \
        case 4: call(4); break;                                                                                  \
        case 3: call(3); break;                                                                                  \
        case 2: call(2); break;                                                                                  \
        case 1: call(1); break;                                                                                  \
        default: break;                                                                                          \
        }                                                                                                        \
    }

// bf16 bits of x, rounded to nearest even; NaN stays NaN (quieted), float32 subnormals become signed zeros: what
// `vcvtne2ps2bf16` does (it ignores MXCSR, and treats denormal inputs as zeros).
static inline uint16_t seed_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float seed_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#define SEED_BF16_PACK_ARGS                                                                                       \
    const float *src, int64_t ld, int transpose, int64_t rows, int64_t k, int64_t panel_begin, int64_t panel_end, \
        uint16_t *dst

#define SEED_BF16_GEMM_ARGS                                                                                       \
    const uint16_t *packed_a, const uint16_t *packed_b, int64_t m, int64_t n, int64_t kp, int64_t row_panel_begin, \
        int64_t row_panel_end, int64_t column_panel_begin, int64_t column_panel_end, float *c, int64_t ldc,       \
        int accumulate

// K-pairs per cache block of the bf16 GEMM: a B micro-panel of this depth is 128 · 128 = 16 KiB (half of L1), an
// A micro-panel 6 KiB.
#define SEED_BF16_BLOCK_PAIRS 128

void seed_bf16_convert_scalar(const float *src, int64_t count, uint16_t *dst);
void seed_bf16_pack_a_scalar(SEED_BF16_PACK_ARGS);
void seed_bf16_pack_b_scalar(SEED_BF16_PACK_ARGS);
void seed_bf16_gemm_packed_scalar(SEED_BF16_GEMM_ARGS);

void seed_quantize_q8_scalar(const float *x, int64_t blocks, int8_t *q, seed_q8_block *scales);
void seed_gemv_q4_1_q8_scalar(SEED_GEMV_ARGS);
void seed_gemv_q4_0_q8_scalar(SEED_GEMV_ARGS);
void seed_gemv_q8_0_q8_scalar(SEED_GEMV_ARGS);
void seed_gemm_q4_1_q8_scalar(SEED_GEMM_ARGS);
void seed_gemm_q4_0_q8_scalar(SEED_GEMM_ARGS);
void seed_gemm_q8_0_q8_scalar(SEED_GEMM_ARGS);

#if defined(__x86_64__)
void seed_quantize_q8_avx2(const float *x, int64_t blocks, int8_t *q, seed_q8_block *scales);
void seed_gemv_q4_1_q8_avx2(SEED_GEMV_ARGS);
void seed_gemv_q4_0_q8_avx2(SEED_GEMV_ARGS);
void seed_gemv_q8_0_q8_avx2(SEED_GEMV_ARGS);
void seed_gemm_q4_1_q8_avx2(SEED_GEMM_ARGS);
void seed_gemm_q4_0_q8_avx2(SEED_GEMM_ARGS);
void seed_gemm_q8_0_q8_avx2(SEED_GEMM_ARGS);

void seed_quantize_q8_avx512(const float *x, int64_t blocks, int8_t *q, seed_q8_block *scales);
void seed_gemv_q4_1_q8_avx512(SEED_GEMV_ARGS);
void seed_gemv_q4_0_q8_avx512(SEED_GEMV_ARGS);
void seed_gemv_q8_0_q8_avx512(SEED_GEMV_ARGS);
void seed_gemm_q4_1_q8_avx512(SEED_GEMM_ARGS);
void seed_gemm_q4_0_q8_avx512(SEED_GEMM_ARGS);
void seed_gemm_q8_0_q8_avx512(SEED_GEMM_ARGS);

void seed_bf16_convert_avx512bf16(const float *src, int64_t count, uint16_t *dst);
void seed_bf16_pack_a_avx512bf16(SEED_BF16_PACK_ARGS);
void seed_bf16_pack_b_avx512bf16(SEED_BF16_PACK_ARGS);
void seed_bf16_gemm_packed_avx512bf16(SEED_BF16_GEMM_ARGS);
#endif

#endif
