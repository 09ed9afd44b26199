/* libFuzzer target: /users/{id} path decoding. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[2048], user[300];
    size_t len;
    if (size >= sizeof(path)) return 0;
    memcpy(path, data, size);
    path[size] = '\0';
    if (http_parse_user_path(path, user, sizeof(user), &len) == USER_PATH_OK &&
        (len == 0 || len > 256 || strlen(user) != len))
        abort();
    return 0;
}
