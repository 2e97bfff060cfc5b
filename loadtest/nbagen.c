/* nbagen - writes realistic warehouse extracts for nbactl load.
 *
 *   nbagen --out DIR [--customers 1000] [--incidents-per-customer 2]
 *          [--seed 1] [--now 2026-11-22T10:00:00Z] [--id-prefix C] [--shuffle]
 *
 * Writes DIR/customers.csv and DIR/incidents.csv in the shape of the data
 * contract (contract.md section 2), customers sorted by id and each
 * customer's incidents right after the previous customer's, so the loader
 * can append (--shuffle writes the customers, and their incidents with
 * them, in a scrambled order instead, as an extract that is not sorted
 * would come). The same seed and --now give the same bytes.
 *
 * What the data looks like:
 *   - lifetime_value is lognormal (median about 1 300, a long tail past
 *     100 000); predicted_ltv follows it with noise, and a few new customers
 *     are predicted far above what they have spent so far;
 *   - tier follows value: none for most, then silver, gold, a few platinum;
 *   - first languages weighted towards a European carrier's markets, with
 *     names and home airports to match (population.h);
 *   - incidents per customer are overdispersed (negative binomial): most
 *     customers have none or one, a few have many, and valuable customers,
 *     who fly more, have more; severities skew low, ages spread over the
 *     last 720 days, and recent incidents are more often still open (about
 *     30% open overall).
 *
 * Exit codes: 0 written, 64 usage, 73 cannot create the output.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "csv_writer.h"
#include "customer_id.h"
#include "error.h"
#include "population.h"
#include "rng.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_USAGE = 64,
    EXIT_CANTCREAT = 73,
};

#define WRITE_BUFFER  (4u * 1024u * 1024u)
#define MAX_INCIDENTS 400 /* per customer: the tail of the tail */
#define INCIDENT_DAYS 720 /* oldest incident, days before --now */
#define DAY_S         86400

/* Value model: ln(lifetime_value) ~ N(LTV_MU, LTV_SIGMA). With these, about
 * 5% of customers have a predicted_ltv of 20 000 or more. */
#define LTV_MU    7.2
#define LTV_SIGMA 1.4
/* Negative binomial shape of the incident count: smaller is more skewed. */
#define INCIDENT_SHAPE 0.5

typedef struct options {
    uint64_t customers;
    double incidents_per_customer;
    uint64_t seed;
    const char *out;
    int64_t now_s;
    char id_prefix[16];
    int id_width;
    bool shuffle;
} options;

/* ---- dates ---- */

/* Civil date from days since 1970-01-01 (Howard Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t year = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(year + (*m <= 2));
}

static void put_date(csv_writer *w, int64_t days)
{
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    csv_uint(w, (uint64_t)y, 4);
    csv_char(w, '-');
    csv_uint(w, m, 2);
    csv_char(w, '-');
    csv_uint(w, d, 2);
}

/* 2026-11-01T08:30:00Z */
static void put_timestamp(csv_writer *w, int64_t unix_s)
{
    int64_t days = unix_s >= 0 ? unix_s / DAY_S : -((-unix_s + DAY_S - 1) / DAY_S);
    int64_t sec = unix_s - days * DAY_S;
    put_date(w, days);
    csv_char(w, 'T');
    csv_uint(w, (uint64_t)(sec / 3600), 2);
    csv_char(w, ':');
    csv_uint(w, (uint64_t)(sec / 60 % 60), 2);
    csv_char(w, ':');
    csv_uint(w, (uint64_t)(sec % 60), 2);
    csv_char(w, 'Z');
}

/* ---- distributions ---- */

/* Gamma(shape, 1) by Marsaglia and Tsang; shape < 1 through the boost
 * Gamma(a) = Gamma(a + 1) * U^(1/a). */
static double gamma_draw(rng *r, double shape)
{
    if (shape < 1.0) {
        double u = 1.0 - rng_double(r);
        return gamma_draw(r, shape + 1.0) * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0);
        v = v * v * v;
        double u = 1.0 - rng_double(r);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v;
    }
}

static unsigned poisson_draw(rng *r, double lambda)
{
    if (lambda <= 0)
        return 0;
    if (lambda < 30) { /* Knuth: multiply uniforms until below e^-lambda */
        double limit = exp(-lambda), p = 1.0;
        unsigned k = 0;
        do {
            k++;
            p *= rng_double(r);
        } while (p > limit);
        return k - 1;
    }
    double x = lambda + sqrt(lambda) * rng_normal(r) + 0.5;
    return x < 0 ? 0 : (unsigned)x;
}

/* ---- customers ---- */

typedef struct customer {
    uint64_t number;
    double value_z; /* standardised log value: the customer's standing */
} customer;

static const char *tier_for(double standing)
{
    if (standing > 2.2)
        return "platinum";
    if (standing > 1.6)
        return "gold";
    if (standing > 0.9)
        return "silver";
    return "none";
}

static void write_customer(csv_writer *w, const options *opt, rng *r, customer *c, int64_t now_days)
{
    char id[CUSTOMER_ID_MAX], name[160];
    size_t id_len = customer_id_format(id, opt->id_prefix, opt->id_width, c->number);

    double z = rng_normal(r);
    c->value_z = z;
    double ltv = exp(LTV_MU + LTV_SIGMA * z);
    double predicted;
    if (rng_chance(r, 0.03)) /* new customers the models expect much from */
        predicted = exp(LTV_MU + 1.5 + LTV_SIGMA * rng_normal(r));
    else
        predicted = ltv * exp(0.25 + 0.35 * rng_normal(r));
    /* Tiers come from status earned over the years: value plus some noise. */
    const char *tier = tier_for(z + 0.3 * rng_normal(r));

    const language_profile *lang = population_pick_language(r);
    size_t name_len = population_name(lang, r, name, sizeof name);
    const char *airport = population_airport(lang, r);

    csv_raw(w, id, id_len);
    csv_char(w, ',');
    csv_field(w, name, name_len);
    csv_char(w, ',');
    csv_str(w, tier);
    csv_char(w, ',');
    csv_cents(w, (int64_t)llround(ltv * 100));
    csv_char(w, ',');
    csv_uint(w, (uint64_t)llround(predicted), 1);
    csv_char(w, ',');
    csv_str(w, lang->tag);
    csv_char(w, ',');
    csv_str(w, airport);
    csv_char(w, ',');
    if (!rng_chance(r, 0.01)) { /* a few birth dates are missing */
        double age = 45 + 14 * rng_normal(r) + (z > 1 ? 5 : 0);
        if (age < 18)
            age = 18 + rng_double(r) * 5;
        if (age > 95)
            age = 95;
        put_date(w, now_days - (int64_t)(age * 365.2425) - (int64_t)rng_below(r, 365));
    }
    csv_char(w, ',');
    csv_char(w, rng_chance(r, 0.62) ? '1' : '0');
    csv_char(w, '\n');
}

/* ---- incidents ---- */

enum kind { IFE_BROKEN, DELAY, LOST_BAGGAGE, DOWNGRADE, COMPLAINT, KINDS };

static const char *const kind_names[KINDS] = {"ife_broken", "delay", "lost_baggage", "downgrade",
                                              "complaint"};
static const unsigned kind_weights[KINDS] = {16, 38, 14, 12, 20};
static const unsigned severity_weights[5] = {40, 28, 17, 10, 5};

/* Agent notes, as typed: commas, quotes, now and then a line break. A '#'
 * is replaced by a number drawn from the kind's range. */
static const char *const notes[KINDS][6] = {
    [IFE_BROKEN] = {"Seat #C screen dead, reset failed",
                    "Screen froze after take-off; passenger moved to another seat",
                    "No audio on headphones, \"tried three sets\"",
                    "IFE down for the whole cabin, # passengers affected",
                    "Entertainment unavailable on a #-hour flight", "Seat #K power outlet dead"},
    [DELAY] = {"Delayed # min, missed connection", "Delayed # min at departure, meal voucher given",
               "Flight cancelled; overnight in a hotel, rebooked next day",
               "Delay of # min, passenger said \"never again\"", "Late inbound aircraft, # min",
               "Missed connection at FCO,\nrebooked on the next day's flight"},
    [LOST_BAGGAGE] = {"Bag not on belt, PIR filed", "Bag delivered after # days, contents damaged",
                      "Bag tagged to the wrong airport, traced, \"still waiting\"",
                      "Stroller missing at arrival", "# bags missing, family travelling together",
                      "Bag found, delivered to the hotel"},
    [DOWNGRADE] = {"Downgraded from J to Y, fare difference refunded",
                   "Downgraded from F to J due to aircraft swap",
                   "Seat not available, moved to W, compensation offered",
                   "Aircraft change, # passengers downgraded", "Downgrade at the gate",
                   "Booked J, flown in Y; \"no explanation given\""},
    [COMPLAINT] = {"Rude staff at the gate, \"treated like cargo\"",
                   "Call centre wait of # minutes", "Wifi paid but not working, refund requested",
                   "Meal choice not available, special meal missing",
                   "Wheelchair assistance late by # min", "Escalated to customer relations"},
};
static const unsigned note_range[KINDS][2] = {
    [IFE_BROKEN] = {1, 60}, [DELAY] = {30, 600},     [LOST_BAGGAGE] = {1, 9},
    [DOWNGRADE] = {2, 40},  [COMPLAINT] = {10, 120},
};

static const char *const carriers[] = {"AZ", "AZ", "AZ", "AZ", "AZ", "AZ", "AZ", "AZ",
                                       "DL", "AF", "KL", "LH", "BR", "JL", "KE", "UA"};

static void write_note(csv_writer *w, rng *r, enum kind k)
{
    const char *t = notes[k][rng_below(r, 6)];
    char text[256];
    size_t n = 0;
    for (const char *p = t; *p && n < sizeof text - 24; p++) {
        if (*p != '#') {
            text[n++] = *p;
            continue;
        }
        unsigned lo = note_range[k][0], hi = note_range[k][1];
        n += (size_t)snprintf(text + n, sizeof text - n, "%u",
                              lo + (unsigned)rng_below(r, hi - lo + 1));
    }
    csv_field(w, text, n);
}

static void write_incident(csv_writer *w, const options *opt, rng *r, const char *customer_id,
                           size_t id_len, uint64_t incident_no)
{
    enum kind k = (enum kind)rng_weighted(r, kind_weights, KINDS, 100);
    unsigned severity = 1 + rng_weighted(r, severity_weights, 5, 100);
    if ((k == LOST_BAGGAGE || k == DOWNGRADE) && severity < 5 && rng_chance(r, 0.3))
        severity++;
    int64_t age_s = (int64_t)rng_below(r, (uint64_t)INCIDENT_DAYS * DAY_S + 1);
    /* Recent incidents are mostly still open; old ones mostly resolved. */
    bool open = rng_double(r) < 0.95 * exp(-(double)age_s / (240.0 * DAY_S));

    csv_str(w, "INC-");
    csv_uint(w, incident_no, 10);
    csv_char(w, ',');
    csv_raw(w, customer_id, id_len);
    csv_char(w, ',');
    csv_str(w, kind_names[k]);
    csv_char(w, ',');
    csv_char(w, (char)('0' + severity));
    csv_char(w, ',');
    put_timestamp(w, opt->now_s - age_s);
    csv_char(w, ',');
    if (k != COMPLAINT || rng_chance(r, 0.4)) { /* complaints are often about no flight */
        csv_str(w, carriers[rng_below(r, sizeof carriers / sizeof carriers[0])]);
        csv_uint(w, 1 + rng_below(r, 1999), 1);
    }
    csv_char(w, ',');
    csv_char(w, open ? '0' : '1');
    csv_char(w, ',');
    if (rng_chance(r, 0.6))
        write_note(w, r, k);
    csv_char(w, '\n');
}

/* How many incidents a customer had: negative binomial with mean
 * per_customer, scaled up for valuable customers (they fly more). The
 * scale exp(0.35 z - 0.35^2 / 2) has mean 1, so the overall mean holds. */
static unsigned incident_count(rng *r, double per_customer, double value_z)
{
    if (per_customer <= 0)
        return 0;
    double mean = per_customer * exp(0.35 * value_z - 0.06125);
    double lambda = gamma_draw(r, INCIDENT_SHAPE) * mean / INCIDENT_SHAPE;
    unsigned n = poisson_draw(r, lambda);
    return n > MAX_INCIDENTS ? MAX_INCIDENTS : n;
}

/* The customer written i-th (1-based): i itself, or with --shuffle the
 * i-th of a permutation of 1..n, (i - 1) * m mod n + 1 for an m prime to n
 * (so no two i share one) near n times the golden ratio's fraction, which
 * spreads neighbours in the file far apart in id. */
static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static uint64_t customer_number(const options *opt, uint64_t i)
{
    static uint64_t m;
    uint64_t n = opt->customers;
    if (!opt->shuffle || n < 3)
        return i;
    if (!m) {
        m = (uint64_t)((double)n * 0.6180339887498949);
        while (gcd(m, n) != 1)
            m++;
    }
    unsigned __int128 x = (unsigned __int128)(i - 1) * m;
    return (uint64_t)(x % n) + 1;
}

/* ---- main ---- */

static const char usage_text[] =
    "usage: nbagen --out DIR [options]\n"
    "Writes DIR/customers.csv and DIR/incidents.csv for nbactl load.\n"
    "  --customers N                 1000\n"
    "  --incidents-per-customer F    average incidents per customer, 2\n"
    "  --seed N                      1; the same seed and --now give the same files\n"
    "  --now ISO8601                 incident ages count back from here; default: now\n"
    "  --id-prefix P                 C (ids C0000001, C0000002, ...)\n"
    "  --shuffle                     customers (each with its incidents) in a scrambled\n"
    "                                order, not by id: an extract the loader must sort\n";

static int usage(const char *fmt, const char *arg)
{
    if (fmt) {
        fputs("nbagen: ", stderr);
        fprintf(stderr, fmt, arg);
        fputc('\n', stderr);
    }
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static int parse_options(int argc, char **argv, options *opt)
{
    static const struct option longopts[] = {
        {"customers", required_argument, NULL, 'c'},
        {"incidents-per-customer", required_argument, NULL, 'i'},
        {"seed", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},
        {"now", required_argument, NULL, 'n'},
        {"id-prefix", required_argument, NULL, 'p'},
        {"shuffle", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *opt = (options){.customers = 1000, .incidents_per_customer = 2, .seed = 1};
    snprintf(opt->id_prefix, sizeof opt->id_prefix, "%s", CUSTOMER_ID_PREFIX);
    opt->now_s = clock_now_ms() / 1000;
    int o;
    char *end;
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case 'c':
            errno = 0;
            opt->customers = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *optarg == '-' || *end || errno || opt->customers == 0 ||
                opt->customers > UINT64_C(1000000000000))
                return usage("--customers takes a positive count, not %s", optarg);
            break;
        case 'i':
            errno = 0;
            opt->incidents_per_customer = strtod(optarg, &end);
            if (*optarg == '\0' || *end || errno || !(opt->incidents_per_customer >= 0) ||
                opt->incidents_per_customer > 100)
                return usage("--incidents-per-customer takes an average 0..100, not %s", optarg);
            break;
        case 's':
            errno = 0;
            opt->seed = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *optarg == '-' || *end || errno)
                return usage("--seed takes a number, not %s", optarg);
            break;
        case 'o':
            opt->out = optarg;
            break;
        case 'n': {
            int64_t ms;
            if (clock_parse_iso8601(optarg, strlen(optarg), &ms) != 0)
                return usage("--now takes an ISO 8601 time such as 2026-11-22T10:00:00Z, not %s",
                             optarg);
            opt->now_s = ms / 1000;
            break;
        }
        case 'p':
            if (*optarg == '\0' || strpbrk(optarg, ",\"\r\n") ||
                snprintf(opt->id_prefix, sizeof opt->id_prefix, "%s", optarg) >=
                    (int)sizeof opt->id_prefix)
                return usage("--id-prefix takes up to 15 plain characters, not %s", optarg);
            break;
        case 'S':
            opt->shuffle = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(EXIT_OK);
        default:
            return usage(NULL, NULL);
        }
    }
    if (optind < argc)
        return usage("unexpected argument %s", argv[optind]);
    if (!opt->out)
        return usage("--out DIR is required", NULL);
    opt->id_width = customer_id_width(opt->customers);
    return 0;
}

static bool path_join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap;
}

/* mkdir -p */
static int make_dirs(const char *path, nba_error *err)
{
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return nba_error_set(err, -ENAMETOOLONG, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return nba_error_set(err, -errno, "%s: %s", buf, strerror(errno));
        *p = saved;
        if (saved == '\0')
            break;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options opt;
    int code = parse_options(argc, argv, &opt);
    if (code)
        return code;

    nba_error err;
    char cpath[512], ipath[512], ctmp[512], itmp[512];
    /* Written under temporary names and renamed when complete, so a file
     * with the final name is always whole. */
    if (!path_join(cpath, sizeof cpath, opt.out, "customers.csv") ||
        !path_join(ipath, sizeof ipath, opt.out, "incidents.csv") ||
        !path_join(ctmp, sizeof ctmp, opt.out, "customers.csv.tmp") ||
        !path_join(itmp, sizeof itmp, opt.out, "incidents.csv.tmp"))
        return usage("--out %s is too long", opt.out);

    csv_writer cw = {.fd = -1}, iw = {.fd = -1};
    code = EXIT_CANTCREAT;
    if (make_dirs(opt.out, &err) != 0 || csv_writer_open(&cw, ctmp, WRITE_BUFFER, &err) != 0 ||
        csv_writer_open(&iw, itmp, WRITE_BUFFER, &err) != 0) {
        fprintf(stderr, "nbagen: %s\n", err.msg);
        goto out;
    }

    uint64_t started = clock_mono_ns();
    bool progress = isatty(STDERR_FILENO);
    rng r;
    rng_seed(&r, opt.seed);
    int64_t now_days = opt.now_s / DAY_S;
    uint64_t incidents = 0;

    csv_str(&cw, "customer_id,name,tier,lifetime_value,predicted_ltv,language,home_airport,"
                 "birth_date,email_opt_in\n");
    csv_str(&iw, "incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note\n");
    for (uint64_t i = 1; i <= opt.customers; i++) {
        customer c = {.number = customer_number(&opt, i)};
        write_customer(&cw, &opt, &r, &c, now_days);
        unsigned n = incident_count(&r, opt.incidents_per_customer, c.value_z);
        if (n) {
            char id[CUSTOMER_ID_MAX];
            size_t id_len = customer_id_format(id, opt.id_prefix, opt.id_width, c.number);
            for (unsigned k = 0; k < n; k++)
                write_incident(&iw, &opt, &r, id, id_len, ++incidents);
        }
        if (progress && i % 1000000 == 0)
            fprintf(stderr, "\rnbagen: %llu of %llu customers", (unsigned long long)i,
                    (unsigned long long)opt.customers);
    }
    if (progress && opt.customers >= 1000000)
        fputc('\n', stderr);

    int rc_c = csv_writer_close(&cw, &err);
    if (rc_c == 0 && csv_writer_close(&iw, &err) == 0) {
        if (rename(ctmp, cpath) != 0 || rename(itmp, ipath) != 0) {
            fprintf(stderr, "nbagen: cannot rename into %s: %s\n", opt.out, strerror(errno));
            goto out;
        }
    } else {
        fprintf(stderr, "nbagen: %s\n", err.msg);
        goto out;
    }
    double secs = (double)(clock_mono_ns() - started) / 1e9;
    printf("nbagen: wrote %llu customers and %llu incidents to %s in %.2f s\n",
           (unsigned long long)opt.customers, (unsigned long long)incidents, opt.out, secs);
    code = EXIT_OK;
out:
    if (cw.fd >= 0 || cw.buf)
        csv_writer_close(&cw, NULL);
    if (iw.fd >= 0 || iw.buf)
        csv_writer_close(&iw, NULL);
    if (code != EXIT_OK) {
        unlink(ctmp);
        unlink(itmp);
    }
    return code;
}
