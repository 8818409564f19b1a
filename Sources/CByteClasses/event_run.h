#pragma once
// A run of repeated SSE events for the usage reader (Sources/worker/Usage/UsageEventTemplate.swift,
// docs/usage.md "Cost"): the chunks of one OpenAI stream differ only in their delta's content
// string, so each is a string scan and one compare of the bytes from the string's closing quote
// to the next chunk's. AVX2 compares 32 bytes a step where glibc's memcmp, called per chunk, and
// the Swift loop around it cost twice as much; the caller asks `fluxgate_cpu_has_avx2` once and
// otherwise reads the run its own way (the same result, one chunk at a time).
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

// 1 when the CPU and the OS (the ymm registers saved, XCR0 bits 1 and 2) support AVX2.
static inline int fluxgate_cpu_has_avx2(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & bit_AVX2) != 0;
#else
    return 0;
#endif
}

#if defined(__x86_64__)
// The run's loop for one size of kept bytes (`wide`: over 256, the blocks past the first 256
// loaded per chunk; otherwise all held in registers): the chunks from `content` (a string's first
// byte), as `fluxgate_event_run_avx2` says. Pointers are checked against limits set once: `scan`,
// the last a 32-byte string step may load from; `last`, the last a string's closing quote may be
// at with `"}` and the kept bytes before `end`. A chunk whose next event's delta is not another
// content string (or not whole before `end`) is the last counted.
__attribute__((target("avx2"), always_inline))
static inline const unsigned char *fluxgate_event_run_loop(const unsigned char *content, const unsigned char *end,
                                                            const unsigned char *kept, long count, int wide,
                                                            long *deltas) {
    const uint64_t open0 = 0x65746E6F63227B3AULL, open1 = 0x223A22746E65746EULL;
    const __m256i quote = _mm256_set1_epi8('"'), backslash = _mm256_set1_epi8('\\');
    const __m256i low = _mm256_set1_epi8(0x1F);
    const unsigned char *scan = end - 32, *last = end - 2 - count;
    long counted = 0;
    // The kept bytes' blocks, loaded once (for up to 256 of them).
    const __m256i k0 = _mm256_loadu_si256((const __m256i *)kept), k1 = _mm256_loadu_si256((const __m256i *)(kept + 32));
    const __m256i k2 = _mm256_loadu_si256((const __m256i *)(kept + 64)), k3 = _mm256_loadu_si256((const __m256i *)(kept + 96));
    const __m256i k4 = _mm256_loadu_si256((const __m256i *)(kept + count - 128));
    const __m256i k5 = _mm256_loadu_si256((const __m256i *)(kept + count - 96));
    const __m256i k6 = _mm256_loadu_si256((const __m256i *)(kept + count - 64));
    const __m256i k7 = _mm256_loadu_si256((const __m256i *)(kept + count - 32));
    for (;;) {
        const unsigned char *q = content;
        uint32_t mask;
        for (;;) {
            if (q > scan) goto done;  // near the end: no next chunk whole after this one
            __m256i v = _mm256_loadu_si256((const __m256i *)q);
            __m256i stops = _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash));
            // v <= 0x1F, unsigned: min(v, 0x1F) is v.
            stops = _mm256_or_si256(stops, _mm256_cmpeq_epi8(_mm256_min_epu8(v, low), v));
            mask = (uint32_t)_mm256_movemask_epi8(stops);
            if (mask != 0) break;
            q += 32;
        }
        q += __builtin_ctz(mask);
        // One pointer from here on: without this empty asm, clang carries three induction
        // variables through the string loop for the offsets below (clang 21, -O2).
        __asm__("" : "+r"(q));
        // The string's end, `"}` and the kept bytes.
        if (q > last) break;
        const unsigned char *next = q + 2 + count;
        uint16_t close;
        memcpy(&close, q, 2);
        if (close != 0x7D22) break;
        const unsigned char *tail = next - 128;
        __m256i d = _mm256_or_si256(_mm256_or_si256(_mm256_xor_si256(k0, _mm256_loadu_si256((const __m256i *)(q + 2))),
                                                     _mm256_xor_si256(k1, _mm256_loadu_si256((const __m256i *)(q + 34)))),
                                    _mm256_or_si256(_mm256_xor_si256(k2, _mm256_loadu_si256((const __m256i *)(q + 66))),
                                                    _mm256_xor_si256(k3, _mm256_loadu_si256((const __m256i *)(q + 98)))));
        d = _mm256_or_si256(d, _mm256_or_si256(_mm256_or_si256(_mm256_xor_si256(k4, _mm256_loadu_si256((const __m256i *)tail)),
                                                               _mm256_xor_si256(k5, _mm256_loadu_si256((const __m256i *)(tail + 32)))),
                                               _mm256_or_si256(_mm256_xor_si256(k6, _mm256_loadu_si256((const __m256i *)(tail + 64))),
                                                               _mm256_xor_si256(k7, _mm256_loadu_si256((const __m256i *)(tail + 96))))));
        if (wide) {
            // Blocks 128 to 192 from each end cover the rest of up to 384.
            d = _mm256_or_si256(d, _mm256_or_si256(
                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(kept + 128)), _mm256_loadu_si256((const __m256i *)(q + 130))),
                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(kept + 160)), _mm256_loadu_si256((const __m256i *)(q + 162)))));
            d = _mm256_or_si256(d, _mm256_or_si256(
                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(kept + count - 192)), _mm256_loadu_si256((const __m256i *)(next - 192))),
                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(kept + count - 160)), _mm256_loadu_si256((const __m256i *)(next - 160)))));
        }
        if (!_mm256_testz_si256(d, d)) break;
        counted += q != content;
        content = next + 13;
        // The next event's `:{"content":"`.
        if (next > end - 13) break;
        uint64_t w0, w1;
        memcpy(&w0, next, 8);
        memcpy(&w1, next + 5, 8);
        if (w0 != open0 || w1 != open1) break;
    }
done:
    *deltas += counted;
    return content;
}

// The chunks from `at` (the byte after a `"delta"` member name, in the `n` bytes at `base`) that
// are `:{"content":"`, a string without escapes or control bytes, `"}`, then the `count` bytes at
// `kept` (128 to 384: the kept event's suffix and the next event's head), each but the first
// after such a chunk: returns where the last one's next event's `"delta"` name ends (`at` when
// none, or `count` out of range), and adds to `*deltas` the chunks whose string is not empty.
// Only for a CPU with AVX2 (`fluxgate_cpu_has_avx2`).
__attribute__((target("avx2")))
static inline long fluxgate_event_run_avx2(const unsigned char *base, long n, long at,
                                           const unsigned char *kept, long count, long *deltas) {
    // :{"content":" as two overlapping little-endian words.
    const uint64_t open0 = 0x65746E6F63227B3AULL, open1 = 0x223A22746E65746EULL;
    if (count < 128 || count > 384 || at + 13 > n) return at;
    uint64_t w0, w1;
    memcpy(&w0, base + at, 8);
    memcpy(&w1, base + at + 5, 8);
    if (w0 != open0 || w1 != open1) return at;
    const unsigned char *content = count > 256
        ? fluxgate_event_run_loop(base + at + 13, base + n, kept, count, 1, deltas)
        : fluxgate_event_run_loop(base + at + 13, base + n, kept, count, 0, deltas);
    return (long)(content - base) - 13;
}
// fluxgate_event_candidates16 (shim.h) for 32 positions of `p` (33 readable bytes).
__attribute__((target("avx2"), always_inline))
static inline uint32_t fluxgate_event_candidates32_avx2(const unsigned char *p) {
    __m256i a = _mm256_loadu_si256((const __m256i *)p), b = _mm256_loadu_si256((const __m256i *)(p + 1));
    __m256i u = _mm256_cmpeq_epi8(b, _mm256_set1_epi8('u'));
    __m256i letter = _mm256_or_si256(_mm256_or_si256(u, _mm256_cmpeq_epi8(b, _mm256_set1_epi8('t'))),
                                     _mm256_or_si256(_mm256_cmpeq_epi8(b, _mm256_set1_epi8('m')),
                                                     _mm256_cmpeq_epi8(b, _mm256_set1_epi8('d'))));
    __m256i hits = _mm256_and_si256(_mm256_cmpeq_epi8(a, _mm256_set1_epi8('"')), letter);
    hits = _mm256_or_si256(hits, _mm256_and_si256(_mm256_cmpeq_epi8(a, _mm256_set1_epi8('\\')), u));
    hits = _mm256_or_si256(hits, _mm256_cmpeq_epi8(a, _mm256_set1_epi8('\r')));
    return (uint32_t)_mm256_movemask_epi8(hits);
}

// The first index from `i` of the `n` bytes at `p` (at least 33) that fluxgate_event_candidates16
// reports, `n` when none: 32 positions a step, the last step the last 33 bytes again (its
// positions before `i` shifted off), the last byte alone (a CR, with no byte after it to pair).
__attribute__((target("avx2")))
static inline long fluxgate_event_candidates_avx2(const unsigned char *p, long n, long i) {
    if (i >= n) return n;
    for (; i + 33 <= n; i += 32) {
        uint32_t hits = fluxgate_event_candidates32_avx2(p + i);
        if (hits != 0) return i + __builtin_ctz(hits);
    }
    if (i < n - 1) {
        uint32_t hits = fluxgate_event_candidates32_avx2(p + n - 33) >> (32 - (n - 1 - i));
        if (hits != 0) return i + __builtin_ctz(hits);
    }
    return p[n - 1] == '\r' ? n - 1 : n;
}
#endif


// 1 when the `n` bytes at `p` hold none of `[ \ ] { | }`, no control byte and an even number of
// `"`: read from a point outside any string of an object, they are members with plain strings and
// scalars only, and end outside any string of that object (UsageEventPrefilter's shortcuts for
// the top-level `model` and the first `choices`). From 16 bytes on, 16 a step with the bytes found
// and the quotes' parity gathered across the steps, the last block overlapping the one before it
// (its bytes already read masked off).
static inline int fluxgate_flat_members(const unsigned char *p, long n) {
#if defined(__x86_64__)
    if (n >= 16) {
        const __m128i fold = _mm_set1_epi8((char)0xDF), open = _mm_set1_epi8('['), back = _mm_set1_epi8('\\');
        const __m128i close = _mm_set1_epi8(']'), quote = _mm_set1_epi8('"'), low = _mm_set1_epi8(0x1F);
        __m128i bad = _mm_setzero_si128(), quotes = _mm_setzero_si128(), v;
#define FLUXGATE_FLAT_BLOCK(at)                                                                                    \
    v = _mm_loadu_si128((const __m128i *)(at));                                                                    \
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(_mm_and_si128(v, fold), open)); /* `{ | }` fold onto `[ \ ]` */           \
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(_mm_and_si128(v, fold), back));                                        \
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(_mm_and_si128(v, fold), close));                                       \
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(_mm_min_epu8(v, low), v)); /* v <= 0x1F */
        long i = 0;
        for (; i + 16 < n; i += 16) {
            FLUXGATE_FLAT_BLOCK(p + i)
            quotes = _mm_xor_si128(quotes, _mm_cmpeq_epi8(v, quote));
        }
        FLUXGATE_FLAT_BLOCK(p + n - 16)
#undef FLUXGATE_FLAT_BLOCK
        unsigned seen = 0xFFFFu << (i + 16 - n) & 0xFFFF;  // the last block's bytes from `i` on
        unsigned parity = (unsigned)_mm_movemask_epi8(quotes) ^ ((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) & seen);
        return _mm_movemask_epi8(bad) == 0 && (__builtin_popcount(parity) & 1) == 0;
    }
#endif
    unsigned quotes = 0;
    for (long i = 0; i < n; i++) {
        unsigned char f = p[i] & 0xDF;
        if (f == '[' || f == '\\' || f == ']' || p[i] < 0x20) return 0;
        quotes += p[i] == '"';
    }
    return (quotes & 1) == 0;
}
