#include "store_keys.h"

#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "redis_cluster.h"

static char *put(char *out, const char *bytes, size_t len) {
    memcpy(out, bytes, len);
    return out + len;
}

size_t store_partition_key(const char *prefix, const char *topic, int32_t partition,
                           const char *what, size_t what_len, char *buf, size_t bufsize) {
    char number[DECIMAL_INT_TEXT_MAX];
    size_t number_len = decimal_format_int(partition, number);
    size_t prefix_len = strlen(prefix), topic_len = strlen(topic);
    size_t len = prefix_len + 1 + topic_len + 1 + number_len + 2 + what_len;
    if (len >= bufsize) return 0;
    char *p = put(buf, prefix, prefix_len);
    p = put(put(p, "{", 1), topic, topic_len);
    p = put(put(p, "/", 1), number, number_len);
    put(put(p, "}:", 2), what, what_len);
    buf[len] = '\0';
    return len;
}

size_t store_user_key(const char *prefix, const char *topic, int32_t partition,
                      const char *user, size_t user_len, char *buf, size_t bufsize) {
    size_t head = store_partition_key(prefix, topic, partition, "user:", 5, buf, bufsize);
    if (!head || head + user_len >= bufsize) return 0;
    memcpy(buf + head, user, user_len);
    buf[head + user_len] = '\0';
    return head + user_len;
}

uint16_t store_partition_slot(const char *prefix, const char *topic, int32_t partition) {
    char key[1024];
    size_t len = store_partition_key(prefix, topic, partition, "checkpoint", 10, key,
                                     sizeof(key));
    return redis_key_slot(key, len);
}

int store_checkpoint_parse(const char *text, size_t len, int64_t *out) {
    char buf[32];
    char *end;
    if (len == 0) {
        *out = -1;
        return 0;
    }
    if (len >= sizeof(buf)) return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    long long v = strtoll(buf, &end, 10);
    if (*end || v < 0) return -1;
    *out = v;
    return 0;
}
