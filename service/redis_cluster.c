#include "redis_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "clock.h"
#include "errstr.h"
#include "log.h"

/* Masters, ASK targets and former masters; a node that owns no slot gives
 * its entry up when one is needed. */
#define NODES_MAX 64
#define REDO_PAUSE_START_MS 10
#define REDO_PAUSE_MAX_MS 200

typedef struct node {
    redis_addr_t addr;
    redis_conn_t *conn;
    int used, dead, reload; /* within one call */
} node_t;

/* Why a command must be sent again. */
enum { REDO_NONE, REDO_MOVED, REDO_ASK, REDO_WAIT, REDO_RELOAD };

struct redis_cluster {
    redis_conn_options_t opts; /* url and password_file owned; script borrowed */
    redis_url_t url;
    int cluster;
    node_t nodes[NODES_MAX];
    size_t node_count;
    int16_t owner[REDIS_CLUSTER_SLOTS]; /* node index; -1: nobody */
    int stale;                          /* read the map before the next command */
    redis_argv_t argv;
    /* Per command of the running pipeline. */
    int16_t *sent_to, *ask_to;
    uint8_t *redo;
    size_t scratch_cap;
    uint64_t retired_commands, retired_errors, errors, map_reads, redirects;
};

uint16_t redis_crc16(const char *buf, size_t len) {
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint8_t)buf[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

uint16_t redis_key_slot(const char *key, size_t len) {
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return redis_crc16(open + 1, (size_t)(close - open - 1)) & (REDIS_CLUSTER_SLOTS - 1);
    }
    return redis_crc16(key, len) & (REDIS_CLUSTER_SLOTS - 1);
}

static int node_owns_slots(const redis_cluster_t *c, size_t idx) {
    for (size_t s = 0; s < REDIS_CLUSTER_SLOTS; s++)
        if (c->owner[s] == (int16_t)idx) return 1;
    return 0;
}

static void node_close(redis_cluster_t *c, node_t *n) {
    if (!n->conn) return;
    c->retired_commands += redis_conn_commands_total(n->conn);
    c->retired_errors += redis_conn_errors_total(n->conn);
    redis_conn_destroy(n->conn);
    n->conn = NULL;
}

/* The node at host:port, added when new; -1 when every entry is taken by a
 * node that owns slots or is in use. */
static int node_find(redis_cluster_t *c, const char *host, int port, char *errstr,
                     size_t errstr_size) {
    for (size_t i = 0; i < c->node_count; i++)
        if (c->nodes[i].addr.port == port && strcmp(c->nodes[i].addr.host, host) == 0)
            return (int)i;
    size_t idx = c->node_count;
    if (idx == NODES_MAX) {
        for (idx = 0; idx < NODES_MAX; idx++)
            if (!c->nodes[idx].used && !node_owns_slots(c, idx)) break;
        if (idx == NODES_MAX) {
            errstr_set(errstr, errstr_size, "redis: more than %d cluster nodes", NODES_MAX);
            return -1;
        }
        node_close(c, &c->nodes[idx]);
    } else {
        c->node_count++;
    }
    node_t *n = &c->nodes[idx];
    memset(n, 0, sizeof(*n));
    if (strlen(host) >= sizeof(n->addr.host)) {
        errstr_set(errstr, errstr_size, "redis: node address too long");
        return -1;
    }
    snprintf(n->addr.host, sizeof(n->addr.host), "%s", host);
    n->addr.port = port;
    redis_conn_options_t opts = c->opts;
    opts.node = &n->addr;
    n->conn = redis_conn_new(&opts, errstr, errstr_size);
    if (n->conn) return (int)idx;
    if (idx == c->node_count - 1) c->node_count--;
    else n->addr.port = 0; /* an evicted entry: matches no address */
    return -1;
}

static redisContext *node_ctx(redis_cluster_t *c, int idx, char *errstr, size_t errstr_size) {
    redisContext *ctx = redis_conn_get(c->nodes[idx].conn, errstr, errstr_size);
    if (!ctx && c->cluster) c->stale = 1;
    return ctx;
}

redis_cluster_t *redis_cluster_new(const redis_conn_options_t *opts, char *errstr,
                                   size_t errstr_size) {
    redis_cluster_t *c = calloc(1, sizeof(*c));
    if (!c) {
        errstr_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->opts = *opts;
    c->opts.node = NULL;
    c->opts.url = strdup(opts->url);
    c->opts.password_file = strdup(opts->password_file ? opts->password_file : "");
    if (!c->opts.url || !c->opts.password_file) {
        errstr_set(errstr, errstr_size, "out of memory");
        redis_cluster_destroy(c);
        return NULL;
    }
    if (redis_url_parse(opts->url, &c->url, errstr, errstr_size) != 0) {
        redis_cluster_destroy(c);
        return NULL;
    }
    c->cluster = c->url.cluster;
    memset(c->owner, c->cluster ? 0xff : 0, sizeof(c->owner)); /* -1, or node 0 */
    c->stale = c->cluster;
    if (node_find(c, c->url.nodes[0].host, c->url.nodes[0].port, errstr, errstr_size) != 0) {
        redis_cluster_destroy(c);
        return NULL;
    }
    return c;
}

void redis_cluster_destroy(redis_cluster_t *c) {
    if (!c) return;
    for (size_t i = 0; i < c->node_count; i++) node_close(c, &c->nodes[i]);
    memset(c->url.password, 0, sizeof(c->url.password));
    free((char *)c->opts.url);
    free((char *)c->opts.password_file);
    redis_argv_free(&c->argv);
    free(c->sent_to);
    free(c->ask_to);
    free(c->redo);
    free(c);
}

int redis_cluster_is_cluster(const redis_cluster_t *c) { return c->cluster; }

/* Applies one CLUSTER SLOTS reply from the node at `asked`. */
static int apply_slots(redis_cluster_t *c, const redisReply *r, const redis_addr_t *asked,
                       char *errstr, size_t errstr_size) {
    int16_t owner[REDIS_CLUSTER_SLOTS];
    memset(owner, 0xff, sizeof(owner));
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2 ||
            e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER) {
            errstr_set(errstr, errstr_size, "redis %s:%d: CLUSTER SLOTS: unexpected reply",
                       asked->host, asked->port);
            return -1;
        }
        long long first = e->element[0]->integer, last = e->element[1]->integer;
        const redisReply *master = e->element[2];
        /* An empty or unknown endpoint means "the address you asked". */
        const char *host = master->element[0]->str;
        if (!host[0] || strcmp(host, "?") == 0) host = asked->host;
        if (first < 0 || last >= REDIS_CLUSTER_SLOTS || first > last) continue;
        int idx = node_find(c, host, (int)master->element[1]->integer, errstr, errstr_size);
        if (idx < 0) return -1;
        for (long long s = first; s <= last; s++) owner[s] = (int16_t)idx;
    }
    memcpy(c->owner, owner, sizeof(owner));
    return 0;
}

/* Reads the slot map from the first node that gives one: the known nodes,
 * then the URL's seeds. */
static int refresh(redis_cluster_t *c, char *errstr, size_t errstr_size) {
    size_t known = c->node_count;
    c->map_reads++;
    for (size_t k = 0; k < known + c->url.node_count; k++) {
        int idx = k < known ? (int)k
                            : node_find(c, c->url.nodes[k - known].host,
                                        c->url.nodes[k - known].port, errstr, errstr_size);
        if (idx < 0 || (k >= known && (size_t)idx < known)) continue; /* asked already */
        node_t *n = &c->nodes[idx];
        if (!n->conn) continue;
        redisContext *ctx = redis_conn_get(n->conn, errstr, errstr_size);
        if (!ctx) continue;
        redis_conn_count(n->conn, 1);
        redisReply *r = redisCommand(ctx, "CLUSTER SLOTS");
        if (!r) {
            redis_conn_fail(n->conn, "CLUSTER SLOTS", errstr, errstr_size);
            continue;
        }
        redis_addr_t asked = n->addr; /* apply_slots may reuse n's entry */
        int rc = -1;
        if (r->type == REDIS_REPLY_ERROR)
            errstr_set(errstr, errstr_size,
                       "redis %s:%d: CLUSTER SLOTS refused (%.120s): redis-cluster:// needs a "
                       "Redis Cluster node; use redis:// for a single Redis",
                       asked.host, asked.port, r->str);
        else if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
            errstr_set(errstr, errstr_size, "redis %s:%d: the cluster serves no slot yet",
                       asked.host, asked.port);
        else
            rc = apply_slots(c, r, &asked, errstr, errstr_size);
        freeReplyObject(r);
        if (rc == 0) {
            c->stale = 0;
            if (c->map_reads > 1) /* the first is at start; later ones follow a change */
                log_info("redis", "cluster slot map read again from %s:%d: %zu masters",
                         asked.host, asked.port, redis_cluster_master_count(c));
            return 0;
        }
    }
    c->errors++;
    return -1;
}

static int ensure_scratch(redis_cluster_t *c, size_t count) {
    if (count <= c->scratch_cap) return 0;
    size_t cap = count * 2;
    int16_t *sent = realloc(c->sent_to, cap * sizeof(*sent));
    if (sent) c->sent_to = sent;
    int16_t *ask = realloc(c->ask_to, cap * sizeof(*ask));
    if (ask) c->ask_to = ask;
    uint8_t *redo = realloc(c->redo, cap);
    if (redo) c->redo = redo;
    if (!sent || !ask || !redo) return -1;
    c->scratch_cap = cap;
    return 0;
}

/* "MOVED <slot> <host>:<port>" or "ASK ...": the node named, added when
 * new; an empty host means the node that answered. -1 when unreadable. */
static int redirect_target(redis_cluster_t *c, const char *text, int answered, char *errstr,
                           size_t errstr_size) {
    const char *space = strchr(text, ' ');
    const char *addr = space ? strchr(space + 1, ' ') : NULL;
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon) {
        errstr_set(errstr, errstr_size, "redis: unreadable redirection: %.100s", text);
        return -1;
    }
    char host[256];
    size_t hlen = (size_t)(colon - addr - 1);
    if (hlen >= sizeof(host)) hlen = sizeof(host) - 1;
    memcpy(host, addr + 1, hlen);
    host[hlen] = '\0';
    int port = atoi(colon + 1);
    if (port < 1 || port > 65535) {
        errstr_set(errstr, errstr_size, "redis: unreadable redirection: %.100s", text);
        return -1;
    }
    return node_find(c, hlen ? host : c->nodes[answered].addr.host, port, errstr, errstr_size);
}

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Takes the reply of command i, sent to node `node`: 0 when it is the
 * command's answer (kept in replies[i]), 1 when the command must be sent
 * again (c->redo[i] says why), -1 with errstr when it cannot be. */
static int classify(redis_cluster_t *c, size_t i, int node, redisReply *r, redisReply **replies,
                    char *errstr, size_t errstr_size) {
    c->redo[i] = REDO_NONE;
    c->ask_to[i] = -1;
    if (r->type != REDIS_REPLY_ERROR) {
        replies[i] = r;
        return 0;
    }
    const char *e = r->str;
    int rc = 1;
    if (starts_with(e, "NOSCRIPT")) {
        c->redo[i] = REDO_RELOAD;
        c->nodes[node].reload = 1;
    } else if (starts_with(e, "LOADING") ||
               (c->cluster && (starts_with(e, "TRYAGAIN") || starts_with(e, "CLUSTERDOWN")))) {
        c->redo[i] = REDO_WAIT;
        if (starts_with(e, "CLUSTERDOWN")) c->stale = 1; /* a failover may be under way */
    } else if (starts_with(e, "MOVED ") || starts_with(e, "ASK ")) {
        if (!c->cluster) {
            errstr_set(errstr, errstr_size,
                       "redis %s: answered \"%.100s\": it is a Redis Cluster node; name the "
                       "cluster as redis.url=redis-cluster://host:port[,host:port...]",
                       redis_conn_name(c->nodes[node].conn), e);
            rc = -1;
        } else {
            int ask = e[0] == 'A';
            int target = redirect_target(c, e, node, errstr, errstr_size);
            if (target < 0) {
                rc = -1;
            } else if (ask) {
                c->redo[i] = REDO_ASK;
                c->ask_to[i] = (int16_t)target;
            } else {
                c->redo[i] = REDO_MOVED;
                c->owner[atoi(strchr(e, ' ') + 1) & (REDIS_CLUSTER_SLOTS - 1)] = (int16_t)target;
                c->stale = 1;
            }
            c->redirects++;
        }
    } else {
        replies[i] = r; /* the command's own error: the caller's to judge */
        return 0;
    }
    freeReplyObject(r);
    return rc;
}

static void free_replies(redisReply **replies, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (replies[i]) freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

/* Node `idx` lost its connection, or holds commands that can no longer be
 * answered in order: drop it; a cluster reads its map again. */
static void node_drop(redis_cluster_t *c, int idx) {
    redis_conn_drop(c->nodes[idx].conn);
    c->nodes[idx].dead = 1;
    if (c->cluster) c->stale = 1;
}

static int build_and_append(redis_cluster_t *c, const redis_pipeline_t *p, size_t i, int node,
                            redisContext *ctx) {
    redis_argv_reset(&c->argv);
    if (p->build(p->arg, i, &c->argv, redis_conn_script_sha(c->nodes[node].conn)) != 0 ||
        redis_argv_append(&c->argv, ctx) != 0)
        return -1;
    redis_conn_count(c->nodes[node].conn, 1);
    return 0;
}

/* First pass: every command to its node, all nodes flushed, then every
 * reply read in order. Returns how many must be sent again, or -1. */
static long first_pass(redis_cluster_t *c, const redis_pipeline_t *p, redisReply **replies,
                       char *errstr, size_t errstr_size) {
    long redo = 0;
    int lost = 0;
    for (size_t n = 0; n < c->node_count; n++) c->nodes[n].used = c->nodes[n].dead = 0;
    /* Connect first, so that a node out of reach fails the call before any
     * command waits in another node's buffer. */
    for (size_t i = 0; i < p->count; i++) {
        int node = c->cluster ? c->owner[p->slot_of(p->arg, i)] : 0;
        c->sent_to[i] = (int16_t)node;
        c->redo[i] = REDO_NONE;
        if (node < 0) {
            c->redo[i] = REDO_WAIT; /* nobody serves the slot yet */
            c->stale = 1;
            redo++;
        } else if (!c->nodes[node].used) {
            if (!node_ctx(c, node, errstr, errstr_size)) return -1;
            c->nodes[node].used = 1;
        }
    }
    for (size_t i = 0; i < p->count; i++) {
        int node = c->sent_to[i];
        if (node < 0) continue;
        redisContext *ctx = redis_conn_get(c->nodes[node].conn, errstr, errstr_size);
        if (!ctx || build_and_append(c, p, i, node, ctx) != 0) {
            errstr_set(errstr, errstr_size, "redis: cannot build %s", p->what);
            for (size_t n = 0; n < c->node_count; n++)
                if (c->nodes[n].used) node_drop(c, (int)n); /* unsent commands go */
            return -1;
        }
    }
    for (size_t n = 0; n < c->node_count; n++) {
        if (!c->nodes[n].used) continue;
        redisContext *ctx = redis_conn_get(c->nodes[n].conn, errstr, errstr_size);
        int done = 0;
        while (ctx && !done)
            if (redisBufferWrite(ctx, &done) != REDIS_OK) break;
        if (!done) {
            redis_conn_fail(c->nodes[n].conn, p->what, errstr, errstr_size);
            c->nodes[n].dead = 1;
            if (c->cluster) c->stale = 1;
            lost = 1;
        }
    }
    for (size_t i = 0; i < p->count; i++) {
        int node = c->sent_to[i];
        if (node < 0 || c->nodes[node].dead) continue;
        redisContext *ctx = redis_conn_get(c->nodes[node].conn, errstr, errstr_size);
        redisReply *r = NULL;
        if (!ctx || redisGetReply(ctx, (void **)&r) != REDIS_OK || !r) {
            if (r) freeReplyObject(r);
            redis_conn_fail(c->nodes[node].conn, p->what, errstr, errstr_size);
            c->nodes[node].dead = 1;
            if (c->cluster) c->stale = 1;
            lost = 1;
            continue;
        }
        int rc = classify(c, i, node, r, replies, errstr, errstr_size);
        if (rc < 0) lost = 1;
        redo += rc > 0;
    }
    for (size_t n = 0; n < c->node_count; n++) {
        if (c->nodes[n].reload && !c->nodes[n].dead) redis_conn_drop(c->nodes[n].conn);
        c->nodes[n].reload = 0;
    }
    return lost ? -1 : redo;
}

/* Sends the commands marked for redo again, one at a time, until each has
 * its answer or the command timeout passes. */
static int redo_pass(redis_cluster_t *c, const redis_pipeline_t *p, long pending,
                     redisReply **replies, char *errstr, size_t errstr_size) {
    int64_t deadline = clock_monotonic_ms() + c->opts.command_timeout_ms;
    int64_t pause = REDO_PAUSE_START_MS;
    for (;;) {
        if (c->stale) (void)refresh(c, errstr, errstr_size); /* the hint from MOVED stays */
        for (size_t i = 0; i < p->count && pending > 0; i++) {
            if (c->redo[i] == REDO_NONE) continue;
            int ask = c->redo[i] == REDO_ASK;
            int node = ask ? c->ask_to[i] : c->cluster ? c->owner[p->slot_of(p->arg, i)] : 0;
            if (node < 0) {
                c->stale = 1;
                continue;
            }
            redisContext *ctx = node_ctx(c, node, errstr, errstr_size);
            if (!ctx) return -1;
            if (ask && redisAppendCommand(ctx, "ASKING") != REDIS_OK) {
                redis_conn_fail(c->nodes[node].conn, "ASKING", errstr, errstr_size);
                return -1;
            }
            if (build_and_append(c, p, i, node, ctx) != 0) {
                errstr_set(errstr, errstr_size, "redis: cannot build %s", p->what);
                node_drop(c, node);
                return -1;
            }
            redisReply *asking = NULL, *r = NULL;
            if ((ask && (redisGetReply(ctx, (void **)&asking) != REDIS_OK || !asking)) ||
                redisGetReply(ctx, (void **)&r) != REDIS_OK || !r) {
                if (asking) freeReplyObject(asking);
                redis_conn_fail(c->nodes[node].conn, p->what, errstr, errstr_size);
                if (c->cluster) c->stale = 1;
                return -1;
            }
            if (asking) freeReplyObject(asking);
            int rc = classify(c, i, node, r, replies, errstr, errstr_size);
            if (rc < 0) return -1;
            if (c->nodes[node].reload) {
                redis_conn_drop(c->nodes[node].conn);
                c->nodes[node].reload = 0;
            }
            if (rc == 0) pending--;
        }
        if (pending == 0) return 0;
        if (clock_monotonic_ms() >= deadline) {
            errstr_set(errstr, errstr_size,
                       "redis: %ld of %zu %s still redirected after %lld ms (a slot in "
                       "migration, or a failover)",
                       pending, p->count, p->what, (long long)c->opts.command_timeout_ms);
            return -1;
        }
        clock_sleep_ms(pause);
        pause = pause * 2 > REDO_PAUSE_MAX_MS ? REDO_PAUSE_MAX_MS : pause * 2;
    }
}

int redis_cluster_run(redis_cluster_t *c, const redis_pipeline_t *p, redisReply **replies,
                      char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < p->count; i++) replies[i] = NULL;
    if (p->count == 0) return 0;
    if (ensure_scratch(c, p->count) != 0) {
        errstr_set(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (c->stale && refresh(c, errstr, errstr_size) != 0) return -1;
    long pending = first_pass(c, p, replies, errstr, errstr_size);
    if (pending > 0 && redo_pass(c, p, pending, replies, errstr, errstr_size) == 0) pending = 0;
    if (pending != 0) {
        free_replies(replies, p->count);
        c->errors++;
        return -1;
    }
    return 0;
}

int redis_cluster_ping(redis_cluster_t *c, char *errstr, size_t errstr_size) {
    if (c->stale && refresh(c, errstr, errstr_size) != 0) return -1;
    for (size_t n = 0; n < c->node_count; n++) {
        if (c->cluster && !node_owns_slots(c, n)) continue;
        if (redis_conn_ping(c->nodes[n].conn, errstr, errstr_size) != 0) {
            if (c->cluster) c->stale = 1;
            return -1;
        }
    }
    return 0;
}

size_t redis_cluster_master_count(const redis_cluster_t *c) {
    size_t masters = 0;
    for (size_t n = 0; n < c->node_count; n++) masters += node_owns_slots(c, n);
    return masters;
}

uint64_t redis_cluster_map_reads(const redis_cluster_t *c) { return c->map_reads; }
uint64_t redis_cluster_redirects(const redis_cluster_t *c) { return c->redirects; }

uint64_t redis_cluster_commands_total(const redis_cluster_t *c) {
    uint64_t total = c->retired_commands;
    for (size_t n = 0; n < c->node_count; n++)
        if (c->nodes[n].conn) total += redis_conn_commands_total(c->nodes[n].conn);
    return total;
}

uint64_t redis_cluster_errors_total(const redis_cluster_t *c) {
    uint64_t total = c->retired_errors + c->errors;
    for (size_t n = 0; n < c->node_count; n++)
        if (c->nodes[n].conn) total += redis_conn_errors_total(c->nodes[n].conn);
    return total;
}

void redis_cluster_count_error(redis_cluster_t *c) { c->errors++; }
