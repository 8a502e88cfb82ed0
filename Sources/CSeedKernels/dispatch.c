// Run-time selection of the kernel implementations (cpuid), and the public entry points.
#include "internal.h"

static seed_isa detect(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma"))
        return SEED_ISA_AVX512_VNNI;
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
#else
#define SEED_DISPATCH(name, ...) name##_scalar(__VA_ARGS__);
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
