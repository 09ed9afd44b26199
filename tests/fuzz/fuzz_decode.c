/* libFuzzer target: the payment decoder, both message forms. The first
 * byte picks how much of the rest is the message key. */
#include <stddef.h>
#include <stdint.h>

#include "decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    payment_t payment;
    char errstr[256];
    if (size == 0) return 0;
    size_t key_len = data[0] % 32;
    if (key_len > size - 1) key_len = size - 1;
    const uint8_t *key = data + 1, *value = data + 1 + key_len;
    size_t value_len = size - 1 - key_len;
    decode_limits_t limits = DECODE_DEFAULT_LIMITS;
    decode_payment(key_len ? key : NULL, key_len, value, value_len, &limits, &payment, errstr,
                   sizeof(errstr));
    return 0;
}
