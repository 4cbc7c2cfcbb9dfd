/* edgebench's storage read-bandwidth probe: static, built with the other probes
 * (suite/runtimes/build/probes.py). A model larger than RAM, mapped with mmap, pages its weights in
 * from flash on every token: its decode speed is bounded by what this measures.
 *
 *   storage DIR BYTES [SECONDS_PER_TEST]
 *
 * Writes a file of BYTES (rounded down to whole MiB; pseudo-random bytes, so a compressing
 * filesystem stores all of it) in DIR, fsync()s it and evicts it from the page cache
 * (posix_fadvise DONTNEED, no root needed). Then, each test after a fresh eviction:
 *   seq     1 MiB reads from the start, until the end of the file or SECONDS_PER_TEST (default 3);
 *   rand4k  4 KiB preads at 4 KiB-aligned offsets in a random order (no block twice), one thread,
 *           queue depth 1, until every block was read once or SECONDS_PER_TEST.
 * Reads use O_DIRECT where the filesystem takes it (checked with one read), else buffered reads
 * with the readahead hint of each test; "direct" says which. Before each test the file's page-cache
 * residency is read with mincore() on a mapping of it ("resident_fraction_before": 0 means the
 * eviction worked; tmpfs, for one, cannot evict). The file is deleted at the end, on errors and on
 * SIGINT/SIGTERM/SIGHUP/SIGPIPE (SIGKILL leaves it: the caller removes .edgebench-storage-*.tmp).
 *
 * prints one JSON line: {"probe": "storage", "bytes", "direct", "seq_bytes_per_s",
 * "rand4k_bytes_per_s", "rand4k_iops", "resident_fraction_after_write", "resident_fraction_before",
 * "block_size", "seconds", ...}; an error prints {"probe": "storage", "error": "..."} and exits 1
 * (2 for usage).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024L * 1024L)
#define SEQ_BLOCK (1024 * 1024)
#define RAND_BLOCK 4096
#define ALIGN 4096

static char path[4096];
static volatile sig_atomic_t created;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void remove_file(void) {
    if (created) {
        unlink(path);
        created = 0;
    }
}

static void on_signal(int sig) {
    if (created) unlink(path);  /* async-signal-safe */
    _exit(128 + sig);
}

static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void fail(int code, const char *what, int err) {
    remove_file();
    char msg[8192];
    snprintf(msg, sizeof msg, "%s%s%s", what, err ? ": " : "", err ? strerror(err) : "");
    printf("{\"probe\": \"storage\", \"error\": ");
    json_string(msg);
    printf("}\n");
    fflush(stdout);
    exit(code);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t next_random(void) {  /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

/* The fraction of the file's pages in the page cache (mincore on a shared read-only mapping), or -1
 * when the kernel does not say. */
static double resident_fraction(int fd, size_t bytes) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return -1;
    void *map = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return -1;
    size_t pages = (bytes + (size_t)page - 1) / (size_t)page;
    unsigned char *vec = malloc(pages);
    double frac = -1;
    if (vec && mincore(map, bytes, vec) == 0) {
        size_t in = 0;
        for (size_t i = 0; i < pages; i++) in += vec[i] & 1;
        frac = (double)in / (double)pages;
    }
    free(vec);
    munmap(map, bytes);
    return frac;
}

/* fadvise's own error (it returns it, errno is untouched), 0 when the cache was asked to drop the file */
static int evict(int fd) {
    return posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

static void print_fraction(double f) {
    if (f < 0) printf("null");
    else printf("%.4f", f);
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: storage DIR BYTES [SECONDS_PER_TEST]\n");
        fail(2, "usage: storage DIR BYTES [SECONDS_PER_TEST]", 0);
    }
    const char *dir = argv[1];
    char *end;
    long long want = strtoll(argv[2], &end, 10);
    if (*end || want < MIB) fail(2, "BYTES must be a whole number of at least 1 MiB (1048576)", 0);
    double limit_s = argc > 3 ? strtod(argv[3], &end) : 3.0;
    if (argc > 3 && (*end || !(limit_s > 0) || limit_s > 600)) fail(2, "SECONDS_PER_TEST must be in (0, 600]", 0);
    size_t bytes = (size_t)(want / MIB) * (size_t)MIB;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);

    if ((size_t)snprintf(path, sizeof path, "%s/.edgebench-storage-%ld.tmp", dir, (long)getpid()) >= sizeof path)
        fail(2, "DIR is too long", 0);
    /* the name is set before the file exists: a signal between open and `created` cannot leak it */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) fail(1, "cannot create the test file", errno);
    created = 1;

    void *buf_v = NULL;
    if (posix_memalign(&buf_v, ALIGN, SEQ_BLOCK) != 0) fail(1, "cannot allocate the read buffer", ENOMEM);
    unsigned char *buf = buf_v;

    /* write: pseudo-random bytes, a new stream per MiB, then fsync */
    double t0 = now();
    for (size_t off = 0; off < bytes; off += SEQ_BLOCK) {
        uint64_t *w = (uint64_t *)buf;
        for (size_t i = 0; i < SEQ_BLOCK / sizeof(uint64_t); i++) w[i] = next_random();
        for (size_t done = 0; done < SEQ_BLOCK;) {
            ssize_t n = write(fd, buf + done, SEQ_BLOCK - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) fail(1, "writing the test file failed", n < 0 ? errno : ENOSPC);
            done += (size_t)n;
        }
    }
    if (fsync(fd) != 0) fail(1, "fsync of the test file failed", errno);
    double write_s = now() - t0;
    close(fd);

    int rfd = open(path, O_RDONLY | O_CLOEXEC);
    if (rfd < 0) fail(1, "cannot reopen the test file", errno);
    double after_write = resident_fraction(rfd, bytes);
    int fadv = evict(rfd);
    if (fadv != 0) fail(1, "posix_fadvise(POSIX_FADV_DONTNEED) failed", fadv);

    /* O_DIRECT where the filesystem takes it: tmpfs refuses the open, some filesystems the read */
    int dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    int direct = 0;
    const char *direct_why = "accepted";
    if (dfd < 0) {
        direct_why = strerror(errno);
    } else if (pread(dfd, buf, RAND_BLOCK, 0) != RAND_BLOCK) {
        direct_why = "an aligned O_DIRECT read failed";
        close(dfd);
        dfd = -1;
    } else {
        direct = 1;
    }
    int fd_read = direct ? dfd : rfd;

    /* sequential */
    evict(rfd);
    double res_seq = resident_fraction(rfd, bytes);
    if (!direct) posix_fadvise(rfd, 0, 0, POSIX_FADV_SEQUENTIAL);
    size_t seq_read = 0;
    t0 = now();
    double seq_s = 0;
    while (seq_read < bytes) {
        ssize_t n = pread(fd_read, buf, SEQ_BLOCK, (off_t)seq_read);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(1, "sequential read failed", errno);
        if (n == 0) break;
        seq_read += (size_t)n;
        seq_s = now() - t0;
        if (seq_s >= limit_s) break;
    }
    if (seq_read == 0 || !(seq_s > 0)) fail(1, "the sequential test read nothing", 0);

    /* random 4 KiB, every block at most once: a block cached by an earlier read cannot count twice */
    size_t blocks = bytes / RAND_BLOCK;
    uint32_t *order = malloc(blocks * sizeof(uint32_t));
    if (!order) fail(1, "cannot allocate the random order", ENOMEM);
    for (size_t i = 0; i < blocks; i++) order[i] = (uint32_t)i;
    for (size_t i = blocks - 1; i > 0; i--) {
        size_t j = (size_t)(next_random() % (i + 1));
        uint32_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    evict(rfd);
    double res_rand = resident_fraction(rfd, bytes);
    if (!direct) posix_fadvise(rfd, 0, 0, POSIX_FADV_RANDOM);
    size_t reads = 0;
    double rand_s = 0;
    t0 = now();
    while (reads < blocks) {
        ssize_t n = pread(fd_read, buf, RAND_BLOCK, (off_t)order[reads] * RAND_BLOCK);
        if (n < 0 && errno == EINTR) continue;
        if (n != RAND_BLOCK) fail(1, "random 4 KiB read failed", n < 0 ? errno : EIO);
        reads++;
        rand_s = now() - t0;
        if (rand_s >= limit_s) break;
    }
    if (reads == 0 || !(rand_s > 0)) fail(1, "the random test read nothing", 0);
    free(order);
    if (dfd >= 0) close(dfd);
    evict(rfd);  /* leave no cached pages behind */
    close(rfd);
    remove_file();

    struct stat st;
    long fs_block = stat(dir, &st) == 0 ? (long)st.st_blksize : -1;
    printf("{\"probe\": \"storage\", \"bytes\": %zu, \"direct\": %s, \"direct_check\": ", bytes,
           direct ? "true" : "false");
    json_string(direct_why);
    printf(", \"seq_bytes_per_s\": %.6g, \"seq_bytes_read\": %zu, \"rand4k_bytes_per_s\": %.6g, "
           "\"rand4k_iops\": %.6g, \"rand4k_reads\": %zu, \"write_bytes_per_s\": %.6g, "
           "\"resident_fraction_after_write\": ",
           (double)seq_read / seq_s, seq_read, (double)reads * RAND_BLOCK / rand_s, (double)reads / rand_s, reads,
           (double)bytes / write_s);
    print_fraction(after_write);
    printf(", \"resident_fraction_before\": {\"seq\": ");
    print_fraction(res_seq);
    printf(", \"rand4k\": ");
    print_fraction(res_rand);
    printf("}, \"block_size\": {\"seq\": %d, \"rand4k\": %d, \"filesystem\": %ld}, \"page_size\": %ld, "
           "\"seconds\": {\"write\": %.4f, \"seq\": %.4f, \"rand4k\": %.4f}, \"seconds_per_test\": %.6g}\n",
           SEQ_BLOCK, RAND_BLOCK, fs_block, sysconf(_SC_PAGESIZE), write_s, seq_s, rand_s, limit_s);
    return 0;
}
