/* alert: the JSON an alert carries on the alert topic.
 *
 * alert_id is derived only from where the payment was read and which rule
 * instance fired ("<topic>/<partition>/<offset>/<rule_id>"; a fixed rule's
 * id is its type), so a payment processed twice yields the same id and
 * consumers can drop the repeat. Amounts are written
 * as JSON numbers in their exact decimal form. "params" holds the rule's
 * parameters as they were when it fired, "clock" the time that its windows
 * were measured in. The same module writes the other outputs: averages,
 * running totals and late payments. Each record carries "schema_version",
 * the version of its JSON Schema under schemas/; a test validates what
 * these encoders write against those files, so the two cannot drift. */
#ifndef FRAUD_ALERT_H
#define FRAUD_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "decimal.h"
#include "rules.h"

/* Raised when a field changes meaning or goes; a new optional field is
 * added to the schema files without a new version. */
#define OUTPUT_SCHEMA_VERSION 1

typedef struct alert {
    const char *rule;             /* a rule_name(): the type */
    const char *rule_id;          /* the instance; NULL: the type names it */
    const fixed_params_t *fixed;  /* a fixed type's parameters, for "params"; NULL: none */
    const aggregate_rule_t *aggregate; /* an aggregate's parameters, for "params" */
    decimal_t aggregate_value;    /* aggregate: the function's value */
    const char *user_id;          /* NUL-terminated */
    decimal_t amount;
    decimal_t previous_amount;
    decimal_t diff;               /* amount_jump */
    decimal_t threshold;          /* amount_jump */
    decimal_t limit;              /* cumulative_limit */
    int64_t elapsed_ms;           /* small_then_large: since the small payment */
    int64_t payments_in_window;   /* velocity, aggregate */
    decimal_t cumulative_amount;
    int64_t event_count;
    const char *source_topic;
    int32_t source_partition;
    int64_t source_offset;
    const char *event_id;         /* "" or NULL when the payment had none */
    int64_t event_time_ms;        /* payment timestamp, else Kafka's */
    const char *clock;            /* "event" or "processing": what decided */
    int64_t detected_at_ms;       /* wall clock when the rule fired */
} alert_t;

struct cJSON;

/* Adds "params" to obj: those of fixed type `type` from fixed, or of an
 * aggregate instance when type is RULE_AGGREGATE; alerts, averages and
 * GET /rules all write parameters this way. 0, or -1 when out of memory. */
int alert_add_params(struct cJSON *obj, int type, const fixed_params_t *fixed,
                     const aggregate_rule_t *aggregate);

/* Room for any id: a topic name is at most 249 bytes. */
#define ALERT_ID_MAX 320

/* Writes the deterministic id into buf (ALERT_ID_MAX bytes); returns its
 * length. */
size_t alert_id_format(const char *topic, int32_t partition, int64_t offset,
                       const char *rule, char *buf, size_t bufsize);

/* Returns the alert as a JSON object text that the caller frees with free(),
 * or NULL when out of memory. */
char *alert_encode_new(const alert_t *alert);

/* count_average's event for averages.topic: the integer average of `count`
 * payments ending at the source offset, named by its instance
 * ("<topic>/<partition>/<offset>/<rule_id>"). Freed by the caller. */
typedef struct average_event {
    const char *rule_id;          /* the count_average instance; NULL: the built-in one */
    const fixed_params_t *fixed;  /* its parameters, for "params"; NULL: none */
    const char *user_id;
    int64_t average;
    decimal_t sum;
    int64_t count;
    const char *source_topic;
    int32_t source_partition;
    int64_t source_offset;
    int64_t detected_at_ms;
} average_event_t;
char *average_encode_new(const average_event_t *event);

/* A late payment for late.topic: older than its user's latest event time
 * by more than the out-of-orderness bound. Freed by the caller. */
typedef struct late_payment {
    const char *user_id;
    decimal_t amount;
    const char *event_id;      /* "" or NULL when the payment had none */
    int64_t event_time_ms;
    int64_t user_event_time_ms; /* the user's latest event time */
    int64_t lateness_ms;
    int64_t max_out_of_orderness_ms;
    const char *source_topic;
    int32_t source_partition;
    int64_t source_offset;
    int64_t detected_at_ms;
} late_payment_t;
char *late_payment_encode_new(const late_payment_t *late);

/* What the outbox keeps for an erased user's tombstone on totals.topic:
 * {user_id}, for the record's key only; the record itself has no value.
 * Freed by the caller. */
char *totals_erased_encode_new(const char *user_id);

/* The running total for totals.topic: {user_id, cumulative_amount,
 * event_count}. Freed by the caller. */
char *totals_encode_new(const char *user_id, decimal_t cumulative_amount, int64_t event_count);

#endif
