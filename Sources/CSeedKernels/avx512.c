// AVX-512 VNNI kernels (on 256-bit registers, which Zen 4 runs at full rate): `vpdpbusd` multiplies unsigned by
// signed bytes and adds each group of four products into a 32-bit lane. Q4 nibbles (0..15) are the unsigned
// operand and the activations the signed one; for Q8_0 the sign trick makes the weights unsigned (|w| against x
// with w's sign).
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c"))), \
                             apply_to = function)

#define SEED_INLINE static inline __attribute__((always_inline))

// The 32-bit words at p, p + stride, p + 2 stride and p + 3 stride.
SEED_INLINE __m128i load_4x32(const uint8_t *p, int64_t stride) {
    __m128i v = _mm_cvtsi32_si128(seed_load_i32(p));
    v = _mm_insert_epi32(v, seed_load_i32(p + stride), 1);
    v = _mm_insert_epi32(v, seed_load_i32(p + 2 * stride), 2);
    return _mm_insert_epi32(v, seed_load_i32(p + 3 * stride), 3);
}

// The 32-bit words at p and p + stride.
SEED_INLINE __m128i load_2x32(const uint8_t *p, int64_t stride) {
    return _mm_insert_epi32(_mm_cvtsi32_si128(seed_load_i32(p)), seed_load_i32(p + stride), 1);
}

// 16 bytes at p, then 16 bytes at p + stride.
SEED_INLINE __m256i load_2x16(const uint8_t *p, int64_t stride) {
    return _mm256_loadu2_m128i((const __m128i *)(p + stride), (const __m128i *)p);
}

SEED_INLINE float sum_f32x8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

SEED_INLINE int32_t sum_i32x8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

void seed_quantize_q8_avx512(const float *x, int64_t blocks, int8_t *q, seed_q8_block *scales) {
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t b = 0; b < blocks; b++) {
        __m512 v0 = _mm512_loadu_ps(x + 32 * b);
        __m512 v1 = _mm512_loadu_ps(x + 32 * b + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
        float inverse = amax > 0 ? 127.0f / amax : 0.0f;
        __m512 k = _mm512_set1_ps(inverse);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, k)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, k));
        _mm_storeu_si128((__m128i *)(q + seed_q8_offset(blocks, b, 0)), _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(q + seed_q8_offset(blocks, b, 16)), _mm512_cvtepi32_epi8(i1));
        float scale = amax / 127.0f;
        scales[b].scale = scale;
        scales[b].sum = scale * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    }
}

// ---- Q4_1 and Q4_0 -------------------------------------------------------------------------------------------
//
// Q4_1 blocks are `{f16 d, f16 m, u8 qs[16]}` (20 bytes; element j = d·(qs[j] & 15) + m, element j + 16 =
// d·(qs[j] >> 4) + m); Q4_0 blocks are `{f16 d, u8 qs[16]}` (18 bytes, m = -8 d). Per block,
// Σ w·x̂ = d·sx·Σ q·qx + m·Σx̂ (x̂ = sx·qx, the quantized activations).

// Headers of four blocks as [d0, m0, d1, m1, d2, m2, d3, m3] (halves): Q4_1 stores [d, m] words.
SEED_INLINE __m128i q4_headers4(const uint8_t *p, int block_bytes, int has_min) {
    __m128i h = load_4x32(p, block_bytes);
    if (has_min) return h;
    const __m128i duplicate = _mm_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13);
    return _mm_shuffle_epi8(h, duplicate);
}

SEED_INLINE __m128i q4_headers2(const uint8_t *p, int block_bytes, int has_min) {
    __m128i h = load_2x32(p, block_bytes);
    if (has_min) return h;
    const __m128i duplicate = _mm_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13);
    return _mm_shuffle_epi8(h, duplicate);
}

// One row of a Q4 matrix against `T` activation vectors (token t: bytes at `xq + t · 32 · blocks`, scales at
// `xs + t · blocks`): Σ over blocks of d·sx·Σ q·qx + m·Σx̂, written to `y[t · y_stride]`. The weights are loaded and
// unpacked once for all tokens; each token's arithmetic is the same sequence of operations whatever `T` is (the
// gemv is T = 1), so a token's result never depends on the others. `T` is a constant after inlining (1 ... 8).
SEED_INLINE void q4_row(const uint8_t *row, int64_t blocks, const int8_t *xq, const seed_q8_block *xs, int T,
                        float *y, int64_t y_stride, int block_bytes, int nibbles, int has_min) {
    const __m256i spread0 = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2);
    const __m256i spread1 = _mm256_setr_epi32(4, 4, 4, 4, 6, 6, 6, 6);
    const __m256i mask = _mm256_set1_epi8(0x0F);
    const int64_t x_stride = 32 * blocks;
    __m256 acc[8], off[8];
    for (int t = 0; t < T; t++) acc[t] = off[t] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= blocks; b += 4) {  // two pairs of blocks
        const uint8_t *p = row + block_bytes * b;
        __m256 h = _mm256_cvtph_ps(q4_headers4(p, block_bytes, has_min));
        __m256i n0 = load_2x16(p + nibbles, block_bytes), n1 = load_2x16(p + 2 * block_bytes + nibbles, block_bytes);
        __m256i lo0 = _mm256_and_si256(n0, mask), hi0 = _mm256_and_si256(_mm256_srli_epi16(n0, 4), mask);
        __m256i lo1 = _mm256_and_si256(n1, mask), hi1 = _mm256_and_si256(_mm256_srli_epi16(n1, 4), mask);
        for (int t = 0; t < T; t++) {
            const int8_t *x = xq + t * x_stride + 32 * b;
            // [d0·scale0, m0·sum0, d1·scale1, m1·sum1, ...]
            __m256 f = _mm256_mul_ps(h, _mm256_loadu_ps(&xs[t * blocks + b].scale));
            off[t] = _mm256_add_ps(off[t], f);
            __m256i s0 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), lo0, _mm256_loadu_si256((const __m256i *)x));
            s0 = _mm256_dpbusd_epi32(s0, hi0, _mm256_loadu_si256((const __m256i *)(x + 32)));
            __m256i s1 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), lo1, _mm256_loadu_si256((const __m256i *)(x + 64)));
            s1 = _mm256_dpbusd_epi32(s1, hi1, _mm256_loadu_si256((const __m256i *)(x + 96)));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_permutevar8x32_ps(f, spread0), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), _mm256_permutevar8x32_ps(f, spread1), acc[t]);
        }
    }
    if (b + 2 <= blocks) {  // one more pair
        const uint8_t *p = row + block_bytes * b;
        __m128 h = _mm_cvtph_ps(q4_headers2(p, block_bytes, has_min));
        __m256i n0 = load_2x16(p + nibbles, block_bytes);
        __m256i lo0 = _mm256_and_si256(n0, mask), hi0 = _mm256_and_si256(_mm256_srli_epi16(n0, 4), mask);
        for (int t = 0; t < T; t++) {
            const int8_t *x = xq + t * x_stride + 32 * b;
            __m128 f = _mm_mul_ps(h, _mm_loadu_ps(&xs[t * blocks + b].scale));
            off[t] = _mm256_add_ps(off[t], _mm256_zextps128_ps256(f));
            __m256i s0 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), lo0, _mm256_loadu_si256((const __m256i *)x));
            s0 = _mm256_dpbusd_epi32(s0, hi0, _mm256_loadu_si256((const __m256i *)(x + 32)));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0),
                                     _mm256_permutevar8x32_ps(_mm256_zextps128_ps256(f), spread0), acc[t]);
        }
        b += 2;
    }
    // Lanes 1, 3, 5, 7 of `off` hold m·Σx̂ (Q4_1) or d·Σx̂ (Q4_0, to be scaled by -8).
    float total[8];
    for (int t = 0; t < T; t++) {
        __m256 m = _mm256_blend_ps(_mm256_setzero_ps(), off[t], 0xAA);
        __m256 a = has_min ? _mm256_add_ps(acc[t], m) : _mm256_fmadd_ps(m, _mm256_set1_ps(-8.0f), acc[t]);
        total[t] = sum_f32x8(a);
    }
    if (b < blocks) {  // a last unpaired block, natural order
        const uint8_t *p = row + block_bytes * b;
        __m128i q = _mm_loadu_si128((const __m128i *)(p + nibbles));
        __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), mask);
        float d = _cvtsh_ss(seed_load_u16(p));
        float mb = has_min ? _cvtsh_ss(seed_load_u16(p + 2)) : -8 * d;
        for (int t = 0; t < T; t++) {
            const int8_t *x = xq + t * x_stride + 32 * b;
            const seed_q8_block *s = xs + t * blocks + b;
            __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), v, _mm256_loadu_si256((const __m256i *)x));
            total[t] += d * s->scale * (float)sum_i32x8(dot) + mb * s->sum;
        }
    }
    for (int t = 0; t < T; t++) y[t * y_stride] = total[t];
}

// Rows are processed one at a time: interleaving several rows measured up to 3x slower (the hardware prefetcher
// follows one forward stream far better than four interleaved ones).
void seed_gemv_q4_1_q8_avx512(SEED_GEMV_ARGS) {
    for (int64_t r = row_begin; r < row_end; r++)
        q4_row((const uint8_t *)w + r * row_bytes, blocks, xq, xs, 1, y + r, 0, 20, 4, 1);
}

void seed_gemv_q4_0_q8_avx512(SEED_GEMV_ARGS) {
    for (int64_t r = row_begin; r < row_end; r++)
        q4_row((const uint8_t *)w + r * row_bytes, blocks, xq, xs, 1, y + r, 0, 18, 2, 0);
}

void seed_gemm_q4_1_q8_avx512(SEED_GEMM_ARGS) {
#define CALL(T) q4_row(row, blocks, xq + t * 32 * blocks, xs + t * blocks, T, y + t * y_stride + r, y_stride, 20, 4, 1)
    SEED_GEMM_TOKEN_GROUPS8(CALL)
#undef CALL
}

void seed_gemm_q4_0_q8_avx512(SEED_GEMM_ARGS) {
#define CALL(T) q4_row(row, blocks, xq + t * 32 * blocks, xs + t * blocks, T, y + t * y_stride + r, y_stride, 18, 2, 0)
    SEED_GEMM_TOKEN_GROUPS8(CALL)
#undef CALL
}

// ---- Q8_0 ----------------------------------------------------------------------------------------------------
//
// Q8_0 blocks are `{f16 d, i8 qs[32]}` (34 bytes; element j = d·qs[j]).

// The activation block k as 32 naturally ordered bytes.
SEED_INLINE __m256i activation_block(const int8_t *xq, int64_t blocks, int64_t k) {
    if (k >= blocks / 2 * 2) return _mm256_loadu_si256((const __m256i *)(xq + 32 * k));
    const int8_t *p = xq + 64 * (k / 2) + 16 * (k % 2);
    return _mm256_loadu2_m128i((const __m128i *)(p + 32), (const __m128i *)p);
}

// One row of a Q8_0 matrix against `T` activation vectors (as `q4_row`): the weights' magnitudes and scales are
// loaded once for all tokens; each token's arithmetic is the same whatever `T` is.
SEED_INLINE void q8_0_row(const uint8_t *row, int64_t blocks, const int8_t *xq, const seed_q8_block *xs, int T,
                          float *y, int64_t y_stride) {
    const int64_t x_stride = 32 * blocks;
    __m256 acc[8];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= blocks; b += 4) {
        const uint8_t *p = row + 34 * b;
        // [d0, 0, d1, 0, ...]: multiplied by [scale0, sum0, ...], the four block scales land in the even lanes.
        __m256 h = _mm256_cvtph_ps(_mm_and_si128(load_4x32(p, 34), _mm_set1_epi32(0xFFFF)));
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 2)), w1 = _mm256_loadu_si256((const __m256i *)(p + 36));
        __m256i w2 = _mm256_loadu_si256((const __m256i *)(p + 70)), w3 = _mm256_loadu_si256((const __m256i *)(p + 104));
        __m256i a0 = _mm256_abs_epi8(w0), a1 = _mm256_abs_epi8(w1), a2 = _mm256_abs_epi8(w2), a3 = _mm256_abs_epi8(w3);
        for (int t = 0; t < T; t++) {
            const int8_t *x = xq + t * x_stride;
            __m256 f = _mm256_mul_ps(h, _mm256_loadu_ps(&xs[t * blocks + b].scale));
#define SEED_Q8_STEP(k, wk, ak)                                                                                   \
    acc[t] = _mm256_fmadd_ps(                                                                                    \
        _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ak,                                        \
                                               _mm256_sign_epi8(activation_block(x, blocks, b + k), wk))),       \
        _mm256_permutevar8x32_ps(f, _mm256_set1_epi32(2 * k)), acc[t]);
            SEED_Q8_STEP(0, w0, a0)
            SEED_Q8_STEP(1, w1, a1)
            SEED_Q8_STEP(2, w2, a2)
            SEED_Q8_STEP(3, w3, a3)
#undef SEED_Q8_STEP
        }
    }
    for (; b < blocks; b++) {
        const uint8_t *p = row + 34 * b;
        float d = _cvtsh_ss(seed_load_u16(p));
        __m256i wv = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i a = _mm256_abs_epi8(wv);
        for (int t = 0; t < T; t++) {
            __m256 scale = _mm256_set1_ps(d * xs[t * blocks + b].scale);
            __m256i x = activation_block(xq + t * x_stride, blocks, b);
            __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, _mm256_sign_epi8(x, wv));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc[t]);
        }
    }
    for (int t = 0; t < T; t++) y[t * y_stride] = sum_f32x8(acc[t]);
}

void seed_gemv_q8_0_q8_avx512(SEED_GEMV_ARGS) {
    for (int64_t r = row_begin; r < row_end; r++) q8_0_row((const uint8_t *)w + r * row_bytes, blocks, xq, xs, 1, y + r, 0);
}

void seed_gemm_q8_0_q8_avx512(SEED_GEMM_ARGS) {
#define CALL(T) q8_0_row(row, blocks, xq + t * 32 * blocks, xs + t * blocks, T, y + t * y_stride + r, y_stride)
    SEED_GEMM_TOKEN_GROUPS8(CALL)
#undef CALL
}

#pragma clang attribute pop
#endif
