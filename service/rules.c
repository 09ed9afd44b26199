#include "rules.h"

bool rule_amount_jump_fires(bool has_previous, decimal_t previous, decimal_t amount,
                            decimal_t threshold, decimal_t *diff) {
    decimal_t d;
    if (!has_previous) return false;
    /* Both lie in 0..1e12, so the difference cannot overflow. */
    if (!decimal_sub(amount, previous, &d)) return false;
    *diff = d;
    return d >= threshold;
}
