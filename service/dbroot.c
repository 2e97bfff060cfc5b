/* dbroot.c - see include/dbroot.h. */
#include "dbroot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

#define GEN_PREFIX     "gen-"
#define GEN_MIN_DIGITS 6

/* The number of a generation's name, or 0 when name is not one. */
static uint64_t gen_number(const char *name)
{
    size_t plen = strlen(GEN_PREFIX), len = strlen(name);
    if (strncmp(name, GEN_PREFIX, plen) != 0 || len - plen < GEN_MIN_DIGITS || len - plen > 18)
        return 0;
    uint64_t n = 0;
    for (size_t i = plen; i < len; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        n = n * 10 + (uint64_t)(name[i] - '0');
    }
    return n;
}

static int join(char *buf, size_t size, const char *root, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", root, name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int dbroot_path(const char *root, const char *name, char *buf, size_t size)
{
    if (strcmp(name, DBROOT_FLAT) == 0) {
        int n = snprintf(buf, size, "%s", root);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
    }
    return join(buf, size, root, name);
}

static bool has_data(const char *dir)
{
    char path[PATH_MAX];
    struct stat sb;
    return join(path, sizeof path, dir, "data.mdb") == 0 && stat(path, &sb) == 0 &&
           S_ISREG(sb.st_mode);
}

int dbroot_current_name(const char *root, char *buf, size_t size)
{
    char link[PATH_MAX];
    if (join(link, sizeof link, root, "current"))
        return -ENAMETOOLONG;
    ssize_t n = readlink(link, buf, size);
    if (n < 0)
        return -errno;
    if ((size_t)n >= size)
        return -ENAMETOOLONG;
    buf[n] = '\0';
    return 0;
}

int dbroot_resolve(const char *root, char *buf, size_t size, nba_error *err)
{
    char target[PATH_MAX], abs_root[PATH_MAX];
    int rc = dbroot_current_name(root, target, sizeof target);
    if (rc == -ENOENT) {
        if (!has_data(root))
            return nba_error_set(err, -ENOENT,
                                 "%s: no database here (load one with nbactl load --db %s)", root,
                                 root);
        int n = snprintf(buf, size, "%s", root);
        return n < 0 || (size_t)n >= size
                   ? nba_error_set(err, -ENAMETOOLONG, "%s: path too long", root)
                   : 0;
    }
    if (rc)
        return nba_error_set(err, rc, "%s/current: %s", root, strerror(-rc));
    if (target[0] == '/') {
        int n = snprintf(buf, size, "%s", target);
        return n < 0 || (size_t)n >= size
                   ? nba_error_set(err, -ENAMETOOLONG, "%s: path too long", target)
                   : 0;
    }
    if (!realpath(root, abs_root))
        return nba_error_set(err, -errno, "%s: %s", root, strerror(errno));
    if (join(buf, size, abs_root, target))
        return nba_error_set(err, -ENAMETOOLONG, "%s/%s: path too long", abs_root, target);
    return 0;
}

static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path)
        return -ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* The highest generation number in root (0 when there is none). */
static int highest(const char *root, uint64_t *out, nba_error *err)
{
    DIR *d = opendir(root);
    if (!d)
        return nba_error_set(err, -errno, "%s: %s", root, strerror(errno));
    *out = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t n = gen_number(e->d_name);
        if (n > *out)
            *out = n;
    }
    closedir(d);
    return 0;
}

int dbroot_new_generation(const char *root, char *buf, size_t size, nba_error *err)
{
    int rc = mkdir_p(root);
    if (rc)
        return nba_error_set(err, rc, "%s: cannot create directory: %s", root, strerror(-rc));
    uint64_t n = 0;
    rc = highest(root, &n, err);
    if (rc)
        return rc;
    for (;;) {
        char name[DBROOT_NAME_MAX], path[PATH_MAX];
        snprintf(name, sizeof name, GEN_PREFIX "%06" PRIu64, ++n);
        if (join(path, sizeof path, root, name))
            return nba_error_set(err, -ENAMETOOLONG, "%s: path too long", root);
        if (mkdir(path, 0755) == 0) {
            int len = snprintf(buf, size, "%s", name);
            return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
        }
        /* Taken by another process at the same moment: the next. */
        if (errno != EEXIST)
            return nba_error_set(err, -errno, "%s: cannot create: %s", path, strerror(errno));
    }
}

/* A generation's load is complete when it recorded when it was loaded,
 * which a load does in its last commit. */
static int check_complete(const char *path, nba_error *err)
{
    store *st;
    char when[64];
    if (!has_data(path))
        return nba_error_set(err, -ENOENT, "%s: holds no database", path);
    int rc = store_open(path, STORE_READONLY, 0, 0, &st, err);
    if (rc)
        return rc;
    rc = store_get_meta(st, "loaded_at", when, sizeof when);
    store_close(st);
    if (rc == -ENOENT)
        return nba_error_set(err, -EINVAL, "%s: its load never finished", path);
    if (rc)
        return nba_error_set(err, rc, "%s: cannot read it: %s", path, strerror(-rc));
    return 0;
}

int dbroot_switch(const char *root, const char *gen_name, nba_error *err)
{
    char path[PATH_MAX], tmp[PATH_MAX], link[PATH_MAX];
    if (gen_number(gen_name) == 0)
        return nba_error_set(err, -EINVAL, "'%s' is not a generation's name (gen-000001, ...)",
                             gen_name);
    if (join(path, sizeof path, root, gen_name) || join(link, sizeof link, root, "current"))
        return nba_error_set(err, -ENAMETOOLONG, "%s: path too long", root);
    int rc = check_complete(path, err);
    if (rc)
        return rc;
    /* A link under a temporary name, then renamed over `current`: a reader
     * sees the old link or the new one, never none. The target is relative,
     * so the root can be moved or mounted elsewhere. */
    int n = snprintf(tmp, sizeof tmp, "%s/.current-%ld", root, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return nba_error_set(err, -ENAMETOOLONG, "%s: path too long", root);
    unlink(tmp);
    if (symlink(gen_name, tmp) != 0)
        return nba_error_set(err, -errno, "%s: cannot create link: %s", tmp, strerror(errno));
    if (rename(tmp, link) != 0) {
        rc = -errno;
        unlink(tmp);
        return nba_error_set(err, rc, "%s: cannot replace: %s", link, strerror(-rc));
    }
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        return nba_error_set(err, rc, "%s: switched, but cannot sync the directory: %s", root,
                             strerror(-rc));
    }
    close(fd);
    return 0;
}

static int cmp_gen(const void *a, const void *b)
{
    const dbroot_gen *x = a, *y = b;
    return x->number < y->number ? -1 : x->number > y->number;
}

/* Fills in what a listing says about one generation. */
static void describe(const char *root, dbroot_gen *g)
{
    char dir[PATH_MAX], data[PATH_MAX];
    struct stat sb;
    if (dbroot_path(root, g->name, dir, sizeof dir) || join(data, sizeof data, dir, "data.mdb")) {
        g->in_use = -ENAMETOOLONG;
        return;
    }
    g->has_data = stat(data, &sb) == 0 && S_ISREG(sb.st_mode);
    g->bytes = g->has_data ? (uint64_t)sb.st_blocks * 512 : 0;
    g->in_use = store_env_in_use(dir, &g->pid);
}

int dbroot_list(const char *root, dbroot_gen **out, size_t *count, nba_error *err)
{
    *out = NULL;
    *count = 0;
    char current[DBROOT_NAME_MAX];
    bool have_current = dbroot_current_name(root, current, sizeof current) == 0;
    DIR *d = opendir(root);
    if (!d)
        return nba_error_set(err, -errno, "%s: %s", root, strerror(errno));
    dbroot_gen *list = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    bool flat = has_data(root);
    struct dirent *e;
    while (rc == 0) {
        const char *name;
        uint64_t number = 0;
        if (flat) {
            name = DBROOT_FLAT;
            flat = false;
        } else if ((e = readdir(d)) != NULL) {
            name = e->d_name;
            number = gen_number(name);
            if (!number || strlen(name) >= DBROOT_NAME_MAX)
                continue;
        } else {
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            dbroot_gen *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                rc = nba_error_set(err, -ENOMEM, "out of memory");
                break;
            }
            list = grown;
        }
        dbroot_gen *g = &list[n++];
        memset(g, 0, sizeof *g);
        size_t len = strlen(name);
        memcpy(g->name, name, len + 1); /* shorter than DBROOT_NAME_MAX */
        g->number = number;
        g->current = have_current ? strcmp(name, current) == 0 : number == 0;
        describe(root, g);
    }
    closedir(d);
    if (rc) {
        free(list);
        return rc;
    }
    qsort(list, n, sizeof *list, cmp_gen);
    *out = list;
    *count = n;
    return 0;
}

/* Removes a generation's files, then its directory (a flat environment:
 * only its two files). Nothing below a generation is a directory. */
static int remove_files(const char *root, const char *name, nba_error *err)
{
    char dir[PATH_MAX], path[PATH_MAX];
    if (dbroot_path(root, name, dir, sizeof dir))
        return nba_error_set(err, -ENAMETOOLONG, "%s: path too long", root);
    if (strcmp(name, DBROOT_FLAT) == 0) {
        static const char *const files[] = {"data.mdb", "lock.mdb"};
        for (size_t i = 0; i < 2; i++) {
            if (join(path, sizeof path, dir, files[i]) == 0 && unlink(path) != 0 && errno != ENOENT)
                return nba_error_set(err, -errno, "%s: cannot remove: %s", path, strerror(errno));
        }
        return 0;
    }
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : nba_error_set(err, -errno, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (join(path, sizeof path, dir, e->d_name) || unlink(path) != 0)
            rc = nba_error_set(err, -errno, "%s: cannot remove: %s", path, strerror(errno));
    }
    closedir(d);
    if (!rc && rmdir(dir) != 0)
        rc = nba_error_set(err, -errno, "%s: cannot remove: %s", dir, strerror(errno));
    return rc;
}

int dbroot_prune(const char *root, unsigned keep_previous, dbroot_prune_fn *report, void *ctx,
                 nba_error *err)
{
    char current[DBROOT_NAME_MAX];
    int rc = dbroot_current_name(root, current, sizeof current);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return nba_error_set(err, rc, "%s/current: %s", root, strerror(-rc));
    uint64_t current_number = gen_number(current);
    dbroot_gen *list;
    size_t n;
    rc = dbroot_list(root, &list, &n, err);
    if (rc)
        return rc;
    int removed = 0;
    unsigned kept = 0;
    /* Newest first, so the previous ones kept are the newest. */
    for (size_t i = n; i-- > 0 && rc == 0;) {
        dbroot_gen *g = &list[i];
        if (g->current)
            continue;
        if (g->number < current_number && kept < keep_previous) {
            kept++;
            continue;
        }
        if (g->in_use != 0) {
            if (report)
                report(ctx, g, false);
            continue;
        }
        rc = remove_files(root, g->name, err);
        if (rc == 0) {
            removed++;
            if (report)
                report(ctx, g, true);
        }
    }
    free(list);
    return rc ? rc : removed;
}

int dbroot_remove(const char *root, const char *gen_name, nba_error *err)
{
    char current[DBROOT_NAME_MAX], dir[PATH_MAX];
    if (gen_number(gen_name) == 0)
        return nba_error_set(err, -EINVAL, "'%s' is not a generation's name", gen_name);
    if (dbroot_current_name(root, current, sizeof current) == 0 && strcmp(current, gen_name) == 0)
        return nba_error_set(err, -EBUSY, "%s/%s: is the current generation", root, gen_name);
    if (join(dir, sizeof dir, root, gen_name))
        return nba_error_set(err, -ENAMETOOLONG, "%s: path too long", root);
    long pid = 0;
    if (store_env_in_use(dir, &pid) == 1)
        return nba_error_set(err, -EBUSY, "%s: in use by process %ld", dir, pid);
    return remove_files(root, gen_name, err);
}

int dbroot_lock(const char *root, int *fd, nba_error *err)
{
    int rc = mkdir_p(root);
    if (rc)
        return nba_error_set(err, rc, "%s: cannot create directory: %s", root, strerror(-rc));
    int d = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return nba_error_set(err, -errno, "%s: %s", root, strerror(errno));
    if (flock(d, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        close(d);
        if (rc == -EBUSY)
            return nba_error_set(err, rc,
                                 "%s: another load, switch or prune is working on this database; "
                                 "try again when it has finished",
                                 root);
        return nba_error_set(err, rc, "%s: cannot lock: %s", root, strerror(-rc));
    }
    *fd = d;
    return 0;
}

void dbroot_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}
