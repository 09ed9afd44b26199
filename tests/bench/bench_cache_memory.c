/* bench_cache_memory: resident memory per cached user.
 *
 * Fills a state cache with N users whose ids look like real ones
 * ("user-000123", 11 bytes) and reports the growth of this process's RSS
 * per user, with and without the id bytes. Run one N per process so that
 * freed memory from a previous size does not flatter the next.
 * Usage: bench_cache_memory N   (prints one JSON object) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state_cache.h"

static long rss_bytes(void) {
    long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) {
        if (f) fclose(f);
        return -1;
    }
    fclose(f);
    return pages_resident * sysconf(_SC_PAGESIZE);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    if (n <= 0) {
        fprintf(stderr, "usage: bench_cache_memory N\n");
        return 2;
    }
    char id[32];
    long before = rss_bytes();
    state_cache_t *cache = state_cache_new((size_t)n);
    if (!cache) return 1;
    for (long i = 0; i < n; i++) {
        int len = snprintf(id, sizeof(id), "user-%06ld", i);
        cache_entry_t *e = state_cache_put(cache, id, (size_t)len, (int32_t)(i % 6));
        if (!e) return 1;
        e->state.count = 1;
    }
    long after = rss_bytes();
    int id_len = snprintf(id, sizeof(id), "user-%06ld", n - 1);
    double per_user = (double)(after - before) / (double)n;
    printf("{\"users\": %ld, \"rss_growth_bytes\": %ld, \"bytes_per_user\": %.1f, "
           "\"id_bytes\": %d, \"bytes_per_user_excluding_id\": %.1f, "
           "\"sizeof_entry\": %zu}\n",
           n, after - before, per_user, id_len, per_user - id_len, sizeof(cache_entry_t));
    state_cache_destroy(cache);
    return 0;
}
