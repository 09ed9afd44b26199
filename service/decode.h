/* decode: turns one Kafka message into a payment, or into the reason it is
 * not one.
 *
 * Two forms are accepted:
 *   (a) a JSON object {"user_id": "u1", "amount": 12.5, "event_id": "e1",
 *       "timestamp": 1700000000000}; user_id may be left out when the message
 *       key is the user; amount may be a JSON number or a numeric string;
 *   (b) a bare number ("5000"), the user being the message key, which is what
 *       `echo 'user1:5000' | kcat -P -K:` sends.
 * Input is strict: one message maps to one identity. A user id is valid UTF-8
 * with no control characters, in the key and in the JSON; no string of the
 * JSON may hold a NUL (cJSON's strings end at one, so "u\u0000x" would read
 * as "u"); every number, and every numeric string, is an RFC 8259 number
 * (no leading zeros, no "+5", "5.", ".5", NaN or Infinity).
 * Everything else is rejected with a stable reason code (for dead-letter
 * headers and metrics) and a human sentence. decode_payment() copies what it
 * keeps into the payment, so the message may be freed afterwards. */
#ifndef FRAUD_DECODE_H
#define FRAUD_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decimal.h"

#define PAYMENT_USER_MAX 256
#define PAYMENT_EVENT_ID_MAX 128
#define PAYMENT_AMOUNT_MAX (1000000000000LL * DECIMAL_SCALE) /* 1e12 */

typedef enum {
    DECODE_OK = 0,
    DECODE_EMPTY,
    DECODE_MALFORMED_JSON,
    DECODE_TRAILING_GARBAGE,
    DECODE_NOT_AN_OBJECT,
    DECODE_MISSING_USER,
    DECODE_EMPTY_USER,
    DECODE_USER_TOO_LONG,
    DECODE_BAD_USER,
    DECODE_INVALID_USER_ID, /* not UTF-8, or a control character */
    DECODE_NUL_CHARACTER,   /* a NUL, escaped or raw, in a string or the key */
    DECODE_KEY_MISMATCH,
    DECODE_MISSING_AMOUNT,
    DECODE_NON_NUMERIC_AMOUNT,
    DECODE_NEGATIVE_AMOUNT,
    DECODE_NON_FINITE_AMOUNT,
    DECODE_AMOUNT_OUT_OF_RANGE,
    DECODE_AMOUNT_TOO_PRECISE,
    DECODE_BAD_EVENT_ID,
    DECODE_BAD_TIMESTAMP,
    DECODE_MESSAGE_TOO_LARGE,
    DECODE_TOO_DEEP,
    DECODE_REASON_COUNT
} decode_reason_t;

/* Limits on untrusted input; see input.max.* in the config. */
typedef struct decode_limits {
    size_t max_message_bytes; /* larger values are refused before parsing */
    size_t max_user_bytes;    /* 1..PAYMENT_USER_MAX */
    int max_json_depth;       /* nesting of objects and arrays */
} decode_limits_t;

/* The defaults: 64 KiB, 256 bytes, depth 8. */
extern const decode_limits_t DECODE_DEFAULT_LIMITS;

typedef struct payment {
    char user_id[PAYMENT_USER_MAX + 1]; /* NUL-terminated copy */
    size_t user_len;
    decimal_t amount;
    char event_id[PAYMENT_EVENT_ID_MAX + 1]; /* "" when absent */
    int64_t timestamp_ms;                    /* -1 when absent */
} payment_t;

/* Decodes key/value (either may be NULL with length 0). On DECODE_OK, *out
 * is filled; otherwise errstr holds a sentence such as
 * "amount: more than 4 digits after the point". */
decode_reason_t decode_payment(const void *key, size_t key_len, const void *value,
                               size_t value_len, const decode_limits_t *limits, payment_t *out,
                               char *errstr, size_t errstr_size);

/* A tombstone (a record with no value at all) is a request to erase the
 * user its key names. On DECODE_OK out->user_id holds the user, checked as
 * a payment's would be; a tombstone without a valid key is refused. */
decode_reason_t decode_erasure(const void *key, size_t key_len, const decode_limits_t *limits,
                               payment_t *out, char *errstr, size_t errstr_size);

/* Stable snake_case code of a reason, e.g. "amount_too_precise". */
const char *decode_reason_code(decode_reason_t reason);

#endif
