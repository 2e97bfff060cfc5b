/* error.c - see include/error.h. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int nba_error_set(nba_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void nba_error_prefix(nba_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t plen = strnlen(prefix, sizeof prefix - 1);
    size_t mlen = strnlen(err->msg, sizeof err->msg - 1);
    /* Shift the message right to make room for "prefix: ", truncating its
     * tail if the whole no longer fits. */
    if (plen + 2 >= sizeof err->msg)
        return;
    if (plen + 2 + mlen >= sizeof err->msg)
        mlen = sizeof err->msg - 1 - plen - 2;
    memmove(err->msg + plen + 2, err->msg, mlen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
    err->msg[plen + 2 + mlen] = '\0';
}
