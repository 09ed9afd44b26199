/* fuzz_message: how the decoder's fuzz targets read their input as a Kafka
 * message. The first byte picks how much of the rest (0 to 31 bytes) is the
 * key; the remainder is the value. */
#ifndef FRAUD_FUZZ_MESSAGE_H
#define FRAUD_FUZZ_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct fuzz_message {
    const uint8_t *key; /* NULL: no key */
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
} fuzz_message_t;

/* 0, or -1 for the empty input, which is no message. */
static inline int fuzz_message_split(const uint8_t *data, size_t size, fuzz_message_t *m) {
    if (size == 0) return -1;
    m->key_len = data[0] % 32;
    if (m->key_len > size - 1) m->key_len = size - 1;
    m->key = m->key_len ? data + 1 : NULL;
    m->value = data + 1 + m->key_len;
    m->value_len = size - 1 - m->key_len;
    return 0;
}

#endif
