// Portable bf16 GEMM: the packing (bit-identical to the vector packers) and a micro-kernel that adds each K-pair's
// two products one at a time in float32 (the even element first).
#include "internal.h"

void seed_bf16_convert_scalar(const float *src, int64_t count, uint16_t *dst) {
    for (int64_t i = 0; i < count; i++) dst[i] = seed_bf16_round(src[i]);
}

// Element (i, kk) of the operand being packed is src[i · ld + kk] when `contiguous` (pairs adjacent in memory),
// else src[kk · ld + i]; i runs along the panel (`width` per panel), kk along K.
static void pack_panels(const float *src, int64_t ld, int contiguous, int64_t extent, int64_t k, int64_t panel_begin,
                        int64_t panel_end, int width, uint16_t *dst) {
    int64_t kp = seed_bf16_padded_depth(k);
    for (int64_t p = panel_begin; p < panel_end; p++) {
        uint16_t *panel = dst + p * width * kp;
        for (int64_t q = 0; q < kp / 2; q++) {
            for (int r = 0; r < width; r++) {
                int64_t i = p * width + r;
                for (int e = 0; e < 2; e++) {
                    int64_t kk = 2 * q + e;
                    float v = 0;
                    if (i < extent && kk < k) v = contiguous ? src[i * ld + kk] : src[kk * ld + i];
                    panel[2 * (q * width + r) + e] = seed_bf16_round(v);
                }
            }
        }
    }
}

void seed_bf16_pack_a_scalar(SEED_BF16_PACK_ARGS) {
    pack_panels(src, ld, !transpose, rows, k, panel_begin, panel_end, SEED_BF16_TILE_ROWS, dst);
}

void seed_bf16_pack_b_scalar(SEED_BF16_PACK_ARGS) {
    pack_panels(src, ld, transpose, rows, k, panel_begin, panel_end, SEED_BF16_TILE_COLUMNS, dst);
}

void seed_bf16_gemm_packed_scalar(SEED_BF16_GEMM_ARGS) {
    enum { MR = SEED_BF16_TILE_ROWS, NR = SEED_BF16_TILE_COLUMNS };
    for (int64_t k0 = 0; k0 < kp / 2; k0 += SEED_BF16_BLOCK_PAIRS) {
        int64_t pairs = kp / 2 - k0 < SEED_BF16_BLOCK_PAIRS ? kp / 2 - k0 : SEED_BF16_BLOCK_PAIRS;
        int add = accumulate || k0 > 0;
        for (int64_t jp = column_panel_begin; jp < column_panel_end; jp++) {
            const uint16_t *pb = packed_b + jp * NR * kp + 2 * k0 * NR;
            int64_t j0 = jp * NR;
            int cols = n - j0 < NR ? (int)(n - j0) : NR;
            for (int64_t ip = row_panel_begin; ip < row_panel_end; ip++) {
                const uint16_t *pa = packed_a + ip * MR * kp + 2 * k0 * MR;
                int64_t i0 = ip * MR;
                int rows = m - i0 < MR ? (int)(m - i0) : MR;
                float acc[MR][NR];
                for (int r = 0; r < MR; r++)
                    for (int j = 0; j < NR; j++) acc[r][j] = (add && r < rows && j < cols) ? c[(i0 + r) * ldc + j0 + j] : 0;
                for (int64_t q = 0; q < pairs; q++) {
                    const uint16_t *aq = pa + 2 * q * MR, *bq = pb + 2 * q * NR;
                    for (int r = 0; r < MR; r++) {
                        float a0 = seed_bf16_to_float(aq[2 * r]), a1 = seed_bf16_to_float(aq[2 * r + 1]);
                        for (int j = 0; j < NR; j++) {
                            float s = acc[r][j] + a0 * seed_bf16_to_float(bq[2 * j]);
                            acc[r][j] = s + a1 * seed_bf16_to_float(bq[2 * j + 1]);
                        }
                    }
                }
                for (int r = 0; r < rows; r++)
                    for (int j = 0; j < cols; j++) c[(i0 + r) * ldc + j0 + j] = acc[r][j];
            }
        }
    }
}
