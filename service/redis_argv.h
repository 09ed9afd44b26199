/* redis_argv: the arguments of one Redis command, built in a reusable
 * arena, for redisAppendCommandArgv(). Binary-safe: every argument keeps
 * its length. Strings are kept as offsets while building, since the arena
 * may move when it grows. The builder owns its memory; reset it per command
 * and free it once. */
#ifndef FRAUD_REDIS_ARGV_H
#define FRAUD_REDIS_ARGV_H

#include <stddef.h>

#include "decimal.h"

typedef struct redis_argv {
    char *arena;
    size_t used, cap;
    size_t *offsets, *lens;
    size_t count, slots;
    const char **argv; /* valid after redis_argv_finish() */
} redis_argv_t;

/* Starts a new command, keeping the memory. */
void redis_argv_reset(redis_argv_t *b);

/* Each returns 0, or -1 when out of memory (or the text does not fit). */
int redis_argv_add(redis_argv_t *b, const char *data, size_t len);
int redis_argv_addf(redis_argv_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int redis_argv_add_decimal(redis_argv_t *b, decimal_t value);

/* The argument pointers, valid until the next add or reset; their lengths
 * are b->lens and their number b->count. */
const char **redis_argv_finish(redis_argv_t *b);

void redis_argv_free(redis_argv_t *b);

#endif
