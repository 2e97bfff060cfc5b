/* error.h - the one error convention of nbad.
 *
 * Every function that can fail returns an int: 0 on success, a negative errno
 * value on failure (-EINVAL bad input, -ENOENT not found, -ENOMEM, -EIO, ...).
 * Library codes (LMDB, libyaml, protobuf-c) are translated to errno values in
 * the one module that talks to that library.
 *
 * When a person will need to know what went wrong (an ops engineer reading a
 * rule-file error, a data engineer reading a bad CSV row), the function also
 * takes an `nba_error *err` and writes a complete message into it, with the
 * position (file:line or file:line:col) when there is one. The message travels
 * up unchanged to the edge (stderr, an Error response, nbactl's output).
 * `err` may always be NULL when the caller does not want the message.
 */
#ifndef NBA_ERROR_H
#define NBA_ERROR_H

#include <stddef.h>

#define NBA_ERROR_MAX 2048

typedef struct nba_error {
    char msg[NBA_ERROR_MAX];
} nba_error;

/* Formats a message into err (if err is not NULL) and returns `code`, so that
 * a failing function can end with `return nba_error_set(err, -EINVAL, ...)`.
 * A message longer than NBA_ERROR_MAX is truncated. */
int nba_error_set(nba_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to the message already in err (no-op if err is NULL).
 * Used to add context ("loading rules") while an error travels up. */
void nba_error_prefix(nba_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
