/* fuzz_util.h - small helpers shared by the fuzz targets: scratch
 * directories, in-memory files with a path, and invariant checks that crash
 * loudly so libFuzzer (or the replay driver) reports the input.
 *
 * Every function here is static inline: each target uses what it needs. */
#ifndef NBA_FUZZ_UTIL_H
#define NBA_FUZZ_UTIL_H

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <protobuf-c/protobuf-c.h>

/* Stops the process on a broken invariant: abort() is a crash to libFuzzer,
 * which then saves the input as an artifact. */
__attribute__((noreturn, format(printf, 1, 2))) static void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz invariant broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__VA_ARGS__);                                                                \
    } while (0)

/* Creates a scratch directory named after `name` in a tmpfs when there is
 * one (LMDB's fsync on commit costs nothing there), else in $TMPDIR or /tmp.
 * Returns 0 with the path in dir, or -1. */
static inline int fuzz_mkdtemp(char *dir, size_t size, const char *name)
{
    const char *bases[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        struct stat sb;
        if (!bases[i] || stat(bases[i], &sb) != 0 || !S_ISDIR(sb.st_mode) ||
            access(bases[i], W_OK) != 0)
            continue;
        int n = snprintf(dir, size, "%s/%s.XXXXXX", bases[i], name);
        if (n < 0 || (size_t)n >= size)
            continue;
        if (mkdtemp(dir))
            return 0;
    }
    return -1;
}

/* Removes a scratch directory made by fuzz_mkdtemp() and the files in it
 * (one level: LMDB's data.mdb and lock.mdb). */
static inline void fuzz_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4096];
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n > 0 && (size_t)n < sizeof path)
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* An in-memory file holding data[0..size), reachable by a path for code that
 * opens files by name. */
typedef struct fuzz_file {
    int fd;
    char path[64];
} fuzz_file;

/* Returns 0, or -1 when the file could not be made. */
static inline int fuzz_file_open(fuzz_file *f, const char *name, const void *data, size_t size)
{
    f->fd = memfd_create(name, MFD_CLOEXEC);
    if (f->fd < 0)
        return -1;
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(f->fd, p, size);
        if (n <= 0) {
            close(f->fd);
            f->fd = -1;
            return -1;
        }
        p += n;
        size -= (size_t)n;
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    return 0;
}

static inline void fuzz_file_close(fuzz_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* Forgets the fields this protocol version does not know, in m and every
 * message inside it. protobuf-c keeps them to pack them again, but it also
 * keeps a field numbered 0 (invalid, yet accepted when its tag is an
 * over-long varint such as 85 00) and then refuses its own output. nbad
 * never packs a message it decoded, and a writer packs only fields it
 * knows, so decoders are compared on the known fields. */
static inline void fuzz_strip_unknown(ProtobufCMessage *m)
{
    m->n_unknown_fields = 0;
    m->unknown_fields = NULL;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        char *member = (char *)m + f->offset;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which;
            memcpy(&which, (char *)m + f->quantifier_offset, sizeof which);
            if (which != f->id)
                continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n;
            ProtobufCMessage **items;
            memcpy(&n, (char *)m + f->quantifier_offset, sizeof n);
            memcpy(&items, member, sizeof items);
            for (size_t k = 0; k < n; k++)
                fuzz_strip_unknown(items[k]);
        } else {
            ProtobufCMessage *sub;
            memcpy(&sub, member, sizeof sub);
            if (sub)
                fuzz_strip_unknown(sub);
        }
    }
}

#endif
