#pragma once
// A skipped JSON value that lies whole in the bytes read, for the usage reader's whole-root read
// (Sources/worker/Usage/UsageJSONScanner+WholeRoot.swift, docs/performance.md "usagetap5"): the
// blocks of `UsageBlockScan` (quotes, backslashes and brackets as 64-bit masks, the bytes inside
// strings by a prefix XOR, the depth by the brackets' counts), 64 bytes in two AVX2 compares a
// class, the escapes found for the whole block at once as simdjson does (odd runs of
// backslashes). The same bytes matter as in that skip; where it would differ — a backslash
// outside any string, which that skip does not look at — this one gives up (-1) and the caller
// skips the value its own way. The caller asks `fluxgate_cpu_has_json_skip_avx2` once.
#include <stdint.h>
#include "event_run.h"  // fluxgate_cpu_has_avx2
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

// 1 when the CPU and the OS support AVX2 (`fluxgate_cpu_has_avx2`), POPCNT, PCLMULQDQ and BMI1.
static inline int fluxgate_cpu_has_json_skip_avx2(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!fluxgate_cpu_has_avx2() || !__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_POPCNT) || !(c & bit_PCLMUL)) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & bit_BMI) != 0;
#else
    return 0;
#endif
}

#if defined(__x86_64__)
// The quotes, backslashes, opening and closing brackets of the 64 bytes at `p` as bit masks.
__attribute__((target("avx2"), always_inline))
static inline void fluxgate_json_masks64(const unsigned char *p, uint64_t *q, uint64_t *b, uint64_t *o, uint64_t *c) {
    const __m256i quote = _mm256_set1_epi8('"'), backslash = _mm256_set1_epi8('\\');
    const __m256i open = _mm256_set1_epi8('{'), close = _mm256_set1_epi8('}'), fold = _mm256_set1_epi8(0x20);
    __m256i lo = _mm256_loadu_si256((const __m256i *)p), hi = _mm256_loadu_si256((const __m256i *)(p + 32));
    __m256i flo = _mm256_or_si256(lo, fold), fhi = _mm256_or_si256(hi, fold);  // `[`/`{`, `]`/`}`: bit 5
#define FLUXGATE_MASK(l, h, k) \
    ((uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(l, k)) \
     | (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(h, k)) << 32)
    *q = FLUXGATE_MASK(lo, hi, quote);
    *b = FLUXGATE_MASK(lo, hi, backslash);
    *o = FLUXGATE_MASK(flo, fhi, open);
    *c = FLUXGATE_MASK(flo, fhi, close);
#undef FLUXGATE_MASK
}

// Bit i set when an odd number of the bits 0 to i of `quotes` are set (the bytes inside strings,
// with their opening quotes): simdjson's prefix XOR, one carry-less multiply by all ones.
__attribute__((target("pclmul"), always_inline))
static inline uint64_t fluxgate_json_prefix_xor(uint64_t quotes) {
    __m128i product = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)quotes), _mm_set1_epi8((char)0xFF), 0);
    return (uint64_t)_mm_cvtsi128_si64(product);
}

// From `at`, just after a value's opening `{` or `[` (not in a string), in the `n` bytes at
// `base`: the index after the bracket that closes it, or -1 when `n` comes first, `n` is below
// 64, or a backslash stands outside a string. A block that ends inside a string is followed by a
// search for the string's `"` or `\`, 64 bytes a step, then 32 (most of a skipped value's bytes
// are in a few long strings), as `UsageBlockScan` does. Only for a CPU that
// `fluxgate_cpu_has_json_skip_avx2` accepts.
__attribute__((target("avx2,popcnt,bmi,pclmul"), always_inline))
static inline long fluxgate_json_skip_avx2_inline(const unsigned char *base, long n, long at) {
    const __m256i quote = _mm256_set1_epi8('"'), backslash = _mm256_set1_epi8('\\');
    const uint64_t even = 0x5555555555555555ULL;
    long depth = 1;
    uint64_t inString = 0;  // all ones when the block before ended inside a string
    uint64_t escapedNext = 0;  // 1 when its last byte was an escaping backslash
    if (n < 64) return -1;
    long i = at;
    for (;;) {
        uint64_t q, b, o, c;
        if (n - i >= 64) {
            fluxgate_json_masks64(base + i, &q, &b, &o, &c);
        } else {
            if (i >= n) return -1;
            // The last 64 bytes, the ones already read shifted out.
            unsigned shift = (unsigned)(64 - (n - i));
            fluxgate_json_masks64(base + n - 64, &q, &b, &o, &c);
            q >>= shift;
            b >>= shift;
            o >>= shift;
            c >>= shift;
        }
        if (b | escapedNext) {
            // simdjson's escapes: a run of backslashes escapes the byte after it when it is odd.
            uint64_t slashes = b & ~escapedNext;
            uint64_t follows = slashes << 1 | escapedNext;
            uint64_t oddStarts = slashes & ~even & ~follows;
            uint64_t evenStarts;
            uint64_t carry = __builtin_add_overflow(oddStarts, slashes, &evenStarts);
            uint64_t escaped = (even ^ (evenStarts << 1)) & follows;
            escapedNext = carry;
            q &= ~escaped;
        }
        uint64_t inside = fluxgate_json_prefix_xor(q) ^ inString;
        if (b & ~inside) return -1;
        inString = (uint64_t)((int64_t)inside >> 63);
        o &= ~inside;
        c &= ~inside;
        long closes = __builtin_popcountll(c);
        if (closes < depth) {
            depth += __builtin_popcountll(o) - closes;
        } else {
            uint64_t brackets = o | c;
            while (brackets) {
                uint64_t bit = brackets & (0 - brackets);
                brackets ^= bit;
                if (o & bit) {
                    depth++;
                } else if (--depth == 0) {
                    return i + __builtin_ctzll(bit) + 1;
                }
            }
        }
        i += 64;
        if (inString && !escapedNext) {
            // The rest of the string: the blocks go on from its `"` (outside it) or its `\`, found
            // 64 bytes a step while 64 are left, then 32.
            long stop = -1;
            while (n - i >= 64) {
                __m256i lo = _mm256_loadu_si256((const __m256i *)(base + i));
                __m256i hi = _mm256_loadu_si256((const __m256i *)(base + i + 32));
                __m256i slo = _mm256_or_si256(_mm256_cmpeq_epi8(lo, quote), _mm256_cmpeq_epi8(lo, backslash));
                __m256i shi = _mm256_or_si256(_mm256_cmpeq_epi8(hi, quote), _mm256_cmpeq_epi8(hi, backslash));
                __m256i any = _mm256_or_si256(slo, shi);
                if (!_mm256_testz_si256(any, any)) {
                    uint64_t stops = (uint64_t)(uint32_t)_mm256_movemask_epi8(slo)
                        | (uint64_t)(uint32_t)_mm256_movemask_epi8(shi) << 32;
                    stop = i + __builtin_ctzll(stops);
                    break;
                }
                i += 64;
            }
            while (stop < 0 && n - i >= 32) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(base + i));
                uint32_t stops = (uint32_t)_mm256_movemask_epi8(
                    _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash)));
                if (stops) stop = i + __builtin_ctz(stops);
                else i += 32;
            }
            if (stop >= 0) {
                i = stop;
                if (base[i] == '"') {
                    i += 1;
                    inString = 0;
                }
            }
        }
    }
}

// `fluxgate_json_skip_avx2_inline` called (the whole-root read has it in its own body, where its
// one skip of `choices` saves the call's saves and restores).
__attribute__((target("avx2,popcnt,bmi,pclmul")))
static inline long fluxgate_json_skip_avx2(const unsigned char *base, long n, long at) {
    return fluxgate_json_skip_avx2_inline(base, n, at);
}
#endif
