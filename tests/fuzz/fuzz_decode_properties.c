/* libFuzzer target: what the decoder accepts is one identity, and what the
 * service writes from it is UTF-8 JSON. Checks properties, not only
 * crashes; a violation aborts, which libFuzzer reports as a crash. The
 * message is read as fuzz_message.h says. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "alert.h"
#include "decode.h"
#include "fuzz_message.h"
#include "utf8.h"

#define REQUIRE(cond, what)                                                  \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "property violated: %s\n", what);                \
            abort();                                                         \
        }                                                                    \
    } while (0)

static void check_user_id(const payment_t *pay, const uint8_t *key, size_t key_len) {
    REQUIRE(pay->user_len > 0 && strlen(pay->user_id) == pay->user_len,
            "the user id has no NUL inside it");
    REQUIRE(utf8_valid(pay->user_id, pay->user_len, NULL), "the user id is UTF-8");
    for (size_t i = 0; i < pay->user_len; i++) {
        unsigned char c = (unsigned char)pay->user_id[i];
        REQUIRE(c >= 0x20 && c != 0x7f, "the user id has no control character");
    }
    if (key_len)
        REQUIRE(key_len == pay->user_len && memcmp(key, pay->user_id, key_len) == 0,
                "the user id equals the key");
}

static void check_alert_round_trip(const payment_t *pay) {
    alert_t alert = {
        .rule = "amount_jump", .user_id = pay->user_id, .amount = pay->amount,
        .source_topic = "payments", .event_id = pay->event_id,
        .event_time_ms = pay->timestamp_ms,
    };
    char *json = alert_encode_new(&alert);
    REQUIRE(json != NULL, "the alert encodes");
    size_t len = strlen(json);
    REQUIRE(utf8_valid(json, len, NULL), "the alert is UTF-8");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    REQUIRE(root != NULL && end == json + len, "the alert is one JSON value");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(root, "user_id");
    REQUIRE(cJSON_IsString(user) && strlen(user->valuestring) == pay->user_len &&
                memcmp(user->valuestring, pay->user_id, pay->user_len) == 0,
            "the alert names the same user");
    REQUIRE(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "amount")),
            "the alert's amount is a number");
    cJSON_Delete(root);
    /* A double cannot hold every 4-place decimal above 2^53 / 10^4, so read
     * the amount's own text: inside a JSON string a quote is always escaped,
     * hence the first unescaped "amount": is the key itself. */
    const char *text = strstr(json, "\"amount\":");
    REQUIRE(text != NULL, "the alert has an amount key");
    text += strlen("\"amount\":");
    size_t text_len = strcspn(text, ",}");
    decimal_t read_back = -1;
    REQUIRE(decimal_parse(text, text_len, &read_back) == DECIMAL_OK && read_back == pay->amount,
            "the alert carries the same amount, digit for digit");
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    payment_t payment;
    char errstr[256];
    fuzz_message_t m;
    if (fuzz_message_split(data, size, &m) != 0) return 0;
    if (decode_payment(m.key, m.key_len, m.value, m.value_len, NULL, &payment, errstr,
                       sizeof(errstr)) != DECODE_OK) {
        REQUIRE(utf8_sanitize(errstr) == 0, "a rejection's reason is UTF-8");
        return 0;
    }
    check_user_id(&payment, m.key, m.key_len);
    check_alert_round_trip(&payment);
    return 0;
}
