// edgebench-whisper: one speech-to-text pass of whisper.cpp, phase by phase, timed, as JSON lines.
//
//   edgebench-whisper -m MODEL -f AUDIO.wav -t THREADS -n DECODE_TOKENS [-ac AUDIO_CTX] [-r REPS] [-nfa]
//
// Loads the model once (CPU only), reads a 16 kHz mono 16-bit PCM WAV, then per repetition: the log-mel
// spectrogram (whisper_pcm_to_mel), the encoder over AUDIO_CTX positions (whisper_encode; 0 = the model's
// full 30 s window), and EXACTLY DECODE_TOKENS greedy decoder steps (whisper_decode: the start-of-transcript
// prompt in one call, then one token per call, each the argmax of the previous logits; no early stop at
// end-of-text, no temperature fallback: with synthetic weights a model's own stopping point is random).
// One JSON object per repetition on stdout; whisper.cpp's log and its own timings on stderr.
//
// Exit codes: 0 done; 2 bad arguments or a WAV it cannot use; 3 a model it cannot load; 4 a failed
// encode/decode. Part of edgebench (suite/runtimes/build/whisper_cpp.py builds it, statically, with zig).

#include "ggml.h"
#include "whisper.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <string>
#include <vector>

namespace {

constexpr int DRIVER_VERSION = 1;
constexpr int SAMPLE_RATE = 16000;  // WHISPER_SAMPLE_RATE
constexpr double SECONDS_PER_AUDIO_POSITION = 0.02;  // 30 s window / 1500 encoder positions
constexpr int EXIT_USAGE = 2;
constexpr int EXIT_MODEL = 3;
constexpr int EXIT_RUN = 4;

const char * const USAGE =
    "usage: edgebench-whisper -m MODEL -f AUDIO.wav -t THREADS -n DECODE_TOKENS [-ac AUDIO_CTX] [-r REPS] [-nfa]\n"
    "  -m MODEL          a whisper.cpp ggml model file\n"
    "  -f AUDIO.wav      16 kHz, mono, 16-bit PCM WAV\n"
    "  -t THREADS        compute threads (>= 1)\n"
    "  -n DECODE_TOKENS  greedy decoder steps, exactly (>= 0; the prompt's pass counts as the first)\n"
    "  -ac AUDIO_CTX     encoder positions, 20 ms each (0: the model's full 30 s window) [0]\n"
    "  -r REPS           repetitions, one JSON line each [1]\n"
    "  -nfa              flash attention off (whisper.cpp's default is on)\n";

struct Args {
    std::string model;
    std::string audio;
    int threads = -1;
    int decode_tokens = -1;
    int audio_ctx = 0;
    int reps = 1;
    bool flash_attn = true;
};

[[noreturn]] void usage_error(const std::string & what) {
    std::fprintf(stderr, "edgebench-whisper: %s\n%s", what.c_str(), USAGE);
    std::exit(EXIT_USAGE);
}

int parse_int(const char * flag, const char * text, int lo) {
    errno = 0;
    char * end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > INT_MAX) {
        usage_error(std::string(flag) + " wants an integer >= " + std::to_string(lo) + ", got '" + text + "'");
    }
    return (int) v;
}

Args parse_args(int argc, char ** argv) {
    Args a;
    for (int i = 1; i < argc; i++) {
        const std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::fputs(USAGE, stdout);
            std::exit(0);
        }
        if (arg == "-nfa") {
            a.flash_attn = false;
            continue;
        }
        if (arg != "-m" && arg != "-f" && arg != "-t" && arg != "-n" && arg != "-ac" && arg != "-r") {
            usage_error("unknown argument '" + arg + "'");
        }
        if (i + 1 >= argc) {
            usage_error(arg + " needs a value");
        }
        const char * value = argv[++i];
        if (arg == "-m") {
            a.model = value;
        } else if (arg == "-f") {
            a.audio = value;
        } else if (arg == "-t") {
            a.threads = parse_int("-t", value, 1);
        } else if (arg == "-n") {
            a.decode_tokens = parse_int("-n", value, 0);
        } else if (arg == "-ac") {
            a.audio_ctx = parse_int("-ac", value, 0);
        } else {
            a.reps = parse_int("-r", value, 1);
        }
    }
    if (a.model.empty() || a.audio.empty() || a.threads < 0 || a.decode_tokens < 0) {
        usage_error("-m, -f, -t and -n are required");
    }
    return a;
}

// --- a strict WAV reader: RIFF/WAVE, PCM (format 1), 1 channel, 16000 Hz, 16 bits ---------------------

uint32_t le32(const unsigned char * p) { return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t) p[3] << 24); }
uint16_t le16(const unsigned char * p) { return (uint16_t) (p[0] | (p[1] << 8)); }

// The samples as floats in [-1, 1), or an empty vector and `error` set.
std::vector<float> read_wav(const std::string & path, std::string & error) {
    std::vector<float> out;
    FILE * f = std::fopen(path.c_str(), "rb");
    if (!f) {
        error = "cannot open " + path + ": " + std::strerror(errno);
        return out;
    }
    std::vector<unsigned char> data;
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
        data.insert(data.end(), buf, buf + n);
    }
    std::fclose(f);
    if (data.size() < 12 || std::memcmp(data.data(), "RIFF", 4) != 0 || std::memcmp(data.data() + 8, "WAVE", 4) != 0) {
        error = path + " is not a RIFF/WAVE file";
        return out;
    }
    bool have_fmt = false;
    size_t pos = 12;
    while (pos + 8 <= data.size()) {
        const unsigned char * chunk = data.data() + pos;
        const uint32_t size = le32(chunk + 4);
        const size_t body = pos + 8;
        if (size > data.size() - body) {
            error = path + ": chunk '" + std::string((const char *) chunk, 4) +
                    "' runs past the end of the file (truncated?)";
            return out;
        }
        if (std::memcmp(chunk, "fmt ", 4) == 0) {
            if (size < 16) {
                error = path + ": fmt chunk too short";
                return out;
            }
            const unsigned char * fmt = data.data() + body;
            const unsigned format = le16(fmt), channels = le16(fmt + 2), bits = le16(fmt + 14);
            const uint32_t rate = le32(fmt + 4);
            if (format != 1 || channels != 1 || rate != SAMPLE_RATE || bits != 16) {
                error = path + ": format " + std::to_string(format) + ", " + std::to_string(channels) +
                        " channel(s), " + std::to_string(rate) + " Hz, " + std::to_string(bits) +
                        " bits; needs PCM (1), mono, 16000 Hz, 16 bits (ffmpeg -i IN -ar 16000 -ac 1 -c:a pcm_s16le "
                        "OUT.wav)";
                return out;
            }
            have_fmt = true;
        } else if (std::memcmp(chunk, "data", 4) == 0) {
            if (!have_fmt) {
                error = path + ": data chunk before the fmt chunk";
                return out;
            }
            const size_t count = size / 2;
            if (count == 0) {
                error = path + " holds no samples";
                return out;
            }
            out.resize(count);
            for (size_t i = 0; i < count; i++) {
                out[i] = (float) (int16_t) le16(data.data() + body + 2 * i) / 32768.0f;
            }
            return out;
        }
        pos = body + size + (size & 1);  // chunks are padded to an even size
    }
    error = path + (have_fmt ? " has no data chunk" : " has no fmt chunk");
    return out;
}

// --- the model file, walked before whisper.cpp reads it -----------------------------------------------------
// whisper.cpp trusts every length it reads, and takes a file that ends before its first tensor for an "empty
// model for testing" (uninitialised weights, no error): a file is accepted only when its header, mel filters,
// vocabulary and every tensor's header and data lie inside it, with at least one tensor, up to its last byte.

struct Reader {
    FILE * f;
    bool ok = true;
    int32_t i32() {
        int32_t v = 0;
        ok = ok && std::fread(&v, sizeof(v), 1, f) == 1;
        return v;
    }
    void skip(int64_t n) { ok = ok && n >= 0 && fseeko(f, (off_t) n, SEEK_CUR) == 0; }
};

bool check_model_file(const std::string & path, std::string & error) {
    FILE * f = std::fopen(path.c_str(), "rb");
    if (!f) {
        error = "cannot open model " + path + ": " + std::strerror(errno);
        return false;
    }
    fseeko(f, 0, SEEK_END);
    const int64_t size = (int64_t) ftello(f);
    fseeko(f, 0, SEEK_SET);
    Reader r{f};
    const auto fail = [&](const std::string & what) {
        std::fclose(f);
        error = path + ": " + what;
        return false;
    };
    if ((uint32_t) r.i32() != 0x67676d6cu) {  // GGML_FILE_MAGIC, "ggml"
        return fail("not a whisper.cpp ggml model (no 'ggml' magic at its start)");
    }
    // n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head,
    // n_text_layer, n_mels, ftype
    for (int i = 1; i <= 11; i++) {
        const int32_t v = r.i32();
        if (!r.ok || v < (i == 11 ? 0 : 1) || v > (1 << 20)) {
            return fail("implausible hyperparameter #" + std::to_string(i) + " (" + std::to_string(v) +
                        "): a corrupt or truncated file");
        }
    }
    const int32_t n_mel = r.i32(), n_fft = r.i32();
    if (!r.ok || n_mel <= 0 || n_fft <= 0 || n_mel > 1024 || n_fft > 1 << 16) {
        return fail("implausible mel filter bank: a corrupt or truncated file");
    }
    r.skip((int64_t) n_mel * n_fft * 4);
    const int32_t n_vocab = r.i32();
    for (int32_t i = 0; r.ok && i < n_vocab; i++) {
        r.skip(r.i32());
    }
    if (!r.ok || n_vocab < 0 || (int64_t) ftello(f) > size) {
        return fail("the vocabulary runs past the end of the file (truncated)");
    }
    int n_tensors = 0;
    while ((int64_t) ftello(f) < size) {
        const int32_t n_dims = r.i32(), name_len = r.i32(), ttype = r.i32();
        if (!r.ok || n_dims < 1 || n_dims > 4 || name_len <= 0 || name_len > 4096 || ttype < 0 ||
            ttype >= GGML_TYPE_COUNT || ggml_type_size((ggml_type) ttype) == 0) {
            return fail("tensor #" + std::to_string(n_tensors) + " has an implausible header (corrupt or truncated)");
        }
        int64_t n = 1;
        for (int d = 0; d < n_dims; d++) {
            const int32_t ne = r.i32();
            n *= ne > 0 ? ne : 0;
        }
        const int64_t blck = ggml_blck_size((ggml_type) ttype);
        if (!r.ok || n <= 0 || n % blck != 0) {
            return fail("tensor #" + std::to_string(n_tensors) + " has an implausible shape");
        }
        r.skip(name_len + n / blck * (int64_t) ggml_type_size((ggml_type) ttype));
        if (!r.ok || (int64_t) ftello(f) > size) {
            return fail("tensor #" + std::to_string(n_tensors) + " runs past the end of the file (truncated)");
        }
        n_tensors++;
    }
    std::fclose(f);
    if (n_tensors == 0) {
        error = path + ": no tensors (the file ends after its vocabulary: truncated, or a test stub)";
        return false;
    }
    return true;
}

// --- clocks and memory -------------------------------------------------------------------------------------

double steady_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double epoch_s() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) (ts.tv_nsec / 1000) * 1e-6;  // microseconds
}

struct Phase {
    double ms = 0;
    double t0 = 0, t1 = 0;  // CLOCK_REALTIME
};

struct Timer {
    Phase & phase;
    double start;
    explicit Timer(Phase & p) : phase(p), start(steady_ms()) { phase.t0 = epoch_s(); }
    ~Timer() {
        phase.ms = steady_ms() - start;
        phase.t1 = epoch_s();
    }
};

long status_kb(const char * key) {
    FILE * f = std::fopen("/proc/self/status", "r");
    if (!f) {
        return -1;
    }
    char line[256];
    long kb = -1;
    const size_t len = std::strlen(key);
    while (std::fgets(line, sizeof(line), f)) {
        if (std::strncmp(line, key, len) == 0 && line[len] == ':') {
            kb = std::strtol(line + len + 1, nullptr, 10);
            break;
        }
    }
    std::fclose(f);
    return kb;
}

std::string json_string(const char * s) {
    std::string out = "\"";
    for (const unsigned char * p = (const unsigned char *) s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            out += '\\';
            out += (char) *p;
        } else if (*p < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof(esc), "\\u%04x", *p);
            out += esc;
        } else {
            out += (char) *p;
        }
    }
    return out + "\"";
}

std::string window(const Phase & p) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "[%.6f,%.6f]", p.t0, p.t1);
    return buf;
}

// whisper_full keeps the encoder's audio context in its state (there is no setter): a call over 10 mel
// frames (100 ms, the least it accepts) without samples stores it, then its main loop stops before encoding.
bool set_audio_ctx(whisper_context * ctx, int audio_ctx) {
    whisper_full_params p = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
    p.n_threads = 1;
    p.audio_ctx = audio_ctx;
    p.language = "en";
    p.detect_language = false;
    p.offset_ms = 0;
    p.duration_ms = 100;
    p.no_context = true;
    p.temperature_inc = 0.0f;
    p.greedy.best_of = 1;
    p.print_progress = false;
    p.print_realtime = false;
    p.print_timestamps = false;
    p.print_special = false;
    p.token_timestamps = false;
    p.vad = false;
    return whisper_full(ctx, p, nullptr, 0) == 0;
}

int argmax(const float * logits, int n) {
    return (int) (std::max_element(logits, logits + n) - logits);
}

}  // namespace

int main(int argc, char ** argv) {
    const Args args = parse_args(argc, argv);

    std::string error;
    const std::vector<float> pcm = read_wav(args.audio, error);
    if (pcm.empty()) {
        std::fprintf(stderr, "edgebench-whisper: %s\n", error.c_str());
        return EXIT_USAGE;
    }
    if (!check_model_file(args.model, error)) {
        std::fprintf(stderr, "edgebench-whisper: %s\n", error.c_str());
        return EXIT_MODEL;
    }

    whisper_context_params cparams = whisper_context_default_params();
    cparams.use_gpu = false;
    cparams.flash_attn = args.flash_attn;
    Phase load;
    whisper_context * ctx = nullptr;
    {
        Timer timer(load);
        try {
            ctx = whisper_init_from_file_with_params(args.model.c_str(), cparams);
        } catch (const std::exception & e) {
            std::fprintf(stderr, "edgebench-whisper: loading %s threw: %s\n", args.model.c_str(), e.what());
        }
    }
    if (ctx == nullptr) {
        std::fprintf(stderr, "edgebench-whisper: cannot load the model %s (a corrupt, truncated or foreign file; "
                     "whisper.cpp's reason is above)\n", args.model.c_str());
        return EXIT_MODEL;
    }

    const int ctx_full = whisper_model_n_audio_ctx(ctx);
    if (args.audio_ctx > ctx_full) {
        std::fprintf(stderr, "edgebench-whisper: -ac %d is larger than the model's audio context (%d)\n",
                     args.audio_ctx, ctx_full);
        whisper_free(ctx);
        return EXIT_USAGE;
    }
    const int ctx_used = args.audio_ctx > 0 ? args.audio_ctx : ctx_full;

    std::vector<whisper_token> prompt = {whisper_token_sot(ctx)};
    if (whisper_is_multilingual(ctx)) {
        prompt.push_back(whisper_token_lang(ctx, whisper_lang_id("en")));
        prompt.push_back(whisper_token_transcribe(ctx));
    }
    prompt.push_back(whisper_token_not(ctx));
    const int n_prompt = (int) prompt.size();
    const int n_text_ctx = whisper_model_n_text_ctx(ctx);
    // positions 0..n_prompt-1 hold the prompt, then each generated token but the last is fed back
    if (args.decode_tokens > 0 && n_prompt + args.decode_tokens - 1 > n_text_ctx) {
        std::fprintf(stderr, "edgebench-whisper: -n %d does not fit the decoder's context: %d prompt tokens + %d fed "
                     "back > %d (at most -n %d)\n", args.decode_tokens, n_prompt, args.decode_tokens - 1, n_text_ctx,
                     n_text_ctx - n_prompt + 1);
        whisper_free(ctx);
        return EXIT_USAGE;
    }
    if (!set_audio_ctx(ctx, args.audio_ctx)) {
        std::fprintf(stderr, "edgebench-whisper: whisper.cpp refused audio context %d\n", args.audio_ctx);
        whisper_free(ctx);
        return EXIT_RUN;
    }

    const int n_vocab = whisper_n_vocab(ctx);
    const std::string system_info = json_string(whisper_print_system_info());
    const std::string model_type = json_string(whisper_model_type_readable(ctx));
    const double audio_s = (double) pcm.size() / SAMPLE_RATE;

    for (int rep = 0; rep < args.reps; rep++) {
        whisper_reset_timings(ctx);
        Phase mel, enc, dec;
        int rc = 0;
        {
            Timer timer(mel);
            rc = whisper_pcm_to_mel(ctx, pcm.data(), (int) pcm.size(), args.threads);
        }
        if (rc != 0) {
            std::fprintf(stderr, "edgebench-whisper: whisper_pcm_to_mel failed (%d)\n", rc);
            return EXIT_RUN;
        }
        {
            Timer timer(enc);
            rc = whisper_encode(ctx, 0, args.threads);
        }
        if (rc != 0) {
            std::fprintf(stderr, "edgebench-whisper: whisper_encode failed (%d)\n", rc);
            return EXIT_RUN;
        }
        {
            Timer timer(dec);
            whisper_token token = 0;
            for (int step = 0; step < args.decode_tokens && rc == 0; step++) {
                if (step == 0) {
                    rc = whisper_decode(ctx, prompt.data(), n_prompt, 0, args.threads);
                } else {
                    rc = whisper_decode(ctx, &token, 1, n_prompt + step - 1, args.threads);
                }
                if (rc == 0) {
                    token = argmax(whisper_get_logits(ctx), n_vocab);
                }
            }
        }
        if (rc != 0) {
            std::fprintf(stderr, "edgebench-whisper: whisper_decode failed (%d)\n", rc);
            return EXIT_RUN;
        }

        // whisper.cpp's own account of the same calls: per-call means, so totals are mean x calls
        // (a prompt of several tokens counts in its "batchd" figure, per token)
        whisper_print_timings(ctx);
        whisper_timings * own = whisper_get_timings(ctx);
        const double own_encode = own ? own->encode_ms : -1;
        const double own_decode = !own ? -1 : args.decode_tokens == 0 ? 0 :
            own->batchd_ms * n_prompt + own->decode_ms * (args.decode_tokens - 1);
        delete own;

        std::printf("{\"engine\":\"whisper.cpp\",\"driver\":\"edgebench-whisper\",\"driver_version\":%d,"
                    "\"whisper_version\":%s,\"system_info\":%s,\"model_type\":%s,\"n_threads\":%d,"
                    "\"flash_attn\":%s,\"rep\":%d,\"audio_s\":%.6f,\"samples\":%zu,\"audio_ctx\":%d,"
                    "\"audio_ctx_full\":%d,\"window_s\":%.2f,\"decode_tokens\":%d,\"prompt_tokens\":%d,"
                    "\"load_ms\":%.3f,\"mel_ms\":%.3f,\"encode_ms\":%.3f,\"decode_ms\":%.3f,\"total_ms\":%.3f,"
                    "\"t\":{\"load\":%s,\"mel\":%s,\"encode\":%s,\"decode\":%s},"
                    "\"whisper_timings\":{\"encode_ms\":%.3f,\"decode_ms\":%.3f},"
                    "\"vm_hwm_kb\":%ld,\"vm_rss_kb\":%ld}\n",
                    DRIVER_VERSION, json_string(whisper_version()).c_str(), system_info.c_str(), model_type.c_str(),
                    args.threads, args.flash_attn ? "true" : "false", rep, audio_s, pcm.size(), ctx_used, ctx_full,
                    ctx_used * SECONDS_PER_AUDIO_POSITION, args.decode_tokens, n_prompt, load.ms, mel.ms, enc.ms,
                    dec.ms, mel.ms + enc.ms + dec.ms, window(load).c_str(), window(mel).c_str(), window(enc).c_str(),
                    window(dec).c_str(), own_encode, own_decode, status_kb("VmHWM"), status_kb("VmRSS"));
        std::fflush(stdout);
    }
    whisper_free(ctx);
    return 0;
}
