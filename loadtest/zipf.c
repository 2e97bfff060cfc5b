/* zipf.c - see zipf.h. The sampler follows the rejection-inversion method:
 * draw u uniformly under the integral H of the hat function h(x) = x^-s,
 * invert it, round to the nearest rank k, and accept k when u falls under
 * the part of the hat that belongs to k. helper1/helper2 evaluate
 * log1p(x)/x and expm1(x)/x without cancellation near x = 0, which is what
 * keeps s = 1 (where H is a logarithm) exact. */
#include "zipf.h"

#include <errno.h>
#include <math.h>

static double helper1(double x)
{
    if (fabs(x) > 1e-8)
        return log1p(x) / x;
    return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

static double helper2(double x)
{
    if (fabs(x) > 1e-8)
        return expm1(x) / x;
    return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

/* H(x) = (x^(1-s) - 1) / (1 - s), or log(x) when s = 1. */
static double h_integral(const zipf *z, double x)
{
    double log_x = log(x);
    return helper2((1.0 - z->s) * log_x) * log_x;
}

/* h(x) = x^-s */
static double h(const zipf *z, double x)
{
    return exp(-z->s * log(x));
}

static double h_integral_inverse(const zipf *z, double x)
{
    double t = x * (1.0 - z->s);
    if (t < -1.0)
        t = -1.0; /* rounding at the lower end of the range */
    return exp(helper1(t) * x);
}

int zipf_init(zipf *z, uint64_t n, double s)
{
    if (n == 0 || !(s >= 0) || !isfinite(s))
        return -EINVAL;
    z->n = n;
    z->s = s;
    z->h_x1 = h_integral(z, 1.5) - 1.0;
    z->h_n = h_integral(z, (double)n + 0.5);
    z->threshold = 2.0 - h_integral_inverse(z, h_integral(z, 2.5) - h(z, 2.0));
    return 0;
}

uint64_t zipf_next(const zipf *z, rng *r)
{
    if (z->s == 0)
        return 1 + rng_below(r, z->n);
    for (;;) {
        double u = z->h_n + rng_double(r) * (z->h_x1 - z->h_n);
        double x = h_integral_inverse(z, u);
        double kd = floor(x + 0.5);
        uint64_t k;
        if (kd < 1)
            k = 1;
        else if (kd > (double)z->n)
            k = z->n;
        else
            k = (uint64_t)kd;
        if ((double)k - x <= z->threshold || u >= h_integral(z, (double)k + 0.5) - h(z, (double)k))
            return k;
    }
}
