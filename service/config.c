/* config: the sources of settings (defaults, file, environment, flags),
 * each value parsed by its key's type from config_keys, and validation. */
#include "errstr.h"
#include "config.h"
#include "config_keys.h"
#include "rule_instances.h"
#include "redis_conn.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define KAFKA_PREFIX "kafka."

static int parse_int(const char *value, int64_t *out) {
    char *end;
    long long v;
    if (!*value || isspace((unsigned char)*value)) return -1;
    errno = 0;
    v = strtoll(value, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int choice_index(const char *choices, const char *value) {
    size_t len = strlen(value);
    const char *p = choices;
    for (int i = 0; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, value, n) == 0) return i;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

static const char *choice_name(const char *choices, int index, char *buf, size_t size) {
    const char *p = choices;
    for (int i = 0; i < index && p; i++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p) p = "";
    snprintf(buf, size, "%.*s", (int)strcspn(p, "|"), p);
    return buf;
}

static int set_field(void *field, const key_def_t *def, const char *value, char *errstr,
                     size_t errstr_size) {
    switch (def->type) {
    case KEY_BOOL:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
            errstr_set(errstr, errstr_size, "%s: invalid value \"%s\": expected true or false",
                       def->name, value);
            return -1;
        }
        *(bool *)field = value[0] == 't';
        return 0;
    case KEY_CHOICE: {
        int index = choice_index(def->choices, value);
        if (index < 0) {
            errstr_set(errstr, errstr_size, "%s: invalid value \"%s\": expected one of %s",
                       def->name, value, def->choices);
            return -1;
        }
        *(int *)field = index;
        return 0;
    }
    case KEY_STRING:
    case KEY_ENUM: {
        if (def->type == KEY_ENUM && choice_index(def->choices, value) < 0) {
            errstr_set(errstr, errstr_size, "%s: invalid value \"%s\": expected one of %s",
                      def->name, value, def->choices);
            return -1;
        }
        if (def->type == KEY_STRING && !*value && *def->default_value) {
            errstr_set(errstr, errstr_size, "%s: must not be empty", def->name);
            return -1;
        }
        char *copy = strdup(value);
        if (!copy) {
            errstr_set(errstr, errstr_size, "%s: out of memory", def->name);
            return -1;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case KEY_INT: {
        int64_t v;
        if (parse_int(value, &v) != 0 || v < def->min || v > def->max) {
            errstr_set(errstr, errstr_size,
                      "%s: invalid value \"%s\": expected an integer from %lld to %lld",
                      def->name, value, (long long)def->min, (long long)def->max);
            return -1;
        }
        *(int64_t *)field = v;
        return 0;
    }
    case KEY_DECIMAL: {
        decimal_t d;
        decimal_status_t st = decimal_parse(value, strlen(value), &d);
        if (st != DECIMAL_OK || d < 0) {
            errstr_set(errstr, errstr_size,
                      "%s: invalid value \"%s\": expected a non-negative decimal with at "
                      "most 4 digits after the point",
                      def->name, value);
            return -1;
        }
        *(decimal_t *)field = d;
        return 0;
    }
    }
    return -1;
}

static int set_known(config_t *cfg, const key_def_t *def, const char *value, char *errstr,
                     size_t errstr_size) {
    return set_field((char *)cfg + def->offset, def, value, errstr, errstr_size);
}

/* A rule.* key: the catalogue's (a fixed rule's), else a named instance's.
 * Either way the rule remembers where it was last set from. */
static int set_rule(rule_set_t *rules, const char *key, const char *value, const char *origin,
                    char *errstr, size_t errstr_size) {
    const key_def_t *def = strncmp(key, "rule.", 5) == 0 ? config_keys_find(key) : NULL;
    if (!def) {
        if (rule_instance_key(key))
            return rule_instance_set(rules, key, value, origin, errstr, errstr_size);
        errstr_set(errstr, errstr_size, "unknown rule setting \"%s\"", key);
        return -1;
    }
    if (set_field((char *)rules + (def->offset - offsetof(config_t, rules)), def, value, errstr,
                  errstr_size) != 0)
        return -1;
    for (int i = 0; i < RULE_COUNT; i++) {
        size_t n = strlen(rule_name((rule_id_t)i));
        if (strncmp(key + 5, rule_name((rule_id_t)i), n) == 0 && key[5 + n] == '.')
            snprintf(rules->origin[i], RULE_ORIGIN_MAX, "%s", origin);
    }
    return 0;
}

int config_set_rule(rule_set_t *rules, const char *key, const char *value, char *errstr,
                    size_t errstr_size) {
    return set_rule(rules, key, value, "", errstr, errstr_size);
}

static int set_kafka(config_t *cfg, const char *name, const char *value, char *errstr,
                     size_t errstr_size) {
    if (!*name) {
        errstr_set(errstr, errstr_size, "kafka.: missing librdkafka property name");
        return -1;
    }
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        if (strcmp(cfg->kafka[i].name, name) == 0) {
            char *copy = strdup(value);
            if (!copy) goto oom;
            free(cfg->kafka[i].value);
            cfg->kafka[i].value = copy;
            return 0;
        }
    }
    config_kafka_prop_t *grown =
        realloc(cfg->kafka, (cfg->kafka_count + 1) * sizeof(*cfg->kafka));
    if (!grown) goto oom;
    cfg->kafka = grown;
    config_kafka_prop_t *prop = &cfg->kafka[cfg->kafka_count];
    prop->name = strdup(name);
    prop->value = strdup(value);
    if (!prop->name || !prop->value) {
        free(prop->name);
        free(prop->value);
        goto oom;
    }
    cfg->kafka_count++;
    return 0;
oom:
    errstr_set(errstr, errstr_size, "kafka.%s: out of memory", name);
    return -1;
}

int config_set(config_t *cfg, const char *key, const char *value, char *errstr,
               size_t errstr_size) {
    if (strncmp(key, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0)
        return set_kafka(cfg, key + strlen(KAFKA_PREFIX), value, errstr, errstr_size);
    if (strcmp(key, "kafka.group.id") == 0) {
        errstr_set(errstr, errstr_size, "kafka.group.id: use group.id instead");
        return -1;
    }
    if (strncmp(key, "rule.", 5) == 0 && (config_keys_find(key) || rule_instance_key(key)))
        return set_rule(&cfg->rules, key, value, cfg->loading_from, errstr, errstr_size);
    const key_def_t *def = config_keys_find(key);
    if (!def) {
        errstr_set(errstr, errstr_size,
                  "unknown configuration key \"%s\" (see fraud-detector --help)", key);
        return -1;
    }
    return set_known(cfg, def, value, errstr, errstr_size);
}

config_t *config_new(void) {
    char errstr[256];
    config_t *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) return NULL;
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        if (set_known(cfg, &CONFIG_KEYS[i], CONFIG_KEYS[i].default_value, errstr, sizeof(errstr)) != 0) {
            config_destroy(cfg);
            return NULL;
        }
    }
    for (size_t i = 0; i < CONFIG_KAFKA_DEFAULT_COUNT; i++) {
        if (set_kafka(cfg, CONFIG_KAFKA_DEFAULTS[i].name, CONFIG_KAFKA_DEFAULTS[i].value, errstr,
                      sizeof(errstr)) != 0) {
            config_destroy(cfg);
            return NULL;
        }
    }
    cfg->rules.defaults = cfg->rules.builtin; /* where a named instance starts */
    return cfg;
}

void config_destroy(config_t *cfg) {
    if (!cfg) return;
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++)
        if (CONFIG_KEYS[i].type == KEY_STRING || CONFIG_KEYS[i].type == KEY_ENUM)
            free(*(char **)((char *)cfg + CONFIG_KEYS[i].offset));
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        free(cfg->kafka[i].name);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    free(cfg);
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static char *trim(char *s) {
    char *end;
    while (is_blank(*s)) s++;
    end = s + strlen(s);
    while (end > s && is_blank(end[-1])) *--end = '\0';
    return s;
}

int config_load_text(config_t *cfg, const char *text, size_t len, const char *origin,
                     char *errstr, size_t errstr_size) {
    char line[4096];
    size_t pos = 0;
    int lineno = 0;
    snprintf(cfg->loading_from, sizeof(cfg->loading_from), "config file %s", origin);
    while (pos < len) {
        size_t start = pos, n;
        while (pos < len && text[pos] != '\n') pos++;
        n = pos - start;
        pos++; /* past the newline */
        lineno++;
        if (n >= sizeof(line)) {
            errstr_set(errstr, errstr_size, "%s:%d: line longer than %zu bytes", origin,
                      lineno, sizeof(line) - 1);
            return -1;
        }
        memcpy(line, text + start, n);
        line[n] = '\0';
        if (memchr(line, '\0', n)) {
            errstr_set(errstr, errstr_size, "%s:%d: NUL byte in line", origin, lineno);
            return -1;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            errstr_set(errstr, errstr_size, "%s:%d: expected key=value, got \"%s\"", origin,
                      lineno, s);
            return -1;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        char reason[512];
        if (config_set(cfg, key, value, reason, sizeof(reason)) != 0) {
            errstr_set(errstr, errstr_size, "%s:%d: %s", origin, lineno, reason);
            return -1;
        }
    }
    return 0;
}

int config_load_file(config_t *cfg, const char *path, char *errstr, size_t errstr_size) {
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc;
    if (!f) {
        errstr_set(errstr, errstr_size, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            size_t new_cap = cap ? cap * 2 : 4096;
            char *grown = new_cap > (1u << 24) ? NULL : realloc(text, new_cap);
            if (!grown) {
                free(text);
                fclose(f);
                errstr_set(errstr, errstr_size, "config file %s: too large", path);
                return -1;
            }
            text = grown;
            cap = new_cap;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        errstr_set(errstr, errstr_size, "cannot read config file %s", path);
        free(text);
        fclose(f);
        return -1;
    }
    fclose(f);
    rc = config_load_text(cfg, text, len, path, errstr, errstr_size);
    free(text);
    return rc;
}

/* FRAUD_STATE_TTL_MS -> state.ttl.ms, matching known keys first so that a
 * key with an underscore in it (rule.amount_jump.threshold) maps back. */
static bool env_name_matches(const char *env_key, const char *key) {
    for (; *env_key && *key; env_key++, key++) {
        char want = (*key == '.') ? '_' : (char)toupper((unsigned char)*key);
        if (*env_key != want) return false;
    }
    return *env_key == '\0' && *key == '\0';
}

int config_load_env(config_t *cfg, char *const *envp, char *errstr, size_t errstr_size) {
    static const char prefix[] = "FRAUD_";
    snprintf(cfg->loading_from, sizeof(cfg->loading_from), "environment");
    for (; envp && *envp; envp++) {
        const char *entry = *envp;
        if (strncmp(entry, prefix, sizeof(prefix) - 1) != 0) continue;
        const char *eq = strchr(entry, '=');
        if (!eq) continue;
        char env_key[256], key[300];
        size_t n = (size_t)(eq - entry) - (sizeof(prefix) - 1);
        if (n == 0 || n >= sizeof(env_key)) {
            errstr_set(errstr, errstr_size, "environment: bad variable name %.*s",
                      (int)(eq - entry), entry);
            return -1;
        }
        memcpy(env_key, entry + sizeof(prefix) - 1, n);
        env_key[n] = '\0';

        const key_def_t *def = NULL;
        for (size_t i = 0; i < CONFIG_KEY_COUNT && !def; i++)
            if (env_name_matches(env_key, CONFIG_KEYS[i].name)) def = &CONFIG_KEYS[i];
        if (def) {
            snprintf(key, sizeof(key), "%s", def->name);
        } else if (rule_instance_env_key(env_key, key, sizeof(key)) == 0) {
            /* rule.<id>.<parameter> of a named instance */
        } else if (strncmp(env_key, "KAFKA_", 6) == 0) {
            size_t k = 0;
            for (const char *p = env_key; *p && k + 1 < sizeof(key); p++)
                key[k++] = (*p == '_') ? '.' : (char)tolower((unsigned char)*p);
            key[k] = '\0';
        } else {
            errstr_set(errstr, errstr_size,
                      "environment: unknown configuration variable FRAUD_%s", env_key);
            return -1;
        }
        char reason[512];
        if (config_set(cfg, key, eq + 1, reason, sizeof(reason)) != 0) {
            errstr_set(errstr, errstr_size, "environment FRAUD_%s: %s", env_key, reason);
            return -1;
        }
    }
    return 0;
}

int config_load_sources(config_t *cfg, const char *file, char *const *envp,
                        const char *const *settings, int setting_count, char *errstr,
                        size_t errstr_size) {
    if (file && config_load_file(cfg, file, errstr, errstr_size) != 0) return -1;
    if (config_load_env(cfg, envp, errstr, errstr_size) != 0) return -1;
    snprintf(cfg->loading_from, sizeof(cfg->loading_from), "-X");
    for (int i = 0; i < setting_count; i++) {
        const char *kv = settings[i];
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            errstr_set(errstr, errstr_size, "-X %s: expected key=value", kv);
            return -1;
        }
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
        if (config_set(cfg, key, eq + 1, errstr, errstr_size) != 0) return -1;
    }
    return config_validate(cfg, errstr, errstr_size);
}

bool config_exactly_once(const config_t *cfg) {
    return strcmp(cfg->output_guarantee, "exactly_once") == 0;
}

int config_validate(const config_t *cfg, char *errstr, size_t errstr_size) {
    if (strcmp(cfg->input_topic, cfg->alert_topic) == 0 ||
        strcmp(cfg->input_topic, cfg->dlq_topic) == 0) {
        errstr_set(errstr, errstr_size,
                  "input.topic \"%s\" must differ from alert.topic and dlq.topic",
                  cfg->input_topic);
        return -1;
    }
    const char *outputs[] = {cfg->rules_topic, cfg->totals_topic, cfg->averages_topic,
                             cfg->late_topic};
    for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
        if (strcmp(outputs[i], cfg->input_topic) == 0) {
            errstr_set(errstr, errstr_size,
                       "rules.topic, totals.topic, averages.topic and late.topic must differ from "
                       "input.topic \"%s\"", cfg->input_topic);
            return -1;
        }
    }
    if (config_exactly_once(cfg) && strcmp(cfg->state_backend, "redis") != 0) {
        errstr_set(errstr, errstr_size,
                   "output.guarantee=exactly_once needs state.backend=redis: the Redis "
                   "checkpoint and outbox are what a transaction is tied to");
        return -1;
    }
    if (config_validate_rules(cfg, &cfg->rules, errstr, errstr_size) != 0) return -1;
    redis_url_t url;
    if (redis_url_parse(cfg->redis_url, &url, errstr, errstr_size) != 0) return -1;
    memset(url.password, 0, sizeof(url.password));
    return 0;
}

int config_validate_rules(const config_t *cfg, const rule_set_t *rules, char *errstr,
                          size_t errstr_size) {
    int64_t slack = cfg->time_max_out_of_orderness_ms;
    bool event_time = strcmp(cfg->time_characteristic, "event") == 0;
    if (rule_instances_validate(rules, cfg->averages_topic[0] != '\0', event_time ? slack : 0,
                                errstr, errstr_size) != 0)
        return -1;
    if (rules->enabled[RULE_COUNT_AVERAGE] && !cfg->averages_topic[0]) {
        errstr_set(errstr, errstr_size,
                   "rule.count_average.enabled=true needs averages.topic to write to");
        return -1;
    }
    /* A payment placed out of order must still fall in every window. */
    if (event_time &&
        ((rules->enabled[RULE_SMALL_THEN_LARGE] && slack > rules->builtin.small_window_ms) ||
         (rules->enabled[RULE_VELOCITY] && slack > rules->builtin.velocity_window_ms))) {
        errstr_set(errstr, errstr_size,
                   "time.max.out.of.orderness.ms=%lld is longer than the smallest enabled "
                   "window (small_then_large.window.ms=%lld, velocity.window.ms=%lld): it may "
                   "be at most that window",
                   (long long)slack, (long long)rules->builtin.small_window_ms,
                   (long long)rules->builtin.velocity_window_ms);
        return -1;
    }
    return 0;
}

const char *config_kafka_get(const config_t *cfg, const char *name) {
    for (size_t i = 0; i < cfg->kafka_count; i++)
        if (strcmp(cfg->kafka[i].name, name) == 0) return cfg->kafka[i].value;
    return NULL;
}

bool config_key_is_secret(const char *key) {
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.jaas") ||
           strstr(key, "ssl.key.pem") || strstr(key, "ssl_key");
}

static void format_value(const config_t *cfg, const key_def_t *def, char *buf, size_t size) {
    const void *field = (const char *)cfg + def->offset;
    switch (def->type) {
    case KEY_STRING:
    case KEY_ENUM:
        if (strcmp(def->name, "redis.url") == 0)
            redis_url_mask(*(char *const *)field, buf, size);
        else
            snprintf(buf, size, "%s", *(char *const *)field);
        break;
    case KEY_INT:
        snprintf(buf, size, "%lld", (long long)*(const int64_t *)field);
        break;
    case KEY_DECIMAL:
        decimal_format(*(const decimal_t *)field, buf, size);
        break;
    case KEY_BOOL:
        snprintf(buf, size, "%s", *(const bool *)field ? "true" : "false");
        break;
    case KEY_CHOICE:
        choice_name(def->choices, *(const int *)field, buf, size);
        break;
    }
}

bool config_differs_beyond_rules(const config_t *a, const config_t *b) {
    char va[1024], vb[1024];
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        if (strncmp(CONFIG_KEYS[i].name, "rule.", 5) == 0) continue;
        format_value(a, &CONFIG_KEYS[i], va, sizeof(va));
        format_value(b, &CONFIG_KEYS[i], vb, sizeof(vb));
        if (strcmp(va, vb) != 0) return true;
    }
    if (a->kafka_count != b->kafka_count) return true;
    for (size_t i = 0; i < a->kafka_count; i++)
        if (strcmp(a->kafka[i].name, b->kafka[i].name) != 0 ||
            strcmp(a->kafka[i].value, b->kafka[i].value) != 0)
            return true;
    return false;
}

void config_dump(const config_t *cfg, FILE *out) {
    char value[1024];
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        format_value(cfg, &CONFIG_KEYS[i], value, sizeof(value));
        fprintf(out, "%s=%s\n", CONFIG_KEYS[i].name, value);
    }
    rule_instances_dump(&cfg->rules, out);
    for (size_t i = 0; i < cfg->kafka_count; i++)
        fprintf(out, "kafka.%s=%s\n", cfg->kafka[i].name,
                config_key_is_secret(cfg->kafka[i].name) ? "***" : cfg->kafka[i].value);
}

