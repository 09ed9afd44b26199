/* errstr: the librdkafka convention for errors a person can act on: a
 * caller-given buffer and its size, filled with one sentence. */
#ifndef FRAUD_ERRSTR_H
#define FRAUD_ERRSTR_H

#include <stddef.h>

/* Formats into errstr (NULL or size 0: nothing happens). */
void errstr_set(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
