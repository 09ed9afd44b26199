#include "user_hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

enum { F_PREV, F_CUM, F_COUNT, F_ET, F_CL, F_STL, F_AVGN, F_AVGS, F_VEL, F_INST,
       USER_FIELD_COUNT };
_Static_assert(USER_FIELD_COUNT == USER_HASH_FIELD_COUNT, "user_hash.h's count is the table's");
_Static_assert((1 << (2 * USER_FIELD_COUNT)) <= USER_HASH_ERASE, "a shape's bits do not overlap");
_Static_assert(USER_HASH_CORE_ONLY == (1 << F_PREV | 1 << F_CUM | 1 << F_COUNT | 1 << F_ET),
               "the core fields are the table's first four");
#define FIRST_RULE_FIELD F_CL
static const char *const USER_FIELDS[USER_FIELD_COUNT] = {
    "prev", "cum", "count", "et", "cl", "stl", "avgn", "avgs", "vel", "inst"};

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

/* ---- inst: the named instances' states -------------------------------------
 * One part per instance, '|' between them, '#' between the fields:
 *   <id>#<incarnation>#aggregate#<alerted_ms>#<t>:<amount>,<t>:<amount>...
 *   <id>#<incarnation>#<fixed type>#<cl>#<stl>#<avgn>#<avgs>#<t>,<t>...
 * the fixed types' fields being those of the built-in ones above. */

/* The next '#'-separated field of [*p, end): its start and length. */
static int next_field(const char **p, const char *end, const char **field, size_t *len) {
    if (*p > end) return -1;
    const char *hash = memchr(*p, '#', (size_t)(end - *p));
    *field = *p;
    *len = (size_t)((hash ? hash : end) - *p);
    *p = hash ? hash + 1 : end + 1;
    return 0;
}

static int text_int(const char *text, size_t len, int64_t min, int64_t *out) {
    char buf[24], *stop;
    if (len == 0 || len >= sizeof(buf)) return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    long long v = strtoll(buf, &stop, 10);
    if (*stop || v < min) return -1;
    *out = v;
    return 0;
}

static int text_decimal(const char *text, size_t len, decimal_t *out) {
    return decimal_parse(text, len, out) == DECIMAL_OK && *out >= 0 ? 0 : -1;
}

/* "<t>:<amount>,..." */
static int parse_payments(const char *p, size_t len, aggregate_state_t *st) {
    const char *end = p + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p)), *stop = comma ? comma : end;
        const char *colon = memchr(p, ':', (size_t)(stop - p));
        int64_t at;
        decimal_t amount;
        if (!colon || text_int(p, (size_t)(colon - p), 0, &at) ||
            text_decimal(colon + 1, (size_t)(stop - colon - 1), &amount) ||
            aggregate_state_restore(st, at, amount) != 0 || (comma && comma + 1 == end))
            return -1;
        p = comma ? comma + 1 : end;
    }
    return 0;
}

/* "<t>,..." into a velocity ring, oldest first, at most VELOCITY_RING_MAX.
 * Kept sorted: a ring written in processing time before event time existed
 * may not be, if the clock stepped back. */
static int parse_ring(const char *p, size_t len, rule_state_t *rs) {
    const char *end = p + len;
    if (len == 0) return 0;
    size_t n = 1;
    for (const char *c = p; c < end; c++) n += *c == ',';
    if (n > VELOCITY_RING_MAX || !(rs->velocity_ms = malloc(n * sizeof(*rs->velocity_ms))))
        return -1;
    rs->velocity_cap = (uint16_t)n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p)), *stop = comma ? comma : end;
        int64_t v;
        if (text_int(p, (size_t)(stop - p), 1, &v) || (comma && comma + 1 == end)) return -1;
        uint16_t at = rs->velocity_len;
        while (at > 0 && rs->velocity_ms[at - 1] > v) {
            rs->velocity_ms[at] = rs->velocity_ms[at - 1];
            at--;
        }
        rs->velocity_ms[at] = v;
        rs->velocity_len++;
        p = comma ? comma + 1 : end;
    }
    return 0;
}

static int parse_fixed_state(const char **p, const char *end, rule_state_t *rs) {
    const char *f[5];
    size_t len[5];
    int64_t stl = 0, avgn = 0;
    for (int i = 0; i < 5; i++)
        if (next_field(p, end, &f[i], &len[i]) != 0) return -1;
    if ((len[0] && text_decimal(f[0], len[0], &rs->cumulative_alerted)) ||
        (len[1] && text_int(f[1], len[1], 0, &stl)) ||
        (len[2] && text_int(f[2], len[2], 0, &avgn)) || avgn > 1000000 ||
        (len[3] && text_decimal(f[3], len[3], &rs->average_sum)) ||
        parse_ring(f[4], len[4], rs) != 0)
        return -1;
    rs->small_at_ms = stl;
    rs->average_n = (int32_t)avgn;
    return 0;
}

static int parse_instance(const char *p, const char *end, instance_state_t *is) {
    const char *id, *type;
    size_t id_len, type_len;
    char name[24];
    if (next_field(&p, end, &id, &id_len) || !rule_id_is_valid(id, id_len)) return -1;
    memcpy(is->id, id, id_len);
    is->id[id_len] = '\0';
    const char *f;
    size_t len;
    if (next_field(&p, end, &f, &len) || text_int(f, len, 0, &is->incarnation) ||
        next_field(&p, end, &type, &type_len) || type_len >= sizeof(name))
        return -1;
    memcpy(name, type, type_len);
    name[type_len] = '\0';
    is->type = rule_id(name);
    if (is->type == RULE_AGGREGATE) {
        if (next_field(&p, end, &f, &len) || text_int(f, len, 0, &is->aggregate.alerted_ms) ||
            next_field(&p, end, &f, &len) || p <= end)
            return -1;
        return parse_payments(f, len, &is->aggregate);
    }
    if (is->type < 0) return -1;
    rule_state_t own = {0};
    if (parse_fixed_state(&p, end, &own) != 0 || p <= end ||
        (!rule_state_is_empty(&own) && !(is->fixed = rule_state_move_to_heap(&own)))) {
        rule_state_free(&own);
        return -1;
    }
    rule_state_free(&own);
    return 0;
}

static int parse_velocity(const redisReply *r, rule_state_t *rs) {
    if (r->type == REDIS_REPLY_NIL) return 0;
    if (r->type != REDIS_REPLY_STRING || r->len == 0) return -1;
    return parse_ring(r->str, r->len, rs);
}

static int parse_instances(const redisReply *r, rule_state_t *rs) {
    if (r->type == REDIS_REPLY_NIL) return 0;
    if (r->type != REDIS_REPLY_STRING || r->len == 0) return -1;
    const char *p = r->str, *end = r->str + r->len;
    while (p < end) {
        const char *bar = memchr(p, '|', (size_t)(end - p)), *stop = bar ? bar : end;
        instance_state_t *grown;
        if (rs->instance_len >= 4 * RULE_INSTANCES_MAX ||
            !(grown = realloc(rs->instances, (rs->instance_len + 1) * sizeof(*grown))))
            return -1;
        rs->instances = grown;
        instance_state_t *is = &rs->instances[rs->instance_len++];
        memset(is, 0, sizeof(*is));
        if (parse_instance(p, stop, is) != 0 || (bar && bar + 1 == end)) return -1;
        p = bar ? bar + 1 : end;
    }
    return 0;
}

/* The field of the table that name is, or -1. */
static int field_of(const char *name, size_t len) {
    for (int f = 0; f < USER_FIELD_COUNT; f++)
        if (strlen(USER_FIELDS[f]) == len && memcmp(USER_FIELDS[f], name, len) == 0) return f;
    return -1;
}

int user_hash_parse(const redisReply *hash, const redisReply *pttl, stored_user_t *out) {
    static const redisReply nil = {.type = REDIS_REPLY_NIL};
    const redisReply *f[USER_FIELD_COUNT];
    rule_state_t rs = {0};
    int64_t count = 0, average_n = 0;
    memset(out, 0, sizeof(*out));
    out->ttl_left_ms = pttl->type == REDIS_REPLY_INTEGER && pttl->integer >= 0 ? pttl->integer
                                                                             : -1;
    int bad = hash->type != REDIS_REPLY_ARRAY || hash->elements % 2 != 0 ||
              pttl->type != REDIS_REPLY_INTEGER;
    for (int i = 0; i < USER_FIELD_COUNT; i++) f[i] = &nil;
    for (size_t i = 0; !bad && i < hash->elements; i += 2) {
        const redisReply *name = hash->element[i];
        if (name->type != REDIS_REPLY_STRING) {
            bad = 1;
            break;
        }
        int field = field_of(name->str, name->len);
        if (field >= 0) f[field] = hash->element[i + 1];
    }
    bad = bad || parse_decimal_field(f[F_PREV], &out->state.prev) ||
          parse_decimal_field(f[F_CUM], &out->state.cum) ||
          parse_int_field(f[F_COUNT], 0, INT64_MAX, &count) ||
          parse_int_field(f[F_ET], 0, INT64_MAX, &out->state.event_ms) ||
          parse_decimal_field(f[F_CL], &rs.cumulative_alerted) ||
          parse_int_field(f[F_STL], 0, INT64_MAX, &rs.small_at_ms) ||
          parse_int_field(f[F_AVGN], 0, 1000000, &average_n) ||
          parse_decimal_field(f[F_AVGS], &rs.average_sum) || parse_velocity(f[F_VEL], &rs) ||
          parse_instances(f[F_INST], &rs);
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

/* A growing text for the inst field. */
typedef struct text {
    char *data;
    size_t len, cap;
} text_t;

static int text_room(text_t *t, size_t more) {
    if (t->len + more + 1 <= t->cap) return 0;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + more + 1) cap *= 2;
    char *grown = realloc(t->data, cap);
    if (!grown) return -1;
    t->data = grown;
    t->cap = cap;
    return 0;
}

static int text_put(text_t *t, const char *s, size_t len) {
    if (text_room(t, len) != 0) return -1;
    memcpy(t->data + t->len, s, len);
    t->len += len;
    return 0;
}

static int text_put_int(text_t *t, int64_t v) {
    char buf[DECIMAL_INT_TEXT_MAX];
    return text_put(t, buf, decimal_format_int(v, buf));
}

static int text_put_decimal(text_t *t, decimal_t v) {
    char buf[DECIMAL_TEXT_MAX];
    return text_put(t, buf, decimal_format(v, buf, sizeof(buf)));
}

static int put_fixed_state(text_t *t, const rule_state_t *rs) {
    static const rule_state_t none;
    if (!rs) rs = &none;
    int rc = 0;
    if (rs->cumulative_alerted) rc |= text_put_decimal(t, rs->cumulative_alerted);
    rc |= text_put(t, "#", 1);
    if (rs->small_at_ms) rc |= text_put_int(t, rs->small_at_ms);
    rc |= text_put(t, "#", 1);
    if (rs->average_n) rc |= text_put_int(t, rs->average_n) | text_put(t, "#", 1) |
                             text_put_decimal(t, rs->average_sum);
    else rc |= text_put(t, "#", 1);
    rc |= text_put(t, "#", 1);
    for (uint16_t i = 0; i < rs->velocity_len; i++)
        rc |= (i ? text_put(t, ",", 1) : 0) | text_put_int(t, rs->velocity_ms[i]);
    return rc ? -1 : 0;
}

static int put_instance(text_t *t, const instance_state_t *is) {
    const char *type = rule_name((rule_id_t)is->type);
    int rc = (t->len ? text_put(t, "|", 1) : 0) | text_put(t, is->id, strlen(is->id)) |
             text_put(t, "#", 1) | text_put_int(t, is->incarnation) | text_put(t, "#", 1) |
             text_put(t, type, strlen(type)) | text_put(t, "#", 1);
    if (is->type != RULE_AGGREGATE) return rc | put_fixed_state(t, is->fixed) ? -1 : 0;
    const aggregate_state_t *st = &is->aggregate;
    rc |= text_put_int(t, st->alerted_ms) | text_put(t, "#", 1);
    for (uint32_t i = 0; i < st->len; i++)
        rc |= (i ? text_put(t, ",", 1) : 0) | text_put_int(t, st->at_ms[i]) |
              text_put(t, ":", 1) | text_put_decimal(t, st->amounts[i]);
    return rc ? -1 : 0;
}

static bool instance_has_state(const instance_state_t *is) {
    return is->type == RULE_AGGREGATE ? !aggregate_state_is_empty(&is->aggregate)
                                      : is->fixed && !rule_state_is_empty(is->fixed);
}

/* Room for an instance's part at most, so the text is allocated once. */
static size_t instance_text_max(const instance_state_t *is) {
    size_t head = RULE_ID_MAX + 2 * DECIMAL_INT_TEXT_MAX + 32;
    if (is->type == RULE_AGGREGATE)
        return head + is->aggregate.len * (DECIMAL_INT_TEXT_MAX + DECIMAL_TEXT_MAX + 2);
    return head + 2 * (DECIMAL_TEXT_MAX + DECIMAL_INT_TEXT_MAX) +
           (is->fixed ? is->fixed->velocity_len * (DECIMAL_INT_TEXT_MAX + 1) : 0);
}

static int add_instances(redis_argv_t *b, const rule_state_t *rs) {
    text_t t = {0};
    size_t room = 0;
    for (uint32_t i = 0; i < rs->instance_len; i++) room += instance_text_max(&rs->instances[i]);
    int rc = text_room(&t, room);
    for (uint32_t i = 0; i < rs->instance_len && rc == 0; i++)
        if (instance_has_state(&rs->instances[i])) rc = put_instance(&t, &rs->instances[i]);
    rc = rc || redis_argv_add(b, t.data ? t.data : "", t.len);
    free(t.data);
    return rc ? -1 : 0;
}

static bool has_instances(const rule_state_t *rs) {
    for (uint32_t i = 0; i < rs->instance_len; i++)
        if (instance_has_state(&rs->instances[i])) return true;
    return false;
}

static int add_field_name(redis_argv_t *b, int field) {
    return redis_argv_add(b, USER_FIELDS[field], strlen(USER_FIELDS[field]));
}

int user_hash_add_fields(redis_argv_t *b, cache_entry_t *e, bool drop_ttl) {
    const user_state_t *state = &e->state;
    static const rule_state_t none;
    const rule_state_t *rs = state->rules ? state->rules : &none;
    bool erased = (e->flags & CACHE_ENTRY_ERASED) != 0;
    bool writes = !erased || state->count != 0;
    bool present[USER_FIELD_COUNT] = {
        [F_PREV] = writes, [F_CUM] = writes, [F_COUNT] = writes, [F_ET] = writes,
        [F_CL] = writes && rs->cumulative_alerted != 0,
        [F_STL] = writes && rs->small_at_ms != 0,
        [F_AVGN] = writes && rs->average_n != 0, [F_AVGS] = writes && rs->average_n != 0,
        [F_VEL] = writes && rs->velocity_len != 0, [F_INST] = writes && has_instances(rs),
    };
    /* After an erasure the hash is gone: nothing is left to delete. */
    bool may_hold = !erased && (e->flags & CACHE_ENTRY_RULE_FIELDS);
    int32_t shape = (erased ? USER_HASH_ERASE : 0) | (drop_ttl && !erased ? USER_HASH_PERSIST : 0);
    bool rule_fields = false;
    for (int f = 0; f < USER_FIELD_COUNT; f++) {
        if (present[f]) shape |= 1 << f;
        else if (f >= FIRST_RULE_FIELD && may_hold) shape |= 1 << (USER_FIELD_COUNT + f);
        rule_fields |= f >= FIRST_RULE_FIELD && present[f];
    }
    bool core_only = shape == USER_HASH_CORE_ONLY;
    size_t sets = 0, dels = 0;
    for (int f = 0; f < USER_FIELD_COUNT; f++) {
        sets += (shape >> f) & 1;
        dels += (shape >> (USER_FIELD_COUNT + f)) & 1;
    }
    if (redis_argv_add_int(b, shape) || (!core_only && redis_argv_add_int(b, (int64_t)sets)))
        return -1;
    for (int f = 0; f < USER_FIELD_COUNT; f++) {
        if (!present[f]) continue;
        int rc = core_only ? 0 : add_field_name(b, f);
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
        case F_INST: rc = rc || add_instances(b, rs); break;
        }
        if (rc) return -1;
    }
    if (!core_only) {
        if (redis_argv_add_int(b, (int64_t)dels)) return -1;
        for (int f = FIRST_RULE_FIELD; f < USER_FIELD_COUNT; f++)
            if (((shape >> (USER_FIELD_COUNT + f)) & 1) && add_field_name(b, f)) return -1;
    }
    /* What is written now is all the hash will hold. */
    if (rule_fields) e->flags |= CACHE_ENTRY_RULE_FIELDS;
    else e->flags &= (uint8_t)~CACHE_ENTRY_RULE_FIELDS;
    return 0;
}
