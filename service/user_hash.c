#include "user_hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

enum { F_PREV, F_CUM, F_COUNT, F_ET, F_CL, F_STL, F_AVGN, F_AVGS, F_VEL, F_AGG,
       USER_FIELD_COUNT };
#define FIRST_RULE_FIELD F_CL
static const char *const USER_FIELDS[USER_FIELD_COUNT] = {
    "prev", "cum", "count", "et", "cl", "stl", "avgn", "avgs", "vel", "agg"};

int user_hash_add_field_names(redis_argv_t *b) {
    for (int f = 0; f < USER_FIELD_COUNT; f++)
        if (redis_argv_add(b, USER_FIELDS[f], strlen(USER_FIELDS[f]))) return -1;
    return 0;
}

static int parse_decimal_field(const redisReply *r, decimal_t *out) {
    *out = 0;
    if (r->type == REDIS_REPLY_NIL) return 0;
    if (r->type != REDIS_REPLY_STRING) return -1;
    return decimal_parse(r->str, r->len, out) == DECIMAL_OK ? 0 : -1;
}

static int parse_int_field(const redisReply *r, int64_t min, int64_t max, int64_t *out) {
    char buf[32], *end;
    *out = 0;
    if (r->type == REDIS_REPLY_NIL) return 0;
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof(buf)) return -1;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    long long v = strtoll(buf, &end, 10);
    if (*end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* "t1,t2,..." oldest first; at most VELOCITY_RING_MAX are kept. */
static int parse_velocity(const redisReply *r, rule_state_t *rs) {
    if (r->type == REDIS_REPLY_NIL) return 0;
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 32 * VELOCITY_RING_MAX)
        return -1;
    size_t n = 1;
    for (size_t i = 0; i < r->len; i++) n += r->str[i] == ',';
    if (n > VELOCITY_RING_MAX) return -1;
    rs->velocity_ms = malloc(n * sizeof(*rs->velocity_ms));
    if (!rs->velocity_ms) return -1;
    rs->velocity_cap = (uint16_t)n;
    const char *p = r->str, *end = r->str + r->len;
    while (p < end) {
        char buf[32], *stop;
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof(buf) || p + len > end) return -1;
        memcpy(buf, p, len);
        buf[len] = '\0';
        long long v = strtoll(buf, &stop, 10);
        if (*stop || v <= 0) return -1;
        /* Kept sorted; a ring written in processing time before event time
         * existed may not be, if the clock stepped back. */
        uint16_t at = rs->velocity_len;
        while (at > 0 && rs->velocity_ms[at - 1] > v) {
            rs->velocity_ms[at] = rs->velocity_ms[at - 1];
            at--;
        }
        rs->velocity_ms[at] = v;
        rs->velocity_len++;
        p += len + 1;
    }
    return 0;
}

static int parse_aggregates(const redisReply *r, rule_state_t *rs) {
    if (r->type == REDIS_REPLY_NIL) return 0;
    if (r->type != REDIS_REPLY_STRING || r->len == 0) return -1;
    return aggregate_states_parse(r->str, r->len, &rs->aggregates, &rs->aggregate_len);
}

int user_hash_parse(const redisReply *hash, const redisReply *pttl, stored_user_t *out) {
    redisReply *const *f = hash->element;
    rule_state_t rs = {0};
    int64_t count = 0, average_n = 0;
    memset(out, 0, sizeof(*out));
    out->ttl_left_ms = pttl->type == REDIS_REPLY_INTEGER && pttl->integer >= 0 ? pttl->integer
                                                                             : -1;
    int bad = hash->type != REDIS_REPLY_ARRAY || hash->elements != USER_FIELD_COUNT ||
              pttl->type != REDIS_REPLY_INTEGER;
    bad = bad || parse_decimal_field(f[F_PREV], &out->state.prev) ||
          parse_decimal_field(f[F_CUM], &out->state.cum) ||
          parse_int_field(f[F_COUNT], 0, INT64_MAX, &count) ||
          parse_int_field(f[F_ET], 0, INT64_MAX, &out->state.event_ms) ||
          parse_decimal_field(f[F_CL], &rs.cumulative_alerted) ||
          parse_int_field(f[F_STL], 0, INT64_MAX, &rs.small_at_ms) ||
          parse_int_field(f[F_AVGN], 0, 1000000, &average_n) ||
          parse_decimal_field(f[F_AVGS], &rs.average_sum) || parse_velocity(f[F_VEL], &rs) ||
          parse_aggregates(f[F_AGG], &rs);
    rs.average_n = (int32_t)average_n;
    if (!bad) {
        for (int i = FIRST_RULE_FIELD; i < USER_FIELD_COUNT; i++)
            out->has_rule_fields |= f[i]->type != REDIS_REPLY_NIL;
        out->state.count = count;
        if (count == 0) out->state.prev = out->state.cum = out->state.event_ms = 0;
        if (!rule_state_is_empty(&rs) && !(out->state.rules = rule_state_move_to_heap(&rs)))
            bad = 1;
    }
    rule_state_free(&rs);
    if (bad) user_state_reset(&out->state);
    return bad ? -1 : 0;
}

static int add_velocity(redis_argv_t *b, const rule_state_t *rs) {
    char text[32 * VELOCITY_RING_MAX];
    size_t len = 0;
    for (uint16_t i = 0; i < rs->velocity_len && len + 32 < sizeof(text); i++) {
        int n = snprintf(text + len, sizeof(text) - len, "%s%lld", i ? "," : "",
                         (long long)rs->velocity_ms[i]);
        if (n < 0) return -1;
        len += (size_t)n;
    }
    return redis_argv_add(b, text, len);
}

static int add_aggregates(redis_argv_t *b, const rule_state_t *rs) {
    size_t len;
    char *text = aggregate_states_format_new(rs->aggregates, rs->aggregate_len, &len);
    if (!text) return -1;
    int rc = redis_argv_add(b, text, len);
    free(text);
    return rc;
}

static bool has_aggregates(const rule_state_t *rs) {
    for (uint32_t i = 0; i < rs->aggregate_len; i++)
        if (!aggregate_state_is_empty(&rs->aggregates[i])) return true;
    return false;
}

static int add_field_name(redis_argv_t *b, int field) {
    return redis_argv_add(b, USER_FIELDS[field], strlen(USER_FIELDS[field]));
}

int user_hash_add_fields(redis_argv_t *b, cache_entry_t *e) {
    const user_state_t *state = &e->state;
    static const rule_state_t none;
    const rule_state_t *rs = state->rules ? state->rules : &none;
    bool present[USER_FIELD_COUNT] = {
        [F_PREV] = true, [F_CUM] = true, [F_COUNT] = true, [F_ET] = true,
        [F_CL] = rs->cumulative_alerted != 0, [F_STL] = rs->small_at_ms != 0,
        [F_AVGN] = rs->average_n != 0, [F_AVGS] = rs->average_n != 0,
        [F_VEL] = rs->velocity_len != 0, [F_AGG] = has_aggregates(rs),
    };
    size_t sets = 0, dels = 0;
    for (int f = 0; f < USER_FIELD_COUNT; f++) {
        sets += present[f];
        dels += !present[f] && (e->flags & CACHE_ENTRY_RULE_FIELDS);
    }
    if (redis_argv_add_int(b, (int64_t)sets)) return -1;
    for (int f = 0; f < USER_FIELD_COUNT; f++) {
        if (!present[f]) continue;
        int rc = add_field_name(b, f);
        switch (f) {
        case F_PREV: rc = rc || redis_argv_add_decimal(b, state->prev); break;
        case F_CUM: rc = rc || redis_argv_add_decimal(b, state->cum); break;
        case F_COUNT: rc = rc || redis_argv_add_int(b, state->count); break;
        case F_ET: rc = rc || redis_argv_add_int(b, state->event_ms); break;
        case F_CL: rc = rc || redis_argv_add_decimal(b, rs->cumulative_alerted); break;
        case F_STL: rc = rc || redis_argv_add_int(b, rs->small_at_ms); break;
        case F_AVGN: rc = rc || redis_argv_add_int(b, rs->average_n); break;
        case F_AVGS: rc = rc || redis_argv_add_decimal(b, rs->average_sum); break;
        case F_VEL: rc = rc || add_velocity(b, rs); break;
        case F_AGG: rc = rc || add_aggregates(b, rs); break;
        }
        if (rc) return -1;
    }
    if (redis_argv_add_int(b, (int64_t)dels)) return -1;
    for (int f = FIRST_RULE_FIELD; f < USER_FIELD_COUNT && dels; f++)
        if (!present[f] && add_field_name(b, f)) return -1;
    /* What is written now is all the hash will hold. */
    if (sets > FIRST_RULE_FIELD) e->flags |= CACHE_ENTRY_RULE_FIELDS;
    else e->flags &= (uint8_t)~CACHE_ENTRY_RULE_FIELDS;
    return 0;
}
