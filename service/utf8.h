/* utf8: the one check that every text the service writes is UTF-8.
 *
 * RFC 8259 requires JSON to be UTF-8, and every strict consumer (Python's
 * json, Jackson, Kafka Connect's converters) refuses anything else. Input is
 * untrusted, so user ids and event ids are checked where they enter, and
 * free text that may quote input (log lines, dead-letter reasons) is made
 * valid where it leaves. Nothing here allocates. */
#ifndef FRAUD_UTF8_H
#define FRAUD_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when text[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF). On false, *bad_at (when not NULL)
 * is the offset of the first byte that is not. */
bool utf8_valid(const char *text, size_t len, size_t *bad_at);

/* Replaces, in place, each byte of a NUL-terminated string that is not part
 * of a well-formed sequence with '?', so a truncated or foreign text is
 * still UTF-8. Returns how many bytes it replaced. */
size_t utf8_sanitize(char *text);

#endif
