#include "state_ttl.h"

#include <string.h>

int ttl_policy_init(ttl_policy_t *policy, int64_t ttl_ms, const char *update,
                    const char *visibility) {
    policy->ttl_ms = ttl_ms;
    if (strcmp(update, "on_create_and_write") == 0)
        policy->update = TTL_UPDATE_ON_CREATE_AND_WRITE;
    else if (strcmp(update, "on_read_and_write") == 0)
        policy->update = TTL_UPDATE_ON_READ_AND_WRITE;
    else
        return -1;
    if (strcmp(visibility, "never_return_expired") == 0)
        policy->visibility = TTL_NEVER_RETURN_EXPIRED;
    else if (strcmp(visibility, "return_expired_if_not_cleaned_up") == 0)
        policy->visibility = TTL_RETURN_EXPIRED_IF_NOT_CLEANED_UP;
    else
        return -1;
    return 0;
}

bool ttl_is_expired(const ttl_policy_t *policy, const cache_entry_t *entry, int64_t now_ms) {
    return policy->ttl_ms > 0 && entry->state.count > 0 && entry->expires_at_ms > 0 &&
           now_ms >= entry->expires_at_ms;
}

bool ttl_on_read(const ttl_policy_t *policy, cache_entry_t *entry, int64_t now_ms) {
    if (policy->ttl_ms <= 0 || entry->state.count == 0) return false;
    if (ttl_is_expired(policy, entry, now_ms) && policy->visibility == TTL_NEVER_RETURN_EXPIRED) {
        user_state_reset(&entry->state);
        entry->expires_at_ms = 0;
        return false;
    }
    if (policy->update != TTL_UPDATE_ON_READ_AND_WRITE) return false;
    entry->expires_at_ms = now_ms + policy->ttl_ms;
    return true;
}

void ttl_on_write(const ttl_policy_t *policy, cache_entry_t *entry, int64_t now_ms) {
    entry->expires_at_ms = policy->ttl_ms > 0 ? now_ms + policy->ttl_ms : 0;
}
