/* json_arena: cJSON's allocations during one parse, from one block.
 *
 * cJSON allocates a node per value and a copy per string, and deleting the
 * tree frees each again: malloc and free were about a fifth of the
 * consumer thread's time, most of it in decoding payments. Between
 * json_arena_begin() and json_arena_end(), cJSON on the calling thread
 * takes its memory from that thread's block, bump by bump, and frees
 * nothing; json_arena_end() forgets it all at once. What does not fit
 * comes from malloc and goes back to free. Outside a scope, and on every
 * other thread, the hooks are plain malloc and free.
 *
 * Nothing allocated inside a scope may outlive it: take copies before
 * json_arena_end(). Each thread owns its block; json_arena_release()
 * frees the calling thread's. */
#ifndef FRAUD_JSON_ARENA_H
#define FRAUD_JSON_ARENA_H

/* Points cJSON's hooks here. Once, before any other thread uses cJSON. */
void json_arena_install(void);

struct cJSON;

void json_arena_begin(void);
/* Frees a tree that cJSON parsed inside the current scope; outside a scope
 * it is cJSON_Delete(). Call it before json_arena_end(). */
void json_arena_delete(struct cJSON *tree);
void json_arena_end(void);

/* Frees the calling thread's block (at its end). */
void json_arena_release(void);

#endif
