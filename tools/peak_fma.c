/* This machine's f32 FMA peak, per thread and for all threads together: ten independent chains of
 * 8-wide fused multiply-adds per thread (enough to keep two FMA units busy), no memory traffic.
 * The denominator of the "% of peak" figures in BENCHMARKS.md, and the check that the second vCPU
 * really adds FMA throughput.
 *
 *   gcc -O2 -mavx2 -mfma -fopenmp tools/peak_fma.c -o /tmp/peak_fma && /tmp/peak_fma
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

int main(void) {
    const long iters = 200000000L / 8;
    int max = omp_get_max_threads();
    for (int nt = 1; nt <= max; nt++) {
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(nt)
        {
            __m256 a[10];
            for (int i = 0; i < 10; i++) a[i] = _mm256_set1_ps(1.0f + i);
            const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
            for (long i = 0; i < iters; i++)
                for (int j = 0; j < 10; j++) a[j] = _mm256_fmadd_ps(a[j], m, c);
            __m256 s = a[0];
            for (int i = 1; i < 10; i++) s = _mm256_add_ps(s, a[i]);
            float o[8];
            _mm256_storeu_ps(o, s);
            if (o[0] == 12345.0f) printf("unlikely\n");
        }
        double t = omp_get_wtime() - t0;
        double flops = (double)nt * iters * 10 * 16;
        printf("%d thread(s): %.1f GFLOP/s in all, %.1f per thread\n", nt, flops / t / 1e9, flops / t / 1e9 / nt);
    }
    return 0;
}
