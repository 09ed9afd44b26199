#include "redis_argv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void redis_argv_reset(redis_argv_t *b) {
    b->used = 0;
    b->count = 0;
}

static int reserve(redis_argv_t *b, size_t bytes) {
    if (b->count == b->slots) {
        size_t slots = b->slots ? b->slots * 2 : 64;
        size_t *offsets = realloc(b->offsets, slots * sizeof(*offsets));
        if (!offsets) return -1;
        b->offsets = offsets;
        size_t *lens = realloc(b->lens, slots * sizeof(*lens));
        if (!lens) return -1;
        b->lens = lens;
        b->slots = slots;
    }
    if (b->used + bytes > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->used + bytes) cap *= 2;
        char *arena = realloc(b->arena, cap);
        if (!arena) return -1;
        b->arena = arena;
        b->cap = cap;
    }
    return 0;
}

int redis_argv_add(redis_argv_t *b, const char *data, size_t len) {
    if (reserve(b, len) != 0) return -1;
    memcpy(b->arena + b->used, data, len);
    b->offsets[b->count] = b->used;
    b->lens[b->count++] = len;
    b->used += len;
    return 0;
}

int redis_argv_add_decimal(redis_argv_t *b, decimal_t value) {
    char text[DECIMAL_TEXT_MAX];
    size_t len = decimal_format(value, text, sizeof(text));
    return redis_argv_add(b, text, len);
}

int redis_argv_add_int(redis_argv_t *b, int64_t value) {
    char text[DECIMAL_INT_TEXT_MAX];
    size_t len = decimal_format_int(value, text);
    return redis_argv_add(b, text, len);
}

int redis_argv_add_from(redis_argv_t *b, const redis_argv_t *src, size_t from) {
    for (size_t i = from; i < src->count; i++)
        if (redis_argv_add(b, src->arena + src->offsets[i], src->lens[i]) != 0) return -1;
    return 0;
}

/* "<mark><n>\r\n" at out; returns its length. */
static size_t put_header(char *out, char mark, size_t n) {
    out[0] = mark;
    size_t len = 1 + decimal_format_int((int64_t)n, out + 1);
    out[len++] = '\r';
    out[len++] = '\n';
    return len;
}

int redis_argv_append(redis_argv_t *b, redisContext *ctx) {
    /* Each argument: "$<len>\r\n<bytes>\r\n"; the count: "*<n>\r\n". */
    const size_t header_max = 1 + DECIMAL_INT_TEXT_MAX + 2;
    size_t need = header_max + b->used + b->count * (header_max + 2);
    if (need > b->wire_cap) {
        size_t cap = b->wire_cap ? b->wire_cap : 4096;
        while (cap < need) cap *= 2;
        char *wire = realloc(b->wire, cap);
        if (!wire) return -1;
        b->wire = wire;
        b->wire_cap = cap;
    }
    size_t len = put_header(b->wire, '*', b->count);
    for (size_t i = 0; i < b->count; i++) {
        len += put_header(b->wire + len, '$', b->lens[i]);
        memcpy(b->wire + len, b->arena + b->offsets[i], b->lens[i]);
        len += b->lens[i];
        b->wire[len++] = '\r';
        b->wire[len++] = '\n';
    }
    return redisAppendFormattedCommand(ctx, b->wire, len) == REDIS_OK ? 0 : -1;
}

void redis_argv_free(redis_argv_t *b) {
    free(b->arena);
    free(b->offsets);
    free(b->lens);
    free(b->wire);
    memset(b, 0, sizeof(*b));
}
