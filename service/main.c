/* fraud-detector: command line, configuration sources and signals.
 *
 * Everything else lives in the pipeline; main only decides what runs. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "http_server.h"
#include "json_arena.h"
#include "kafka_io.h"
#include "log.h"
#include "pipeline.h"

extern char **environ;

static volatile sig_atomic_t stop_flag = 0;
static volatile sig_atomic_t reload_flag = 0;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void on_reload_signal(int sig) {
    (void)sig;
    reload_flag = 1;
}

static void usage(FILE *out) {
    fprintf(out,
            "Usage: fraud-detector [-c FILE] [-X key=value]... [--dump-config]\n"
            "\n"
            "Consumes payments from Kafka, keeps per-user state in Redis and produces\n"
            "fraud alerts. Settings come from FILE, then FRAUD_* environment variables,\n"
            "then -X flags; later sources win. SIGHUP reads them again and applies\n"
            "the rule.* keys without a restart.\n"
            "\n"
            "Options:\n"
            "  -c FILE                 read key=value settings from FILE\n"
            "  -X key=value            set one key (repeatable)\n"
            "  --dump-config           print the effective settings (secrets masked), exit\n"
            "  --print-default-config  print the documented default config file, exit\n"
            "  --version               print the version, exit\n"
            "  --help                  print this help, exit\n"
            "\n"
            "Keys:\n");
    config_print_help(out);
}

typedef enum { RUN_SERVICE, RUN_DUMP_CONFIG, RUN_EXIT_OK, RUN_EXIT_ERROR } run_mode_t;

#define MAX_X_FLAGS 512

/* Where the settings came from, kept so SIGHUP can read them again. */
typedef struct config_sources {
    const char *file; /* NULL: none */
    const char *settings[MAX_X_FLAGS];
    int setting_count;
} config_sources_t;

static config_sources_t sources;

/* Applies the sources in precedence order: -c first, environment next,
 * -X flags last, whatever their order on the command line. */
static int load_config_sources(const config_sources_t *src, config_t *cfg, char *errstr,
                               size_t errstr_size) {
    return config_load_sources(cfg, src->file, environ, src->settings, src->setting_count,
                               errstr, errstr_size);
}

/* SIGHUP: every source again, into a fresh config; only its rules are
 * taken (other keys need a restart, and say so when they changed). */
static int reload_rules(void *ctx, rule_set_t *out, char *errstr, size_t errstr_size) {
    const config_t *running = ctx;
    config_t *fresh = config_new();
    if (!fresh) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    int rc = load_config_sources(&sources, fresh, errstr, errstr_size);
    if (rc == 0) {
        *out = fresh->rules;
        if (config_differs_beyond_rules(running, fresh))
            log_warn("main", "SIGHUP reloads only the rule.* keys; the other changed settings "
                     "take effect after a restart");
    }
    config_destroy(fresh);
    return rc;
}

static run_mode_t parse_command_line(int argc, char **argv, config_t *cfg) {
    char errstr[1024];
    run_mode_t mode = RUN_SERVICE;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return RUN_EXIT_OK;
        } else if (strcmp(arg, "--version") == 0) {
            printf("fraud-detector %s (librdkafka %s)\n", FRAUD_VERSION, kafka_io_library_version());
            return RUN_EXIT_OK;
        } else if (strcmp(arg, "--print-default-config") == 0) {
            config_print_defaults_file(stdout);
            return RUN_EXIT_OK;
        } else if (strcmp(arg, "--dump-config") == 0) {
            mode = RUN_DUMP_CONFIG;
        } else if (strcmp(arg, "-c") == 0 || strcmp(arg, "-X") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "fraud-detector: %s needs an argument\n", arg);
                return RUN_EXIT_ERROR;
            }
            if (arg[1] == 'c') {
                sources.file = argv[++i];
            } else if (sources.setting_count == MAX_X_FLAGS) {
                fprintf(stderr, "fraud-detector: more than %d -X flags\n", MAX_X_FLAGS);
                return RUN_EXIT_ERROR;
            } else {
                sources.settings[sources.setting_count++] = argv[++i];
            }
        } else {
            fprintf(stderr, "fraud-detector: unknown argument \"%s\" (see --help)\n", arg);
            return RUN_EXIT_ERROR;
        }
    }
    if (load_config_sources(&sources, cfg, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "fraud-detector: %s\n", errstr);
        return RUN_EXIT_ERROR;
    }
    return mode;
}

/* The whole effective configuration on one line, secrets masked. */
static void log_startup(const config_t *cfg) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) return;
    config_dump(cfg, out);
    fclose(out);
    for (char *c = text; *c; c++)
        if (*c == '\n') *c = ' ';
    log_info("main", "fraud-detector %s starting with %s", FRAUD_VERSION, text);
    free(text);
}

int main(int argc, char **argv) {
    char errstr[1024];
    json_arena_install(); /* before any thread exists */
    config_t *cfg = config_new();
    if (!cfg) {
        fprintf(stderr, "fraud-detector: out of memory\n");
        return 1;
    }
    run_mode_t mode = parse_command_line(argc, argv, cfg);
    if (mode == RUN_EXIT_OK || mode == RUN_EXIT_ERROR) {
        config_destroy(cfg);
        return mode == RUN_EXIT_OK ? 0 : 2;
    }
    if (mode == RUN_DUMP_CONFIG) {
        config_dump(cfg, stdout);
        int rc = kafka_io_dump_config(cfg, stdout, errstr, sizeof(errstr));
        if (rc != 0) fprintf(stderr, "fraud-detector: %s\n", errstr);
        config_destroy(cfg);
        return rc == 0 ? 0 : 2;
    }
    if (log_configure(cfg->log_level, cfg->log_format) != 0) {
        fprintf(stderr, "fraud-detector: bad log.level or log.format\n");
        config_destroy(cfg);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_reload_signal;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    log_startup(cfg);
    pipeline_t *pipeline = pipeline_new(cfg, errstr, sizeof(errstr));
    if (!pipeline) {
        fprintf(stderr, "fraud-detector: %s\n", errstr);
        config_destroy(cfg);
        return 1;
    }
    pipeline_set_rules_reload(pipeline, &reload_flag, reload_rules, cfg);
    http_handlers_t handlers = pipeline_http_handlers(pipeline);
    http_server_t *http = http_server_start(cfg->http_listen, &handlers, errstr, sizeof(errstr));
    if (!http && errstr[0]) {
        fprintf(stderr, "fraud-detector: %s\n", errstr);
        pipeline_destroy(pipeline);
        config_destroy(cfg);
        return 1;
    }
    if (http) log_info("http", "serving /metrics /healthz /readyz /users/{id} on %s",
                       cfg->http_listen);
    int rc = pipeline_run(pipeline, &stop_flag);
    /* The handlers read the pipeline's Kafka and Redis handles: stop
     * serving before any of them is freed, then leave the group. */
    http_server_stop(http);
    pipeline_destroy(pipeline);
    json_arena_release();
    log_info("main", "exiting with status %d", rc);
    config_destroy(cfg);
    return rc;
}
