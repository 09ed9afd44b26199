/* libFuzzer target: the payment decoder, both message forms, and the key
 * of a tombstone (an erasure). */
#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "fuzz_message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    payment_t payment;
    char errstr[256];
    fuzz_message_t m;
    if (fuzz_message_split(data, size, &m) != 0) return 0;
    decode_limits_t limits = DECODE_DEFAULT_LIMITS;
    decode_payment(m.key, m.key_len, m.value, m.value_len, &limits, &payment, errstr,
                   sizeof(errstr));
    decode_erasure(m.key, m.key_len, &limits, &payment, errstr, sizeof(errstr));
    return 0;
}
