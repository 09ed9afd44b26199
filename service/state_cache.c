/* state_cache: a chained hash table threaded on an LRU list.
 *
 * One allocation per user holds the entry and its id, so a cached user costs
 * sizeof(cache_entry_t) + id length + 1, plus malloc's header and one bucket
 * pointer (the table is kept at load factor <= 1). */
#include "state_cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry_list {
    cache_entry_t **items;
    size_t count, cap;
} entry_list_t;

struct state_cache {
    cache_entry_t **buckets;
    size_t bucket_count; /* power of two */
    size_t count;
    size_t max_entries;
    cache_entry_t *lru_head, *lru_tail; /* head = most recently used */
    entry_list_t dirty;  /* changed since the last launch or flush */
    entry_list_t flying; /* launched, not landed */
    state_cache_stats_t stats;
};

/* FNV-1a: simple, and good enough for user ids in a chained table. */
static uint32_t hash_user(int32_t partition, const char *user, size_t len) {
    uint32_t h = (2166136261u ^ (uint32_t)partition) * 16777619u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)user[i];
        h *= 16777619u;
    }
    return h;
}

void user_state_reset(user_state_t *state) {
    rule_state_destroy(state->rules);
    memset(state, 0, sizeof(*state));
}

state_cache_t *state_cache_new(size_t max_entries) {
    state_cache_t *cache = calloc(1, sizeof(*cache));
    if (!cache) return NULL;
    cache->bucket_count = 1024;
    cache->buckets = calloc(cache->bucket_count, sizeof(*cache->buckets));
    if (!cache->buckets) {
        free(cache);
        return NULL;
    }
    cache->max_entries = max_entries;
    return cache;
}

void state_cache_clear(state_cache_t *cache) {
    cache_entry_t *e = cache->lru_head;
    while (e) {
        cache_entry_t *next = e->lru_next;
        rule_state_destroy(e->state.rules);
        free(e);
        e = next;
    }
    memset(cache->buckets, 0, cache->bucket_count * sizeof(*cache->buckets));
    cache->lru_head = cache->lru_tail = NULL;
    cache->count = 0;
    cache->dirty.count = 0;
    cache->flying.count = 0;
}

void state_cache_destroy(state_cache_t *cache) {
    if (!cache) return;
    state_cache_clear(cache);
    free(cache->buckets);
    free(cache->dirty.items);
    free(cache->flying.items);
    free(cache);
}

static void lru_unlink(state_cache_t *cache, cache_entry_t *e) {
    if (e->lru_prev) e->lru_prev->lru_next = e->lru_next;
    else cache->lru_head = e->lru_next;
    if (e->lru_next) e->lru_next->lru_prev = e->lru_prev;
    else cache->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(state_cache_t *cache, cache_entry_t *e) {
    e->lru_prev = NULL;
    e->lru_next = cache->lru_head;
    if (cache->lru_head) cache->lru_head->lru_prev = e;
    cache->lru_head = e;
    if (!cache->lru_tail) cache->lru_tail = e;
}

cache_entry_t *state_cache_peek(state_cache_t *cache, int32_t partition, const char *user,
                                size_t len) {
    uint32_t h = hash_user(partition, user, len);
    cache_entry_t *e = cache->buckets[h & (cache->bucket_count - 1)];
    for (; e; e = e->bucket_next)
        if (e->hash == h && e->partition == partition && e->user_len == len &&
            memcmp(e->user, user, len) == 0)
            return e;
    return NULL;
}

cache_entry_t *state_cache_get(state_cache_t *cache, int32_t partition, const char *user,
                               size_t len) {
    uint32_t h = hash_user(partition, user, len);
    cache_entry_t *e = cache->buckets[h & (cache->bucket_count - 1)];
    for (; e; e = e->bucket_next) {
        if (e->hash == h && e->partition == partition && e->user_len == len &&
            memcmp(e->user, user, len) == 0) {
            if (cache->lru_head != e) {
                lru_unlink(cache, e);
                lru_push_front(cache, e);
            }
            cache->stats.hits++;
            return e;
        }
    }
    cache->stats.misses++;
    return NULL;
}

/* Doubles the table; on allocation failure the old table simply stays, with
 * longer chains. */
static void grow_buckets(state_cache_t *cache) {
    size_t new_count = cache->bucket_count * 2;
    cache_entry_t **fresh = calloc(new_count, sizeof(*fresh));
    if (!fresh) return;
    for (size_t i = 0; i < cache->bucket_count; i++) {
        cache_entry_t *e = cache->buckets[i];
        while (e) {
            cache_entry_t *next = e->bucket_next;
            size_t slot = e->hash & (new_count - 1);
            e->bucket_next = fresh[slot];
            fresh[slot] = e;
            e = next;
        }
    }
    free(cache->buckets);
    cache->buckets = fresh;
    cache->bucket_count = new_count;
}

cache_entry_t *state_cache_put(state_cache_t *cache, const char *user, size_t len,
                               int32_t partition) {
    if (len > UINT16_MAX) return NULL;
    cache_entry_t *e = calloc(1, sizeof(*e) + len + 1);
    if (!e) return NULL;
    memcpy(e->user, user, len);
    e->user[len] = '\0';
    e->user_len = (uint16_t)len;
    e->hash = hash_user(partition, user, len);
    e->partition = partition;
    if (cache->count >= cache->bucket_count) grow_buckets(cache);
    size_t slot = e->hash & (cache->bucket_count - 1);
    e->bucket_next = cache->buckets[slot];
    cache->buckets[slot] = e;
    lru_push_front(cache, e);
    cache->count++;
    return e;
}

void state_cache_mark_dirty(state_cache_t *cache, cache_entry_t *entry) {
    if (entry->flags & CACHE_ENTRY_DIRTY) return;
    entry_list_t *dirty = &cache->dirty;
    if (dirty->count == dirty->cap) {
        size_t cap = dirty->cap ? dirty->cap * 2 : 1024;
        cache_entry_t **grown = realloc(dirty->items, cap * sizeof(*grown));
        /* Without room to track it the entry could be lost: abort loudly. */
        if (!grown) abort();
        dirty->items = grown;
        dirty->cap = cap;
    }
    dirty->items[dirty->count++] = entry;
    entry->flags |= CACHE_ENTRY_DIRTY;
}

cache_entry_t **state_cache_dirty(state_cache_t *cache, size_t *count) {
    *count = cache->dirty.count;
    return cache->dirty.items;
}

void state_cache_mark_all_clean(state_cache_t *cache) {
    for (size_t i = 0; i < cache->dirty.count; i++)
        cache->dirty.items[i]->flags &= (uint8_t)~(CACHE_ENTRY_DIRTY | CACHE_ENTRY_ERASED);
    cache->dirty.count = 0;
}

void state_cache_launch_dirty(state_cache_t *cache) {
    state_cache_landed(cache); /* one write in flight at a time */
    for (size_t i = 0; i < cache->dirty.count; i++) {
        cache->dirty.items[i]->flags &= (uint8_t)~(CACHE_ENTRY_DIRTY | CACHE_ENTRY_ERASED);
        cache->dirty.items[i]->flags |= CACHE_ENTRY_IN_FLIGHT;
    }
    entry_list_t emptied = cache->flying; /* swapped: both keep their memory */
    cache->flying = cache->dirty;
    cache->dirty = emptied;
}

void state_cache_landed(state_cache_t *cache) {
    for (size_t i = 0; i < cache->flying.count; i++)
        cache->flying.items[i]->flags &= (uint8_t)~CACHE_ENTRY_IN_FLIGHT;
    cache->flying.count = 0;
}

static void remove_entry(state_cache_t *cache, cache_entry_t *e) {
    cache_entry_t **link = &cache->buckets[e->hash & (cache->bucket_count - 1)];
    while (*link != e) link = &(*link)->bucket_next;
    *link = e->bucket_next;
    lru_unlink(cache, e);
    cache->count--;
    rule_state_destroy(e->state.rules);
    free(e);
}

size_t state_cache_evict(state_cache_t *cache) {
    size_t evicted = 0;
    cache_entry_t *e = cache->lru_tail;
    while (e && cache->count > cache->max_entries) {
        cache_entry_t *more_recent = e->lru_prev;
        if (!(e->flags & (CACHE_ENTRY_DIRTY | CACHE_ENTRY_IN_FLIGHT))) {
            remove_entry(cache, e);
            evicted++;
        }
        e = more_recent;
    }
    cache->stats.evictions += evicted;
    return evicted;
}

/* Keeps the entries of a list that are not of `partition`. */
static void keep_other_partitions(entry_list_t *list, int32_t partition) {
    size_t kept = 0;
    for (size_t i = 0; i < list->count; i++)
        if (list->items[i]->partition != partition) list->items[kept++] = list->items[i];
    list->count = kept;
}

size_t state_cache_drop_partition(state_cache_t *cache, int32_t partition) {
    size_t dropped = 0;
    keep_other_partitions(&cache->dirty, partition);
    keep_other_partitions(&cache->flying, partition);
    cache_entry_t *e = cache->lru_head;
    while (e) {
        cache_entry_t *next = e->lru_next;
        if (e->partition == partition) {
            remove_entry(cache, e);
            dropped++;
        }
        e = next;
    }
    return dropped;
}

size_t state_cache_drop_expired(state_cache_t *cache, int64_t now_ms, size_t max_scan) {
    size_t dropped = 0, scanned = 0;
    cache_entry_t *e = cache->lru_tail;
    while (e && scanned++ < max_scan) {
        cache_entry_t *more_recent = e->lru_prev;
        if (!(e->flags & (CACHE_ENTRY_DIRTY | CACHE_ENTRY_IN_FLIGHT)) && e->expires_at_ms > 0 &&
            now_ms >= e->expires_at_ms) {
            remove_entry(cache, e);
            dropped++;
        }
        e = more_recent;
    }
    cache->stats.expirations += dropped;
    return dropped;
}

size_t state_cache_count(const state_cache_t *cache) { return cache->count; }

state_cache_stats_t state_cache_stats(const state_cache_t *cache) { return cache->stats; }
