/* json_arena: a thread-local bump allocator behind cJSON's hooks. */
#include "json_arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cJSON.h>

/* A payment's tree takes a few hundred bytes; the largest accepted message
 * (input.max.message.bytes, 64 KiB by default) may overflow into malloc. */
#define ARENA_BYTES (64 * 1024)
#define ARENA_ALIGN 16

typedef struct arena {
    char *block;
    size_t used;
    bool active;
    bool spilled; /* this scope took memory from malloc */
} arena_t;

static _Thread_local arena_t arena;
/* Set once, before any thread: without the hooks cJSON mallocs every node. */
static bool hooks_installed;

static void *arena_malloc(size_t size) {
    if (arena.active && arena.block) {
        size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
        if (need >= size && need <= ARENA_BYTES - arena.used) {
            void *p = arena.block + arena.used;
            arena.used += need;
            return p;
        }
    }
    if (arena.active) arena.spilled = true;
    return malloc(size);
}

static void arena_free(void *p) {
    /* The block's own pointers are never freed one by one. Comparing
     * addresses as integers: the pointer may belong to no block at all. */
    uintptr_t at = (uintptr_t)p, start = (uintptr_t)arena.block;
    if (arena.block && at >= start && at < start + ARENA_BYTES) return;
    free(p);
}

void json_arena_install(void) {
    cJSON_Hooks hooks = {.malloc_fn = arena_malloc, .free_fn = arena_free};
    cJSON_InitHooks(&hooks);
    hooks_installed = true;
}

void json_arena_begin(void) {
    if (!arena.block) arena.block = malloc(ARENA_BYTES); /* NULL: malloc serves all */
    arena.used = 0;
    arena.active = true;
    arena.spilled = false;
}

void json_arena_delete(cJSON *tree) {
    /* Walking the tree only to free nothing cost about 3% of the consumer
     * thread's samples: do it only when some of it came from malloc. */
    if (!hooks_installed || arena.spilled || !arena.active) cJSON_Delete(tree);
}

void json_arena_end(void) {
    arena.active = false;
    arena.used = 0;
}

void json_arena_release(void) {
    free(arena.block);
    arena.block = NULL;
    arena.used = 0;
    arena.active = false;
}
