/* rules: the fraud decisions, as pure functions of state and payment.
 *
 * amount_jump is the seed's rule from Flink's keyed-state exercise: a payment
 * whose amount exceeds the user's previous amount by at least the threshold.
 * A user's first payment has no previous amount and never alerts. Nothing
 * here does I/O or allocates. */
#ifndef FRAUD_RULES_H
#define FRAUD_RULES_H

#include <stdbool.h>

#include "decimal.h"

#define RULE_AMOUNT_JUMP "amount_jump"

/* True when amount - previous >= threshold; *diff receives the difference.
 * has_previous is false for a user's first payment. */
bool rule_amount_jump_fires(bool has_previous, decimal_t previous, decimal_t amount,
                            decimal_t threshold, decimal_t *diff);

#endif
