/* This machine's f32 FMA peak, per thread and for all threads together, at both widths: ten
 * independent chains of 8-wide (AVX2) and 16-wide (AVX-512F) fused multiply-adds per thread
 * (enough to keep two FMA units busy), no memory traffic. The denominators of the "% of peak"
 * figures in BENCHMARKS.md ("the host's widest-FMA peak": the larger of the two), and the check
 * that the second vCPU really adds FMA throughput. The chains start from different values: when
 * they all started at 1.0 (this tool until issue 19), GCC merged the ten identical chains into one
 * and the loop ran one latency-bound FMA per iteration, counted as ten (check with objdump: ten
 * vfmadd per loop iteration). The AVX-512 variant runs only where the CPU
 * has AVX-512F (checked at run time).
 *
 *   gcc -O2 -mavx2 -mfma -fopenmp tools/peak_fma.c -o /tmp/peak_fma && /tmp/peak_fma
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

#define CHAINS(T, SET1, FMA, ADD, STORE, W)                                                       \
    {                                                                                              \
        const T m = SET1(0.999999f), c = SET1(1e-7f);                                              \
        T a0 = SET1(1.0f), a1 = SET1(1.1f), a2 = SET1(1.2f), a3 = SET1(1.3f), a4 = SET1(1.4f);       \
        T a5 = SET1(1.5f), a6 = SET1(1.6f), a7 = SET1(1.7f), a8 = SET1(1.8f), a9 = SET1(1.9f);       \
        for (long i = 0; i < iters; i++) {                                                         \
            a0 = FMA(a0, m, c); a1 = FMA(a1, m, c); a2 = FMA(a2, m, c); a3 = FMA(a3, m, c);        \
            a4 = FMA(a4, m, c); a5 = FMA(a5, m, c); a6 = FMA(a6, m, c); a7 = FMA(a7, m, c);        \
            a8 = FMA(a8, m, c); a9 = FMA(a9, m, c);                                                \
        }                                                                                          \
        T s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                   \
        s = ADD(s, ADD(a8, a9));                                                                   \
        float o[W];                                                                                \
        STORE(o, s);                                                                               \
        if (o[0] == 12345.0f) printf("unlikely\n");                                                \
    }

__attribute__((target("avx2,fma"))) static void chains_avx2(long iters) {
    CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8)
}

__attribute__((target("avx512f"))) static void chains_avx512(long iters) {
    CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16)
}

static void peak(const char *name, int lanes, void (*body)(long)) {
    const long iters = 200000000L / lanes;
    int max = omp_get_max_threads();
    for (int nt = 1; nt <= max; nt++) {
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(nt)
        body(iters);
        double t = omp_get_wtime() - t0;
        double flops = (double)nt * iters * 10 * 2 * lanes;
        printf("%s %d thread(s): %.1f GFLOP/s in all, %.1f per thread\n", name, nt, flops / t / 1e9,
               flops / t / 1e9 / nt);
    }
}

int main(void) {
    __builtin_cpu_init();
    peak("AVX2   ", 8, chains_avx2);
    if (__builtin_cpu_supports("avx512f"))
        peak("AVX-512", 16, chains_avx512);
    else
        printf("AVX-512: not supported by this CPU\n");
    return 0;
}
