/* rule_aggregate: the `aggregate` rule type, of which a team names any
 * number of instances (rule.<id>.type=aggregate).
 *
 * An instance computes function (sum, count, avg, min or max) over the
 * amounts of the user's payments whose time lies in [t - window_ms, t], t
 * being the current payment's time in the chosen clock and the current
 * payment included, and fires when that value compared with limit by op
 * holds. The window is exact: the state keeps the payments themselves
 * (time and amount, sorted by time), at most max_events of them; past that
 * the oldest is dropped, and the caller counts it. AVG is the exact sum
 * divided by the count, rounded half-even to 4 places. cooldown_ms
 * suppresses a repeat alert of the instance for the user while the
 * payment's time is within cooldown_ms of the last alert's.
 *
 * An instance's id, state (active or paused) and origin are those of every
 * named instance (rules.h); this module has its parameters and its per-user
 * state. Everything here is pure: no I/O, and memory only for the payment
 * lists, which belong to the state (aggregate_state_free()). */
#ifndef FRAUD_RULE_AGGREGATE_H
#define FRAUD_RULE_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decimal.h"

#define AGGREGATE_MAX_EVENTS 10000 /* bound of max.events */

typedef enum { AGG_SUM, AGG_COUNT, AGG_AVG, AGG_MIN, AGG_MAX, AGG_FUNCTION_COUNT } aggregate_fn_t;
typedef enum { AGG_GT, AGG_GE, AGG_LT, AGG_LE, AGG_EQ, AGG_NE, AGG_OP_COUNT } aggregate_op_t;

/* The config's choices, in enum order ("sum|count|avg|min|max"). */
#define AGGREGATE_FUNCTION_CHOICES "sum|count|avg|min|max"
#define AGGREGATE_OPERATOR_CHOICES ">|>=|<|<=|==|!="

typedef struct aggregate_rule {
    int function;        /* aggregate_fn_t */
    int op;              /* aggregate_op_t */
    decimal_t limit;
    int64_t window_ms;   /* >= 0 */
    int64_t max_events;  /* 1..AGGREGATE_MAX_EVENTS */
    int64_t cooldown_ms; /* 0: every payment that satisfies it alerts */
} aggregate_rule_t;

/* One user's state of one instance. */
typedef struct aggregate_state {
    int64_t alerted_ms;  /* time of the last alert, for the cooldown; 0: none */
    uint32_t len, cap;
    int64_t *at_ms;      /* owned; sorted, oldest first */
    decimal_t *amounts;  /* owned; amounts[i] was paid at at_ms[i] */
} aggregate_state_t;

/* What one evaluation saw. */
typedef struct aggregate_outcome {
    decimal_t value;     /* the function's value over the window */
    int64_t in_window;   /* payments in the window, this one included */
    uint32_t dropped;    /* payments dropped for max_events */
} aggregate_outcome_t;

/* "sum", ">=", ...; NULL when out of range. */
const char *aggregate_function_name(int function);
const char *aggregate_operator_name(int op);

/* Whether value op limit holds. */
bool aggregate_compare(int op, decimal_t value, decimal_t limit);

/* Records the payment (amount at at_ms) and evaluates the rule on it.
 * settled_ms is the earliest time a payment still to come may have (the
 * user's latest time less the out-of-orderness slack): payments before
 * settled_ms - window_ms can be in no window any more and are dropped.
 * Returns 1 when it fires, 0 when not (a paused instance and the cooldown
 * never fire), -1 when out of memory (the payment is not recorded). */
int aggregate_observe(const aggregate_rule_t *rule, bool paused, aggregate_state_t *st,
                      decimal_t amount, int64_t at_ms, int64_t settled_ms,
                      aggregate_outcome_t *out);

/* True when the state remembers nothing the rule still needs. */
bool aggregate_state_is_empty(const aggregate_state_t *st);

/* Frees the payment lists; the state is emptied. */
void aggregate_state_free(aggregate_state_t *st);

/* Adds a payment at at_ms to the state as it is read back from storage,
 * keeping the list sorted; -1 when the state is full or memory runs out. */
int aggregate_state_restore(aggregate_state_t *st, int64_t at_ms, decimal_t amount);

#endif
