/* log: formats and writes lines; a single fprintf per line keeps lines from
 * different threads (librdkafka callbacks) whole. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "utf8.h"

static log_level_t min_level = LOG_INFO;
static bool json_format = false;

static const char *level_names[] = {"debug", "info", "warn", "error"};

int log_configure(const char *level, const char *format) {
    int found = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(level, level_names[i]) == 0) found = i;
    if (found < 0) return -1;
    if (strcmp(format, "json") != 0 && strcmp(format, "text") != 0) return -1;
    min_level = (log_level_t)found;
    json_format = strcmp(format, "json") == 0;
    return 0;
}

void log_msg(log_level_t level, const char *module, const char *fmt, ...) {
    char message[2048], stamp[40];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if (level < min_level) return;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    /* A line may quote input, or be cut inside a character: keep it UTF-8. */
    utf8_sanitize(message);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", now.tv_nsec / 1000000);

    if (json_format) {
        cJSON *line = cJSON_CreateObject();
        char *text = NULL;
        if (line && cJSON_AddStringToObject(line, "ts", stamp) &&
            cJSON_AddStringToObject(line, "level", level_names[level]) &&
            cJSON_AddStringToObject(line, "module", module) &&
            cJSON_AddStringToObject(line, "msg", message))
            text = cJSON_PrintUnformatted(line);
        if (text) fprintf(stderr, "%s\n", text);
        cJSON_free(text);
        cJSON_Delete(line);
        return;
    }
    fprintf(stderr, "%s %-5s %s: %s\n", stamp, level_names[level], module, message);
}
