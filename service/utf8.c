/* utf8: a validator after RFC 3629's table of well-formed byte sequences. */
#include "utf8.h"

#include <string.h>

/* Length of the well-formed sequence at s (at most len bytes), or 0. */
static size_t sequence_length(const unsigned char *s, size_t len) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* continuation byte, C0, C1 or F5..FF */
    }
    if (len < need || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return need;
}

bool utf8_valid(const char *text, size_t len, size_t *bad_at) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x80) { /* ids and event ids are mostly ASCII */
            i++;
            continue;
        }
        size_t n = sequence_length(s + i, len - i);
        if (n == 0) {
            if (bad_at) *bad_at = i;
            return false;
        }
        i += n;
    }
    return true;
}

size_t utf8_sanitize(char *text) {
    unsigned char *s = (unsigned char *)text;
    size_t len = strlen(text), replaced = 0;
    for (size_t i = 0; i < len;) {
        size_t n = sequence_length(s + i, len - i);
        if (n == 0) {
            s[i++] = '?';
            replaced++;
        } else {
            i += n;
        }
    }
    return replaced;
}
