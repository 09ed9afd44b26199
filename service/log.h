/* log: one line per event an operator cares about, on stderr.
 *
 * Lines carry a level, the module and the facts (partition, offset, user):
 * never one line per payment. log.format=json writes one JSON object per
 * line for log shippers. The log keeps no state but its level and format. */
#ifndef FRAUD_LOG_H
#define FRAUD_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Returns 0, or -1 for an unknown level or format name. */
int log_configure(const char *level, const char *format);

void log_msg(log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(mod, ...) log_msg(LOG_DEBUG, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)

#endif
