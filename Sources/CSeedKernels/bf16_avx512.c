// AVX-512 BF16 GEMM: `vcvtne2ps2bf16` rounds the float32 operands while they are packed, and a 12 × 32
// micro-kernel keeps 24 float32 accumulators in zmm registers; per K-pair it loads two 32-element bf16 vectors of
// the B panel and broadcasts each A row's pair, and `vdpbf16ps` adds both products of the pair to each lane.
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma"))), \
                             apply_to = function)

#define SEED_INLINE static inline __attribute__((always_inline))

void seed_bf16_convert_avx512bf16(const float *src, int64_t count, uint16_t *dst) {
    int64_t i = 0;
    for (; i + 32 <= count; i += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512((void *)(dst + i), (__m512i)v);
    }
    for (; i < count; i += 16) {
        int64_t left = count - i < 16 ? count - i : 16;
        __mmask16 mask = (__mmask16)((1u << left) - 1);
        __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + i));
        _mm256_mask_storeu_epi16((void *)(dst + i), mask, (__m256i)v);
    }
}

SEED_INLINE __mmask16 first_lanes16(int64_t count) {
    return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

// Transposes a 16 × 16 matrix of 32-bit words held one row per register, in place: four rounds of shuffles.
SEED_INLINE void transpose_16x16(__m512i v[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    // u[4i + j], 128-bit lane L: rows 4i ..< 4i + 4 of column 4L + j.
    for (int i = 0; i < 4; i++) {
        u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int j = 0; j < 4; j++) {
        __m512i p = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88), q = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xDD);
        __m512i r = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88), s = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xDD);
        v[j] = _mm512_shuffle_i32x4(p, r, 0x88);       // column j
        v[4 + j] = _mm512_shuffle_i32x4(q, s, 0x88);   // column 4 + j
        v[8 + j] = _mm512_shuffle_i32x4(p, r, 0xDD);   // column 8 + j
        v[12 + j] = _mm512_shuffle_i32x4(q, s, 0xDD);  // column 12 + j
    }
}

// Pairs adjacent in memory (element (i, kk) at src[i · ld + kk]): each row's next 32 elements become 16 pair words
// in one register, and each block of 16 rows × 16 pairs is transposed in registers into the panel (word (r, q) at
// q · width + r).
static void pack_contiguous(const float *src, int64_t ld, int64_t extent, int64_t k, int64_t panel_begin,
                            int64_t panel_end, int width, uint16_t *dst) {
    int64_t kp = seed_bf16_padded_depth(k);
    for (int64_t p = panel_begin; p < panel_end; p++) {
        uint32_t *panel = (uint32_t *)(dst + p * width * kp);
        for (int64_t k0 = 0; k0 < kp; k0 += 32) {
            int64_t valid = k - k0;
            int pairs = kp - k0 < 32 ? (int)((kp - k0) / 2) : 16;
            __mmask16 low = first_lanes16(valid), high = first_lanes16(valid - 16);
            uint32_t *out = panel + (k0 / 2) * width;
            for (int r0 = 0; r0 < width; r0 += 16) {
                __m512i rows[16];
                for (int r = 0; r < 16; r++) {
                    int64_t i = p * width + r0 + r;
                    if (r0 + r < width && i < extent) {
                        const float *row = src + i * ld + k0;
                        rows[r] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(high, row + 16),
                                                               _mm512_maskz_loadu_ps(low, row));
                    } else {
                        rows[r] = _mm512_setzero_si512();
                    }
                }
                transpose_16x16(rows);
                int lanes = width - r0 < 16 ? width - r0 : 16;
                for (int q = 0; q < pairs; q++) {
                    if (lanes == 16)
                        _mm512_storeu_si512((void *)(out + q * width + r0), rows[q]);
                    else
                        _mm512_mask_storeu_epi32((void *)(out + q * width + r0), first_lanes16(lanes), rows[q]);
                }
            }
        }
    }
}

// Pairs a row apart (element (i, kk) at src[kk · ld + i]): for each K-pair, 16 consecutive elements of the two rows
// are rounded together and interleaved into 16 pair words. The pair loop is outermost so each source row is read
// once, contiguously, for all the panels.
static void pack_strided(const float *src, int64_t ld, int64_t extent, int64_t k, int64_t panel_begin,
                         int64_t panel_end, int width, uint16_t *dst) {
    int64_t kp = seed_bf16_padded_depth(k);
    static const uint16_t order[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i interleave = _mm512_loadu_si512((const void *)order);
    for (int64_t q = 0; q < kp / 2; q++) {
        const float *row0 = src + 2 * q * ld;
        int has0 = 2 * q < k, has1 = 2 * q + 1 < k;
        for (int64_t p = panel_begin; p < panel_end; p++) {
            uint32_t *out = (uint32_t *)(dst + p * width * kp) + q * width;
            for (int c0 = 0; c0 < width; c0 += 16) {
                int64_t i0 = p * width + c0;
                int lanes = width - c0 < 16 ? width - c0 : 16;
                __mmask16 load = first_lanes16(extent - i0 < lanes ? extent - i0 : lanes);
                __m512 x0 = has0 ? _mm512_maskz_loadu_ps(load, row0 + i0) : _mm512_setzero_ps();
                __m512 x1 = has1 ? _mm512_maskz_loadu_ps(load, row0 + ld + i0) : _mm512_setzero_ps();
                __m512i words = _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
                if (lanes == 16)
                    _mm512_storeu_si512((void *)(out + c0), words);
                else
                    _mm512_mask_storeu_epi32((void *)(out + c0), first_lanes16(lanes), words);
            }
        }
    }
}

void seed_bf16_pack_a_avx512bf16(SEED_BF16_PACK_ARGS) {
    if (transpose)
        pack_strided(src, ld, rows, k, panel_begin, panel_end, SEED_BF16_TILE_ROWS, dst);
    else
        pack_contiguous(src, ld, rows, k, panel_begin, panel_end, SEED_BF16_TILE_ROWS, dst);
}

void seed_bf16_pack_b_avx512bf16(SEED_BF16_PACK_ARGS) {
    if (transpose)
        pack_contiguous(src, ld, rows, k, panel_begin, panel_end, SEED_BF16_TILE_COLUMNS, dst);
    else
        pack_strided(src, ld, rows, k, panel_begin, panel_end, SEED_BF16_TILE_COLUMNS, dst);
}

// One 12 × 32 tile of C over `pairs` K-pairs: starts from C (`add`) or zero, stores `rows` × `cols` of it.
SEED_INLINE void tile_12x32(const uint16_t *pa, const uint16_t *pb, int64_t pairs, float *c, int64_t ldc, int add,
                            int rows, int cols) {
    enum { MR = SEED_BF16_TILE_ROWS };
    const __mmask16 mask0 = first_lanes16(cols), mask1 = first_lanes16(cols - 16);
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) {
        if (add && r < rows) {
            acc[r][0] = _mm512_maskz_loadu_ps(mask0, c + r * ldc);
            acc[r][1] = _mm512_maskz_loadu_ps(mask1, c + r * ldc + 16);
        } else {
            acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        }
    }
    for (int64_t q = 0; q < pairs; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)pb);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(pb + 32));
        for (int r = 0; r < MR; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32(seed_load_i32((const uint8_t *)(pa + 2 * r)));
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
        }
        pa += 2 * MR;
        pb += 2 * SEED_BF16_TILE_COLUMNS;
    }
    if (rows == MR && cols == SEED_BF16_TILE_COLUMNS) {
        for (int r = 0; r < MR; r++) {
            _mm512_storeu_ps(c + r * ldc, acc[r][0]);
            _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
        }
    } else {
        for (int r = 0; r < MR; r++) {
            if (r >= rows) break;
            _mm512_mask_storeu_ps(c + r * ldc, mask0, acc[r][0]);
            _mm512_mask_storeu_ps(c + r * ldc + 16, mask1, acc[r][1]);
        }
    }
}

// Blocked over K (SEED_BF16_BLOCK_PAIRS pairs at a time: the B micro-panel stays in L1 while every A micro-panel of
// the row range streams past it from L2), then B panels, then A panels.
void seed_bf16_gemm_packed_avx512bf16(SEED_BF16_GEMM_ARGS) {
    enum { MR = SEED_BF16_TILE_ROWS, NR = SEED_BF16_TILE_COLUMNS };
    for (int64_t k0 = 0; k0 < kp / 2; k0 += SEED_BF16_BLOCK_PAIRS) {
        int64_t pairs = kp / 2 - k0 < SEED_BF16_BLOCK_PAIRS ? kp / 2 - k0 : SEED_BF16_BLOCK_PAIRS;
        int add = accumulate || k0 > 0;
        for (int64_t jp = column_panel_begin; jp < column_panel_end; jp++) {
            const uint16_t *pb = packed_b + jp * NR * kp + 2 * k0 * NR;
            int64_t j0 = jp * NR;
            int cols = n - j0 < NR ? (int)(n - j0) : NR;
            for (int64_t ip = row_panel_begin; ip < row_panel_end; ip++) {
                int64_t i0 = ip * MR;
                int rows = m - i0 < MR ? (int)(m - i0) : MR;
                tile_12x32(packed_a + ip * MR * kp + 2 * k0 * MR, pb, pairs, c + i0 * ldc + j0, ldc, add, rows, cols);
            }
        }
    }
}

#pragma clang attribute pop
#endif
