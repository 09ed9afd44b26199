/* decimal: exact fixed-point amounts with 4 fraction digits.
 *
 * Parsing works on the digits themselves, never through strtod, so "0.1"
 * is 1000 units and nothing else. An exponent only moves the point. */
#include "decimal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Appends one digit to an accumulator of significant digits, reporting
 * overflow of int64. */
static bool push_digit(int64_t *acc, int digit) {
    if (*acc > (INT64_MAX - digit) / 10) return false;
    *acc = *acc * 10 + digit;
    return true;
}

decimal_status_t decimal_parse(const char *text, size_t len, decimal_t *out) {
    size_t i = 0;
    bool negative = false;
    int64_t digits = 0;   /* all significant digits, point ignored */
    int frac_digits = 0;  /* how many of them came after the point */
    int int_count = 0, frac_count = 0;
    int trailing_zeros = 0; /* zeros at the end of the fraction, dropped */

    if (len == 0) return DECIMAL_ERR_SYNTAX;
    if (text[i] == '-' || text[i] == '+') {
        negative = text[i] == '-';
        i++;
    }
    for (; i < len && is_digit(text[i]); i++, int_count++) {
        if (digits == 0 && text[i] == '0') continue; /* leading zeros */
        if (!push_digit(&digits, text[i] - '0')) return DECIMAL_ERR_RANGE;
    }
    if (i < len && text[i] == '.') {
        i++;
        for (; i < len && is_digit(text[i]); i++, frac_count++) {
            if (text[i] == '0') {
                trailing_zeros++;
                continue;
            }
            /* A non-zero digit: the zeros held back are significant. */
            for (; trailing_zeros > 0; trailing_zeros--, frac_digits++)
                if (!push_digit(&digits, 0)) return DECIMAL_ERR_RANGE;
            if (!push_digit(&digits, text[i] - '0')) return DECIMAL_ERR_RANGE;
            frac_digits++;
        }
        if (frac_count == 0) return DECIMAL_ERR_SYNTAX; /* "5." */
    }
    if (int_count == 0 && frac_count == 0) return DECIMAL_ERR_SYNTAX;

    long exponent = 0;
    if (i < len && (text[i] == 'e' || text[i] == 'E')) {
        bool exp_negative = false;
        int exp_count = 0;
        i++;
        if (i < len && (text[i] == '-' || text[i] == '+')) {
            exp_negative = text[i] == '-';
            i++;
        }
        for (; i < len && is_digit(text[i]); i++, exp_count++)
            if (exponent < 100000) exponent = exponent * 10 + (text[i] - '0');
        if (exp_count == 0) return DECIMAL_ERR_SYNTAX;
        if (exp_negative) exponent = -exponent;
    }
    if (i != len) return DECIMAL_ERR_SYNTAX;

    /* value = digits * 10^(exponent - frac_digits); we hold units of 1e-4. */
    long shift = exponent - frac_digits + DECIMAL_FRACTION_DIGITS;
    if (digits == 0) {
        *out = 0;
        return DECIMAL_OK;
    }
    if (shift < 0) {
        /* Only exact when the digits end in enough zeros. */
        for (; shift < 0; shift++) {
            if (digits % 10 != 0) return DECIMAL_ERR_PRECISION;
            digits /= 10;
        }
    }
    for (; shift > 0; shift--)
        if (!push_digit(&digits, 0)) return DECIMAL_ERR_RANGE;
    *out = negative ? -digits : digits;
    return DECIMAL_OK;
}

decimal_status_t decimal_from_double(double value, decimal_t *out) {
    char text[40];
    if (!isfinite(value)) return DECIMAL_ERR_SYNTAX;
    /* Shortest round-trip text: what the sender most likely wrote. */
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof(text), "%.*g", precision, value);
        if (strtod(text, NULL) == value) break;
    }
    return decimal_parse(text, strlen(text), out);
}

/* The digits of magnitude, most significant first; returns their count. */
static size_t write_digits(uint64_t magnitude, char *out) {
    char reversed[20];
    size_t n = 0, len = 0;
    do {
        reversed[n++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    while (n) out[len++] = reversed[--n];
    return len;
}

size_t decimal_format_int(int64_t value, char *buf) {
    /* Work on the magnitude as unsigned so INT64_MIN cannot overflow. */
    uint64_t magnitude = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    size_t len = 0;
    if (value < 0) buf[len++] = '-';
    len += write_digits(magnitude, buf + len);
    buf[len] = '\0';
    return len;
}

size_t decimal_format(decimal_t value, char *buf, size_t bufsize) {
    char text[DECIMAL_TEXT_MAX + 8];
    uint64_t magnitude = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    unsigned frac = (unsigned)(magnitude % DECIMAL_SCALE);
    size_t len = 0;
    if (value < 0) text[len++] = '-';
    len += write_digits(magnitude / DECIMAL_SCALE, text + len);
    if (frac != 0) { /* four digits, without the trailing zeros */
        char digits[DECIMAL_FRACTION_DIGITS];
        size_t keep = DECIMAL_FRACTION_DIGITS;
        for (size_t i = DECIMAL_FRACTION_DIGITS; i-- > 0; frac /= 10)
            digits[i] = (char)('0' + frac % 10);
        while (digits[keep - 1] == '0') keep--;
        text[len++] = '.';
        memcpy(text + len, digits, keep);
        len += keep;
    }
    if (bufsize == 0) return 0;
    if (len >= bufsize) len = bufsize - 1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    return len;
}

bool decimal_add(decimal_t a, decimal_t b, decimal_t *out) {
    decimal_t sum;
    if (__builtin_add_overflow(a, b, &sum)) return false;
    *out = sum;
    return true;
}

bool decimal_sub(decimal_t a, decimal_t b, decimal_t *out) {
    decimal_t diff;
    if (__builtin_sub_overflow(a, b, &diff)) return false;
    *out = diff;
    return true;
}
