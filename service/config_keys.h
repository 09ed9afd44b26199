/* config_keys: the catalogue of settings, private to config. Each known key
 * has a type, a default, bounds or choices, where its value lives in
 * config_t, and the sentence that documents it. */
#ifndef FRAUD_CONFIG_KEYS_H
#define FRAUD_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* KEY_ENUM keeps the string; KEY_CHOICE keeps the index of the choice. */
typedef enum { KEY_STRING, KEY_INT, KEY_DECIMAL, KEY_ENUM, KEY_BOOL, KEY_CHOICE } key_type_t;

typedef struct key_def {
    const char *name;
    key_type_t type;
    const char *default_value;
    int64_t min, max;       /* KEY_INT bounds, inclusive */
    const char *choices;    /* KEY_ENUM, KEY_CHOICE: '|'-separated */
    size_t offset;          /* where the value lives in config_t */
    const char *doc;
} key_def_t;

extern const key_def_t CONFIG_KEYS[];
extern const size_t CONFIG_KEY_COUNT;

/* librdkafka settings the service chooses unless the user overrides them. */
typedef struct kafka_default {
    const char *name, *value, *doc;
} kafka_default_t;

extern const kafka_default_t CONFIG_KAFKA_DEFAULTS[];
extern const size_t CONFIG_KAFKA_DEFAULT_COUNT;

/* The key named so, or NULL. */
const key_def_t *config_keys_find(const char *name);

#endif
