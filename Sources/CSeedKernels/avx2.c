// AVX2 kernels for CPUs without AVX-512 VNNI: `vpmaddubsw` multiplies unsigned by signed bytes into 16-bit pairs,
// `vpmaddwd` widens those to 32-bit lanes. Q8_0 uses the sign trick (|w| times x with w's sign).
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

static inline float sum_f32x8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

static inline int32_t sum_i32x8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

static inline __m256i load_2x16(const uint8_t *p, int64_t stride) {
    return _mm256_loadu2_m128i((const __m128i *)(p + stride), (const __m128i *)p);
}

void seed_quantize_q8_avx2(const float *x, int64_t blocks, int8_t *q, seed_q8_block *scales) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < blocks; b++) {
        const float *v = x + 32 * b;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
        __m256 v2 = _mm256_loadu_ps(v + 16), v3 = _mm256_loadu_ps(v + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
        float inverse = amax > 0 ? 127.0f / amax : 0.0f;
        __m256 k = _mm256_set1_ps(inverse);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, k)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, k));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, k)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, k));
        __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        bytes = _mm256_permutevar8x32_epi32(bytes, order);
        _mm_storeu_si128((__m128i *)(q + seed_q8_offset(blocks, b, 0)), _mm256_castsi256_si128(bytes));
        _mm_storeu_si128((__m128i *)(q + seed_q8_offset(blocks, b, 16)), _mm256_extracti128_si256(bytes, 1));
        float scale = amax / 127.0f;
        scales[b].scale = scale;
        scales[b].sum = scale * (float)sum_i32x8(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
    }
}

// Σ over pairs of lanes of (unsigned a) × (signed b), widened to eight 32-bit lanes. Callers keep every 16-bit
// pair sum below 2^15 (nibbles: 2 × 15 × 127; Q8_0 with the sign trick: 2 × 128 × 127).
static inline __m256i dot_u8_s8(__m256i a, __m256i b) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

// Q4: the dot product of blocks k and k + 1 (`nibbles`: their 16 bytes each) with low/high activation halves:
// lanes 0..<4 belong to block k, 4..<8 to block k + 1.
static inline __m256i q4_pair_dot(__m256i nibbles, __m256i xl, __m256i xh) {
    const __m256i mask = _mm256_set1_epi8(0x0F);
    __m256i lo = _mm256_and_si256(nibbles, mask);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(nibbles, 4), mask);
    // Each 16-bit pair sum is at most 2 × 15 × 127, so two of them still fit before widening.
    __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

static inline int32_t q4_block_dot(const uint8_t *nibbles, const int8_t *x) {
    __m128i q = _mm_loadu_si128((const __m128i *)nibbles);
    __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    return sum_i32x8(dot_u8_s8(v, _mm256_loadu_si256((const __m256i *)x)));
}

// One row of a Q4 matrix: Q4_1 (`{f16 d, f16 m, u8 qs[16]}`, 20 bytes) or Q4_0 (`{f16 d, u8 qs[16]}`, 18 bytes,
// m = -8 d). Σ over blocks of d·sx·Σ q·qx + m·Σx̂, two blocks per step.
static inline __attribute__((always_inline)) float q4_row(const uint8_t *row, int64_t blocks, const int8_t *xq,
                                                          const seed_q8_block *xs, int block_bytes, int nibbles,
                                                          int has_min) {
    __m256 acc = _mm256_setzero_ps();
    float offset = 0;
    int64_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        const uint8_t *p = row + block_bytes * b;
        __m256i s = q4_pair_dot(load_2x16(p + nibbles, block_bytes), _mm256_loadu_si256((const __m256i *)(xq + 32 * b)),
                                _mm256_loadu_si256((const __m256i *)(xq + 32 * b + 32)));
        float d0 = _cvtsh_ss(seed_load_u16(p)), d1 = _cvtsh_ss(seed_load_u16(p + block_bytes));
        float m0 = has_min ? _cvtsh_ss(seed_load_u16(p + 2)) : -8 * d0;
        float m1 = has_min ? _cvtsh_ss(seed_load_u16(p + block_bytes + 2)) : -8 * d1;
        __m256 scale = _mm256_set_m128(_mm_set1_ps(d1 * xs[b + 1].scale), _mm_set1_ps(d0 * xs[b].scale));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc);
        offset += m0 * xs[b].sum + m1 * xs[b + 1].sum;
    }
    float total = sum_f32x8(acc) + offset;
    if (b < blocks) {  // a last unpaired block, natural order
        const uint8_t *p = row + block_bytes * b;
        float d = _cvtsh_ss(seed_load_u16(p));
        float m = has_min ? _cvtsh_ss(seed_load_u16(p + 2)) : -8 * d;
        total += d * xs[b].scale * (float)q4_block_dot(p + nibbles, xq + 32 * b) + m * xs[b].sum;
    }
    return total;
}

void seed_gemv_q4_1_q8_avx2(SEED_GEMV_ARGS) {
    for (int64_t r = row_begin; r < row_end; r++)
        y[r] = q4_row((const uint8_t *)w + r * row_bytes, blocks, xq, xs, 20, 4, 1);
}

void seed_gemv_q4_0_q8_avx2(SEED_GEMV_ARGS) {
    for (int64_t r = row_begin; r < row_end; r++)
        y[r] = q4_row((const uint8_t *)w + r * row_bytes, blocks, xq, xs, 18, 2, 0);
}

void seed_gemv_q8_0_q8_avx2(SEED_GEMV_ARGS) {
    const int64_t paired = blocks / 2 * 2;
    for (int64_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = (const uint8_t *)w + r * row_bytes;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < blocks; b++) {
            const uint8_t *p = row + 34 * b;
            __m256i x;
            if (b < paired) {
                const int8_t *g = xq + 64 * (b / 2) + 16 * (b % 2);
                x = _mm256_loadu2_m128i((const __m128i *)(g + 32), (const __m128i *)g);
            } else {
                x = _mm256_loadu_si256((const __m256i *)(xq + 32 * b));
            }
            __m256i wv = _mm256_loadu_si256((const __m256i *)(p + 2));
            __m256i s = dot_u8_s8(_mm256_abs_epi8(wv), _mm256_sign_epi8(x, wv));
            __m256 scale = _mm256_set1_ps(_cvtsh_ss(seed_load_u16(p)) * xs[b].scale);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc);
        }
        y[r] = sum_f32x8(acc);
    }
}

#pragma clang attribute pop
#endif
