/* libFuzzer target: the exact-decimal parser and its round trip. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    decimal_t value;
    if (decimal_parse((const char *)data, size, &value) != DECIMAL_OK) return 0;
    char text[DECIMAL_TEXT_MAX];
    size_t len = decimal_format(value, text, sizeof(text));
    decimal_t again;
    /* What was parsed must print and parse back to itself. */
    if (decimal_parse(text, len, &again) != DECIMAL_OK || again != value) abort();
    return 0;
}
