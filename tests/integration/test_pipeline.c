/* End-to-end tests of the real binary against a real redis-server and the
 * Kafka protocol (librdkafka's mock cluster), all on 127.0.0.1. */
#include <check.h>

#include "check_main.h"
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "decimal.h"
#include "fixture.h"

static service_proc_t svc;

static void assert_user_state(const char *user, const char *prev, const char *cum,
                              const char *count) {
    char key[300];
    if (!wait_for_user_field(redis, user, "count", count, 30000)) fixture_dump_logs(40);
    ck_assert(redis_find_user_key(redis, user, key, sizeof(key)));
    char *p = redis_hget(redis, key, "prev"), *c = redis_hget(redis, key, "cum"),
         *n = redis_hget(redis, key, "count");
    ck_assert_msg(p && c && n, "no state for %s", user);
    ck_assert_str_eq(n, count);
    ck_assert_str_eq(p, prev);
    ck_assert_str_eq(c, cum);
    free(p);
    free(c);
    free(n);
}

static const char *json_text(const cJSON *obj, const char *name) {
    static char buf[8][64];
    static int slot;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    ck_assert_msg(item != NULL, "alert lacks %s", name);
    char *out = buf[slot++ % 8];
    if (cJSON_IsString(item)) snprintf(out, 64, "%s", item->valuestring);
    else snprintf(out, 64, "%.17g", item->valuedouble);
    return out;
}

/* ---- the seed ---------------------------------------------------------- */


START_TEST(test_seed_payments_raise_exactly_two_alerts_and_exact_totals) {
    service_start(&svc, &kafka, &redis_srv, NULL);
    kafka_produce(&kafka, "payments", SEED_KEYS, SEED_VALUES, SEED_COUNT);
    assert_user_state("user1", "110000", "122000", "3");
    assert_user_state("user2", "120000", "133000", "4");

    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", 2, 30000);
    ck_assert_int_eq(alerts.count, 2);
    int seen_user1 = 0, seen_user2 = 0;
    for (size_t i = 0; i < alerts.count; i++) {
        cJSON *a = cJSON_Parse(alerts.items[i].value);
        ck_assert_ptr_nonnull(a);
        ck_assert_str_eq(json_text(a, "rule"), "amount_jump");
        ck_assert_str_eq(alerts.items[i].key, json_text(a, "user_id"));
        if (strcmp(json_text(a, "user_id"), "user1") == 0) {
            seen_user1++;
            ck_assert_str_eq(json_text(a, "previous_amount"), "7000");
            ck_assert_str_eq(json_text(a, "amount"), "110000");
            ck_assert_str_eq(json_text(a, "diff"), "103000");
            ck_assert_str_eq(json_text(a, "cumulative_amount"), "122000");
            ck_assert_str_eq(json_text(a, "event_count"), "3");
        } else {
            seen_user2++;
            ck_assert_str_eq(json_text(a, "previous_amount"), "3000");
            ck_assert_str_eq(json_text(a, "amount"), "120000");
            ck_assert_str_eq(json_text(a, "diff"), "117000");
            ck_assert_str_eq(json_text(a, "cumulative_amount"), "133000");
        }
        ck_assert_str_eq(json_text(a, "threshold"), "10000");
        const cJSON *src = cJSON_GetObjectItem(a, "source");
        char want_id[128];
        snprintf(want_id, sizeof(want_id), "payments/%s/%s/amount_jump",
                 json_text(src, "partition"), json_text(src, "offset"));
        ck_assert_str_eq(json_text(a, "alert_id"), want_id);
        ck_assert(cJSON_GetObjectItem(a, "event_time") && cJSON_GetObjectItem(a, "detected_at"));
        cJSON_Delete(a);
    }
    ck_assert_int_eq(seen_user1, 1);
    ck_assert_int_eq(seen_user2, 1);
    record_list_free(&alerts);
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

/* ---- a longer stream against a reference ------------------------------- */

#define STREAM_USERS 40
#define STREAM_EVENTS 5000

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t next_random(void) { /* xorshift64: deterministic across runs */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

START_TEST(test_long_stream_matches_a_reference_computed_here) {
    static char keys_buf[STREAM_EVENTS][16], values_buf[STREAM_EVENTS][96];
    static const char *keys[STREAM_EVENTS], *values[STREAM_EVENTS];
    decimal_t prev[STREAM_USERS] = {0}, cum[STREAM_USERS] = {0};
    int count[STREAM_USERS] = {0};
    size_t expected_alerts = 0;
    char expected_alert_keys[STREAM_EVENTS][80];

    for (int i = 0; i < STREAM_EVENTS; i++) {
        int u = (int)(next_random() % STREAM_USERS);
        /* Mostly small amounts with 0-4 decimals, sometimes a big jump. */
        uint64_t r = next_random();
        decimal_t amount = (r % 10 == 0) ? (decimal_t)(r % 500000) * 10000 + (decimal_t)(r % 7)
                                         : (decimal_t)(r % 2000000);
        char text[DECIMAL_TEXT_MAX];
        decimal_format(amount, text, sizeof(text));
        snprintf(keys_buf[i], sizeof(keys_buf[i]), "u%02d", u);
        if (i % 3 == 0) snprintf(values_buf[i], sizeof(values_buf[i]), "%s", text);
        else if (i % 3 == 1)
            snprintf(values_buf[i], sizeof(values_buf[i]),
                     "{\"user_id\":\"u%02d\",\"amount\":\"%s\"}", u, text);
        else
            snprintf(values_buf[i], sizeof(values_buf[i]), "{\"amount\":%s}", text);
        keys[i] = keys_buf[i];
        values[i] = values_buf[i];
        if (count[u] > 0 && amount - prev[u] >= 10000LL * DECIMAL_SCALE) {
            char a[24], p[24];
            decimal_format(amount, a, sizeof(a));
            decimal_format(prev[u], p, sizeof(p));
            snprintf(expected_alert_keys[expected_alerts++], 80, "u%02d %s %s %d", u, p, a,
                     count[u] + 1);
        }
        prev[u] = amount;
        cum[u] += amount;
        count[u]++;
    }

    service_start(&svc, &kafka, &redis_srv, NULL);
    kafka_produce(&kafka, "payments", keys, values, STREAM_EVENTS);
    for (int u = 0; u < STREAM_USERS; u++) {
        char user[16], p[24], c[24], n[16];
        if (!count[u]) continue;
        snprintf(user, sizeof(user), "u%02d", u);
        decimal_format(prev[u], p, sizeof(p));
        decimal_format(cum[u], c, sizeof(c));
        snprintf(n, sizeof(n), "%d", count[u]);
        assert_user_state(user, p, c, n);
    }
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", expected_alerts, 30000);
    ck_assert_int_eq(alerts.count, expected_alerts);
    /* Each expected (user, previous, amount, count) appears exactly once. */
    int *matched = calloc(expected_alerts, sizeof(int));
    for (size_t i = 0; i < alerts.count; i++) {
        cJSON *a = cJSON_Parse(alerts.items[i].value);
        char got[80];
        /* Printing the parsed numbers back gives their shortest text. */
        char *p = cJSON_PrintUnformatted(cJSON_GetObjectItem(a, "previous_amount"));
        char *am = cJSON_PrintUnformatted(cJSON_GetObjectItem(a, "amount"));
        snprintf(got, sizeof(got), "%s %s %s %s", json_text(a, "user_id"), p, am,
                 json_text(a, "event_count"));
        free(p);
        free(am);
        int found = 0;
        for (size_t k = 0; k < expected_alerts && !found; k++)
            if (!matched[k] && strcmp(expected_alert_keys[k], got) == 0) matched[k] = found = 1;
        ck_assert_msg(found, "unexpected alert %s", got);
        cJSON_Delete(a);
    }
    free(matched);
    record_list_free(&alerts);
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

/* ---- dead letters ------------------------------------------------------ */

START_TEST(test_bad_input_goes_to_the_dead_letter_topic_with_reason_and_source) {
    const char *keys[] = {"good", "u", "u", "u", "u", "u", NULL, "u", "u", "u", "good"};
    const char *values[] = {"100",
                            "{\"user_id\":\"u\",\"amount\":5",
                            "{\"user_id\":\"u\",\"amount\":5} x",
                            "[1]",
                            "{\"user_id\":\"u\",\"amount\":\"abc\"}",
                            "-5",
                            "{\"amount\":5}",
                            "{\"user_id\":\"u\",\"amount\":1e13}",
                            "{\"user_id\":\"u\",\"amount\":0.00001}",
                            "{\"user_id\":\"u\"}",
                            "250.5"};
    const char *want_reasons[] = {"malformed_json", "trailing_garbage", "not_an_object",
                                  "non_numeric_amount", "negative_amount", "missing_user",
                                  "amount_out_of_range", "amount_too_precise", "missing_amount"};
    size_t bad = sizeof(want_reasons) / sizeof(want_reasons[0]);

    service_start(&svc, &kafka, &redis_srv, NULL);
    kafka_produce(&kafka, "payments", keys, values, 11);
    assert_user_state("good", "250.5", "350.5", "2");
    record_list_t dlq = kafka_read_topic(&kafka, "payments-dlq", bad, 30000);
    ck_assert_int_eq(dlq.count, bad);
    for (size_t r = 0; r < bad; r++) {
        char needle[80];
        snprintf(needle, sizeof(needle), "fraud.dlq.reason=%s\n", want_reasons[r]);
        int found = 0;
        for (size_t i = 0; i < dlq.count; i++) {
            if (!strstr(dlq.items[i].headers, needle)) continue;
            found = 1;
            ck_assert_ptr_nonnull(strstr(dlq.items[i].headers, "fraud.source.topic=payments\n"));
            ck_assert_ptr_nonnull(strstr(dlq.items[i].headers, "fraud.source.partition="));
            ck_assert_ptr_nonnull(strstr(dlq.items[i].headers, "fraud.source.offset="));
            ck_assert_ptr_nonnull(strstr(dlq.items[i].headers, "fraud.dlq.error="));
        }
        ck_assert_msg(found, "no dead letter with reason %s", want_reasons[r]);
    }
    /* The original value is carried unchanged. */
    int carried = 0;
    for (size_t i = 0; i < dlq.count; i++)
        carried += strcmp(dlq.items[i].value, "{\"user_id\":\"u\",\"amount\":\"abc\"}") == 0;
    ck_assert_int_eq(carried, 1);
    record_list_free(&dlq);
    ck_assert_int_eq(kill(svc.pid, 0), 0); /* still running */
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

/* Strict input: each tricky payment, under a key of its own, ends exactly
 * once, applied or dead-lettered with its reason. */
typedef struct strict_case {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    const char *reason; /* NULL: applied */
} strict_case_t;

#define BYTES(s) s, sizeof(s) - 1

static const strict_case_t STRICT_CASES[] = {
    {BYTES("k40"), BYTES("{\"user_id\":\"k40\\u0000zzz\",\"amount\":5}"), "nul_character"},
    {BYTES("k41"), BYTES("{\"amount\":\"5\\u0000\"}"), "nul_character"},
    {BYTES("k42"), BYTES("{\"user_id\":\"k42\0zzz\",\"amount\":5}"), "nul_character"},
    {BYTES("k43\0"), BYTES("5"), "nul_character"},
    {BYTES("u\xff\xfe"), BYTES("5"), "invalid_user_id"},
    {BYTES("k44"), BYTES("{\"user_id\":\"k44\xff\",\"amount\":5}"), "invalid_user_id"},
    {BYTES("k45"), BYTES("{\"amount\":007}"), "malformed_json"},
    {BYTES("k46"), BYTES("{\"amount\":\"+5\"}"), "non_numeric_amount"},
    {BYTES("k47"), BYTES("{\"amount\":\" 5\"}"), "non_numeric_amount"},
    {BYTES("k48"), BYTES("{\"amount\":\"5.\"}"), "non_numeric_amount"},
    {BYTES("k49"), BYTES("{\"amount\":\".5\"}"), "non_numeric_amount"},
    {BYTES("k50"), BYTES("{\"amount\":\"12.50\"}"), NULL},
    {BYTES("k51"), BYTES("{\"amount\":\"1e3\"}"), NULL},
    {BYTES("k52"), BYTES("{\"amount\":-0}"), NULL},
    /* Two payments each, so both raise an amount_jump alert. */
    {BYTES("caf\xc3\xa9"), BYTES("{\"amount\":5}"), NULL},
    {BYTES("caf\xc3\xa9"), BYTES("{\"amount\":100000,\"event_id\":\"\xe2\x82\xac" "1\"}"), NULL},
    {BYTES("\xf0\x9f\x92\xb3"), BYTES("{\"user_id\":\"\\ud83d\\udcb3\",\"amount\":1}"), NULL},
    {BYTES("\xf0\x9f\x92\xb3"), BYTES("{\"user_id\":\"\\ud83d\\udcb3\",\"amount\":50000}"), NULL},
};
#define STRICT_CASE_COUNT (sizeof(STRICT_CASES) / sizeof(STRICT_CASES[0]))

/* Python's json, on bytes that must decode as UTF-8, with NaN and
 * Infinity refused: a strict consumer, as the alert topic has downstream. */
static void assert_strict_utf8_json(const record_list_t *records) {
    char path[] = "/tmp/fraud-strict-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "wb");
    for (size_t i = 0; i < records->count; i++) {
        ck_assert_ptr_null(memchr(records->items[i].value, '\n', records->items[i].value_len));
        fwrite(records->items[i].value, 1, records->items[i].value_len, f);
        fputc('\n', f);
    }
    fclose(f);
    char cmd[400];
    snprintf(cmd, sizeof(cmd),
             "python3 -c 'import json,sys\n"
             "def no(c): raise ValueError(c)\n"
             "for line in open(sys.argv[1], \"rb\"):\n"
             "    json.loads(line.decode(\"utf-8\", \"strict\"), parse_constant=no)' %s",
             path);
    int rc = system(cmd);
    unlink(path);
    ck_assert_msg(rc == 0, "a record is not strict UTF-8 JSON");
}

START_TEST(test_tricky_input_is_applied_or_dead_lettered_exactly_once) {
    const char *keys[STRICT_CASE_COUNT], *values[STRICT_CASE_COUNT];
    size_t key_lens[STRICT_CASE_COUNT], value_lens[STRICT_CASE_COUNT], rejected = 0;
    for (size_t i = 0; i < STRICT_CASE_COUNT; i++) {
        keys[i] = STRICT_CASES[i].key;
        key_lens[i] = STRICT_CASES[i].key_len;
        values[i] = STRICT_CASES[i].value;
        value_lens[i] = STRICT_CASES[i].value_len;
        rejected += STRICT_CASES[i].reason != NULL;
    }
    const char *last_keys[] = {"zz-last"}, *last_values[] = {"1"};
    service_start(&svc, &kafka, &redis_srv, NULL);
    kafka_produce_bytes(&kafka, "payments", keys, key_lens, values, value_lens,
                        STRICT_CASE_COUNT);
    kafka_produce(&kafka, "payments", last_keys, last_values, 1);
    assert_user_state("k50", "12.5", "12.5", "1");
    assert_user_state("k51", "1000", "1000", "1");
    assert_user_state("k52", "0", "0", "1");
    assert_user_state("caf\xc3\xa9", "100000", "100005", "2");
    assert_user_state("\xf0\x9f\x92\xb3", "50000", "50001", "2");
    assert_user_state("zz-last", "1", "1", "1");
    /* The identity a NUL would have truncated to was never touched. */
    char key[300];
    ck_assert(!redis_find_user_key(redis, "k40", key, sizeof(key)));
    ck_assert(!redis_find_user_key(redis, "k42", key, sizeof(key)));
    ck_assert(!redis_find_user_key(redis, "k43", key, sizeof(key)));

    record_list_t dlq = kafka_read_topic(&kafka, "payments-dlq", rejected, 30000);
    ck_assert_int_eq(dlq.count, rejected);
    for (size_t c = 0; c < STRICT_CASE_COUNT; c++) {
        const strict_case_t *sc = &STRICT_CASES[c];
        size_t matches = 0;
        for (size_t i = 0; i < dlq.count; i++) {
            const record_t *r = &dlq.items[i];
            if (r->key_len != sc->key_len || memcmp(r->key, sc->key, sc->key_len) != 0) continue;
            matches++;
            char needle[80];
            snprintf(needle, sizeof(needle), "fraud.dlq.reason=%s\n", sc->reason ? sc->reason : "");
            ck_assert_msg(sc->reason && strstr(r->headers, needle), "case %zu: headers %s", c,
                          r->headers);
            /* The original bytes are carried unchanged. */
            ck_assert_int_eq(r->value_len, sc->value_len);
            ck_assert_int_eq(memcmp(r->value, sc->value, sc->value_len), 0);
        }
        ck_assert_msg(matches == (sc->reason ? 1u : 0u), "case %zu dead-lettered %zu times", c,
                      matches);
    }
    record_list_free(&dlq);

    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", 2, 30000);
    ck_assert_int_eq(alerts.count, 2);
    assert_strict_utf8_json(&alerts);
    record_list_free(&alerts);
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

START_TEST(test_a_flood_of_bad_input_is_dead_lettered_but_logged_sparingly) {
    enum { FLOOD = 500 };
    static const char *keys[FLOOD], *values[FLOOD];
    for (int i = 0; i < FLOOD; i++) {
        keys[i] = "flood";
        values[i] = "{not json";
    }
    service_start(&svc, &kafka, &redis_srv, NULL);
    kafka_produce(&kafka, "payments", keys, values, FLOOD);
    record_list_t dlq = kafka_read_topic(&kafka, "payments-dlq", FLOOD, 30000);
    ck_assert_int_eq(dlq.count, FLOOD);
    record_list_free(&dlq);
    ck_assert_int_eq(service_stop(&svc), 0);
    FILE *f = fopen(svc.log_path, "r");
    char line[4096];
    int logged = 0, summaries = 0;
    while (f && fgets(line, sizeof(line), f)) {
        logged += strstr(line, "dead-lettered:") != NULL;
        summaries += strstr(line, "were not logged") != NULL;
    }
    if (f) fclose(f);
    ck_assert_int_ge(logged, 1);
    ck_assert_int_le(logged, 50); /* 5 a second, not 500 */
    ck_assert_int_ge(summaries, 1); /* and says how many it left out */
}
END_TEST

/* ---- restarts ---------------------------------------------------------- */

START_TEST(test_restart_continues_totals_from_redis) {
    const char *keys[] = {"r1", "r1", "r1"};
    const char *first[] = {"100", "200", "300"};
    service_start(&svc, &kafka, &redis_srv, NULL);
    kafka_produce(&kafka, "payments", keys, first, 3);
    assert_user_state("r1", "300", "600", "3");
    ck_assert_int_eq(service_stop(&svc), 0);

    /* A new process has an empty cache: prev must come back from Redis. */
    const char *second[] = {"50000", "0.25"};
    service_start(&svc, &kafka, &redis_srv, NULL);
    kafka_produce(&kafka, "payments", keys, second, 2);
    assert_user_state("r1", "0.25", "50600.25", "5");
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", 1, 30000);
    ck_assert_int_eq(alerts.count, 1);
    cJSON *a = cJSON_Parse(alerts.items[0].value);
    ck_assert_str_eq(json_text(a, "previous_amount"), "300");
    ck_assert_str_eq(json_text(a, "cumulative_amount"), "50600");
    ck_assert_str_eq(json_text(a, "event_count"), "4");
    cJSON_Delete(a);
    record_list_free(&alerts);
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

START_TEST(test_sigterm_leaves_the_group_and_exits_zero) {
    service_start(&svc, &kafka, &redis_srv, NULL);
    const char *keys[] = {"t1"};
    const char *values[] = {"1"};
    kafka_produce(&kafka, "payments", keys, values, 1);
    assert_user_state("t1", "1", "1", "1");
    ck_assert_int_eq(service_stop(&svc), 0);
    FILE *f = fopen(svc.log_path, "r");
    char line[2048];
    int clean = 0;
    while (f && fgets(line, sizeof(line), f))
        clean |= strstr(line, "exiting with status 0") != NULL;
    if (f) fclose(f);
    ck_assert(clean);
}
END_TEST

/* ---- startup errors ---------------------------------------------------- */

START_TEST(test_unreachable_redis_fails_at_start_with_one_clear_line) {
    char url[64], out[4096];
    snprintf(url, sizeof(url), "redis.url=redis://127.0.0.1:%d", harness_free_port());
    const char *args[] = {"-X", url, "-X", "redis.connect.timeout.ms=500", NULL};
    ck_assert_int_eq(service_run_once(args, out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, "fraud-detector: redis 127.0.0.1:") != NULL, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "cannot connect"));
}
END_TEST

START_TEST(test_unknown_key_and_bad_value_fail_naming_the_key) {
    char out[4096];
    const char *unknown[] = {"-X", "input.topik=x", NULL};
    ck_assert_int_eq(service_run_once(unknown, out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "input.topik"));
    const char *bad[] = {"-X", "state.ttl.ms=soon", NULL};
    ck_assert_int_eq(service_run_once(bad, out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "state.ttl.ms"));
}
END_TEST

START_TEST(test_sasl_ssl_settings_reach_librdkafka_with_secrets_masked) {
    char out[16384];
    const char *args[] = {"-X", "redis.url=redis://:hunter2@127.0.0.1:6379",
                          "-X", "kafka.security.protocol=SASL_SSL",
                          "-X", "kafka.sasl.mechanisms=SCRAM-SHA-512",
                          "-X", "kafka.sasl.username=fraud-app",
                          "-X", "kafka.sasl.password=topsecret",
                          "-X", "kafka.ssl.ca.location=/etc/ssl/certs/ca-certificates.crt",
                          "--dump-config", NULL};
    ck_assert_int_eq(service_run_once(args, out, sizeof(out)), 0);
    ck_assert_ptr_null(strstr(out, "hunter2"));
    ck_assert_ptr_null(strstr(out, "topsecret"));
    ck_assert_ptr_nonnull(strstr(out, "redis.url=redis://:***@127.0.0.1:6379"));
    /* Read back from librdkafka's own configuration objects. */
    ck_assert_ptr_nonnull(strstr(out, "librdkafka.consumer.security.protocol=sasl_ssl"));
    ck_assert_ptr_nonnull(strstr(out, "librdkafka.producer.security.protocol=sasl_ssl"));
    ck_assert_ptr_nonnull(strstr(out, "librdkafka.consumer.sasl.mechanisms=SCRAM-SHA-512"));
    ck_assert_ptr_nonnull(strstr(out, "librdkafka.producer.sasl.username=fraud-app"));
    ck_assert_ptr_nonnull(strstr(out, "librdkafka.consumer.sasl.password=***"));
    ck_assert_ptr_nonnull(strstr(out, "librdkafka.consumer.partition.assignment.strategy="
                                      "cooperative-sticky"));

    const char *bad[] = {"-X", "kafka.no.such.property=1", "--dump-config", NULL};
    ck_assert_int_eq(service_run_once(bad, out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "kafka.no.such.property"));
    const char *unsafe[] = {"-X", "kafka.consumer.enable.auto.offset.store=true",
                            "--dump-config", NULL};
    ck_assert_int_eq(service_run_once(unsafe, out, sizeof(out)), 2);
    ck_assert_ptr_nonnull(strstr(out, "must stay false"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("end_to_end");
    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
    tcase_add_test(tc, test_seed_payments_raise_exactly_two_alerts_and_exact_totals);
    tcase_add_test(tc, test_long_stream_matches_a_reference_computed_here);
    tcase_add_test(tc, test_bad_input_goes_to_the_dead_letter_topic_with_reason_and_source);
    tcase_add_test(tc, test_tricky_input_is_applied_or_dead_lettered_exactly_once);
    tcase_add_test(tc, test_a_flood_of_bad_input_is_dead_lettered_but_logged_sparingly);
    tcase_add_test(tc, test_restart_continues_totals_from_redis);
    tcase_add_test(tc, test_sigterm_leaves_the_group_and_exits_zero);
    tcase_add_test(tc, test_unreachable_redis_fails_at_start_with_one_clear_line);
    tcase_add_test(tc, test_unknown_key_and_bad_value_fail_naming_the_key);
    tcase_add_test(tc, test_sasl_ssl_settings_reach_librdkafka_with_secrets_masked);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_NOFORK, CK_VERBOSE);
}
