/* Unit tests of database roots: generations created, numbered and listed,
 * `current` resolved and switched, an older flat environment still found,
 * pruning that keeps what serves and what a process still has open, and
 * the lock that keeps two loads apart. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "dbroot.h"
#include "store.h"

typedef struct fixture {
    char dir[64];
    char root[96];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/nba-dbroot-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->root, sizeof f->root, "%s/root", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc;
}

/* Writes one customer, whose id is `id`, into the environment in dir; a
 * complete load also records when it was loaded. */
static void fill(const char *dir, const char *id, bool complete)
{
    store *st;
    store_txn *t;
    nba_error err;
    assert_int_equal(store_open(dir, STORE_CREATE | STORE_EXACT, 1 << 24, 0, &st, &err), 0);
    assert_int_equal(store_txn_begin(st, &t, &err), 0);
    Nba__V1__Customer c = NBA__V1__CUSTOMER__INIT;
    c.customer_id = (char *)id;
    assert_int_equal(store_txn_put_customer(t, &c, &err), 0);
    if (complete)
        assert_int_equal(store_txn_put_meta(t, "loaded_at", "2026-11-22T10:00:00Z", &err), 0);
    assert_int_equal(store_txn_commit(t, &err), 0);
    store_close(st);
}

/* A new generation holding one customer named after it. */
static void make_gen(const char *root, char *name, bool complete)
{
    char dir[PATH_MAX];
    nba_error err;
    assert_int_equal(dbroot_new_generation(root, name, DBROOT_NAME_MAX, &err), 0);
    assert_int_equal(dbroot_path(root, name, dir, sizeof dir), 0);
    fill(dir, name, complete);
}

/* Whether store_open(root) reads the generation named `name`. */
static bool serves(const char *root, const char *name)
{
    store *st;
    store_reader *r;
    arena a;
    Nba__V1__Customer *c;
    if (store_open(root, STORE_READONLY, 0, 0, &st, NULL))
        return false;
    assert_int_equal(arena_init(&a, 1024), 0);
    assert_int_equal(store_reader_new(st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    bool found = store_get_customer(r, name, &a, &c) == 0;
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
    store_close(st);
    return found;
}

static bool exists(const char *root, const char *name)
{
    char path[2 * PATH_MAX];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", root, name);
    return lstat(path, &sb) == 0;
}

static void generations_resolve_and_switch(void **state)
{
    fixture *f = *state;
    char buf[PATH_MAX], name1[DBROOT_NAME_MAX], name2[DBROOT_NAME_MAX];
    nba_error err;

    assert_int_equal(dbroot_resolve(f->root, buf, sizeof buf, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "no database here"));
    assert_int_equal(dbroot_current_name(f->root, buf, sizeof buf), -ENOENT);

    /* Created with the root, numbered from 1; nothing serves yet. */
    make_gen(f->root, name1, true);
    assert_string_equal(name1, "gen-000001");
    make_gen(f->root, name2, true);
    assert_string_equal(name2, "gen-000002");
    assert_int_equal(dbroot_resolve(f->root, buf, sizeof buf, &err), -ENOENT);

    assert_int_equal(dbroot_switch(f->root, name1, &err), 0);
    assert_int_equal(dbroot_current_name(f->root, buf, sizeof buf), 0);
    assert_string_equal(buf, "gen-000001");
    assert_int_equal(dbroot_resolve(f->root, buf, sizeof buf, &err), 0);
    char want[PATH_MAX + 16], abs_root[PATH_MAX];
    assert_non_null(realpath(f->root, abs_root));
    snprintf(want, sizeof want, "%s/gen-000001", abs_root);
    assert_string_equal(buf, want);
    assert_true(serves(f->root, "gen-000001"));

    /* The link is relative, and the temporary one is gone. */
    char link[PATH_MAX], target[64];
    snprintf(link, sizeof link, "%s/current", f->root);
    ssize_t n = readlink(link, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "gen-000001");
    snprintf(link, sizeof link, ".current-%ld", (long)getpid());
    assert_false(exists(f->root, link));

    /* A reader that opened the old one keeps it; a new one gets the new. */
    store *old;
    assert_int_equal(store_open(f->root, STORE_READONLY, 0, 0, &old, &err), 0);
    assert_int_equal(dbroot_switch(f->root, name2, &err), 0);
    assert_true(serves(f->root, "gen-000002"));
    assert_non_null(strstr(store_dir(old), "gen-000001"));
    store_close(old);

    /* Rollback. */
    assert_int_equal(dbroot_switch(f->root, name1, &err), 0);
    assert_true(serves(f->root, "gen-000001"));

    /* Refused: not a generation's name, missing, not a finished load. */
    assert_int_equal(dbroot_switch(f->root, "state", &err), -EINVAL);
    assert_int_equal(dbroot_switch(f->root, "../gen-000001", &err), -EINVAL);
    assert_int_equal(dbroot_switch(f->root, "gen-000009", &err), -ENOENT);
    char name3[DBROOT_NAME_MAX];
    make_gen(f->root, name3, false);
    assert_int_equal(dbroot_switch(f->root, name3, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "never finished"));
    assert_true(serves(f->root, "gen-000001"));

    /* An empty generation directory left by a crash does not stop the
     * numbering. */
    char name4[DBROOT_NAME_MAX];
    assert_int_equal(dbroot_new_generation(f->root, name4, sizeof name4, &err), 0);
    assert_string_equal(name4, "gen-000004");
}

/* A directory loaded before generations: with no `current` it is its own
 * generation; a full load beside it takes over, and pruning removes it. */
static void flat_environment_keeps_working(void **state)
{
    fixture *f = *state;
    char buf[PATH_MAX], name[DBROOT_NAME_MAX];
    nba_error err;
    fill(f->root, "flat", true);
    assert_int_equal(dbroot_resolve(f->root, buf, sizeof buf, &err), 0);
    assert_string_equal(buf, f->root);
    assert_true(serves(f->root, "flat"));

    dbroot_gen *list;
    size_t n;
    assert_int_equal(dbroot_list(f->root, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, DBROOT_FLAT);
    assert_true(list[0].current);
    assert_true(list[0].has_data);
    free(list);
    /* Nothing to prune without `current`. */
    assert_int_equal(dbroot_prune(f->root, 0, NULL, NULL, &err), 0);

    make_gen(f->root, name, true);
    assert_int_equal(dbroot_switch(f->root, name, &err), 0);
    assert_true(serves(f->root, name));
    assert_int_equal(dbroot_list(f->root, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, DBROOT_FLAT);
    assert_false(list[0].current);
    assert_true(list[1].current);
    free(list);

    /* Kept as the one before the current, then removed. */
    assert_int_equal(dbroot_prune(f->root, 1, NULL, NULL, &err), 0);
    assert_true(exists(f->root, "data.mdb"));
    assert_int_equal(dbroot_prune(f->root, 0, NULL, NULL, &err), 1);
    assert_false(exists(f->root, "data.mdb"));
    assert_false(exists(f->root, "lock.mdb"));
    assert_true(serves(f->root, name));
}

typedef struct pruned {
    char names[8][DBROOT_NAME_MAX];
    bool removed[8];
    size_t n;
} pruned;

static void on_pruned(void *ctx, const dbroot_gen *g, bool removed)
{
    pruned *p = ctx;
    snprintf(p->names[p->n], sizeof p->names[p->n], "%s", g->name);
    p->removed[p->n++] = removed;
}

/* Holds the environment in dir open in a child process until told. */
static pid_t hold_open(const char *dir, int *go)
{
    int to_child[2], ready[2];
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store *st;
        char c;
        int ok = store_open(dir, STORE_READONLY | STORE_EXACT, 0, 0, &st, NULL) == 0;
        ok = ok && write(ready[1], "r", 1) == 1 && read(to_child[0], &c, 1) == 1;
        _exit(ok ? 0 : 1);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    close(ready[1]);
    close(to_child[0]);
    *go = to_child[1];
    return pid;
}

static void prune_keeps_current_previous_and_open_ones(void **state)
{
    fixture *f = *state;
    char names[5][DBROOT_NAME_MAX], dir[PATH_MAX], state_dir[PATH_MAX];
    nba_error err;
    for (int i = 0; i < 5; i++)
        make_gen(f->root, names[i], true);
    /* nbad's own environment, never touched. */
    snprintf(state_dir, sizeof state_dir, "%s/state", f->root);
    fill(state_dir, "state", true);
    assert_int_equal(dbroot_switch(f->root, names[3], &err), 0);

    /* gen-000001 is still open in another process (a reader that has not
     * followed a switch). */
    assert_int_equal(dbroot_path(f->root, names[0], dir, sizeof dir), 0);
    int go;
    pid_t child = hold_open(dir, &go);
    dbroot_gen *list;
    size_t n;
    assert_int_equal(dbroot_list(f->root, &list, &n, &err), 0);
    assert_int_equal(n, 5);
    assert_int_equal(list[0].in_use, 1);
    assert_int_equal(list[0].pid, child);
    assert_int_equal(list[1].in_use, 0);
    assert_true(list[3].current);
    assert_true(list[3].bytes > 0);
    free(list);

    /* Keep gen-000004 (current) and gen-000003 (the one before); remove
     * gen-000002 and gen-000005 (newer than current), leave gen-000001. */
    pruned p = {0};
    assert_int_equal(dbroot_prune(f->root, 1, on_pruned, &p, &err), 2);
    assert_int_equal(p.n, 3);
    assert_string_equal(p.names[0], "gen-000005");
    assert_true(p.removed[0]);
    assert_string_equal(p.names[1], "gen-000002");
    assert_true(p.removed[1]);
    assert_string_equal(p.names[2], "gen-000001");
    assert_false(p.removed[2]);
    assert_true(exists(f->root, "gen-000001"));
    assert_false(exists(f->root, "gen-000002"));
    assert_true(exists(f->root, "gen-000003"));
    assert_true(exists(f->root, "gen-000004"));
    assert_false(exists(f->root, "gen-000005"));
    assert_true(exists(f->root, "state/data.mdb"));

    /* Once the reader has gone, it goes too. */
    assert_int_equal(write(go, "g", 1), 1);
    close(go);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_int_equal(dbroot_prune(f->root, 0, NULL, NULL, &err), 2);
    assert_false(exists(f->root, "gen-000001"));
    assert_false(exists(f->root, "gen-000003"));
    assert_true(serves(f->root, "gen-000004"));
    assert_true(exists(f->root, "state/data.mdb"));

    /* A new generation never reuses a number in use; the current one
     * cannot be removed. */
    char next[DBROOT_NAME_MAX];
    assert_int_equal(dbroot_new_generation(f->root, next, sizeof next, &err), 0);
    assert_string_equal(next, "gen-000005");
    assert_int_equal(dbroot_remove(f->root, "gen-000004", &err), -EBUSY);
    assert_int_equal(dbroot_remove(f->root, next, &err), 0);
    assert_false(exists(f->root, next));
}

static void lock_keeps_two_loads_apart(void **state)
{
    fixture *f = *state;
    nba_error err;
    int a, b;
    assert_int_equal(dbroot_lock(f->root, &a, &err), 0);
    assert_int_equal(dbroot_lock(f->root, &b, &err), -EBUSY);
    assert_non_null(strstr(err.msg, "another load"));
    dbroot_unlock(a);
    assert_int_equal(dbroot_lock(f->root, &b, &err), 0);
    dbroot_unlock(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(generations_resolve_and_switch, setup, teardown),
        cmocka_unit_test_setup_teardown(flat_environment_keeps_working, setup, teardown),
        cmocka_unit_test_setup_teardown(prune_keeps_current_previous_and_open_ones, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lock_keeps_two_loads_apart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
