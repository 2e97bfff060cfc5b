/* rules_live.c - see include/rules_live.h. */
#define _LGPL_SOURCE /* inline liburcu's read-side fast path */
#include "rules_live.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/urcu-memb.h>

#include "log.h"

struct rules_live {
    ruleset *serving; /* read with rcu_dereference, replaced with rcu_xchg_pointer */
    size_t n_paths;
    char **paths;
    pthread_mutex_t reload_lock; /* one reload at a time */
};

static void free_paths(rules_live *rl)
{
    for (size_t i = 0; i < rl->n_paths; i++)
        free(rl->paths[i]);
    free(rl->paths);
}

int rules_live_new_files(const char *const *paths, size_t n, rules_live **out, nba_error *err)
{
    if (n == 0)
        return nba_error_set(err, -EINVAL, "no rule file given");
    rules_live *rl = calloc(1, sizeof *rl);
    if (!rl)
        return nba_error_set(err, -ENOMEM, "out of memory");
    rl->paths = calloc(n, sizeof *rl->paths);
    if (!rl->paths) {
        free(rl);
        return nba_error_set(err, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        rl->paths[i] = strdup(paths[i]);
        rl->n_paths = i + 1;
        if (!rl->paths[i]) {
            free_paths(rl);
            free(rl);
            return nba_error_set(err, -ENOMEM, "out of memory");
        }
    }
    int rc = ruleset_load_files((const char *const *)rl->paths, rl->n_paths, &rl->serving, err);
    if (rc) {
        free_paths(rl);
        free(rl);
        return rc;
    }
    pthread_mutex_init(&rl->reload_lock, NULL);
    *out = rl;
    return 0;
}

int rules_live_new(const char *path, rules_live **out, nba_error *err)
{
    return rules_live_new_files(&path, 1, out, err);
}

void rules_live_free(rules_live *rl)
{
    if (!rl)
        return;
    ruleset_free(rl->serving);
    pthread_mutex_destroy(&rl->reload_lock);
    free_paths(rl);
    free(rl);
}

void rules_live_register_thread(void)
{
    urcu_memb_register_thread();
}

void rules_live_unregister_thread(void)
{
    urcu_memb_unregister_thread();
}

const ruleset *rules_live_enter(rules_live *rl)
{
    urcu_memb_read_lock();
    return rcu_dereference(rl->serving);
}

void rules_live_leave(rules_live *rl)
{
    (void)rl;
    urcu_memb_read_unlock();
}

int rules_live_reload(rules_live *rl, char *id, size_t id_size, nba_error *err)
{
    pthread_mutex_lock(&rl->reload_lock);
    ruleset *fresh = NULL;
    int rc = ruleset_load_files((const char *const *)rl->paths, rl->n_paths, &fresh, err);
    if (rc == 0) {
        ruleset *old = rcu_xchg_pointer(&rl->serving, fresh);
        /* Wait until no reader can still hold the old ruleset. */
        urcu_memb_synchronize_rcu();
        log_info("rules reloaded: %s replaces %s", ruleset_id(fresh), ruleset_id(old));
        ruleset_free(old);
    }
    pthread_mutex_unlock(&rl->reload_lock);
    if (id)
        rules_live_id(rl, id, id_size);
    return rc;
}

void rules_live_id(rules_live *rl, char *id, size_t id_size)
{
    /* Under the reload lock the serving ruleset cannot be freed, so no
     * read-side section (and no thread registration) is needed. */
    pthread_mutex_lock(&rl->reload_lock);
    snprintf(id, id_size, "%s", ruleset_id(rl->serving));
    pthread_mutex_unlock(&rl->reload_lock);
}

const char *rules_live_path(const rules_live *rl)
{
    return rl->paths[0];
}

size_t rules_live_file_count(const rules_live *rl)
{
    return rl->n_paths;
}

const char *rules_live_file(const rules_live *rl, size_t i)
{
    return i < rl->n_paths ? rl->paths[i] : NULL;
}
