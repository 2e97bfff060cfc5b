/* rng.h - the pseudo-random generator of the load and data generators.
 *
 * xoshiro256** (Blackman and Vigna), seeded through splitmix64: fast, small,
 * statistically sound for simulation, and the same stream for the same seed
 * on every machine, which is what makes nbagen's output reproducible. Not for
 * anything secret. Header-only so the hot loops inline it.
 */
#ifndef NBA_RNG_H
#define NBA_RNG_H

#include <math.h>
#include <stdint.h>

#define RNG_TWO_PI 6.283185307179586476925286766559

typedef struct rng {
    uint64_t s[4];
    double spare; /* second normal deviate of the last Box-Muller pair */
    int has_spare;
} rng;

static inline uint64_t rng_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Seeds r; equal seeds give equal streams. */
static inline void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = rng_splitmix64(&seed);
    r->has_spare = 0;
    r->spare = 0;
}

static inline uint64_t rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* The next 64 random bits. */
static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1), 53 bits. */
static inline double rng_double(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the tiny bias
 * for huge n does not matter for simulated data). */
static inline uint64_t rng_below(rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* True with probability p. */
static inline int rng_chance(rng *r, double p)
{
    return rng_double(r) < p;
}

/* A standard normal deviate (Box-Muller, both values of each pair used). */
static inline double rng_normal(rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u = 1.0 - rng_double(r); /* (0, 1]: log(u) is finite */
    double v = rng_double(r);
    double m = sqrt(-2.0 * log(u));
    r->spare = m * sin(RNG_TWO_PI * v);
    r->has_spare = 1;
    return m * cos(RNG_TWO_PI * v);
}

/* Picks an index in [0, n) with probability weights[i] / total, where total
 * is the sum of the n weights. */
static inline unsigned rng_weighted(rng *r, const unsigned *weights, unsigned n, unsigned total)
{
    uint64_t x = rng_below(r, total);
    for (unsigned i = 0; i < n; i++) {
        if (x < weights[i])
            return i;
        x -= weights[i];
    }
    return n - 1;
}

#endif
