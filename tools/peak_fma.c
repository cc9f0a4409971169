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
            const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
            __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0;
            __m256 a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
            for (long i = 0; i < iters; i++) {
                a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c);
                a2 = _mm256_fmadd_ps(a2, m, c); a3 = _mm256_fmadd_ps(a3, m, c);
                a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c);
                a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c);
                a8 = _mm256_fmadd_ps(a8, m, c); a9 = _mm256_fmadd_ps(a9, m, c);
            }
            __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                     _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
            s = _mm256_add_ps(s, _mm256_add_ps(a8, a9));
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
