#pragma once
// Byte classes of 64- and 16-byte blocks as bit masks, for the usage reader's scans
// (Sources/worker/Usage/UsageBlockScan.swift, docs/usage.md "Cost"). Bit i of a mask is byte i of
// the block. SSE2 (every x86-64) compares sixteen bytes at once and `pmovmskb` makes the mask,
// which Swift's SIMD types cannot express; elsewhere a plain loop gives the same masks.
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// The bytes a JSON value's extent depends on: `"`, `\`, `{` or `[`, `}` or `]`.
struct fluxgate_json_block {
    uint64_t quote, backslash, open, close;
};

static inline struct fluxgate_json_block fluxgate_json_classify(const void *block) {
    struct fluxgate_json_block b = { 0, 0, 0, 0 };
    const unsigned char *p = (const unsigned char *)block;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i open = _mm_set1_epi8('{'), close = _mm_set1_epi8('}'), fold = _mm_set1_epi8(0x20);
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        __m128i f = _mm_or_si128(v, fold);  // `[` and `{`, `]` and `}` differ only in bit 5
        b.quote |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) << (16 * k);
        b.backslash |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, backslash)) << (16 * k);
        b.open |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(f, open)) << (16 * k);
        b.close |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(f, close)) << (16 * k);
    }
#else
    for (int i = 0; i < 64; i++) {
        uint64_t bit = (uint64_t)1 << i;
        unsigned char c = p[i], f = c | 0x20;
        if (c == '"') b.quote |= bit;
        if (c == '\\') b.backslash |= bit;
        if (f == '{') b.open |= bit;
        if (f == '}') b.close |= bit;
    }
#endif
    return b;
}

// The bytes of 16 where a JSON string's plain run ends: `"`, `\` or a control byte (< 0x20).
static inline uint32_t fluxgate_string_stops16(const void *block) {
#if defined(__SSE2__)
    __m128i v = _mm_loadu_si128((const __m128i *)block);
    __m128i stops = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    // v <= 0x1F, unsigned: max(v, 0x1F) is 0x1F.
    const __m128i low = _mm_set1_epi8(0x1F);
    stops = _mm_or_si128(stops, _mm_cmpeq_epi8(_mm_max_epu8(v, low), low));
    return (uint32_t)(uint16_t)_mm_movemask_epi8(stops);
#else
    const unsigned char *p = (const unsigned char *)block;
    uint32_t m = 0;
    for (int i = 0; i < 16; i++) m |= (uint32_t)(p[i] == '"' || p[i] == '\\' || p[i] < 0x20) << i;
    return m;
#endif
}

// The bytes of 32 that are `"` or `\\`: where a string that is skipped, not read, may end (its
// control bytes do not matter to a skip).
static inline uint32_t fluxgate_quotes_or_backslashes32(const void *block) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    __m128i a = _mm_loadu_si128((const __m128i *)block), b = _mm_loadu_si128((const __m128i *)block + 1);
    uint32_t low = (uint16_t)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(a, quote), _mm_cmpeq_epi8(a, backslash)));
    uint32_t high = (uint16_t)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(b, quote), _mm_cmpeq_epi8(b, backslash)));
    return low | high << 16;
#else
    const unsigned char *p = (const unsigned char *)block;
    uint32_t m = 0;
    for (int i = 0; i < 32; i++) m |= (uint32_t)(p[i] == '"' || p[i] == '\\') << i;
    return m;
#endif
}

// Where, of the 16 positions of `at` (17 readable bytes), an event's data may hold what the
// usage prefilter must look at (UsageEventPrefilter.swift): `"` followed by `u`, `t`, `m` or `d`
// (the names `usage`, `type`, `model`, `delta`, `text`, `tool_calls`), `\` followed by `u`, or a CR.
static inline uint32_t fluxgate_event_candidates16(const void *at) {
#if defined(__SSE2__)
    const unsigned char *p = (const unsigned char *)at;
    __m128i a = _mm_loadu_si128((const __m128i *)p), b = _mm_loadu_si128((const __m128i *)(p + 1));
    __m128i u = _mm_cmpeq_epi8(b, _mm_set1_epi8('u'));
    __m128i letter = _mm_or_si128(_mm_or_si128(u, _mm_cmpeq_epi8(b, _mm_set1_epi8('t'))),
                                  _mm_or_si128(_mm_cmpeq_epi8(b, _mm_set1_epi8('m')), _mm_cmpeq_epi8(b, _mm_set1_epi8('d'))));
    __m128i hits = _mm_and_si128(_mm_cmpeq_epi8(a, _mm_set1_epi8('"')), letter);
    hits = _mm_or_si128(hits, _mm_and_si128(_mm_cmpeq_epi8(a, _mm_set1_epi8('\\')), u));
    hits = _mm_or_si128(hits, _mm_cmpeq_epi8(a, _mm_set1_epi8('\r')));
    return (uint32_t)(uint16_t)_mm_movemask_epi8(hits);
#else
    const unsigned char *p = (const unsigned char *)at;
    uint32_t m = 0;
    for (int i = 0; i < 16; i++) {
        unsigned char c = p[i], d = p[i + 1];
        int hit = (c == '"' && (d == 'u' || d == 't' || d == 'm' || d == 'd')) || (c == '\\' && d == 'u') || c == '\r';
        m |= (uint32_t)hit << i;
    }
    return m;
#endif
}
