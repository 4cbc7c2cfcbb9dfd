/* edgebench's memory read-bandwidth probe: static, built with the same toolchain and variant as the
 * runtime it bounds (suite/runtimes/build/probes.py). Each of T threads sums its own buffer of
 * uint64 words, several passes; the best pass of all threads together is the figure. The buffers
 * together are far beyond any last-level cache (default 64 MiB per thread, at least 256 MiB).
 *
 *   membw THREADS [MIB_PER_THREAD] [PASSES]
 * prints one JSON line: {"probe": "membw", "threads", "bytes", "passes", "bytes_per_s", "samples"}
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    uint64_t *buf;
    size_t words;
    pthread_barrier_t *start, *end;
    int passes;
    volatile uint64_t sink;
} worker_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *work(void *arg) {
    worker_t *w = arg;
    for (int p = 0; p < w->passes; p++) {
        pthread_barrier_wait(w->start);
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const uint64_t *b = w->buf;
        for (size_t i = 0; i + 4 <= w->words; i += 4) {
            s0 += b[i]; s1 += b[i + 1]; s2 += b[i + 2]; s3 += b[i + 3];
        }
        w->sink += s0 + s1 + s2 + s3;
        pthread_barrier_wait(w->end);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    long mib = argc > 2 ? atol(argv[2]) : 64;
    int passes = argc > 3 ? atoi(argv[3]) : 5;
    if (threads < 1 || threads > 256 || mib < 1 || passes < 1) {
        fprintf(stderr, "usage: membw THREADS [MIB_PER_THREAD] [PASSES]\n");
        return 2;
    }
    if (mib * threads < 256) mib = (256 + threads - 1) / threads;
    size_t words = (size_t)mib * 1024 * 1024 / sizeof(uint64_t);
    pthread_barrier_t start, end;
    pthread_barrier_init(&start, NULL, threads + 1);
    pthread_barrier_init(&end, NULL, threads + 1);
    worker_t *ws = calloc(threads, sizeof(worker_t));
    pthread_t *ts = calloc(threads, sizeof(pthread_t));
    for (int t = 0; t < threads; t++) {
        ws[t].buf = malloc(words * sizeof(uint64_t));
        if (!ws[t].buf) {
            fprintf(stderr, "membw: cannot allocate %ld MiB for thread %d\n", mib, t);
            return 3;
        }
        for (size_t i = 0; i < words; i++) ws[t].buf[i] = i ^ (uint64_t)t;  /* touch every page */
        ws[t].words = words;
        ws[t].start = &start;
        ws[t].end = &end;
        ws[t].passes = passes;
        pthread_create(&ts[t], NULL, work, &ws[t]);
    }
    double total = (double)words * sizeof(uint64_t) * threads, best = 0;
    printf("{\"probe\": \"membw\", \"threads\": %d, \"bytes\": %.0f, \"passes\": %d, \"samples\": [", threads, total,
           passes);
    for (int p = 0; p < passes; p++) {
        pthread_barrier_wait(&start);
        double t0 = now();
        pthread_barrier_wait(&end);
        double rate = total / (now() - t0);
        if (rate > best) best = rate;
        printf("%s%.6g", p ? ", " : "", rate);
    }
    printf("], \"bytes_per_s\": %.6g}\n", best);
    for (int t = 0; t < threads; t++) pthread_join(ts[t], NULL);
    return 0;
}
