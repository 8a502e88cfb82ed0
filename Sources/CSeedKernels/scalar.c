// Portable reference implementations: the definition of what the vector kernels compute.
#include "internal.h"

void seed_quantize_q8_scalar(const float *x, int64_t blocks, int8_t *q, seed_q8_block *scales) {
    for (int64_t b = 0; b < blocks; b++) {
        const float *v = x + 32 * b;
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            float a = v[j] < 0 ? -v[j] : v[j];
            amax = a > amax ? a : amax;
        }
        float scale = amax / 127.0f;
        float inverse = amax > 0 ? 127.0f / amax : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) {
            int32_t k = seed_round_to_int(v[j] * inverse);
            q[seed_q8_offset(blocks, b, j)] = (int8_t)k;
            sum += k;
        }
        scales[b].scale = scale;
        scales[b].sum = scale * (float)sum;
    }
}

// Σ_j w[j] x[j] over one block, where the weights of block `b` are given as 32 small integers.
static inline int32_t block_dot(const int8_t *xq, int64_t blocks, int64_t b, const int32_t weights[32]) {
    int32_t sum = 0;
    for (int j = 0; j < 32; j++) sum += weights[j] * xq[seed_q8_offset(blocks, b, j)];
    return sum;
}

void seed_gemv_q4_1_q8_scalar(SEED_GEMV_ARGS) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = (const uint8_t *)w + r * row_bytes;
        float acc = 0;
        for (int64_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + 20 * b;
            int32_t weights[32];
            for (int j = 0; j < 16; j++) {
                weights[j] = block[4 + j] & 15;
                weights[j + 16] = block[4 + j] >> 4;
            }
            float d = seed_half_to_float(seed_load_u16(block));
            float m = seed_half_to_float(seed_load_u16(block + 2));
            acc += d * xs[b].scale * (float)block_dot(xq, blocks, b, weights) + m * xs[b].sum;
        }
        y[r] = acc;
    }
}

void seed_gemv_q4_0_q8_scalar(SEED_GEMV_ARGS) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = (const uint8_t *)w + r * row_bytes;
        float acc = 0;
        for (int64_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + 18 * b;
            int32_t weights[32];
            for (int j = 0; j < 16; j++) {
                weights[j] = block[2 + j] & 15;
                weights[j + 16] = block[2 + j] >> 4;
            }
            float d = seed_half_to_float(seed_load_u16(block));
            acc += d * xs[b].scale * (float)block_dot(xq, blocks, b, weights) - 8 * d * xs[b].sum;
        }
        y[r] = acc;
    }
}

void seed_gemv_q8_0_q8_scalar(SEED_GEMV_ARGS) {
    for (int64_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = (const uint8_t *)w + r * row_bytes;
        float acc = 0;
        for (int64_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + 34 * b;
            int32_t weights[32];
            for (int j = 0; j < 32; j++) weights[j] = (int8_t)block[2 + j];
            float d = seed_half_to_float(seed_load_u16(block));
            acc += d * xs[b].scale * (float)block_dot(xq, blocks, b, weights);
        }
        y[r] = acc;
    }
}

void seed_dequantize_q8(const int8_t *q, const seed_q8_block *scales, int64_t blocks, float *out) {
    for (int64_t b = 0; b < blocks; b++)
        for (int j = 0; j < 32; j++) out[32 * b + j] = scales[b].scale * (float)q[seed_q8_offset(blocks, b, j)];
}
