#pragma once
// A JSON body's object read whole in one call, for the usage reader's whole-root read
// (Sources/worker/Usage/UsageJSONScanner+WholeRoot.swift, docs/performance.md "usagejson7",
// "usagejson8"): the root's members walked from its `{` to its `}`, each name told by its length
// and bytes, the values the reader keeps (`model`, `type`) handed back as spans, the counts of
// `usage` (at the root, in `response` or in `message`, and their `*_details`) as integers, every
// other value skipped. It takes exactly what the Swift whole-root read takes — plain strings (no
// escape, no control byte), plain counts (`0` or `[1-9][0-9]*`, at most 15 digits), literals,
// containers through `fluxgate_json_skip_avx2` — and gives up (-1) on anything else, the caller
// then reading the body its own way. The members of a chat completion in the order OpenAI writes
// them are first matched name by name with the bytes around them (`fluxgate_root_object`, docs/
// performance.md "session 16, usagec"), the walk reading on from the first one that differs. Only
// for a CPU that `fluxgate_cpu_has_json_skip_avx2` accepts.
#include <stdint.h>
#include <string.h>
#include "json_skip.h"

// The counts of one `usage` object, by `UsageCounts.Field`'s order (prompt, completion, prompt
// cached, input, output, input cached, cache read, cache creation).
struct fluxgate_usage_counts {
    int64_t value[8];
    // Bit f: value[f] was given as a plain integer (else the field is absent or null).
    uint32_t given;
    // The member was an object (`UsageCounts.present`).
    uint32_t present;
};

// What a read keeps. `counts` 0, 1, 2 are the root's `usage`, `response.usage` and
// `message.usage`; bit k of `written` says that counts[k] replaces the document's (it was opened,
// or its container was and emptied it).
struct fluxgate_json_root {
    long model_at, model_count;  // model_at -1: no model
    long type_at, type_count;    // type_at -1: no type
    uint32_t written;
    struct fluxgate_usage_counts counts[3];
};

// `root->counts[k]`, for Swift, which sees the array as a tuple.
static inline const struct fluxgate_usage_counts *fluxgate_json_root_counts(const struct fluxgate_json_root *root, int k) {
    return &root->counts[k];
}

#if defined(__x86_64__)
enum {
    FLUXGATE_ROOT_SKIP,
    FLUXGATE_ROOT_MODEL,
    FLUXGATE_ROOT_TYPE,
    FLUXGATE_ROOT_USAGE,
    FLUXGATE_ROOT_RESPONSE,
    FLUXGATE_ROOT_MESSAGE,
    FLUXGATE_ROOT_PROMPT_DETAILS,
    FLUXGATE_ROOT_INPUT_DETAILS,
    FLUXGATE_ROOT_COUNT,  // + the field
};

// The objects the read follows.
enum { FLUXGATE_IN_ROOT, FLUXGATE_IN_RESPONSE, FLUXGATE_IN_MESSAGE, FLUXGATE_IN_USAGE, FLUXGATE_IN_PROMPT_DETAILS, FLUXGATE_IN_INPUT_DETAILS };

#define FLUXGATE_NAMED(p, len, literal) ((len) == sizeof(literal) - 1 && memcmp((p), literal, sizeof(literal) - 1) == 0)

// The role of member `p` (`len` bytes) of an object `in` (`UsageJSONScanner.role(ofMember:in:)`
// for a body, whose `choices` are skipped).
__attribute__((always_inline))
static inline int fluxgate_root_role(const unsigned char *p, long len, int in) {
    switch (in) {
    case FLUXGATE_IN_ROOT:
        switch (len) {
        case 4: return FLUXGATE_NAMED(p, len, "type") ? FLUXGATE_ROOT_TYPE : FLUXGATE_ROOT_SKIP;
        case 5:
            if (FLUXGATE_NAMED(p, len, "model")) return FLUXGATE_ROOT_MODEL;
            return FLUXGATE_NAMED(p, len, "usage") ? FLUXGATE_ROOT_USAGE : FLUXGATE_ROOT_SKIP;
        case 7: return FLUXGATE_NAMED(p, len, "message") ? FLUXGATE_ROOT_MESSAGE : FLUXGATE_ROOT_SKIP;
        case 8: return FLUXGATE_NAMED(p, len, "response") ? FLUXGATE_ROOT_RESPONSE : FLUXGATE_ROOT_SKIP;
        default: return FLUXGATE_ROOT_SKIP;
        }
    case FLUXGATE_IN_RESPONSE:
    case FLUXGATE_IN_MESSAGE:
        if (len != 5) return FLUXGATE_ROOT_SKIP;
        if (FLUXGATE_NAMED(p, len, "model")) return FLUXGATE_ROOT_MODEL;
        return FLUXGATE_NAMED(p, len, "usage") ? FLUXGATE_ROOT_USAGE : FLUXGATE_ROOT_SKIP;
    case FLUXGATE_IN_USAGE:
        switch (len) {
        case 12: return FLUXGATE_NAMED(p, len, "input_tokens") ? FLUXGATE_ROOT_COUNT + 3 : FLUXGATE_ROOT_SKIP;
        case 13:
            if (FLUXGATE_NAMED(p, len, "prompt_tokens")) return FLUXGATE_ROOT_COUNT + 0;
            return FLUXGATE_NAMED(p, len, "output_tokens") ? FLUXGATE_ROOT_COUNT + 4 : FLUXGATE_ROOT_SKIP;
        case 17: return FLUXGATE_NAMED(p, len, "completion_tokens") ? FLUXGATE_ROOT_COUNT + 1 : FLUXGATE_ROOT_SKIP;
        case 20: return FLUXGATE_NAMED(p, len, "input_tokens_details") ? FLUXGATE_ROOT_INPUT_DETAILS : FLUXGATE_ROOT_SKIP;
        case 21: return FLUXGATE_NAMED(p, len, "prompt_tokens_details") ? FLUXGATE_ROOT_PROMPT_DETAILS : FLUXGATE_ROOT_SKIP;
        case 23: return FLUXGATE_NAMED(p, len, "cache_read_input_tokens") ? FLUXGATE_ROOT_COUNT + 6 : FLUXGATE_ROOT_SKIP;
        case 27: return FLUXGATE_NAMED(p, len, "cache_creation_input_tokens") ? FLUXGATE_ROOT_COUNT + 7 : FLUXGATE_ROOT_SKIP;
        default: return FLUXGATE_ROOT_SKIP;
        }
    case FLUXGATE_IN_PROMPT_DETAILS:
        return FLUXGATE_NAMED(p, len, "cached_tokens") ? FLUXGATE_ROOT_COUNT + 2 : FLUXGATE_ROOT_SKIP;
    default:  // FLUXGATE_IN_INPUT_DETAILS
        return FLUXGATE_NAMED(p, len, "cached_tokens") ? FLUXGATE_ROOT_COUNT + 5 : FLUXGATE_ROOT_SKIP;
    }
}
#undef FLUXGATE_NAMED

// The four bytes at `p` as one number, the first in the low byte.
__attribute__((always_inline))
static inline uint32_t fluxgate_root_quad(const unsigned char *p) {
    uint32_t quad;
    memcpy(&quad, p, 4);
    return quad;
}

// The two bytes at `p` as one number, the first in the low byte.
__attribute__((always_inline))
static inline unsigned fluxgate_root_pair(const unsigned char *p) {
    uint16_t pair;
    memcpy(&pair, p, 2);
    return pair;
}

__attribute__((always_inline))
static inline int fluxgate_root_is_space(unsigned char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

__attribute__((always_inline))
static inline long fluxgate_root_space(const unsigned char *p, long n, long i) {
    while (i < n && p[i] <= 0x20 && fluxgate_root_is_space(p[i])) i++;
    return i;
}

// The first `"`, `\` or control byte at or after `i` (`UsageByteScan.stringEnd`), 32 bytes a
// step; `n` when none.
__attribute__((target("avx2"), always_inline))
static inline long fluxgate_root_string_stop(const unsigned char *p, long n, long i) {
    const __m256i quote = _mm256_set1_epi8('"'), backslash = _mm256_set1_epi8('\\'), low = _mm256_set1_epi8(0x1F);
#define FLUXGATE_STOPS(v) \
    ((uint32_t)_mm256_movemask_epi8(_mm256_or_si256( \
        _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash)), \
        _mm256_cmpeq_epi8(_mm256_max_epu8(v, low), low))))
    if (n - i >= 32) {
        // Most strings end in their first 32 bytes: that step apart from the loop.
        uint32_t stops = FLUXGATE_STOPS(_mm256_loadu_si256((const __m256i *)(p + i)));
        if (stops) return i + __builtin_ctz(stops);
        i += 32;
        while (n - i >= 32) {
            stops = FLUXGATE_STOPS(_mm256_loadu_si256((const __m256i *)(p + i)));
            if (stops) return i + __builtin_ctz(stops);
            i += 32;
        }
    }
    if (i >= n) return n;
    // The last 32 bytes (the caller's `n` is 64 or more), the ones already read shifted out.
    __m256i v = _mm256_loadu_si256((const __m256i *)(p + n - 32));
    uint32_t stops = FLUXGATE_STOPS(v) >> (32 - (n - i));
#undef FLUXGATE_STOPS
    return stops ? i + __builtin_ctz(stops) : n;
}

// The end of the run of digits at `i` (at most 16 looked at), eight bytes a step where eight
// are left.
__attribute__((always_inline))
static inline long fluxgate_root_digits_end(const unsigned char *p, long n, long i) {
    long j = i;
    while (n - j >= 8 && j - i < 16) {
        uint64_t word;
        memcpy(&word, p + j, 8);
        uint64_t x = word ^ 0x3030303030303030ULL;
        // 0x80 in each byte that is no digit (above 9 once `0` is taken off; the lowest exact).
        uint64_t other = ((x + 0x7676767676767676ULL) | x) & 0x8080808080808080ULL;
        if (other) return j + (__builtin_ctzll(other) >> 3);
        j += 8;
    }
    while (j < n && (unsigned char)(p[j] - '0') <= 9 && j - i < 16) j++;
    return j;
}

// Digits from `i` to `j` are a plain number (`UsageJSONScanner.isPlainNumber`): 1 to 15 of
// them, no leading `0` unless alone, and white space, `,` or `}` after them in the bytes.
__attribute__((always_inline))
static inline int fluxgate_root_is_plain_number(const unsigned char *p, long n, long i, long j) {
    long digits = j - i;
    if ((unsigned long)(digits - 1) >= 15 || j >= n) return 0;
    if (digits > 1 && p[i] == '0') return 0;
    unsigned char next = p[j];
    return next == ',' || next == '}' || (next <= 0x20 && fluxgate_root_is_space(next));
}

// `true`, `false` or `null` at `i`: the index after it, or -1 (what follows is the caller's).
__attribute__((always_inline))
static inline long fluxgate_root_literal(const unsigned char *p, long n, long i) {
    uint32_t word;
    if (n - i < 4) return -1;
    memcpy(&word, p + i, 4);
    if (word == 0x6C6C756E || word == 0x65757274) return i + 4;  // null, true
    if (n - i < 5) return -1;
    return word == 0x736C6166 && p[i + 4] == 'e' ? i + 5 : -1;  // fals e
}

// A skipped value at `v` (not white space): the index after it, or -1.
__attribute__((target("avx2,popcnt,bmi,pclmul"), always_inline))
static inline long fluxgate_root_skip(const unsigned char *p, long n, long v) {
    unsigned char b = p[v];
    if (b == '"') {
        long stop = fluxgate_root_string_stop(p, n, v + 1);
        return stop < n && p[stop] == '"' ? stop + 1 : -1;
    }
    if ((b | 0x20) == '{') return fluxgate_json_skip_avx2(p, n, v + 1);  // `{` or `[`
    long end = fluxgate_root_digits_end(p, n, v);
    return fluxgate_root_is_plain_number(p, n, v, end) ? end : fluxgate_root_literal(p, n, v);
}

static long fluxgate_root_followed(const unsigned char *p, long n, long i, int in, int location, struct fluxgate_json_root *out);
static inline long fluxgate_root_usage(
    const unsigned char *p, long n, long i, struct fluxgate_json_root *out);

// The members of an object `in` (a constant where it is inlined) from `i` (after its `{`) to its
// `}`, their counts in `out->counts[location]`: the index after the `}`, or -1.
__attribute__((target("avx2,popcnt,bmi,pclmul"), always_inline))
static inline long fluxgate_root_members(
    const unsigned char *p, long n, long i, int in, int location, struct fluxgate_json_root *out) {
    i = fluxgate_root_space(p, n, i);
    if (i >= n) return -1;
    if (p[i] == '}') return i + 1;
    if (p[i] != '"') return -1;
    for (;;) {
        // At a name's `"`.
        long name = i + 1;
        long nameEnd = fluxgate_root_string_stop(p, n, name);
        long v = nameEnd + 1;
        // `":` and the value with nothing between is the common case: three bytes by one load.
        uint32_t quad = n - nameEnd >= 4 ? fluxgate_root_quad(p + nameEnd) : 0;
        if ((quad & 0xFFFF) == ('"' | ':' << 8) && (unsigned char)(quad >> 16) > 0x20) {
            v++;
        } else {
            if (nameEnd >= n || p[nameEnd] != '"') return -1;
            v = fluxgate_root_space(p, n, v);
            if (v >= n || p[v] != ':') return -1;
            v = fluxgate_root_space(p, n, v + 1);
            if (v >= n) return -1;
        }
        int role = fluxgate_root_role(p + name, nameEnd - name, in);
        long end;
        switch (role) {
        case FLUXGATE_ROOT_SKIP:
            end = fluxgate_root_skip(p, n, v);
            break;
        case FLUXGATE_ROOT_MODEL:
        case FLUXGATE_ROOT_TYPE: {
            if (p[v] != '"') return -1;
            long stop = fluxgate_root_string_stop(p, n, v + 1);
            if (stop >= n || p[stop] != '"') return -1;
            if (role == FLUXGATE_ROOT_MODEL) {
                out->model_at = v + 1;
                out->model_count = stop - (v + 1);
            } else {
                out->type_at = v + 1;
                out->type_count = stop - (v + 1);
            }
            end = stop + 1;
            break;
        }
        case FLUXGATE_ROOT_USAGE:
        case FLUXGATE_ROOT_RESPONSE:
        case FLUXGATE_ROOT_MESSAGE: {
            if (p[v] != '{') return -1;
            // A member given twice: the later value replaces the earlier (`clearPrevious`).
            int at = role == FLUXGATE_ROOT_USAGE ? location : role == FLUXGATE_ROOT_RESPONSE ? 1 : 2;
            out->counts[at].given = 0;
            out->counts[at].present = role == FLUXGATE_ROOT_USAGE;
            out->written |= 1u << at;
            int inner = role == FLUXGATE_ROOT_USAGE ? FLUXGATE_IN_USAGE
                : role == FLUXGATE_ROOT_RESPONSE   ? FLUXGATE_IN_RESPONSE
                                                   : FLUXGATE_IN_MESSAGE;
            // The root's `usage` (in every body that has usage) walked in this call, the others
            // through `fluxgate_root_followed`'s.
            end = in == FLUXGATE_IN_ROOT && role == FLUXGATE_ROOT_USAGE ? fluxgate_root_usage(p, n, v + 1, out)
                                                                        : fluxgate_root_followed(p, n, v + 1, inner, at, out);
            break;
        }
        case FLUXGATE_ROOT_PROMPT_DETAILS:
        case FLUXGATE_ROOT_INPUT_DETAILS:
            // Not emptied when given twice, as in the Swift read.
            if (p[v] != '{') return -1;
            end = fluxgate_root_followed(
                p, n, v + 1, role == FLUXGATE_ROOT_PROMPT_DETAILS ? FLUXGATE_IN_PROMPT_DETAILS : FLUXGATE_IN_INPUT_DETAILS,
                location, out);
            break;
        default: {
            // A count: a plain integer, or a literal that forgets the member given twice.
            int field = role - FLUXGATE_ROOT_COUNT;
            long digitsEnd = fluxgate_root_digits_end(p, n, v);
            if (fluxgate_root_is_plain_number(p, n, v, digitsEnd)) {
                int64_t value = 0;
#pragma clang loop vectorize(disable) unroll(disable)
                for (long k = v; k < digitsEnd; k++) value = value * 10 + (p[k] - '0');
                out->counts[location].value[field] = value;
                out->counts[location].given |= 1u << field;
                end = digitsEnd;
            } else {
                end = fluxgate_root_literal(p, n, v);
                out->counts[location].given &= ~(1u << field);
            }
            break;
        }
        }
        if (end < 0) return -1;
        // `,"` with nothing between is the common case (one two-byte load, little-endian).
        if (end + 1 < n && fluxgate_root_pair(p + end) == (',' | '"' << 8)) {
            i = end + 1;
            continue;
        }
        i = fluxgate_root_space(p, n, end);
        if (i >= n) return -1;
        if (p[i] == '}') return i + 1;
        if (p[i] != ',') return -1;
        i = fluxgate_root_space(p, n, i + 1);
        if (i >= n || p[i] != '"') return -1;
    }
}

// The objects below the root but its `usage`: one walk each, its names told apart by its own
// switch.
__attribute__((target("avx2,popcnt,bmi,pclmul"), noinline))
static long fluxgate_root_followed(const unsigned char *p, long n, long i, int in, int location, struct fluxgate_json_root *out) {
    switch (in) {
    case FLUXGATE_IN_USAGE: return fluxgate_root_members(p, n, i, FLUXGATE_IN_USAGE, location, out);
    case FLUXGATE_IN_PROMPT_DETAILS: return fluxgate_root_members(p, n, i, FLUXGATE_IN_PROMPT_DETAILS, location, out);
    case FLUXGATE_IN_INPUT_DETAILS: return fluxgate_root_members(p, n, i, FLUXGATE_IN_INPUT_DETAILS, location, out);
    default: return fluxgate_root_members(p, n, i, FLUXGATE_IN_RESPONSE, location, out);  // or `message`
    }
}

// The root's `usage`, in the root's walk.
__attribute__((target("avx2,popcnt,bmi,pclmul"), always_inline))
static inline long fluxgate_root_usage(
    const unsigned char *p, long n, long i, struct fluxgate_json_root *out) {
    return fluxgate_root_members(p, n, i, FLUXGATE_IN_USAGE, 0, out);
}

// The root's members from `i` (after its `{`, or at a member's name) by the walk above.
__attribute__((target("avx2,popcnt,bmi,pclmul"), noinline))
static long fluxgate_root_walk(const unsigned char *p, long n, long i, struct fluxgate_json_root *out) {
    return fluxgate_root_members(p, n, i, FLUXGATE_IN_ROOT, 0, out);
}

// After a value of an object `in` (the root or its `usage`) at `end`: its members from there by
// the walk (the walk's own steps after a value: `,` and a name go on, `}` ends the object).
__attribute__((target("avx2,popcnt,bmi,pclmul"), noinline))
static long fluxgate_root_after(const unsigned char *p, long n, long end, int in, struct fluxgate_json_root *out) {
    long i = fluxgate_root_space(p, n, end);
    if (i >= n) return -1;
    if (p[i] == '}') return i + 1;
    if (p[i] != ',') return -1;
    i = fluxgate_root_space(p, n, i + 1);
    if (i >= n || p[i] != '"') return -1;
    return in == FLUXGATE_IN_ROOT ? fluxgate_root_walk(p, n, i, out) : fluxgate_root_followed(p, n, i, FLUXGATE_IN_USAGE, 0, out);
}

// The `length` bytes of `text` (at most 16, or 31) at `i`, 32 bytes or more from the end; `spaced`:
// and a byte that is no white space after them (the walk takes `":` and a value by one load only
// then, with the same value index).
__attribute__((target("avx2"), always_inline))
static inline int fluxgate_root_named16(const unsigned char *p, long n, long i, const char *text, unsigned length, int spaced) {
    if (n - i < 32) return 0;
    unsigned same = (unsigned)_mm_movemask_epi8(
        _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + i)), _mm_loadu_si128((const __m128i *)text)));
    unsigned want = (1u << length) - 1;
    return (same & want) == want && (!spaced || p[i + length] > 0x20);
}

__attribute__((target("avx2"), always_inline))
static inline int fluxgate_root_named32(const unsigned char *p, long n, long i, const char *text, unsigned length, int spaced) {
    if (n - i < 32) return 0;
    uint32_t same = (uint32_t)_mm256_movemask_epi8(
        _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + i)), _mm256_loadu_si256((const __m256i *)text)));
    uint32_t want = (1u << length) - 1;
    return (same & want) == want && (!spaced || p[i + length] > 0x20);
}

// A count at `v` (the walk's `default:` case): the index after it, or -1.
__attribute__((always_inline))
static inline long fluxgate_root_count(const unsigned char *p, long n, long v, int field, struct fluxgate_usage_counts *counts) {
    long digitsEnd = fluxgate_root_digits_end(p, n, v);
    if (fluxgate_root_is_plain_number(p, n, v, digitsEnd)) {
        int64_t value = 0;
#pragma clang loop vectorize(disable) unroll(disable)
        for (long k = v; k < digitsEnd; k++) value = value * 10 + (p[k] - '0');
        counts->value[field] = value;
        counts->given |= 1u << field;
        return digitsEnd;
    }
    counts->given &= ~(1u << field);
    return fluxgate_root_literal(p, n, v);
}

// A plain string whose `"` is at `v - 1` (a skipped or kept value): the index of its closing `"`,
// or -1.
__attribute__((target("avx2"), always_inline))
static inline long fluxgate_root_plain_string(const unsigned char *p, long n, long v) {
    long stop = fluxgate_root_string_stop(p, n, v);
    return stop < n && p[stop] == '"' ? stop : -1;
}

// The members in the order OpenAI writes a chat completion (`id`, `object`, `created`, `model`,
// `choices`, `usage` with `prompt_tokens`, `completion_tokens`, `total_tokens`, then
// `system_fingerprint`), compact: each expected name with the `,` before it, the `":` after it and
// its value's first byte where that is always the same (`"`, `[`, `{` and the next name) matched
// by one load and compare, its role known without the name's search and switch, its value read as
// the walk reads it. From the first member not expected (another name, another order, white
// space, a member more or fewer, another kind of value) the walk above reads the object on: the
// results are always the walk's.
static const char fluxgate_root_text_id[16] = "\"id\":\"";
static const char fluxgate_root_text_object[16] = ",\"object\":\"";
static const char fluxgate_root_text_created[16] = ",\"created\":";
static const char fluxgate_root_text_model[16] = ",\"model\":\"";
static const char fluxgate_root_text_choices[16] = ",\"choices\":[";
static const char fluxgate_root_text_usage[32] = ",\"usage\":{\"prompt_tokens\":";
static const char fluxgate_root_text_completion[32] = ",\"completion_tokens\":";
static const char fluxgate_root_text_total[16] = ",\"total_tokens\":";
static const char fluxgate_root_text_fingerprint[32] = ",\"system_fingerprint\":\"";

__attribute__((target("avx2,popcnt,bmi,pclmul"), noinline))
static long fluxgate_root_object(const unsigned char *p, long n, long i, struct fluxgate_json_root *out) {
    long end;
    if (!fluxgate_root_named16(p, n, i, fluxgate_root_text_id, 6, 0)) return fluxgate_root_walk(p, n, i, out);
    if ((end = fluxgate_root_plain_string(p, n, i + 6)) < 0) return -1;
    if (!fluxgate_root_named16(p, n, ++end, fluxgate_root_text_object, 11, 0)) return fluxgate_root_after(p, n, end, FLUXGATE_IN_ROOT, out);
    if ((end = fluxgate_root_plain_string(p, n, end + 11)) < 0) return -1;
    if (!fluxgate_root_named16(p, n, ++end, fluxgate_root_text_created, 11, 1)) return fluxgate_root_after(p, n, end, FLUXGATE_IN_ROOT, out);
    if ((end = fluxgate_root_skip(p, n, end + 11)) < 0) return -1;
    if (!fluxgate_root_named16(p, n, end, fluxgate_root_text_model, 10, 0)) return fluxgate_root_after(p, n, end, FLUXGATE_IN_ROOT, out);
    {
        long v = end + 10;
        if ((end = fluxgate_root_plain_string(p, n, v)) < 0) return -1;
        out->model_at = v;
        out->model_count = end - v;
    }
    if (!fluxgate_root_named16(p, n, ++end, fluxgate_root_text_choices, 12, 0)) return fluxgate_root_after(p, n, end, FLUXGATE_IN_ROOT, out);
    if ((end = fluxgate_json_skip_avx2_inline(p, n, end + 12)) < 0) return -1;
    if (!fluxgate_root_named32(p, n, end, fluxgate_root_text_usage, 26, 1)) return fluxgate_root_after(p, n, end, FLUXGATE_IN_ROOT, out);
    {
        struct fluxgate_usage_counts *counts = &out->counts[0];
        counts->given = 0;
        counts->present = 1;
        out->written |= 1;
        if ((end = fluxgate_root_count(p, n, end + 26, 0, counts)) < 0) {
            return -1;
        } else if (!fluxgate_root_named32(p, n, end, fluxgate_root_text_completion, 21, 1)) {
            end = fluxgate_root_after(p, n, end, FLUXGATE_IN_USAGE, out);
        } else if ((end = fluxgate_root_count(p, n, end + 21, 1, counts)) < 0) {
            return -1;
        } else if (!fluxgate_root_named16(p, n, end, fluxgate_root_text_total, 16, 1)) {
            end = fluxgate_root_after(p, n, end, FLUXGATE_IN_USAGE, out);
        } else if ((end = fluxgate_root_skip(p, n, end + 16)) < 0) {
            return -1;
        } else if (end < n && p[end] == '}') {
            end++;
        } else {
            end = fluxgate_root_after(p, n, end, FLUXGATE_IN_USAGE, out);
        }
        if (end < 0) return -1;
    }
    if (!fluxgate_root_named32(p, n, end, fluxgate_root_text_fingerprint, 23, 0)) return fluxgate_root_after(p, n, end, FLUXGATE_IN_ROOT, out);
    if ((end = fluxgate_root_plain_string(p, n, end + 23)) < 0) return -1;
    if (++end < n && p[end] == '}') return end + 1;
    return fluxgate_root_after(p, n, end, FLUXGATE_IN_ROOT, out);
}
#endif

// From `at`, just after the document's `{`, in the `n` bytes at `base`: the index after the
// object's `}` with what it keeps in `*out`, or -1 (`*out` then means nothing). `n` must be 64
// or more (the last-bytes loads), else -1.
static inline long fluxgate_json_root_read(const unsigned char *base, long n, long at, struct fluxgate_json_root *out) {
#if defined(__x86_64__)
    out->model_at = -1;
    out->type_at = -1;
    out->written = 0;
    if (n < 64) return -1;
    return fluxgate_root_object(base, n, at, out);
#else
    (void)base; (void)n; (void)at; (void)out;
    return -1;
#endif
}
