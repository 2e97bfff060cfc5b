/* writer.h - the one thread that writes the state: group commit.
 *
 * Requests that must be durable before they are answered (an incident
 * report, a decision that upgrades or sends a letter) come from every
 * worker as jobs. The writer takes all the jobs queued when it is ready,
 * applies them in one LMDB write transaction, each in a savepoint of its
 * own, commits once (one fsync for the whole batch) and only then hands
 * each job back with its answer. While it commits, new jobs queue up for
 * the next batch: the busier the service, the more requests share an
 * fsync. Workers never wait for the writer; readers never wait for it
 * either (LMDB readers see the last commit).
 *
 * The writer knows nothing of requests: what a job means is the business of
 * the ops it is given (the daemon's decider applies requests).
 *
 * Ownership: a submitted job belongs to the writer until its done callback,
 * which receives it back (and then owns it: writer_job_free()).
 */
#ifndef NBA_WRITER_H
#define NBA_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "state.h"

typedef struct writer writer;

typedef struct writer_job writer_job;

/* Called on the writer thread once the job's transaction has committed (or
 * failed): job->answer holds the answer. Must not block; typically queues
 * the job for the thread that submitted it. */
typedef void (*writer_done_fn)(void *arg, writer_job *job);

struct writer_job {
    writer_job *next; /* the writer's queue */
    writer_done_fn done;
    void *done_arg;
    void *tag;        /* the submitter's: which connection asked */
    uint8_t *request; /* what to apply (a request body), owned by the job */
    size_t request_len;
    uint8_t *answer; /* the answer (a response frame), owned by the job */
    size_t answer_len;
    bool decision;         /* the answer is a decision (for the counters) */
    bool error;            /* the answer is an error (for the counters) */
    uint64_t submitted_ns; /* clock_mono_ns() at writer_submit() */
};

/* What the writer does with jobs; every call is on the writer thread. */
typedef struct writer_ops {
    /* Once, when the thread starts: sets up what apply needs (a decider,
     * the RCU registration). Returns 0 or a negative errno with a message;
     * the writer does not start then. */
    int (*thread_start)(void *arg, nba_error *err);
    /* Once, when the thread ends. */
    void (*thread_stop)(void *arg);
    /* Applies one job inside t (in a savepoint) and sets job->answer.
     * Returns 0 to keep the job's writes, or a negative errno to undo them:
     * job->answer is then an error answer it set. */
    int (*apply)(void *arg, state_txn *t, writer_job *job);
    /* Replaces job->answer with an error answer: the transaction it was
     * applied in could not begin or commit (message says why). */
    void (*fail)(void *arg, writer_job *job, int rc, const char *message);
    /* About once a second while there is nothing to write (may be NULL). */
    void (*idle)(void *arg);
} writer_ops;

/* Starts the writer thread on state st. ops and arg are called from it.
 * Returns 0, or a negative errno with a message (including one from
 * ops->thread_start). */
int writer_start(state *st, const writer_ops *ops, void *arg, writer **out, nba_error *err);

/* Applies what is queued, then stops the thread and frees the writer. Every
 * job submitted before gets its done callback. */
void writer_stop(writer *w);

/* A job carrying a copy of request[0..len). Returns NULL when out of
 * memory. */
writer_job *writer_job_new(const uint8_t *request, size_t len, writer_done_fn done, void *done_arg,
                           void *tag);

void writer_job_free(writer_job *job);

/* Queues job for the next batch; any thread. Returns 0, or -ESHUTDOWN after
 * writer_stop() began (the job is still the caller's). */
int writer_submit(writer *w, writer_job *job);

/* Counters, for status: jobs applied, transactions committed, and the
 * largest batch so far. */
typedef struct writer_stats {
    uint64_t jobs;
    uint64_t commits;
    uint64_t failed; /* jobs answered with an error */
    uint64_t largest_batch;
} writer_stats;
void writer_get_stats(writer *w, writer_stats *out);

#endif
