#pragma once
// Byte classes of 16-byte blocks of an HTTP/1 head, for the head parsers' scans
// (Sources/worker/HTTP1/ASCIIBytes.swift `tokenEnd`, `fieldValueEnd`). Bit i of a mask is byte i
// of the block; every mask is exact per byte, so its lowest bit is the first such byte. SSE2
// (every x86-64) classifies sixteen bytes in a dozen instructions where the 64-bit word tests
// took 20-40 for eight; elsewhere a plain loop gives the same masks.
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// The bytes of 16 that are not an ASCII letter, digit or `-` (what header names are made of).
static inline uint32_t fluxgate_non_name16(const void *block) {
#if defined(__SSE2__)
    __m128i v = _mm_loadu_si128((const __m128i *)block);
    // Unsigned `x - first <= last - first` as min(x - first, span) == x - first.
    __m128i letter = _mm_sub_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
    letter = _mm_cmpeq_epi8(_mm_min_epu8(letter, _mm_set1_epi8(25)), letter);
    __m128i digit = _mm_sub_epi8(v, _mm_set1_epi8('0'));
    digit = _mm_cmpeq_epi8(_mm_min_epu8(digit, _mm_set1_epi8(9)), digit);
    __m128i name = _mm_or_si128(_mm_or_si128(letter, digit), _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
    return ~(uint32_t)_mm_movemask_epi8(name) & 0xFFFFu;
#else
    const unsigned char *p = (const unsigned char *)block;
    uint32_t m = 0;
    for (int i = 0; i < 16; i++) {
        unsigned char c = p[i], l = c | 0x20;
        int name = (l >= 'a' && l <= 'z') || (c >= '0' && c <= '9') || c == '-';
        m |= (uint32_t)!name << i;
    }
    return m;
#endif
}

// The bytes of 16 that are a control byte (below 0x20, tab included) or DEL: where a field
// value's plain run ends (its CR, normally).
static inline uint32_t fluxgate_controls16(const void *block) {
#if defined(__SSE2__)
    __m128i v = _mm_loadu_si128((const __m128i *)block);
    const __m128i low = _mm_set1_epi8(0x1F);
    __m128i stops = _mm_cmpeq_epi8(_mm_max_epu8(v, low), low);
    stops = _mm_or_si128(stops, _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F)));
    return (uint32_t)(uint16_t)_mm_movemask_epi8(stops);
#else
    const unsigned char *p = (const unsigned char *)block;
    uint32_t m = 0;
    for (int i = 0; i < 16; i++) m |= (uint32_t)(p[i] < 0x20 || p[i] == 0x7F) << i;
    return m;
#endif
}

// The bytes of 16 that are not VCHAR (0x21-0x7E): where a request-target ends (its SP, normally).
static inline uint32_t fluxgate_non_vchar16(const void *block) {
#if defined(__SSE2__)
    __m128i v = _mm_loadu_si128((const __m128i *)block);
    const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7F);
    __m128i stops = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, space), space), _mm_cmpeq_epi8(_mm_min_epu8(v, del), del));
    return (uint32_t)(uint16_t)_mm_movemask_epi8(stops);
#else
    const unsigned char *p = (const unsigned char *)block;
    uint32_t m = 0;
    for (int i = 0; i < 16; i++) m |= (uint32_t)(p[i] <= 0x20 || p[i] >= 0x7F) << i;
    return m;
#endif
}

// The positions of 16 where CR LF CR LF starts (19 readable bytes from `at`): a response head's end.
static inline uint32_t fluxgate_crlfcrlf16(const void *at) {
    const unsigned char *p = (const unsigned char *)at;
#if defined(__SSE2__)
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    __m128i a = _mm_and_si128(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)p), cr),
                              _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 1)), lf));
    __m128i b = _mm_and_si128(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 2)), cr),
                              _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 3)), lf));
    return (uint32_t)(uint16_t)_mm_movemask_epi8(_mm_and_si128(a, b));
#else
    uint32_t m = 0;
    for (int i = 0; i < 16; i++)
        m |= (uint32_t)(p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') << i;
    return m;
#endif
}
