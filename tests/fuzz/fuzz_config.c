/* libFuzzer target: the key=value config file parser. */
#include <stddef.h>
#include <stdint.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char errstr[512];
    config_t *cfg = config_new();
    if (!cfg) return 0;
    if (config_load_text(cfg, (const char *)data, size, "fuzz", errstr, sizeof(errstr)) == 0)
        config_validate(cfg, errstr, sizeof(errstr));
    config_destroy(cfg);
    return 0;
}
