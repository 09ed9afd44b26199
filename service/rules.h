/* rules: the fraud decisions, as pure functions of a user's state, the
 * payment and its time (event_time decides which clock that is).
 *
 *   amount_jump       amount - previous >= threshold (direction "both": the
 *                     absolute difference). The seed's rule from Flink's
 *                     keyed-state exercise. A first payment never fires.
 *   cumulative_limit  the running total reaches limit (>=): fires once per
 *                     limit, remembered in state.
 *   small_then_large  a payment < small, then the user's very next payment
 *                     > large at most window_ms later (Flink's fraud
 *                     walkthrough; its flag and timer become one timestamp).
 *                     A payment older than the user's latest (out of order)
 *                     neither completes nor breaks a pattern: its place in
 *                     the sequence is not known.
 *   count_average     every count payments, the integer average of those
 *                     payments (the seed's CountWindowAverage), then reset.
 *   velocity          more than max_count payments within window_ms ending
 *                     at this payment's time: the payment times are kept,
 *                     sorted, in a ring, so that one out of order within
 *                     the slack is counted where it belongs.
 *   aggregate         sum, count, avg, min or max of the amounts in a
 *                     window, against a limit (rule_aggregate.h).
 *
 * The first five are fixed types: each has a built-in instance, named by
 * its type and switched by "enabled". Any type may have named instances
 * besides (rule.<id>.type=<type>), each with its own parameters and its own
 * state per user. Any instance may be paused: it keeps its settings and its
 * state, which its payments still update, but raises nothing.
 *
 * Windows are inclusive: two payments exactly window_ms apart are within
 * it. A late payment takes part in no window rule. Each function reads the rule's own part of the state and writes its
 * new value; none does I/O. Only velocity_observe() allocates (the ring),
 * and the ring belongs to the state, freed by rule_state_free(). */
#ifndef FRAUD_RULES_H
#define FRAUD_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decimal.h"
#include "rule_aggregate.h"

typedef enum {
    RULE_AMOUNT_JUMP,
    RULE_CUMULATIVE_LIMIT,
    RULE_SMALL_THEN_LARGE,
    RULE_COUNT_AVERAGE,
    RULE_VELOCITY,
    RULE_AGGREGATE,
    RULE_TYPE_COUNT
} rule_id_t;

/* The fixed types, each with a built-in instance: those before
 * RULE_AGGREGATE. */
#define RULE_COUNT RULE_AGGREGATE
#define RULE_ID_MAX 64        /* bytes of an instance id */
#define RULE_INSTANCES_MAX 16 /* named instances in force at once */
/* Most rules one payment can fire. */
#define RULE_HITS_MAX (RULE_COUNT + RULE_INSTANCES_MAX)
/* Room for where a rule's settings came from ("config file ...", "topic
 * rules [0] offset 7"). */
#define RULE_ORIGIN_MAX 96


#define VELOCITY_MAX_COUNT 1000 /* bound of max.count */
/* Bound of the ring: max_count times at or before the user's latest time
 * less the slack, and as many again younger than that, which a payment out
 * of order may still need. */
#define VELOCITY_RING_MAX (2 * VELOCITY_MAX_COUNT)

enum { JUMP_UP = 0, JUMP_BOTH = 1 };

/* The parameters of the fixed types: of their built-in instances, and of
 * each named instance of one. */
typedef struct fixed_params {
    decimal_t jump_threshold;
    int jump_direction;          /* JUMP_UP or JUMP_BOTH */
    decimal_t cumulative_limit;
    decimal_t small_amount;      /* strictly below is small */
    decimal_t large_amount;      /* strictly above is large */
    int64_t small_window_ms;
    int64_t average_count;
    int64_t velocity_max_count;  /* 1..VELOCITY_MAX_COUNT */
    int64_t velocity_window_ms;
} fixed_params_t;

/* A named instance (rule.<id>.type=<type>): of aggregate, or another of a
 * fixed type beside its built-in one. */
typedef struct rule_instance {
    char id[RULE_ID_MAX + 1];
    int type;                  /* rule_id_t; -1 until rule.<id>.type is given */
    bool paused;               /* keeps and updates its state, raises nothing */
    unsigned params_set;       /* which parameters were given (rule_instances.c) */
    int64_t incarnation;       /* 0 for the config's; the topic's creating record otherwise */
    char origin[RULE_ORIGIN_MAX];
    fixed_params_t fixed;      /* a fixed type's parameters */
    aggregate_rule_t aggregate; /* aggregate's parameters */
} rule_instance_t;


/* Every rule's switch and parameters; a plain value, copied freely. */
typedef struct rule_set {
    bool enabled[RULE_COUNT];
    fixed_params_t builtin;       /* the parameters of the five built-in instances */
    fixed_params_t defaults;      /* the catalogue's: where a named instance starts */
    int state[RULE_COUNT];        /* RULE_ACTIVE or RULE_PAUSED */
    char origin[RULE_COUNT][RULE_ORIGIN_MAX]; /* "" : the defaults */
    uint32_t instance_count;
    rule_instance_t instances[RULE_INSTANCES_MAX];
} rule_set_t;

enum { RULE_ACTIVE = 0, RULE_PAUSED = 1 };

/* The per-user state the rules keep beside prev/cum/count. Zero is "none". */
typedef struct rule_state {
    decimal_t cumulative_alerted; /* limit whose crossing was alerted; 0: none */
    int64_t small_at_ms;          /* time of the latest payment if it was small */
    decimal_t average_sum;
    int32_t average_n;
    uint16_t velocity_len;        /* times in the ring, oldest first, sorted */
    uint16_t velocity_cap;
    int64_t *velocity_ms;         /* owned; NULL when empty */
    uint32_t instance_len;
    struct instance_state *instances; /* owned; one per named instance with state */
} rule_state_t;

/* A user's state of one named instance, matched to the instance by id and
 * incarnation, so that one deleted and created again starts empty. */
typedef struct instance_state {
    char id[RULE_ID_MAX + 1];
    int64_t incarnation;
    int type;                    /* the instance's when the state was made */
    aggregate_state_t aggregate; /* type aggregate */
    rule_state_t *fixed;         /* a fixed type: its own state; owned, NULL: none */
} instance_state_t;

/* When a payment happened, as the window rules see it. */
typedef struct rule_time {
    int64_t at_ms;     /* the payment's time in the chosen clock */
    int64_t latest_ms; /* the user's latest time, this payment included */
    int64_t slack_ms;  /* how far behind latest a payment may still be placed */
    bool late;         /* further behind than the slack: no window rule sees it */
} rule_time_t;

/* "amount_jump", ..., "aggregate"; NULL for an id out of range. */
const char *rule_name(rule_id_t id);
/* The type of a name, or -1. */
int rule_id(const char *name);

bool rule_amount_jump_fires(bool has_previous, decimal_t previous, decimal_t amount,
                            decimal_t threshold, int direction, decimal_t *diff);

/* cum is the running total including this payment. */
bool rule_cumulative_limit_fires(rule_state_t *st, decimal_t cum, decimal_t limit);

/* *elapsed_ms receives the time since the small payment when it fires. */
bool rule_small_then_large_fires(rule_state_t *st, decimal_t amount, const rule_time_t *t,
                                 const fixed_params_t *p, int64_t *elapsed_ms);

/* Adds the payment; when count payments are in, fires with their integer
 * average (truncated) and sum, and starts over. */
bool rule_count_average_fires(rule_state_t *st, decimal_t amount, int64_t count,
                              int64_t *average, decimal_t *sum, int64_t *n);

/* Records the payment at t->at_ms; fires when more than max_count
 * payments, this one included, lie within [at - window_ms, at];
 * *in_window receives how many. Returns -1 when out of memory (the payment
 * is not recorded). */
int rule_velocity_fires(rule_state_t *st, const rule_time_t *t, int64_t max_count,
                        int64_t window_ms, int64_t *in_window);

/* One rule that fired on a payment, with what its output reports. */
typedef struct rule_hit {
    rule_id_t rule;          /* the type */
    int instance;            /* the named instance's index in the rule set; -1: built-in */
    decimal_t diff;          /* amount_jump: amount - previous */
    int64_t elapsed_ms;      /* small_then_large: since the small payment */
    int64_t in_window;       /* velocity: payments within the window */
    int64_t average, count;  /* count_average */
    decimal_t sum;           /* count_average */
    decimal_t value;         /* aggregate: the function's value (in_window: how many) */
} rule_hit_t;

/* Runs every enabled built-in rule, in rule_id_t order, and then the named
 * instances in the set's order, on one payment: previous is the user's last
 * amount (when has_previous), cum the running total with this payment, t
 * its time (a late one skips the window rules). First forgets the state of
 * disabled and deleted rules. Fills hits[0..n) and returns n, how many fired, or -1
 * when out of memory; *dropped grows by the payments that aggregate
 * instances dropped for their max.events. */
int rules_evaluate(const rule_set_t *rules, rule_state_t *st, bool has_previous,
                   decimal_t previous, decimal_t amount, decimal_t cum, const rule_time_t *t,
                   rule_hit_t hits[RULE_HITS_MAX], uint64_t *dropped);

/* The named instance id, or NULL. */
const rule_instance_t *rules_find_instance(const rule_set_t *rules, const char *id);

/* An id is 1..RULE_ID_MAX bytes of letters, digits, '_' and '-'. */
bool rule_id_is_valid(const char *id, size_t len);

/* How many instances of each type are in force and active (not paused). */
void rules_count_active(const rule_set_t *rules, int active[RULE_TYPE_COUNT]);

/* One line naming each rule in force and its parameters, for the log. */
void rules_describe(const rule_set_t *rules, char *buf, size_t size);

/* Forgets the state of every rule that is disabled in `rules`, or is a
 * named instance no longer in it (and the ring entries beyond twice
 * velocity_max_count). Returns true if anything changed. */
bool rule_state_prune(rule_state_t *st, const rule_set_t *rules);

/* Frees the velocity ring and the named instances' states (the state
 * itself stays, emptied of them). */
void rule_state_free(rule_state_t *st);

/* True when no rule remembers anything: the user needs no rule state. */
bool rule_state_is_empty(const rule_state_t *st);

/* A copy on the heap that takes over st's ring and instance states; NULL
 * when out of memory (st keeps them). Freed with rule_state_destroy(). */
rule_state_t *rule_state_move_to_heap(rule_state_t *st);

/* Frees a heap rule state and its ring; NULL is fine. */
void rule_state_destroy(rule_state_t *st);

/* Frees what an instance state owns. */
void instance_state_free(instance_state_t *is);

#endif
