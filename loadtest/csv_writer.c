/* csv_writer.c - see csv_writer.h. */
#include "csv_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int csv_writer_open(csv_writer *w, const char *path, size_t buffer_size, nba_error *err)
{
    *w = (csv_writer){.fd = -1};
    if (snprintf(w->path, sizeof w->path, "%s", path) >= (int)sizeof w->path)
        return nba_error_set(err, -ENAMETOOLONG, "%s: path too long", path);
    if (buffer_size < 4096)
        buffer_size = 4096;
    w->buf = malloc(buffer_size);
    if (!w->buf)
        return nba_error_set(err, -ENOMEM, "%s: out of memory for the write buffer", path);
    w->cap = buffer_size;
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int rc = -errno;
        free(w->buf);
        w->buf = NULL;
        return nba_error_set(err, rc, "%s: %s", path, strerror(-rc));
    }
    return 0;
}

void csv_writer_flush(csv_writer *w)
{
    const char *p = w->buf;
    size_t n = w->len;
    while (n > 0 && w->error == 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            w->error = -errno;
            break;
        }
        p += k;
        n -= (size_t)k;
        w->bytes += (uint64_t)k;
    }
    /* After an error the rest is dropped: the file is reported bad anyway. */
    w->len = 0;
}

int csv_writer_close(csv_writer *w, nba_error *err)
{
    int rc = 0;
    if (w->fd >= 0) {
        csv_writer_flush(w);
        if (w->error == 0 && fsync(w->fd) != 0)
            w->error = -errno;
        if (close(w->fd) != 0 && w->error == 0)
            w->error = -errno;
        w->fd = -1;
        rc = w->error;
    }
    free(w->buf);
    w->buf = NULL;
    if (rc)
        return nba_error_set(err, rc, "%s: %s", w->path, strerror(-rc));
    return 0;
}

void csv_field(csv_writer *w, const char *s, size_t n)
{
    if (!memchr(s, '"', n) && !memchr(s, ',', n) && !memchr(s, '\n', n) && !memchr(s, '\r', n)) {
        csv_raw(w, s, n);
        return;
    }
    csv_char(w, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            csv_char(w, '"');
        csv_char(w, s[i]);
    }
    csv_char(w, '"');
}
