#include "reference_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <cJSON.h>

#include "fixture.h"

static uint64_t next_random(uint64_t *state) { /* xorshift64 */
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

void stream_make(stream_t *s, size_t events, size_t users, unsigned jump_every, uint64_t seed) {
    uint64_t rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
    decimal_t *prev = calloc(users, sizeof(decimal_t));
    memset(s, 0, sizeof(*s));
    s->events = events;
    s->users = users;
    s->keys_buf = calloc(events, sizeof(*s->keys_buf));
    s->values_buf = calloc(events, sizeof(*s->values_buf));
    s->keys = calloc(events, sizeof(char *));
    s->values = calloc(events, sizeof(char *));
    s->cum = calloc(users, sizeof(decimal_t));
    s->count = calloc(users, sizeof(int64_t));
    s->alerts = calloc(events, sizeof(*s->alerts));
    for (size_t i = 0; i < events; i++) {
        size_t u = i < users ? i : (size_t)(next_random(&rng) % users);
        uint64_t r = next_random(&rng);
        /* Small amounts up to 9999.9999; now and then a jump of 10000+. */
        decimal_t amount = (decimal_t)(r % 100000000);
        if (jump_every && r / 7 % jump_every == 0) amount += 20000LL * DECIMAL_SCALE;
        snprintf(s->keys_buf[i], sizeof(s->keys_buf[i]), "s%zu", u);
        decimal_format(amount, s->values_buf[i], sizeof(s->values_buf[i]));
        s->keys[i] = s->keys_buf[i];
        s->values[i] = s->values_buf[i];
        if (s->count[u] > 0 && amount - prev[u] >= 10000LL * DECIMAL_SCALE) {
            char p[DECIMAL_TEXT_MAX];
            decimal_format(prev[u], p, sizeof(p));
            snprintf(s->alerts[s->alert_count++], sizeof(s->alerts[0]), "s%zu %s %s %lld", u, p,
                     s->values_buf[i], (long long)s->count[u] + 1);
        }
        prev[u] = amount;
        s->cum[u] += amount;
        s->count[u]++;
    }
    free(prev);
}

void stream_free(stream_t *s) {
    free(s->keys_buf);
    free(s->values_buf);
    free(s->keys);
    free(s->values);
    free(s->cum);
    free(s->count);
    free(s->alerts);
}

/* Checks every user key on one node; counts mismatches into *bad (the
 * first described in mismatch) and users seen into *users. */
static void check_node_totals(const stream_t *s, redisContext *node, char *seen, size_t *users,
                              size_t *bad, char *mismatch, size_t mismatch_size) {
    redisReply *keys = redisCommand(node, "KEYS fraud:{*}:user:s*");
    if (!keys || keys->type != REDIS_REPLY_ARRAY) {
        if (!*bad)
            snprintf(mismatch, mismatch_size, "KEYS failed: %s",
                     keys && keys->type == REDIS_REPLY_ERROR ? keys->str : node->errstr);
        (*bad)++;
        if (keys) freeReplyObject(keys);
        return;
    }
    for (size_t k = 0; k < keys->elements; k++)
        redisAppendCommand(node, "HMGET %s cum count", keys->element[k]->str);
    for (size_t k = 0; k < keys->elements; k++) {
        redisReply *r = NULL;
        if (redisGetReply(node, (void **)&r) != REDIS_OK || !r) {
            fprintf(stderr, "redis: %s\n", node->errstr);
            abort();
        }
        size_t u = strtoul(strstr(keys->element[k]->str, ":user:s") + 7, NULL, 10);
        char want_cum[DECIMAL_TEXT_MAX] = "?", want_count[24] = "?";
        if (u < s->users) {
            decimal_format(s->cum[u], want_cum, sizeof(want_cum));
            snprintf(want_count, sizeof(want_count), "%lld", (long long)s->count[u]);
        }
        const char *cum = r->type == REDIS_REPLY_ARRAY ? r->element[0]->str : NULL;
        const char *count = r->type == REDIS_REPLY_ARRAY ? r->element[1]->str : NULL;
        if (u >= s->users || seen[u]++ || !cum || !count || strcmp(cum, want_cum) ||
            strcmp(count, want_count)) {
            if (!*bad)
                snprintf(mismatch, mismatch_size, "%s: cum %s count %s, want %s %s",
                         keys->element[k]->str, cum ? cum : "-", count ? count : "-",
                         want_cum, want_count);
            (*bad)++;
        }
        freeReplyObject(r);
    }
    *users += keys->elements;
    freeReplyObject(keys);
}

bool stream_totals_match(const stream_t *s, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    char mismatch[300] = "";
    char *seen = calloc(s->users, 1);
    bool ok = false;
    do {
        size_t bad = 0, users = 0;
        redisContext *nodes[8];
        size_t node_count = fixture_redis_masters(nodes, 8);
        memset(seen, 0, s->users);
        for (size_t n = 0; n < node_count; n++)
            check_node_totals(s, nodes[n], seen, &users, &bad, mismatch, sizeof(mismatch));
        if (!bad && users != s->users) {
            snprintf(mismatch, sizeof(mismatch), "%zu users in Redis, want %zu", users,
                     s->users);
            bad++;
        }
        if (!bad) {
            ok = true;
            break;
        }
        sleep_ms(250);
    } while (mono_ms() < deadline);
    free(seen);
    if (!ok) fprintf(stderr, "totals differ: %s\n", mismatch);
    return ok;
}

/* Two records of one alert_id: the same, but for detected_at when an alert
 * may have been decided twice. */
static bool same_alert(const char *a, const char *b, bool redecided_ok) {
    if (strcmp(a, b) == 0) return true;
    if (!redecided_ok) return false;
    cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(b);
    cJSON_DeleteItemFromObject(ja, "detected_at");
    cJSON_DeleteItemFromObject(jb, "detected_at");
    bool same = ja && jb && cJSON_Compare(ja, jb, true);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    return same;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bool stream_alerts_match(const stream_t *s, const kafka_cluster_t *kc, int timeout_ms,
                         size_t *duplicates) {
    record_list_t alerts = kafka_read_topic(kc, "fraud-alerts", s->alert_count, timeout_ms);
    /* Sort by alert_id so repeats sit together. */
    char **by_id = calloc(alerts.count + 1, sizeof(char *));
    for (size_t i = 0; i < alerts.count; i++) by_id[i] = alerts.items[i].value;
    qsort(by_id, alerts.count, sizeof(char *), compare_strings);
    char **got = calloc(alerts.count + 1, sizeof(char *));
    size_t distinct = 0;
    bool ok = true;
    *duplicates = 0;
    char last_id[400] = "";
    for (size_t i = 0; i < alerts.count; i++) {
        cJSON *a = cJSON_Parse(by_id[i]);
        const cJSON *id = cJSON_GetObjectItem(a, "alert_id");
        if (!cJSON_IsString(id)) {
            fprintf(stderr, "alert without alert_id: %s\n", by_id[i]);
            ok = false;
            cJSON_Delete(a);
            continue;
        }
        if (strcmp(id->valuestring, last_id) == 0) {
            (*duplicates)++;
            if (!same_alert(by_id[i], by_id[i - 1], s->redecided_ok)) {
                fprintf(stderr, "alert_id %s with different content:\n  %s\n  %s\n",
                        id->valuestring, by_id[i - 1], by_id[i]);
                ok = false;
            }
            cJSON_Delete(a);
            continue;
        }
        snprintf(last_id, sizeof(last_id), "%s", id->valuestring);
        char *prev = cJSON_PrintUnformatted(cJSON_GetObjectItem(a, "previous_amount"));
        char *amount = cJSON_PrintUnformatted(cJSON_GetObjectItem(a, "amount"));
        char *count = cJSON_PrintUnformatted(cJSON_GetObjectItem(a, "event_count"));
        got[distinct] = malloc(96);
        snprintf(got[distinct++], 96, "%s %s %s %s",
                 cJSON_GetObjectItem(a, "user_id")->valuestring, prev, amount, count);
        free(prev);
        free(amount);
        free(count);
        cJSON_Delete(a);
    }
    char **want = calloc(s->alert_count + 1, sizeof(char *));
    for (size_t i = 0; i < s->alert_count; i++) want[i] = s->alerts[i];
    qsort(want, s->alert_count, sizeof(char *), compare_strings);
    qsort(got, distinct, sizeof(char *), compare_strings);
    if (distinct != s->alert_count) {
        fprintf(stderr, "%zu distinct alerts, want %zu\n", distinct, s->alert_count);
        ok = false;
    }
    for (size_t i = 0; i < distinct && i < s->alert_count; i++) {
        if (strcmp(got[i], want[i]) != 0) {
            fprintf(stderr, "first differing alert: got \"%s\", want \"%s\"\n", got[i], want[i]);
            ok = false;
            break;
        }
    }
    for (size_t i = 0; i < distinct; i++) free(got[i]);
    free(got);
    free(want);
    free(by_id);
    record_list_free(&alerts);
    return ok;
}

void stream_assert_outcome(const stream_t *s, int totals_timeout_ms, size_t *duplicates) {
    bool totals = stream_totals_match(s, totals_timeout_ms);
    bool alerts = totals && stream_alerts_match(s, &kafka, 60000, duplicates);
    if (!totals || !alerts) fixture_dump_logs(25);
    ck_assert_msg(totals, "a user's cum or count differs from the reference");
    ck_assert_msg(alerts, "alerts differ from the reference");
}
