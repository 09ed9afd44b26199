/* libFuzzer target: a rules.topic record (key, newline, value) applied to
 * the default rules, then the rule set in force described for the log and
 * for GET /rules. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "rule_control.h"
#include "rule_instances.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char errstr[512], described[512];
    config_t *cfg = config_new();
    if (!cfg) return 0;
    if (config_set(cfg, "averages.topic", "averages", errstr, sizeof(errstr)) == 0) {
        const uint8_t *newline = memchr(data, '\n', size);
        size_t key_len = newline ? (size_t)(newline - data) : 0;
        const uint8_t *value = newline ? newline + 1 : data;
        size_t value_len = size - (size_t)(value - data);
        rule_overrides_t ov = {0};
        rule_set_t rules;
        char changed[RULE_ID_MAX + 1];
        rule_record_at_t at = {.topic = "rules", .partition = 0, .offset = 0};
        if (rule_overrides_accept(&ov, cfg, &cfg->rules, data, key_len, value, value_len, &at,
                                  &rules, changed, errstr, sizeof(errstr)) == 0) {
            rules_describe(&rules, described, sizeof(described));
            free(rules_json_new(&rules));
        }
        rule_overrides_clear(&ov);
    }
    config_destroy(cfg);
    return 0;
}
