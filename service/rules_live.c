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
    char *path;
    pthread_mutex_t reload_lock; /* one reload at a time */
};

int rules_live_new(const char *path, rules_live **out, nba_error *err)
{
    rules_live *rl = calloc(1, sizeof *rl);
    if (!rl)
        return nba_error_set(err, -ENOMEM, "out of memory");
    rl->path = strdup(path);
    if (!rl->path) {
        free(rl);
        return nba_error_set(err, -ENOMEM, "out of memory");
    }
    int rc = ruleset_load_file(path, &rl->serving, err);
    if (rc) {
        free(rl->path);
        free(rl);
        return rc;
    }
    pthread_mutex_init(&rl->reload_lock, NULL);
    *out = rl;
    return 0;
}

void rules_live_free(rules_live *rl)
{
    if (!rl)
        return;
    ruleset_free(rl->serving);
    pthread_mutex_destroy(&rl->reload_lock);
    free(rl->path);
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
    int rc = ruleset_load_file(rl->path, &fresh, err);
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
    return rl->path;
}
