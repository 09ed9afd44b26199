/* decimal: exact money amounts.
 *
 * An amount is a signed 64-bit count of ten-thousandths (4 digits after the
 * point), so sums never drift the way binary floating point does: 0.1 + 0.2
 * is exactly 0.3. Payments are 0 <= amount <= 1e12; running totals may grow
 * to DECIMAL_MAX (about 9.2e14), and every operation reports overflow rather
 * than wrapping. No function here allocates. */
#ifndef FRAUD_DECIMAL_H
#define FRAUD_DECIMAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int64_t decimal_t;

#define DECIMAL_SCALE 10000LL      /* units per 1 */
#define DECIMAL_FRACTION_DIGITS 4
#define DECIMAL_MAX INT64_MAX
/* Longest text decimal_format() writes, with its NUL: sign, 15 integer
 * digits, point, 4 fraction digits. */
#define DECIMAL_TEXT_MAX 24

typedef enum {
    DECIMAL_OK = 0,
    DECIMAL_ERR_SYNTAX,    /* not a plain decimal number */
    DECIMAL_ERR_PRECISION, /* more than 4 digits after the point */
    DECIMAL_ERR_RANGE      /* too large to hold */
} decimal_status_t;

/* Parses text such as "110000", "0.3", "-2.5", "1e3" or "12.50" (exponent
 * allowed, surrounding whitespace not). Trailing zeros after the point do not
 * count towards precision. */
decimal_status_t decimal_parse(const char *text, size_t len, decimal_t *out);

/* Converts a double that came from a JSON number. It takes the shortest
 * decimal text that reads back as the same double, so 0.1 becomes exactly
 * 0.1; NaN and infinities are DECIMAL_ERR_SYNTAX. */
decimal_status_t decimal_from_double(double value, decimal_t *out);

/* Writes the shortest exact form ("110000", "0.3", "-7.25") into buf, which
 * should hold DECIMAL_TEXT_MAX bytes. Returns the length written. */
size_t decimal_format(decimal_t value, char *buf, size_t bufsize);

/* Writes an integer's digits (and sign) and a NUL into buf, which should
 * hold DECIMAL_INT_TEXT_MAX bytes. Returns the length written. The hot
 * paths format many numbers per batch; this is snprintf's "%lld" without
 * the format parsing. */
#define DECIMAL_INT_TEXT_MAX 21
size_t decimal_format_int(int64_t value, char *buf);

/* Exact arithmetic; false on overflow, leaving *out untouched. */
bool decimal_add(decimal_t a, decimal_t b, decimal_t *out);
bool decimal_sub(decimal_t a, decimal_t b, decimal_t *out);

#endif
