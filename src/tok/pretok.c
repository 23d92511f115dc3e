/* GPT-2's pre-tokenization, hand-compiled: the pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * matched as Python's `regex` module matches it in OpenAI's encoder.py (leftmost alternative
 * first, greedy runs, backtracking only in the lookahead), plus the cuts where a text can be
 * split for streaming and threads. Not a regex engine: it knows this one pattern. */
#include "tok/tok_int.h"

/* The class of each ASCII byte, so that the common case skips decoding. */
static const uint8_t ascii_class[128] = {
    ['\t'] = TOK_SPACE, ['\n'] = TOK_SPACE, [0x0B] = TOK_SPACE, [0x0C] = TOK_SPACE, ['\r'] = TOK_SPACE,
    [' '] = TOK_SPACE,
    ['0'] = TOK_NUMBER, ['1'] = TOK_NUMBER, ['2'] = TOK_NUMBER, ['3'] = TOK_NUMBER, ['4'] = TOK_NUMBER,
    ['5'] = TOK_NUMBER, ['6'] = TOK_NUMBER, ['7'] = TOK_NUMBER, ['8'] = TOK_NUMBER, ['9'] = TOK_NUMBER,
    ['A'] = TOK_LETTER, ['B'] = TOK_LETTER, ['C'] = TOK_LETTER, ['D'] = TOK_LETTER, ['E'] = TOK_LETTER,
    ['F'] = TOK_LETTER, ['G'] = TOK_LETTER, ['H'] = TOK_LETTER, ['I'] = TOK_LETTER, ['J'] = TOK_LETTER,
    ['K'] = TOK_LETTER, ['L'] = TOK_LETTER, ['M'] = TOK_LETTER, ['N'] = TOK_LETTER, ['O'] = TOK_LETTER,
    ['P'] = TOK_LETTER, ['Q'] = TOK_LETTER, ['R'] = TOK_LETTER, ['S'] = TOK_LETTER, ['T'] = TOK_LETTER,
    ['U'] = TOK_LETTER, ['V'] = TOK_LETTER, ['W'] = TOK_LETTER, ['X'] = TOK_LETTER, ['Y'] = TOK_LETTER,
    ['Z'] = TOK_LETTER,
    ['a'] = TOK_LETTER, ['b'] = TOK_LETTER, ['c'] = TOK_LETTER, ['d'] = TOK_LETTER, ['e'] = TOK_LETTER,
    ['f'] = TOK_LETTER, ['g'] = TOK_LETTER, ['h'] = TOK_LETTER, ['i'] = TOK_LETTER, ['j'] = TOK_LETTER,
    ['k'] = TOK_LETTER, ['l'] = TOK_LETTER, ['m'] = TOK_LETTER, ['n'] = TOK_LETTER, ['o'] = TOK_LETTER,
    ['p'] = TOK_LETTER, ['q'] = TOK_LETTER, ['r'] = TOK_LETTER, ['s'] = TOK_LETTER, ['t'] = TOK_LETTER,
    ['u'] = TOK_LETTER, ['v'] = TOK_LETTER, ['w'] = TOK_LETTER, ['x'] = TOK_LETTER, ['y'] = TOK_LETTER,
    ['z'] = TOK_LETTER,
};

/* The class of the character at s[i] and its length. */
static inline int char_at(const uint8_t *s, size_t i, size_t n, size_t *len) {
    if (s[i] < 0x80) {
        *len = 1;
        return ascii_class[s[i]];
    }
    uint32_t cp;
    *len = tok_utf8(s + i, s + n, &cp);
    return tok_class_cp(cp);
}

/* The end of the run of characters of class k starting at s[i]. */
static size_t run_end(const uint8_t *s, size_t i, size_t n, int k) {
    while (i < n) {
        if (s[i] < 0x80) {
            if (ascii_class[s[i]] != k) break;
            i++;
            continue;
        }
        size_t l;
        if (char_at(s, i, n, &l) != k) break;
        i += l;
    }
    return i;
}

size_t tok_piece_end(const uint8_t *s, size_t i, size_t n) {
    size_t l;
    int k = char_at(s, i, n, &l);
    if (s[i] == '\'' && i + 1 < n) {
        /* 's|'t|'re|'ve|'m|'ll|'d (case-sensitive; first letters differ, so order is moot) */
        uint8_t a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    if (s[i] == ' ' && i + 1 < n) {
        /* ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' with the optional space present */
        size_t l2;
        int k2 = char_at(s, i + 1, n, &l2);
        if (k2 != TOK_SPACE) return run_end(s, i + 1 + l2, n, k2);
    }
    if (k != TOK_SPACE) return run_end(s, i + l, n, k);
    /* \s+(?!\S) | \s+ : a run of spaces that is followed by a non-space gives back its last
     * character (which then starts the next piece), unless the run is one character. */
    size_t last = i, j = i + l;
    while (j < n) {
        size_t l2;
        if (char_at(s, j, n, &l2) != TOK_SPACE) break;
        last = j;
        j += l2;
    }
    if (j == n || last == i) return j;
    return last;
}

/* Is q (with the character before it, of class kp starting with byte bp, and the one at q of
 * class kq) a cut? The piece holding the character before q must end at q, whatever follows:
 * that holds when that character is not a space, differs in class from the one at q, and is
 * not an apostrophe (which could start 's etc.). Every pattern alternative is then a run of one
 * class, optionally led by a space, or a contraction that cannot cross a class change. */
static inline int is_cut(int kp, uint8_t bp, int kq) {
    return kp != TOK_SPACE && kp != kq && bp != '\'';
}

/* Position of the first character boundary at or after i: a byte that is not a UTF-8
 * continuation byte starts a unit (a valid character or one invalid byte), whatever precedes. */
static size_t boundary_at_or_after(const uint8_t *s, size_t i, size_t n) {
    while (i < n && (s[i] & 0xC0) == 0x80) i++;
    return i;
}

static size_t find_cut(const uint8_t *s, size_t lo, size_t hi, size_t n, int first) {
    if (lo == 0) lo = 1;
    if (hi > n) hi = n;
    if (lo >= hi) return 0;
    /* decode from a boundary before lo so the character before lo is known */
    size_t i = lo - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80 && lo - i < 4) i--;
    i = boundary_at_or_after(s, i, n);
    if (i >= hi) return 0;
    size_t l;
    int kp = char_at(s, i, n, &l);
    uint8_t bp = s[i];
    i += l;
    size_t best = 0;
    while (i < hi) {
        int kq = char_at(s, i, n, &l);
        if (i >= lo && is_cut(kp, bp, kq)) {
            best = i;
            if (first) return best;
        }
        kp = kq;
        bp = s[i];
        i += l;
    }
    return best;
}

size_t tok_last_cut(const uint8_t *s, size_t lo, size_t hi, size_t n) {
    /* look near the end first: the usual text has a cut every few bytes */
    size_t step = 4096;
    while (hi > lo) {
        size_t from = hi - lo > step ? hi - step : lo;
        size_t c = find_cut(s, from, hi, n, 0);
        if (c) return c;
        if (from == lo) break;
        hi = from; /* from itself was looked at */
        step *= 4;
    }
    return 0;
}

size_t tok_first_cut(const uint8_t *s, size_t lo, size_t hi, size_t n) { return find_cut(s, lo, hi, n, 1); }
