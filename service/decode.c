/* decode: validation of untrusted payment messages.
 *
 * cJSON parses the object; amounts never go through binary floating point
 * when they arrive as strings, and JSON numbers are read back through their
 * shortest decimal text (see decimal_from_double). */
#include "decode.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "json_arena.h"
#include "utf8.h"

static const char *const REASON_CODES[DECODE_REASON_COUNT] = {
    [DECODE_OK] = "ok",
    [DECODE_EMPTY] = "empty_message",
    [DECODE_MALFORMED_JSON] = "malformed_json",
    [DECODE_TRAILING_GARBAGE] = "trailing_garbage",
    [DECODE_NOT_AN_OBJECT] = "not_an_object",
    [DECODE_MISSING_USER] = "missing_user",
    [DECODE_EMPTY_USER] = "empty_user",
    [DECODE_USER_TOO_LONG] = "user_too_long",
    [DECODE_BAD_USER] = "bad_user",
    [DECODE_INVALID_USER_ID] = "invalid_user_id",
    [DECODE_NUL_CHARACTER] = "nul_character",
    [DECODE_KEY_MISMATCH] = "key_mismatch",
    [DECODE_MISSING_AMOUNT] = "missing_amount",
    [DECODE_NON_NUMERIC_AMOUNT] = "non_numeric_amount",
    [DECODE_NEGATIVE_AMOUNT] = "negative_amount",
    [DECODE_NON_FINITE_AMOUNT] = "non_finite_amount",
    [DECODE_AMOUNT_OUT_OF_RANGE] = "amount_out_of_range",
    [DECODE_AMOUNT_TOO_PRECISE] = "amount_too_precise",
    [DECODE_BAD_EVENT_ID] = "bad_event_id",
    [DECODE_BAD_TIMESTAMP] = "bad_timestamp",
    [DECODE_MESSAGE_TOO_LARGE] = "message_too_large",
    [DECODE_TOO_DEEP] = "json_too_deep",
};

const decode_limits_t DECODE_DEFAULT_LIMITS = {
    .max_message_bytes = 64 * 1024,
    .max_user_bytes = PAYMENT_USER_MAX,
    .max_json_depth = 8,
};

const char *decode_reason_code(decode_reason_t reason) {
    if ((unsigned)reason >= DECODE_REASON_COUNT) return "unknown";
    return REASON_CODES[reason];
}

static decode_reason_t reject(decode_reason_t reason, char *errstr, size_t errstr_size,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static decode_reason_t reject(decode_reason_t reason, char *errstr, size_t errstr_size,
                              const char *fmt, ...) {
    va_list ap;
    if (errstr && errstr_size) {
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return reason;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* A user id is 1..256 bytes of UTF-8 with no control characters, so it can
 * be a Redis key, a Kafka key and a JSON string without surprises. */
static decode_reason_t take_user(const char *user, size_t len, size_t max_len, payment_t *out,
                                 char *errstr, size_t errstr_size) {
    size_t bad_at;
    if (len == 0) return reject(DECODE_EMPTY_USER, errstr, errstr_size, "user_id: empty");
    if (len > max_len || len > PAYMENT_USER_MAX)
        return reject(DECODE_USER_TOO_LONG, errstr, errstr_size,
                      "user_id: %zu bytes, at most %zu allowed", len, max_len);
    const char *nul = memchr(user, '\0', len);
    if (nul)
        return reject(DECODE_NUL_CHARACTER, errstr, errstr_size, "user_id: NUL at byte %zu",
                      (size_t)(nul - user));
    if (!utf8_valid(user, len, &bad_at))
        return reject(DECODE_INVALID_USER_ID, errstr, errstr_size,
                      "user_id: not UTF-8 at byte %zu", bad_at);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f)
            return reject(DECODE_INVALID_USER_ID, errstr, errstr_size,
                          "user_id: control character at byte %zu", i);
    memcpy(out->user_id, user, len);
    out->user_id[len] = '\0';
    out->user_len = len;
    return DECODE_OK;
}

static decode_reason_t take_amount_status(decimal_status_t st, decimal_t amount,
                                          payment_t *out, char *errstr, size_t errstr_size) {
    switch (st) {
    case DECIMAL_OK: break;
    case DECIMAL_ERR_SYNTAX:
        return reject(DECODE_NON_NUMERIC_AMOUNT, errstr, errstr_size,
                      "amount: not a decimal number");
    case DECIMAL_ERR_PRECISION:
        return reject(DECODE_AMOUNT_TOO_PRECISE, errstr, errstr_size,
                      "amount: more than 4 digits after the point");
    case DECIMAL_ERR_RANGE:
        return reject(DECODE_AMOUNT_OUT_OF_RANGE, errstr, errstr_size,
                      "amount: out of range 0..1000000000000");
    }
    if (amount < 0)
        return reject(DECODE_NEGATIVE_AMOUNT, errstr, errstr_size, "amount: negative");
    if (amount > PAYMENT_AMOUNT_MAX)
        return reject(DECODE_AMOUNT_OUT_OF_RANGE, errstr, errstr_size,
                      "amount: out of range 0..1000000000000");
    out->amount = amount;
    return DECODE_OK;
}

static bool looks_non_finite(const char *text, size_t len) {
    while (len && (*text == '-' || *text == '+')) text++, len--;
    return (len == 3 && strncasecmp(text, "nan", 3) == 0) ||
           (len == 3 && strncasecmp(text, "inf", 3) == 0) ||
           (len == 8 && strncasecmp(text, "infinity", 8) == 0);
}

/* RFC 8259's number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *s, size_t len) {
    size_t i = 0;
    if (i < len && s[i] == '-') i++;
    if (i < len && s[i] == '0') {
        i++;
    } else if (i < len && s[i] >= '1' && s[i] <= '9') {
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    } else {
        return false;
    }
    if (i < len && s[i] == '.') {
        size_t digits = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
        if (i == digits) return false;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        size_t digits = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
        if (i == digits) return false;
    }
    return i == len;
}

/* A numeric string, or a bare value: exactly a JSON number's text, so that
 * " 5", "+5", "5.", ".5" and "007" are the producer's bug, not an amount. */
static decode_reason_t take_amount_text(const char *text, size_t len, payment_t *out,
                                        char *errstr, size_t errstr_size) {
    decimal_t amount = 0;
    const char *nul = memchr(text, '\0', len);
    if (nul)
        return reject(DECODE_NUL_CHARACTER, errstr, errstr_size, "amount: NUL at byte %zu",
                      (size_t)(nul - text));
    if (looks_non_finite(text, len))
        return reject(DECODE_NON_FINITE_AMOUNT, errstr, errstr_size, "amount: not finite");
    if (!is_json_number(text, len))
        return reject(DECODE_NON_NUMERIC_AMOUNT, errstr, errstr_size,
                      "amount: not a number as JSON writes one (RFC 8259)");
    decimal_status_t st = decimal_parse(text, len, &amount);
    return take_amount_status(st, amount, out, errstr, errstr_size);
}

static decode_reason_t decode_bare_number(const char *key, size_t key_len, const char *text,
                                          size_t len, const decode_limits_t *limits,
                                          payment_t *out, char *errstr, size_t errstr_size) {
    decode_reason_t r;
    if (!key || key_len == 0)
        return reject(DECODE_MISSING_USER, errstr, errstr_size,
                      "bare amount without a message key: the key must be the user");
    if ((r = take_user(key, key_len, limits->max_user_bytes, out, errstr, errstr_size)) !=
        DECODE_OK)
        return r;
    return take_amount_text(text, len, out, errstr, errstr_size);
}

/* The members a payment reads, each the first of its name, as
 * cJSON_GetObjectItemCaseSensitive would find it; one walk instead of one
 * per name, whose string compares were a few percent of decoding. */
typedef struct payment_fields {
    const cJSON *user, *amount, *event_id, *timestamp;
} payment_fields_t;

static void find_fields(const cJSON *root, payment_fields_t *f) {
    *f = (payment_fields_t){0};
    for (const cJSON *m = root->child; m; m = m->next) {
        const char *name = m->string;
        const cJSON **slot = NULL;
        if (!name) continue;
        switch (name[0]) {
        case 'u': slot = strcmp(name, "user_id") == 0 ? &f->user : NULL; break;
        case 'a': slot = strcmp(name, "amount") == 0 ? &f->amount : NULL; break;
        case 'e': slot = strcmp(name, "event_id") == 0 ? &f->event_id : NULL; break;
        case 't': slot = strcmp(name, "timestamp") == 0 ? &f->timestamp : NULL; break;
        default: break;
        }
        if (slot && !*slot) *slot = m;
    }
}

static decode_reason_t decode_optional_fields(const payment_fields_t *f, payment_t *out,
                                              char *errstr, size_t errstr_size) {
    const cJSON *event_id = f->event_id;
    const cJSON *ts = f->timestamp;

    if (event_id && !cJSON_IsNull(event_id)) {
        if (cJSON_IsString(event_id)) {
            size_t n = strlen(event_id->valuestring), bad_at;
            if (n > PAYMENT_EVENT_ID_MAX)
                return reject(DECODE_BAD_EVENT_ID, errstr, errstr_size,
                              "event_id: longer than %d bytes", PAYMENT_EVENT_ID_MAX);
            /* It is echoed in alerts, which must stay UTF-8. */
            if (!utf8_valid(event_id->valuestring, n, &bad_at))
                return reject(DECODE_BAD_EVENT_ID, errstr, errstr_size,
                              "event_id: not UTF-8 at byte %zu", bad_at);
            memcpy(out->event_id, event_id->valuestring, n + 1);
        } else if (cJSON_IsNumber(event_id) && isfinite(event_id->valuedouble) &&
                   fabs(event_id->valuedouble) < 9e15) {
            snprintf(out->event_id, sizeof(out->event_id), "%.0f", event_id->valuedouble);
        } else {
            return reject(DECODE_BAD_EVENT_ID, errstr, errstr_size,
                          "event_id: expected a string or an integer");
        }
    }
    if (ts && !cJSON_IsNull(ts)) {
        double v = cJSON_IsNumber(ts) ? ts->valuedouble : -1;
        if (!cJSON_IsNumber(ts) || !isfinite(v) || v < 0 || v > 9e15 || v != floor(v))
            return reject(DECODE_BAD_TIMESTAMP, errstr, errstr_size,
                          "timestamp: expected milliseconds since the epoch");
        out->timestamp_ms = (int64_t)v;
    }
    return DECODE_OK;
}

static decode_reason_t decode_object(const char *key, size_t key_len, const cJSON *root,
                                     const decode_limits_t *limits, payment_t *out,
                                     char *errstr, size_t errstr_size) {
    payment_fields_t fields;
    find_fields(root, &fields);
    const cJSON *user = fields.user, *amount = fields.amount;
    decode_reason_t r;

    if (user && !cJSON_IsNull(user)) {
        if (!cJSON_IsString(user))
            return reject(DECODE_BAD_USER, errstr, errstr_size, "user_id: not a string");
        size_t n = strlen(user->valuestring);
        if ((r = take_user(user->valuestring, n, limits->max_user_bytes, out, errstr,
                           errstr_size)) != DECODE_OK)
            return r;
        /* Ownership of a user's state follows the partition, and the
         * partition follows the key: a different key would split the user. */
        if (key && key_len && (key_len != n || memcmp(key, user->valuestring, n) != 0))
            return reject(DECODE_KEY_MISMATCH, errstr, errstr_size,
                          "user_id differs from the message key");
    } else if (key && key_len) {
        if ((r = take_user(key, key_len, limits->max_user_bytes, out, errstr, errstr_size)) !=
            DECODE_OK)
            return r;
    } else {
        return reject(DECODE_MISSING_USER, errstr, errstr_size,
                      "no user_id field and no message key");
    }

    if (!amount || cJSON_IsNull(amount))
        return reject(DECODE_MISSING_AMOUNT, errstr, errstr_size, "amount: missing");
    if (cJSON_IsString(amount)) {
        r = take_amount_text(amount->valuestring, strlen(amount->valuestring), out, errstr,
                             errstr_size);
    } else if (cJSON_IsNumber(amount)) {
        decimal_t d = 0;
        if (!isfinite(amount->valuedouble))
            return reject(DECODE_NON_FINITE_AMOUNT, errstr, errstr_size,
                          "amount: not finite");
        decimal_status_t st = decimal_from_double(amount->valuedouble, &d);
        r = take_amount_status(st, d, out, errstr, errstr_size);
    } else {
        r = reject(DECODE_NON_NUMERIC_AMOUNT, errstr, errstr_size,
                   "amount: expected a number or a numeric string");
    }
    if (r != DECODE_OK) return r;
    return decode_optional_fields(&fields, out, errstr, errstr_size);
}

/* What cJSON accepts but RFC 8259 does not, or what its NUL-terminated
 * strings would hide, read from the text itself once cJSON has accepted it.
 * In accepted JSON a backslash only ever opens an escape inside a string,
 * and a bare token that starts with '-' or a digit is a number; nothing
 * more is needed to find them. */
static bool is_number_char(char c) {
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E';
}

/* The bytes check_json_text() stops at; every other byte is passed over
 * with one table look-up (the scan was about 7% of decoding, byte by byte
 * with a test per case). */
enum { STOP_IN_STRING = 1, STOP_OUTSIDE = 2 };
static const unsigned char JSON_TEXT_STOPS[256] = {
    ['\0'] = STOP_IN_STRING | STOP_OUTSIDE, ['"'] = STOP_IN_STRING | STOP_OUTSIDE,
    ['\\'] = STOP_IN_STRING, ['-'] = STOP_OUTSIDE, ['0'] = STOP_OUTSIDE, ['1'] = STOP_OUTSIDE,
    ['2'] = STOP_OUTSIDE, ['3'] = STOP_OUTSIDE, ['4'] = STOP_OUTSIDE, ['5'] = STOP_OUTSIDE,
    ['6'] = STOP_OUTSIDE, ['7'] = STOP_OUTSIDE, ['8'] = STOP_OUTSIDE, ['9'] = STOP_OUTSIDE,
};

static size_t skip_to_stop(const char *text, size_t i, size_t len, unsigned char stops) {
    while (i < len && !(JSON_TEXT_STOPS[(unsigned char)text[i]] & stops)) i++;
    return i;
}

static decode_reason_t check_json_text(const char *text, size_t len, char *errstr,
                                       size_t errstr_size) {
    size_t i = 0;
    while ((i = skip_to_stop(text, i, len, STOP_OUTSIDE)) < len) {
        char c = text[i];
        if (c == '\0')
            return reject(DECODE_NUL_CHARACTER, errstr, errstr_size,
                          "a raw NUL byte at byte %zu", i);
        if (c == '"') {
            for (i++; (i = skip_to_stop(text, i, len, STOP_IN_STRING)) < len;) {
                c = text[i];
                if (c == '\0')
                    return reject(DECODE_NUL_CHARACTER, errstr, errstr_size,
                                  "a raw NUL byte at byte %zu", i);
                if (c == '"') break;
                /* A backslash: the four hex digits after \u hold none, and
                 * the escaped character is never a string's end. */
                if (i + 5 < len && text[i + 1] == 'u' && memcmp(text + i + 2, "0000", 4) == 0)
                    return reject(DECODE_NUL_CHARACTER, errstr, errstr_size,
                                  "a string holds an escaped NUL (\\u0000) at byte %zu", i);
                i += 2;
            }
            i++; /* past the closing quote */
            continue;
        }
        size_t start = i; /* '-' or a digit: a number */
        while (i + 1 < len && is_number_char(text[i + 1])) i++;
        if (!is_json_number(text + start, i + 1 - start))
            return reject(DECODE_MALFORMED_JSON, errstr, errstr_size,
                          "the number at byte %zu is not JSON (RFC 8259: no leading zeros, "
                          "digits on both sides of the point)", start);
        i++;
    }
    return DECODE_OK;
}

/* Deepest nesting of objects and arrays; stops counting past limit. */
static int json_depth(const cJSON *item, int limit) {
    int deepest = 0;
    if (limit < 0) return 0;
    for (const cJSON *child = item->child; child; child = child->next) {
        if (!cJSON_IsObject(child) && !cJSON_IsArray(child)) continue;
        int d = json_depth(child, limit - 1);
        if (d > deepest) deepest = d;
        if (deepest > limit) break;
    }
    return deepest + 1;
}

decode_reason_t decode_erasure(const void *key, size_t key_len, const decode_limits_t *limits,
                               payment_t *out, char *errstr, size_t errstr_size) {
    if (!limits) limits = &DECODE_DEFAULT_LIMITS;
    memset(out, 0, sizeof(*out));
    out->timestamp_ms = -1;
    if (!key || key_len == 0)
        return reject(DECODE_MISSING_USER, errstr, errstr_size,
                      "a tombstone erases the user its key names, and it has no key");
    return take_user(key, key_len, limits->max_user_bytes, out, errstr, errstr_size);
}

decode_reason_t decode_payment(const void *key_ptr, size_t key_len, const void *value_ptr,
                               size_t value_len, const decode_limits_t *limits, payment_t *out,
                               char *errstr, size_t errstr_size) {
    const char *key = key_ptr, *value = value_ptr;
    size_t start = 0, end = value_len;
    if (!limits) limits = &DECODE_DEFAULT_LIMITS;

    out->user_id[0] = '\0';
    out->user_len = 0;
    out->amount = 0;
    out->event_id[0] = '\0';
    out->timestamp_ms = -1;

    if (value)
        while (start < end && is_space(value[start])) start++;
    if (value)
        while (end > start && is_space(value[end - 1])) end--;
    if (!value || start == end)
        return reject(DECODE_EMPTY, errstr, errstr_size, "empty message value");
    /* Checked before any parsing: a huge value is never loaded into JSON. */
    if (value_len > limits->max_message_bytes)
        return reject(DECODE_MESSAGE_TOO_LARGE, errstr, errstr_size,
                      "message of %zu bytes, at most %zu allowed (input.max.message.bytes)",
                      value_len, limits->max_message_bytes);

    if (value[start] != '{' && value[start] != '[' && value[start] != '"')
        if (value[start] == '-' || value[start] == '+' || value[start] == '.' ||
            (value[start] >= '0' && value[start] <= '9') || looks_non_finite(value + start, end - start))
            return decode_bare_number(key, key_len, value + start, end - start, limits, out,
                                      errstr, errstr_size);

    const char *parse_end = NULL;
    json_arena_begin(); /* the tree lives only until json_arena_delete below */
    cJSON *root = cJSON_ParseWithLengthOpts(value, value_len, &parse_end, 0);
    if (!root) {
        json_arena_end();
        return reject(DECODE_MALFORMED_JSON, errstr, errstr_size,
                      "malformed or truncated JSON");
    }
    size_t consumed = parse_end ? (size_t)(parse_end - value) : value_len;
    while (consumed < value_len && is_space(value[consumed])) consumed++;
    decode_reason_t r;
    if (consumed < value_len)
        r = reject(DECODE_TRAILING_GARBAGE, errstr, errstr_size,
                   "unexpected bytes after the JSON value at byte %zu", consumed);
    else if (!cJSON_IsObject(root))
        r = reject(DECODE_NOT_AN_OBJECT, errstr, errstr_size,
                   "JSON value is not an object");
    else if (json_depth(root, limits->max_json_depth) > limits->max_json_depth)
        r = reject(DECODE_TOO_DEEP, errstr, errstr_size,
                   "JSON nested deeper than %d levels (input.max.json.depth)",
                   limits->max_json_depth);
    else if ((r = check_json_text(value, consumed, errstr, errstr_size)) == DECODE_OK)
        r = decode_object(key, key_len, root, limits, out, errstr, errstr_size);
    json_arena_delete(root);
    json_arena_end();
    return r;
}
