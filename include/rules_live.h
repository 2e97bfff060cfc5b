/* rules_live.h - the ruleset serving now, and its replacement without a
 * pause.
 *
 * Worker threads read the serving ruleset inside a read-side section
 * (rules_live_enter .. rules_live_leave) that costs a few instructions and
 * never blocks. A reload compiles the rule file off the request path, swaps
 * one pointer, waits until every section that could still see the old
 * ruleset has ended (userspace RCU, liburcu's membarrier flavour), and only
 * then frees it. Requests in flight finish on the ruleset they started on.
 * A file that does not compile never replaces the one serving.
 *
 * Threads: every thread that calls rules_live_enter() must have called
 * rules_live_register_thread() first and rules_live_unregister_thread()
 * before it exits. Reloads may come from any thread, also unregistered ones,
 * but never from inside a read-side section.
 */
#ifndef NBA_RULES_LIVE_H
#define NBA_RULES_LIVE_H

#include <stddef.h>
#include "error.h"
#include "ruleset.h"

typedef struct rules_live rules_live;

/* Compiles the rule file at path (with the files its `include:` names) and
 * makes it the serving ruleset. Errors as ruleset_load_file(). The path is
 * copied. */
int rules_live_new(const char *path, rules_live **out, nba_error *err);

/* As rules_live_new, for a ruleset composed of the rule files
 * paths[0..n) (see ruleset_compile_files()). The paths are copied; every
 * reload reads them all again. */
int rules_live_new_files(const char *const *paths, size_t n, rules_live **out, nba_error *err);

/* Frees the serving ruleset and the holder. No thread may be inside a
 * read-side section. */
void rules_live_free(rules_live *rl);

void rules_live_register_thread(void);
void rules_live_unregister_thread(void);

/* Starts a read-side section and returns the serving ruleset, valid until
 * the matching rules_live_leave(). Sections may not nest. */
const ruleset *rules_live_enter(rules_live *rl);

void rules_live_leave(rules_live *rl);

/* Recompiles the rule files and, if they compile, makes the result the
 * serving ruleset; the old one is freed once no reader can see it. Reloads
 * are serialised. Returns 0, or the compiler's error: err then holds every
 * error found, and the old ruleset keeps serving. On return, id (if not
 * NULL, of size id_size) holds the id (name@version+hash8) serving now. */
int rules_live_reload(rules_live *rl, char *id, size_t id_size, nba_error *err);

/* Copies the id (name@version+hash8) serving now into id (of size
 * id_size). Any thread, registered or not. */
void rules_live_id(rules_live *rl, char *id, size_t id_size);

/* The path of the (first) rule file. */
const char *rules_live_path(const rules_live *rl);

/* The rule files given, as copied. */
size_t rules_live_file_count(const rules_live *rl);
const char *rules_live_file(const rules_live *rl, size_t i);

#endif
