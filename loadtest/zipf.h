/* zipf.h - draws ranks 1..n with probability proportional to 1/rank^s.
 *
 * Used to make a few customers (frequent flyers) contact the airline far more
 * often than the rest. s = 0 is uniform; s = 1 is the classic Zipf law, under
 * which the top 1% of a million customers make about two thirds of the
 * contacts. Sampling is rejection-inversion (Hormann and Derflinger,
 * "Rejection-inversion to generate variates from monotone discrete
 * distributions", 1996): constant expected time and no table, so n may be in
 * the billions.
 */
#ifndef NBA_ZIPF_H
#define NBA_ZIPF_H

#include <stdint.h>
#include "rng.h"

typedef struct zipf {
    uint64_t n;
    double s;
    double h_x1;      /* H(1.5) - 1 */
    double h_n;       /* H(n + 0.5) */
    double threshold; /* squeeze that accepts most draws without evaluating H */
} zipf;

/* Prepares a sampler over ranks 1..n (n >= 1) with exponent s >= 0.
 * Returns 0, or -EINVAL for n == 0, negative or non-finite s. */
int zipf_init(zipf *z, uint64_t n, double s);

/* Draws one rank in [1, n]. */
uint64_t zipf_next(const zipf *z, rng *r);

#endif
