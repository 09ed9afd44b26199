#include "redis_argv.h"

#include <stdarg.h>
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
        const char **argv = realloc(b->argv, slots * sizeof(*argv));
        if (!argv) return -1;
        b->argv = argv;
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

int redis_argv_addf(redis_argv_t *b, const char *fmt, ...) {
    char tmp[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) return -1;
    return redis_argv_add(b, tmp, (size_t)n);
}

int redis_argv_add_decimal(redis_argv_t *b, decimal_t value) {
    char text[DECIMAL_TEXT_MAX];
    size_t len = decimal_format(value, text, sizeof(text));
    return redis_argv_add(b, text, len);
}

const char **redis_argv_finish(redis_argv_t *b) {
    for (size_t i = 0; i < b->count; i++) b->argv[i] = b->arena + b->offsets[i];
    return b->argv;
}

void redis_argv_free(redis_argv_t *b) {
    free(b->arena);
    free(b->offsets);
    free(b->lens);
    free(b->argv);
    memset(b, 0, sizeof(*b));
}
