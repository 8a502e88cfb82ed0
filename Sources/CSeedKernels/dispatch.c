// Run-time selection of the kernel implementations (cpuid), and the public entry points.
#include "internal.h"

static seed_isa detect(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma"))
        return __builtin_cpu_supports("avx512bf16") ? SEED_ISA_AVX512_BF16 : SEED_ISA_AVX512_VNNI;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return SEED_ISA_AVX2;
#endif
    return SEED_ISA_SCALAR;
}

// -1 until first use; then the level in use. Racy first use is harmless: every thread computes the same value.
static int current_isa = -1;
static int detected_isa = -1;

seed_isa seed_kernels_detected_isa(void) {
    int isa = __atomic_load_n(&detected_isa, __ATOMIC_RELAXED);
    if (isa < 0) {
        isa = (int)detect();
        __atomic_store_n(&detected_isa, isa, __ATOMIC_RELAXED);
    }
    return (seed_isa)isa;
}

seed_isa seed_kernels_isa(void) {
    int isa = __atomic_load_n(&current_isa, __ATOMIC_RELAXED);
    if (isa < 0) {
        isa = (int)seed_kernels_detected_isa();
        __atomic_store_n(&current_isa, isa, __ATOMIC_RELAXED);
    }
    return (seed_isa)isa;
}

seed_isa seed_kernels_set_isa(seed_isa isa) {
    seed_isa best = seed_kernels_detected_isa();
    int chosen = (int)isa < 0 ? 0 : ((int)isa > (int)best ? (int)best : (int)isa);
    __atomic_store_n(&current_isa, chosen, __ATOMIC_RELAXED);
    return (seed_isa)chosen;
}

#if defined(__x86_64__)
#define SEED_DISPATCH(name, ...)                                                                                  \
    switch (seed_kernels_isa()) {                                                                                \
    case SEED_ISA_AVX512_BF16:                                                                                   \
    case SEED_ISA_AVX512_VNNI:                                                                                   \
        name##_avx512(__VA_ARGS__);                                                                              \
        return;                                                                                                  \
    case SEED_ISA_AVX2:                                                                                          \
        name##_avx2(__VA_ARGS__);                                                                                \
        return;                                                                                                  \
    default:                                                                                                     \
        name##_scalar(__VA_ARGS__);                                                                              \
        return;                                                                                                  \
    }
// The bf16 GEMM has two implementations: AVX-512 BF16, and portable code for every other level.
#define SEED_DISPATCH_BF16(name, ...)                                                                             \
    if (seed_kernels_isa() == SEED_ISA_AVX512_BF16) {                                                            \
        name##_avx512bf16(__VA_ARGS__);                                                                          \
        return;                                                                                                  \
    }                                                                                                            \
    name##_scalar(__VA_ARGS__);
#else
#define SEED_DISPATCH(name, ...) name##_scalar(__VA_ARGS__);
#define SEED_DISPATCH_BF16(name, ...) name##_scalar(__VA_ARGS__);
#endif

void seed_quantize_q8(const float *x, int64_t blocks, int8_t *q, seed_q8_block *scales) {
    SEED_DISPATCH(seed_quantize_q8, x, blocks, q, scales)
}

void seed_gemv_q4_1_q8(SEED_GEMV_ARGS) {
    SEED_DISPATCH(seed_gemv_q4_1_q8, w, row_bytes, row_begin, row_end, blocks, xq, xs, y)
}

void seed_gemv_q4_0_q8(SEED_GEMV_ARGS) {
    SEED_DISPATCH(seed_gemv_q4_0_q8, w, row_bytes, row_begin, row_end, blocks, xq, xs, y)
}

void seed_gemv_q8_0_q8(SEED_GEMV_ARGS) {
    SEED_DISPATCH(seed_gemv_q8_0_q8, w, row_bytes, row_begin, row_end, blocks, xq, xs, y)
}

void seed_gemm_q4_1_q8(SEED_GEMM_ARGS) {
    SEED_DISPATCH(seed_gemm_q4_1_q8, w, row_bytes, row_begin, row_end, blocks, tokens, xq, xs, y, y_stride)
}

void seed_gemm_q4_0_q8(SEED_GEMM_ARGS) {
    SEED_DISPATCH(seed_gemm_q4_0_q8, w, row_bytes, row_begin, row_end, blocks, tokens, xq, xs, y, y_stride)
}

void seed_gemm_q8_0_q8(SEED_GEMM_ARGS) {
    SEED_DISPATCH(seed_gemm_q8_0_q8, w, row_bytes, row_begin, row_end, blocks, tokens, xq, xs, y, y_stride)
}

uint16_t seed_float_to_bf16(float x) { return seed_bf16_round(x); }

void seed_float_to_bf16_array(const float *src, int64_t count, uint16_t *dst) {
    SEED_DISPATCH_BF16(seed_bf16_convert, src, count, dst)
}

void seed_bf16_pack_a(
    const float *a, int64_t lda, int transpose, int64_t m, int64_t k, int64_t panel_begin, int64_t panel_end,
    uint16_t *dst) {
    SEED_DISPATCH_BF16(seed_bf16_pack_a, a, lda, transpose, m, k, panel_begin, panel_end, dst)
}

void seed_bf16_pack_b(
    const float *b, int64_t ldb, int transpose, int64_t k, int64_t n, int64_t panel_begin, int64_t panel_end,
    uint16_t *dst) {
    SEED_DISPATCH_BF16(seed_bf16_pack_b, b, ldb, transpose, n, k, panel_begin, panel_end, dst)
}

void seed_bf16_gemm_packed(SEED_BF16_GEMM_ARGS) {
    SEED_DISPATCH_BF16(seed_bf16_gemm_packed, packed_a, packed_b, m, n, kp, row_panel_begin, row_panel_end,
                       column_panel_begin, column_panel_end, c, ldc, accumulate)
}
