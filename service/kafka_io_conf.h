/* kafka_io_conf: librdkafka client configuration, private to kafka_io.
 * Each *_new returns an object the caller owns: a conf that
 * kafka_conf_create_client() takes over (and destroys on failure), or a
 * client the caller destroys. NULL with a reason in errstr that names the
 * setting as the user wrote it. */
#ifndef FRAUD_KAFKA_IO_CONF_H
#define FRAUD_KAFKA_IO_CONF_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config.h"

rd_kafka_conf_t *kafka_conf_consumer_new(const config_t *cfg, char *errstr, size_t errstr_size);
rd_kafka_conf_t *kafka_conf_producer_new(const config_t *cfg, char *errstr, size_t errstr_size);
/* A client from conf, with the service's log and error callbacks. */
rd_kafka_t *kafka_conf_create_client(rd_kafka_type_t type, rd_kafka_conf_t *conf,
                                     const char *what, char *errstr, size_t errstr_size);
/* A consumer outside any group that never commits (kafka_reader_t's). */
rd_kafka_t *kafka_conf_reader_new(const config_t *cfg, char *errstr, size_t errstr_size);

#endif
