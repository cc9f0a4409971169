// Cross-core hand-over probe: two threads take turns reading and rewriting a 40 KB buffer the
// other thread wrote last (4a's gradients are about that size), 20,000 turns; prints the mean time
// of one turn. On one core's own data the same pass takes ~1.5 µs on this project's Zen 4 VM; in
// the host states where two-thread steps slow down, a turn takes 2.5–3 µs (see BENCHMARKS.md,
// "Steps in parts"). Build: gcc -O3 -ffast-math -mavx2 -mfma tools/xcore_probe.c -o /tmp/xcore_probe -lpthread
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#define N 10240
#define ROUNDS 20000
static float buf[N] __attribute__((aligned(64)));
static atomic_int turn = 0;
static double spent[2];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *worker(void *arg) {
    int me = (int)(long)arg;
    for (int r = 0; r < ROUNDS; r++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != me) {
        }
        double t = now();
        float s = 0;
        for (int i = 0; i < N; i++) s += buf[i];
        for (int i = 0; i < N; i++) buf[i] = s * 1e-9f + i;
        spent[me] += now() - t;
        atomic_store_explicit(&turn, 1 - me, memory_order_release);
    }
    return 0;
}

int main(void) {
    pthread_t a, b;
    pthread_create(&a, 0, worker, (void *)0);
    pthread_create(&b, 0, worker, (void *)1);
    pthread_join(a, 0);
    pthread_join(b, 0);
    printf("%.2f us per turn (read and rewrite 40 KB the other core wrote)\n", (spent[0] + spent[1]) / (2.0 * ROUNDS) * 1e6);
    return 0;
}
