/* writer.c - see include/writer.h. */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"

/* A batch larger than this is cut in two: one transaction's dirty pages
 * stay in memory, and the first jobs of a huge burst are answered sooner. */
#define WRITER_MAX_BATCH 1024
/* Seconds between ops.idle calls while nothing comes. */
#define WRITER_IDLE_S 1

struct writer {
    state *st;
    writer_ops ops;
    void *arg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    writer_job *head, *tail; /* under lock */
    bool stopping;           /* under lock */
    /* start-up handshake */
    bool started;
    int start_rc;
    nba_error start_err;
    _Atomic uint64_t jobs, commits, failed, largest_batch;
};

writer_job *writer_job_new(const uint8_t *request, size_t len, writer_done_fn done, void *done_arg,
                           void *tag)
{
    writer_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->request = malloc(len ? len : 1);
    if (!job->request) {
        free(job);
        return NULL;
    }
    if (len)
        memcpy(job->request, request, len);
    job->request_len = len;
    job->done = done;
    job->done_arg = done_arg;
    job->tag = tag;
    return job;
}

void writer_job_free(writer_job *job)
{
    if (!job)
        return;
    free(job->request);
    free(job->answer);
    free(job);
}

int writer_submit(writer *w, writer_job *job)
{
    job->next = NULL;
    job->submitted_ns = clock_mono_ns();
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        return -ESHUTDOWN;
    }
    if (w->tail)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

/* Takes up to WRITER_MAX_BATCH queued jobs, waiting for one. Returns NULL
 * when stopping with nothing queued. */
static writer_job *take_batch(writer *w, size_t *count)
{
    pthread_mutex_lock(&w->lock);
    while (!w->head && !w->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += WRITER_IDLE_S;
        if (pthread_cond_timedwait(&w->cond, &w->lock, &until) == ETIMEDOUT && !w->head &&
            w->ops.idle) {
            pthread_mutex_unlock(&w->lock);
            w->ops.idle(w->arg);
            pthread_mutex_lock(&w->lock);
        }
    }
    writer_job *batch = w->head, *last = NULL;
    size_t n = 0;
    for (writer_job *j = w->head; j && n < WRITER_MAX_BATCH; j = j->next) {
        last = j;
        n++;
    }
    if (last) {
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    *count = n;
    return batch;
}

/* Answers every job of the batch with an error. `counted` of them were
 * already counted as failed (their apply failed). */
static void fail_batch(writer *w, writer_job *batch, size_t n, size_t counted, int rc,
                       const char *message)
{
    for (writer_job *j = batch; j; j = j->next)
        w->ops.fail(w->arg, j, rc, message);
    atomic_fetch_add(&w->failed, n - counted);
}

static void run_batch(writer *w, writer_job *batch, size_t n)
{
    state_txn *t;
    nba_error err;
    int rc = state_txn_begin(w->st, &t, &err);
    if (rc) {
        log_error("writer: %s", err.msg);
        fail_batch(w, batch, n, 0, rc, err.msg);
        return;
    }
    size_t failed = 0;
    for (writer_job *j = batch; j; j = j->next) {
        rc = state_txn_savepoint(t);
        if (rc) {
            w->ops.fail(w->arg, j, rc, "the state database could not start a write");
            failed++;
            continue;
        }
        if (w->ops.apply(w->arg, t, j) == 0) {
            rc = state_txn_release(t);
            if (rc) {
                w->ops.fail(w->arg, j, rc, "the state database could not keep a write");
                failed++;
            }
        } else {
            state_txn_rollback(t);
            failed++;
        }
    }
    rc = state_txn_commit(t, &err);
    if (rc) {
        log_error("writer: %s", err.msg);
        fail_batch(w, batch, n, failed, rc, err.msg);
        return;
    }
    atomic_fetch_add(&w->failed, failed);
    atomic_fetch_add(&w->commits, 1);
    atomic_fetch_add(&w->jobs, n);
    uint64_t largest = atomic_load(&w->largest_batch);
    while (n > largest && !atomic_compare_exchange_weak(&w->largest_batch, &largest, n))
        ;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    int rc = w->ops.thread_start ? w->ops.thread_start(w->arg, &w->start_err) : 0;
    pthread_mutex_lock(&w->lock);
    w->start_rc = rc;
    w->started = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    if (rc)
        return NULL;

    for (;;) {
        size_t n;
        writer_job *batch = take_batch(w, &n);
        if (!batch)
            break;
        run_batch(w, batch, n);
        /* Answers go out only after the commit: a job's done callback may
         * hand it to another thread that frees it. */
        while (batch) {
            writer_job *next = batch->next;
            batch->done(batch->done_arg, batch);
            batch = next;
        }
    }
    if (w->ops.thread_stop)
        w->ops.thread_stop(w->arg);
    return NULL;
}

int writer_start(state *st, const writer_ops *ops, void *arg, writer **out, nba_error *err)
{
    writer *w = calloc(1, sizeof *w);
    if (!w)
        return nba_error_set(err, -ENOMEM, "out of memory");
    w->st = st;
    w->ops = *ops;
    w->arg = arg;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return nba_error_set(err, -rc, "cannot start the writer thread: %s", strerror(rc));
    }
    pthread_mutex_lock(&w->lock);
    while (!w->started)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
    if (w->start_rc) {
        rc = w->start_rc;
        *err = w->start_err;
        pthread_join(w->thread, NULL);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void writer_stop(writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void writer_get_stats(writer *w, writer_stats *out)
{
    out->jobs = atomic_load(&w->jobs);
    out->commits = atomic_load(&w->commits);
    out->failed = atomic_load(&w->failed);
    out->largest_batch = atomic_load(&w->largest_batch);
}
