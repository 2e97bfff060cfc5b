/* customer_id.h - the customer ids nbagen writes and nbaload asks for.
 *
 * An id is a prefix ("C" by default) and the customer's number 1..N,
 * zero-padded to a fixed width: C0000001, C0000002, ... The width is 7 digits,
 * or as many as N needs when N has more, so that the ids of one data set all
 * have the same length and sort in numeric order (the loader appends sorted
 * keys fastest). Both tools derive the width from the customer count with
 * customer_id_width(), so they agree without being told.
 */
#ifndef NBA_CUSTOMER_ID_H
#define NBA_CUSTOMER_ID_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CUSTOMER_ID_PREFIX    "C"
#define CUSTOMER_ID_MIN_WIDTH 7
#define CUSTOMER_ID_MAX       64 /* bytes of the longest id, with its NUL */

/* The digit width of the ids of a data set of `count` customers. */
static inline int customer_id_width(uint64_t count)
{
    int digits = 1;
    for (uint64_t n = count; n >= 10; n /= 10)
        digits++;
    return digits > CUSTOMER_ID_MIN_WIDTH ? digits : CUSTOMER_ID_MIN_WIDTH;
}

/* Writes prefix and n zero-padded to width digits, NUL-terminated, into out
 * (CUSTOMER_ID_MAX bytes). Returns the length. A number wider than width is
 * written in full; prefixes beyond 32 bytes and widths beyond 24 digits are
 * cut to those. */
static inline size_t customer_id_format(char *out, const char *prefix, int width, uint64_t n)
{
    /* The digits, right-aligned in a zero-filled field of 24. */
    char digits[24];
    memset(digits, '0', sizeof digits);
    int d = 0;
    do {
        digits[sizeof digits - 1 - d++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    if (width < d)
        width = d;
    if (width > (int)sizeof digits)
        width = (int)sizeof digits;
    size_t plen = strnlen(prefix, 32);
    memcpy(out, prefix, plen);
    memcpy(out + plen, digits + sizeof digits - width, (size_t)width);
    out[plen + (size_t)width] = '\0';
    return plen + (size_t)width;
}

#endif
