/* edgebench's compute-peak probe: static, built with the same toolchain and CPU variant as the runtime
 * it bounds (suite/runtimes/build/probes.py), so it runs the instructions that build runs:
 *   arm64 i8mm: smmla (int8 matrix multiply-accumulate, 32 MACs); dotprod: sdot (16 MACs);
 *   armv8.0: smlal/smlal2 (8 MACs each); x86: (v)pmaddubsw at the widest width the build has.
 * and the fp32 (and, where the build has it, fp16) fused multiply-add peak. Every kernel keeps
 * independent accumulator chains busy on T threads for a fixed time; ops = 2 x MACs.
 *
 *   peak THREADS [SECONDS_PER_KERNEL]
 * prints one JSON line: {"probe": "peak", "threads", "int8": {"instr", "ops_per_s"}, "fp32": {...}, "fp16": {...}}
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__aarch64__)
#include <arm_neon.h>
#elif defined(__x86_64__)
#include <immintrin.h>
#endif

#define CHUNK 4096 /* iterations between clock reads */

/* an empty asm that "changes" x every iteration: the compiler cannot hoist a product of loop
 * invariants out of the loop (it knows smlal and pmaddubsw are a multiply and an add) */
#if defined(__aarch64__)
#define OPAQUE(x) __asm__ volatile("" : "+w"(x))
#else
#define OPAQUE(x) __asm__ volatile("" : "+v"(x))
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static volatile int8_t seed8[64] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                    -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16,
                                    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                    -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16};
static volatile float seedf[16] = {1.0001f, 0.9999f, 1.0002f, 0.9998f, 1.0001f, 0.9999f, 1.0002f, 0.9998f,
                                   1.0001f, 0.9999f, 1.0002f, 0.9998f, 1.0001f, 0.9999f, 1.0002f, 0.9998f};
volatile int64_t sink;

/* each kernel runs for `secs` and returns the ops it did */
typedef double (*kernel_t)(double secs);

#if defined(__aarch64__)
#if defined(__ARM_FEATURE_MATMUL_INT8) || defined(__ARM_FEATURE_DOTPROD)
#if defined(__ARM_FEATURE_MATMUL_INT8)
#define I8(c, a, b) vmmlaq_s32((c), (a), (b))
#define I8_OPS 64 /* smmla: a 2x8 by 8x2 int8 product, 32 MACs */
#define INT8_INSTR "smmla"
#else
#define I8(c, a, b) vdotq_s32((c), (a), (b))
#define I8_OPS 32 /* sdot: four 4-way int8 dot products, 16 MACs */
#define INT8_INSTR "sdot"
#endif
static double k_int8(double secs) {
    int8_t tmp[32];
    for (int i = 0; i < 32; i++) tmp[i] = seed8[i];
    int8x16_t a = vld1q_s8(tmp), b = vld1q_s8(tmp + 16);
    int32x4_t c0 = vdupq_n_s32(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    double ops = 0, end = now() + secs;
    do {
        for (int i = 0; i < CHUNK; i++) {
            OPAQUE(a);
            OPAQUE(b);
            c0 = I8(c0, a, b); c1 = I8(c1, b, a); c2 = I8(c2, a, b); c3 = I8(c3, b, a);
            c4 = I8(c4, a, b); c5 = I8(c5, b, a); c6 = I8(c6, a, b); c7 = I8(c7, b, a);
        }
        ops += CHUNK * 8.0 * I8_OPS;
    } while (now() < end);
    int32x4_t s = vaddq_s32(vaddq_s32(vaddq_s32(c0, c1), vaddq_s32(c2, c3)), vaddq_s32(vaddq_s32(c4, c5), vaddq_s32(c6, c7)));
    sink += vgetq_lane_s32(s, 0);
    return ops;
}
#else
#define INT8_INSTR "smlal" /* Armv8.0: widening int8 multiply-accumulate into int16, 8 MACs */
static double k_int8(double secs) {
    int8_t tmp[32];
    for (int i = 0; i < 32; i++) tmp[i] = seed8[i];
    int8x8_t a = vld1_s8(tmp), b = vld1_s8(tmp + 8);
    int16x8_t c0 = vdupq_n_s16(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    double ops = 0, end = now() + secs;
    do {
        for (int i = 0; i < CHUNK; i++) {
            OPAQUE(a);
            OPAQUE(b);
            c0 = vmlal_s8(c0, a, b); c1 = vmlal_s8(c1, b, a); c2 = vmlal_s8(c2, a, b); c3 = vmlal_s8(c3, b, a);
            c4 = vmlal_s8(c4, a, b); c5 = vmlal_s8(c5, b, a); c6 = vmlal_s8(c6, a, b); c7 = vmlal_s8(c7, b, a);
        }
        ops += CHUNK * 8.0 * 16;
    } while (now() < end);
    int16x8_t s = vaddq_s16(vaddq_s16(vaddq_s16(c0, c1), vaddq_s16(c2, c3)), vaddq_s16(vaddq_s16(c4, c5), vaddq_s16(c6, c7)));
    sink += vgetq_lane_s16(s, 0);
    return ops;
}
#endif

static double k_fp32(double secs) {
    float tmp[8];
    for (int i = 0; i < 8; i++) tmp[i] = seedf[i];
    float32x4_t a = vld1q_f32(tmp), b = vld1q_f32(tmp + 4);
    float32x4_t c0 = vdupq_n_f32(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    double ops = 0, end = now() + secs;
    do {
        for (int i = 0; i < CHUNK; i++) {
            OPAQUE(a);
            OPAQUE(b);
            c0 = vfmaq_f32(c0, a, b); c1 = vfmaq_f32(c1, b, a); c2 = vfmaq_f32(c2, a, b); c3 = vfmaq_f32(c3, b, a);
            c4 = vfmaq_f32(c4, a, b); c5 = vfmaq_f32(c5, b, a); c6 = vfmaq_f32(c6, a, b); c7 = vfmaq_f32(c7, b, a);
        }
        ops += CHUNK * 8.0 * 8;
    } while (now() < end);
    float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(c0, c1), vaddq_f32(c2, c3)), vaddq_f32(vaddq_f32(c4, c5), vaddq_f32(c6, c7)));
    sink += (int64_t)vgetq_lane_f32(s, 0);
    return ops;
}
#define FP32_INSTR "fmla.4s"

#if defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC)
static double k_fp16(double secs) {
    float16_t tmp[16];
    for (int i = 0; i < 16; i++) tmp[i] = (float16_t)seedf[i];
    float16x8_t a = vld1q_f16(tmp), b = vld1q_f16(tmp + 8);
    float16x8_t c0 = vdupq_n_f16(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    double ops = 0, end = now() + secs;
    do {
        for (int i = 0; i < CHUNK; i++) {
            OPAQUE(a);
            OPAQUE(b);
            c0 = vfmaq_f16(c0, a, b); c1 = vfmaq_f16(c1, b, a); c2 = vfmaq_f16(c2, a, b); c3 = vfmaq_f16(c3, b, a);
            c4 = vfmaq_f16(c4, a, b); c5 = vfmaq_f16(c5, b, a); c6 = vfmaq_f16(c6, a, b); c7 = vfmaq_f16(c7, b, a);
        }
        ops += CHUNK * 8.0 * 16;
    } while (now() < end);
    float16x8_t s = vaddq_f16(vaddq_f16(vaddq_f16(c0, c1), vaddq_f16(c2, c3)), vaddq_f16(vaddq_f16(c4, c5), vaddq_f16(c6, c7)));
    sink += (int64_t)vgetq_lane_f16(s, 0);
    return ops;
}
#define HAVE_FP16 1
#endif

#elif defined(__x86_64__)
#if defined(__AVX512BW__)
typedef __m512i vi;
#define LOADI(p) _mm512_loadu_si512((const void *)(p))
#define MADD(c, a, b) _mm512_add_epi16((c), _mm512_maddubs_epi16((a), (b)))
#define ZEROI() _mm512_setzero_si512()
#define I8_MACS 64
#define INT8_INSTR "vpmaddubsw.512"
#elif defined(__AVX2__)
typedef __m256i vi;
#define LOADI(p) _mm256_loadu_si256((const __m256i *)(p))
#define MADD(c, a, b) _mm256_add_epi16((c), _mm256_maddubs_epi16((a), (b)))
#define ZEROI() _mm256_setzero_si256()
#define I8_MACS 32
#define INT8_INSTR "vpmaddubsw.256"
#else
typedef __m128i vi;
#define LOADI(p) _mm_loadu_si128((const __m128i *)(p))
#define MADD(c, a, b) _mm_add_epi16((c), _mm_maddubs_epi16((a), (b)))
#define ZEROI() _mm_setzero_si128()
#define I8_MACS 16
#define INT8_INSTR "pmaddubsw"
#endif

static double k_int8(double secs) {
    int8_t tmp[64];
    for (int i = 0; i < 64; i++) tmp[i] = seed8[i];
    vi a = LOADI(tmp), b = LOADI(tmp);
    vi c0 = ZEROI(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    double ops = 0, end = now() + secs;
    do {
        for (int i = 0; i < CHUNK; i++) {
            OPAQUE(a);
            OPAQUE(b);
            c0 = MADD(c0, a, b); c1 = MADD(c1, b, a); c2 = MADD(c2, a, b); c3 = MADD(c3, b, a);
            c4 = MADD(c4, a, b); c5 = MADD(c5, b, a); c6 = MADD(c6, a, b); c7 = MADD(c7, b, a);
        }
        ops += CHUNK * 8.0 * I8_MACS * 2;
    } while (now() < end);
    vi s = c0;
    s = MADD(s, c1, c2); s = MADD(s, c3, c4); s = MADD(s, c5, c6); s = MADD(s, c7, a);
    int16_t out[32];
    memcpy(out, &s, sizeof(s) < sizeof(out) ? sizeof(s) : sizeof(out));
    sink += out[0];
    return ops;
}

#if defined(__FMA__) && defined(__AVX__)
typedef __m256 vf;
#define LOADF(p) _mm256_loadu_ps(p)
#define FMA(c, a, b) _mm256_fmadd_ps((a), (b), (c))
#define ZEROF() _mm256_setzero_ps()
#define F_LANES 8
#define FP32_INSTR "vfmadd.256"
#else
typedef __m128 vf;
#define LOADF(p) _mm_loadu_ps(p)
#define FMA(c, a, b) _mm_add_ps((c), _mm_mul_ps((a), (b)))
#define ZEROF() _mm_setzero_ps()
#define F_LANES 4
#define FP32_INSTR "mulps+addps"
#endif

static double k_fp32(double secs) {
    float tmp[16];
    for (int i = 0; i < 16; i++) tmp[i] = seedf[i];
    vf a = LOADF(tmp), b = LOADF(tmp + F_LANES);
    vf c0 = ZEROF(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    double ops = 0, end = now() + secs;
    do {
        for (int i = 0; i < CHUNK; i++) {
            OPAQUE(a);
            OPAQUE(b);
            c0 = FMA(c0, a, b); c1 = FMA(c1, b, a); c2 = FMA(c2, a, b); c3 = FMA(c3, b, a);
            c4 = FMA(c4, a, b); c5 = FMA(c5, b, a); c6 = FMA(c6, a, b); c7 = FMA(c7, b, a);
        }
        ops += CHUNK * 8.0 * F_LANES * 2;
    } while (now() < end);
    vf s = FMA(FMA(FMA(FMA(c0, c1, c2), c3, c4), c5, c6), c7, a);
    float out[16];
    memcpy(out, &s, sizeof(s));
    sink += (int64_t)out[0];
    return ops;
}
#else
#error "peak.c: an arm64 or x86_64 target"
#endif

typedef struct {
    kernel_t k;
    double secs, ops;
    pthread_barrier_t *go;
} job_t;

static void *run(void *arg) {
    job_t *j = arg;
    pthread_barrier_wait(j->go);
    j->ops = j->k(j->secs);
    return NULL;
}

/* ops per second of kernel k on `threads` threads together */
static double measure(kernel_t k, int threads, double secs) {
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, threads + 1);
    job_t *jobs = calloc(threads, sizeof(job_t));
    pthread_t *ts = calloc(threads, sizeof(pthread_t));
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job_t){k, secs, 0, &go};
        pthread_create(&ts[t], NULL, run, &jobs[t]);
    }
    pthread_barrier_wait(&go);
    double t0 = now(), ops = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ts[t], NULL);
        ops += jobs[t].ops;
    }
    double rate = ops / (now() - t0);
    free(jobs);
    free(ts);
    pthread_barrier_destroy(&go);
    return rate;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    double secs = argc > 2 ? atof(argv[2]) : 0.3;
    if (threads < 1 || threads > 256 || secs <= 0) {
        fprintf(stderr, "usage: peak THREADS [SECONDS_PER_KERNEL]\n");
        return 2;
    }
    double i8 = measure(k_int8, threads, secs), f32 = measure(k_fp32, threads, secs);
    printf("{\"probe\": \"peak\", \"threads\": %d, \"int8\": {\"instr\": \"%s\", \"ops_per_s\": %.6g}, "
           "\"fp32\": {\"instr\": \"%s\", \"flops_per_s\": %.6g}", threads, INT8_INSTR, i8, FP32_INSTR, f32);
#if defined(HAVE_FP16)
    printf(", \"fp16\": {\"instr\": \"fmla.8h\", \"flops_per_s\": %.6g}", measure(k_fp16, threads, secs));
#endif
    printf("}\n");
    return 0;
}
