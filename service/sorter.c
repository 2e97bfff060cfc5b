/* sorter.c - see include/sorter.h.
 *
 * Records are copied into one growing buffer, each behind a small header;
 * an array of entries points at them and carries the first 16 bytes of each
 * key as two big-endian numbers, so that most comparisons while sorting
 * touch neither the buffer nor memcmp. The entries are sorted with a
 * bottom-up merge sort (stable, which is what keeps duplicates in the order
 * they were added), after a check that they are not in order already.
 *
 * When buffer and entries reach the budget, the records are written in
 * order as one run to the temporary file. At the end the runs are merged
 * through a heap of their next records, each run read through a buffer of
 * its own; more runs than MAX_FANIN are first merged in groups into longer
 * runs (at the end of the same file, whose space the merged ones give back
 * to the file system), so that no more than MAX_FANIN buffers are ever
 * needed.
 */
#include "sorter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIN_MEMORY   ((size_t)1 << 20)
#define WRITE_BUFFER ((size_t)1 << 20)
#define MAX_FANIN    64
#define MIN_READ_BUF ((size_t)64 << 10)
#define MAX_READ_BUF ((size_t)4 << 20)
#define MAX_KEY      65535u

/* A record's header, in memory and on disk alike, followed by the key and
 * the value. */
typedef struct rec_header {
    uint32_t key_len;
    uint32_t val_len;
    uint64_t tag[2];
} rec_header;

typedef struct entry {
    uint64_t p0, p1; /* key bytes 0..7 and 8..15, big-endian, zero-padded */
    size_t off;      /* of the record's header in mem */
} entry;

typedef struct run {
    uint64_t start, end; /* byte range in the file */
} run;

/* Reads one run back. The record at `at` is whole in buf. */
typedef struct run_reader {
    uint64_t pos, end; /* next byte of the run to read from the file, and its end */
    uint8_t *buf;
    size_t cap, len, at;
    bool have;
    sorter_record rec;
} run_reader;

struct sorter {
    char *dir;
    size_t budget;
    uint64_t count;

    /* Records held in memory. */
    uint8_t *mem;
    size_t mem_len, mem_cap;
    entry *entries;
    size_t nentries, entries_cap;
    bool in_order; /* every record held was added in key order */

    /* Runs on disk. */
    int fd;
    uint64_t file_end;
    run *runs;
    size_t nruns, runs_cap;
    uint8_t *wbuf;
    size_t wlen;
    uint64_t wpos;

    /* Reading. */
    bool finished;
    size_t next_entry;   /* in memory mode */
    run_reader *readers; /* in run mode, one per run being merged */
    size_t nreaders;
    size_t *heap; /* indices of readers that have a record */
    size_t nheap;
    bool advance_top; /* the record returned last came from heap[0] */
};

/* ---- keys ---- */

static uint64_t prefix_at(const uint8_t *key, size_t len, size_t from)
{
    uint64_t p = 0;
    for (size_t i = from; i < from + 8; i++)
        p = p << 8 | (i < len ? key[i] : 0);
    return p;
}

static int cmp_keys(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static const rec_header *header_at(const sorter *s, size_t off)
{
    return (const rec_header *)(s->mem + off);
}

static int cmp_entries(const sorter *s, const entry *a, const entry *b)
{
    if (a->p0 != b->p0)
        return a->p0 < b->p0 ? -1 : 1;
    if (a->p1 != b->p1)
        return a->p1 < b->p1 ? -1 : 1;
    const rec_header *ha = header_at(s, a->off), *hb = header_at(s, b->off);
    return cmp_keys((const uint8_t *)(ha + 1), ha->key_len, (const uint8_t *)(hb + 1), hb->key_len);
}

/* ---- sorting in memory ---- */

/* Stable: equal entries keep their order. tmp has room for n entries. */
static void merge_sort(const sorter *s, entry *a, entry *tmp, size_t n)
{
    const size_t small = 16;
    for (size_t lo = 0; lo < n; lo += small) {
        size_t hi = lo + small < n ? lo + small : n;
        for (size_t i = lo + 1; i < hi; i++) {
            entry e = a[i];
            size_t j = i;
            while (j > lo && cmp_entries(s, &e, &a[j - 1]) < 0) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = e;
        }
    }
    entry *from = a, *to = tmp;
    for (size_t width = small; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            /* Runs already in order (common: a nearly sorted input) cost
             * one comparison. */
            if (mid < hi && cmp_entries(s, &from[mid - 1], &from[mid]) <= 0) {
                memcpy(to + lo, from + lo, (hi - lo) * sizeof *to);
                continue;
            }
            while (i < mid && j < hi)
                to[k++] = cmp_entries(s, &from[j], &from[i]) < 0 ? from[j++] : from[i++];
            while (i < mid)
                to[k++] = from[i++];
            while (j < hi)
                to[k++] = from[j++];
        }
        entry *t = from;
        from = to;
        to = t;
    }
    if (from != a)
        memcpy(a, from, n * sizeof *a);
}

/* Sorts the entries held, unless they came in order. Returns 0 or -ENOMEM. */
static int sort_held(sorter *s)
{
    if (s->in_order || s->nentries < 2)
        return 0;
    entry *tmp = malloc(s->nentries * sizeof *tmp);
    if (!tmp)
        return -ENOMEM;
    merge_sort(s, s->entries, tmp, s->nentries);
    free(tmp);
    return 0;
}

/* ---- the temporary file ---- */

static int open_tmp(sorter *s, nba_error *err)
{
    if (s->fd >= 0)
        return 0;
    s->fd = open(s->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        /* File systems without O_TMPFILE: create, then unlink at once. */
        char path[4096];
        int n = snprintf(path, sizeof path, "%s/.sort-XXXXXX", s->dir);
        if (n < 0 || (size_t)n >= sizeof path)
            return nba_error_set(err, -ENAMETOOLONG, "%s: path too long", s->dir);
        s->fd = mkostemp(path, O_CLOEXEC);
        if (s->fd < 0) {
            int e = errno;
            return nba_error_set(err, -e, "%s: cannot create a temporary file for sorting: %s",
                                 s->dir, strerror(e));
        }
        unlink(path);
    }
    if (!s->wbuf) {
        s->wbuf = malloc(WRITE_BUFFER);
        if (!s->wbuf)
            return nba_error_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

static int write_all(sorter *s, const uint8_t *p, size_t n, uint64_t at, nba_error *err)
{
    while (n) {
        ssize_t w = pwrite(s->fd, p, n, (off_t)at);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            return nba_error_set(err, -e, "%s: cannot write a sort run: %s", s->dir, strerror(e));
        }
        p += w;
        n -= (size_t)w;
        at += (uint64_t)w;
    }
    return 0;
}

static int flush_wbuf(sorter *s, nba_error *err)
{
    int rc = write_all(s, s->wbuf, s->wlen, s->wpos, err);
    s->wpos += s->wlen;
    s->wlen = 0;
    return rc;
}

static int emit(sorter *s, const void *p, size_t n, nba_error *err)
{
    const uint8_t *b = p;
    while (n) {
        if (s->wlen == WRITE_BUFFER) {
            int rc = flush_wbuf(s, err);
            if (rc)
                return rc;
        }
        size_t k = WRITE_BUFFER - s->wlen < n ? WRITE_BUFFER - s->wlen : n;
        memcpy(s->wbuf + s->wlen, b, k);
        s->wlen += k;
        b += k;
        n -= k;
    }
    return 0;
}

static int emit_record(sorter *s, const rec_header *h, const uint8_t *key, const uint8_t *val,
                       nba_error *err)
{
    int rc = emit(s, h, sizeof *h, err);
    if (!rc)
        rc = emit(s, key, h->key_len, err);
    if (!rc)
        rc = emit(s, val, h->val_len, err);
    return rc;
}

static int add_run(sorter *s, uint64_t start, uint64_t end, size_t at)
{
    if (s->nruns == s->runs_cap) {
        size_t cap = s->runs_cap ? s->runs_cap * 2 : 16;
        run *r = realloc(s->runs, cap * sizeof *r);
        if (!r)
            return -ENOMEM;
        s->runs = r;
        s->runs_cap = cap;
    }
    memmove(s->runs + at + 1, s->runs + at, (s->nruns - at) * sizeof *s->runs);
    s->runs[at] = (run){start, end};
    s->nruns++;
    return 0;
}

/* Writes the records held, in order, as a new run at the end of the file,
 * and empties memory. */
static int spill(sorter *s, nba_error *err)
{
    int rc = open_tmp(s, err);
    if (rc)
        return rc;
    if (sort_held(s))
        return nba_error_set(err, -ENOMEM, "out of memory");
    uint64_t start = s->file_end;
    s->wpos = start;
    for (size_t i = 0; i < s->nentries && !rc; i++) {
        const rec_header *h = header_at(s, s->entries[i].off);
        const uint8_t *key = (const uint8_t *)(h + 1);
        rc = emit_record(s, h, key, key + h->key_len, err);
    }
    if (!rc)
        rc = flush_wbuf(s, err);
    if (rc)
        return rc;
    s->file_end = s->wpos;
    if (add_run(s, start, s->file_end, s->nruns))
        return nba_error_set(err, -ENOMEM, "out of memory");
    s->mem_len = 0;
    s->nentries = 0;
    s->in_order = true;
    return 0;
}

/* ---- adding ---- */

int sorter_new(const char *tmp_dir, size_t memory, sorter **out, nba_error *err)
{
    sorter *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(tmp_dir))) {
        free(s);
        return nba_error_set(err, -ENOMEM, "out of memory");
    }
    s->budget = memory ? memory : SORTER_DEFAULT_MEMORY;
    if (s->budget < MIN_MEMORY)
        s->budget = MIN_MEMORY;
    s->fd = -1;
    s->in_order = true;
    *out = s;
    return 0;
}

static size_t padded(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Makes room for one more record of `bytes` in memory, growing the buffers
 * by doubling within the budget. Returns 1 when there is room, 0 when the
 * budget is reached (spill first), -ENOMEM. */
static int reserve(sorter *s, size_t bytes)
{
    size_t used = s->mem_cap + s->entries_cap * sizeof(entry);
    if (s->mem_len + bytes > s->mem_cap) {
        size_t cap = s->mem_cap ? s->mem_cap * 2 : (size_t)256 << 10;
        while (cap < s->mem_len + bytes)
            cap *= 2;
        if (s->nentries && used - s->mem_cap + cap > s->budget)
            return 0;
        uint8_t *m = realloc(s->mem, cap);
        if (!m)
            return -ENOMEM;
        s->mem = m;
        s->mem_cap = cap;
    }
    used = s->mem_cap + s->entries_cap * sizeof(entry);
    if (s->nentries == s->entries_cap) {
        size_t cap = s->entries_cap ? s->entries_cap * 2 : 4096;
        if (s->nentries && used + (cap - s->entries_cap) * sizeof(entry) > s->budget)
            return 0;
        entry *e = realloc(s->entries, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        s->entries = e;
        s->entries_cap = cap;
    }
    return 1;
}

int sorter_add(sorter *s, const void *key, size_t key_len, const void *val, size_t val_len,
               uint64_t tag0, uint64_t tag1, nba_error *err)
{
    if (key_len > MAX_KEY || val_len > UINT32_MAX)
        return nba_error_set(err, -EINVAL, "record too large to sort (key %zu, value %zu bytes)",
                             key_len, val_len);
    size_t bytes = padded(sizeof(rec_header) + key_len + val_len);
    int room = reserve(s, bytes);
    if (room == 0) {
        int rc = spill(s, err);
        if (rc)
            return rc;
        room = reserve(s, bytes);
    }
    if (room < 0)
        return nba_error_set(err, -ENOMEM, "out of memory");
    rec_header *h = (rec_header *)(s->mem + s->mem_len);
    h->key_len = (uint32_t)key_len;
    h->val_len = (uint32_t)val_len;
    h->tag[0] = tag0;
    h->tag[1] = tag1;
    uint8_t *k = (uint8_t *)(h + 1);
    if (key_len)
        memcpy(k, key, key_len);
    if (val_len)
        memcpy(k + key_len, val, val_len);
    entry e = {prefix_at(k, key_len, 0), prefix_at(k, key_len, 8), s->mem_len};
    if (s->in_order && s->nentries && cmp_entries(s, &s->entries[s->nentries - 1], &e) > 0)
        s->in_order = false;
    s->entries[s->nentries++] = e;
    s->mem_len += bytes;
    s->count++;
    return 0;
}

/* ---- reading runs back ---- */

static int read_at(sorter *s, uint8_t *p, size_t n, uint64_t at, nba_error *err)
{
    while (n) {
        ssize_t r = pread(s->fd, p, n, (off_t)at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            return nba_error_set(err, -EIO, "%s: cannot read a sort run back: %s", s->dir,
                                 strerror(e));
        }
        p += r;
        n -= (size_t)r;
        at += (uint64_t)r;
    }
    return 0;
}

/* Makes sure `need` bytes from rr->at are in the buffer (fewer when the run
 * ends first). */
static int fill(sorter *s, run_reader *rr, size_t need, nba_error *err)
{
    if (rr->len - rr->at >= need)
        return 0;
    memmove(rr->buf, rr->buf + rr->at, rr->len - rr->at);
    rr->len -= rr->at;
    rr->at = 0;
    if (need > rr->cap) {
        uint8_t *b = realloc(rr->buf, need);
        if (!b)
            return nba_error_set(err, -ENOMEM, "out of memory");
        rr->buf = b;
        rr->cap = need;
    }
    uint64_t left = rr->end - rr->pos;
    size_t n = rr->cap - rr->len;
    if (n > left)
        n = (size_t)left;
    int rc = read_at(s, rr->buf + rr->len, n, rr->pos, err);
    if (rc)
        return rc;
    rr->pos += n;
    rr->len += n;
    return 0;
}

/* Moves the reader to its next record; rr->have says whether there is one. */
static int reader_next(sorter *s, run_reader *rr, nba_error *err)
{
    if (rr->have)
        rr->at += sizeof(rec_header) + rr->rec.key_len + rr->rec.val_len;
    rr->have = false;
    int rc = fill(s, rr, sizeof(rec_header), err);
    if (rc)
        return rc;
    if (rr->len - rr->at == 0)
        return 0;
    if (rr->len - rr->at < sizeof(rec_header))
        return nba_error_set(err, -EIO, "%s: a sort run is cut short", s->dir);
    rec_header h;
    memcpy(&h, rr->buf + rr->at, sizeof h);
    size_t whole = sizeof h + h.key_len + (size_t)h.val_len;
    rc = fill(s, rr, whole, err);
    if (rc)
        return rc;
    if (rr->len - rr->at < whole)
        return nba_error_set(err, -EIO, "%s: a sort run is cut short", s->dir);
    const uint8_t *k = rr->buf + rr->at + sizeof h;
    rr->rec = (sorter_record){k, h.key_len, k + h.key_len, h.val_len, {h.tag[0], h.tag[1]}};
    rr->have = true;
    return 0;
}

/* Heap order: key, then run (earlier runs hold earlier records). */
static bool heap_less(const sorter *s, size_t a, size_t b)
{
    const sorter_record *x = &s->readers[a].rec, *y = &s->readers[b].rec;
    int c = cmp_keys(x->key, x->key_len, y->key, y->key_len);
    return c < 0 || (c == 0 && a < b);
}

static void sift_down(sorter *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < s->nheap && heap_less(s, s->heap[l], s->heap[m]))
            m = l;
        if (l + 1 < s->nheap && heap_less(s, s->heap[l + 1], s->heap[m]))
            m = l + 1;
        if (m == i)
            return;
        size_t t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
}

static void free_readers(sorter *s)
{
    if (s->readers)
        for (size_t i = 0; i < s->nreaders; i++)
            free(s->readers[i].buf);
    free(s->readers);
    free(s->heap);
    s->readers = NULL;
    s->heap = NULL;
    s->nheap = 0;
    s->nreaders = 0;
}

/* Sets up readers over runs [first, first + n) and the heap of their first
 * records. */
static int open_readers(sorter *s, size_t first, size_t n, nba_error *err)
{
    free_readers(s);
    s->readers = calloc(n ? n : 1, sizeof *s->readers);
    s->heap = calloc(n ? n : 1, sizeof *s->heap);
    if (!s->readers || !s->heap)
        return nba_error_set(err, -ENOMEM, "out of memory");
    size_t each = s->budget / (n ? n : 1);
    each = each < MIN_READ_BUF ? MIN_READ_BUF : each > MAX_READ_BUF ? MAX_READ_BUF : each;
    for (size_t i = 0; i < n; i++) {
        run_reader *rr = &s->readers[i];
        rr->pos = s->runs[first + i].start;
        rr->end = s->runs[first + i].end;
        rr->cap = each;
        rr->buf = malloc(each);
        if (!rr->buf) {
            free_readers(s);
            return nba_error_set(err, -ENOMEM, "out of memory");
        }
        s->nreaders = i + 1;
        int rc = reader_next(s, rr, err);
        if (rc) {
            free_readers(s);
            return rc;
        }
        if (rr->have)
            s->heap[s->nheap++] = i;
    }
    for (size_t i = s->nheap / 2; i-- > 0;)
        sift_down(s, i);
    s->advance_top = false;
    return 0;
}

/* The next record of the merge of the readers open, or 0 at the end. */
static int merge_next(sorter *s, sorter_record *out, nba_error *err)
{
    if (s->advance_top && s->nheap) {
        run_reader *rr = &s->readers[s->heap[0]];
        int rc = reader_next(s, rr, err);
        if (rc)
            return rc;
        if (!rr->have)
            s->heap[0] = s->heap[--s->nheap];
        sift_down(s, 0);
    }
    s->advance_top = false;
    if (!s->nheap)
        return 0;
    *out = s->readers[s->heap[0]].rec;
    s->advance_top = true;
    return 1;
}

/* Merges runs [first, first + n) into one new run at the end of the file,
 * which takes their place in the list; their space goes back to the file
 * system. */
static int merge_group(sorter *s, size_t first, size_t n, nba_error *err)
{
    int rc = open_readers(s, first, n, err);
    if (rc)
        return rc;
    uint64_t start = s->file_end;
    s->wpos = start;
    sorter_record r;
    while ((rc = merge_next(s, &r, err)) > 0) {
        rec_header h = {(uint32_t)r.key_len, (uint32_t)r.val_len, {r.tag[0], r.tag[1]}};
        rc = emit_record(s, &h, r.key, r.val, err);
        if (rc)
            break;
    }
    if (!rc)
        rc = flush_wbuf(s, err);
    free_readers(s);
    if (rc)
        return rc;
    s->file_end = s->wpos;
    uint64_t from = s->runs[first].start, to = s->runs[first + n - 1].end;
    (void)fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)from,
                    (off_t)(to - from));
    memmove(s->runs + first, s->runs + first + n, (s->nruns - first - n) * sizeof *s->runs);
    s->nruns -= n;
    if (add_run(s, start, s->file_end, first))
        return nba_error_set(err, -ENOMEM, "out of memory");
    return 0;
}

int sorter_finish(sorter *s, nba_error *err)
{
    if (s->finished)
        return sorter_rewind(s, err);
    int rc;
    if (s->nruns && s->nentries) {
        rc = spill(s, err);
        if (rc)
            return rc;
    }
    s->finished = true;
    if (!s->nruns) {
        if (sort_held(s))
            return nba_error_set(err, -ENOMEM, "out of memory");
        s->next_entry = 0;
        return 0;
    }
    /* Memory for records is no longer needed: the run buffers take it. */
    free(s->mem);
    free(s->entries);
    s->mem = NULL;
    s->entries = NULL;
    s->mem_cap = s->entries_cap = 0;
    /* Consecutive runs merged together keep the order of equal keys. */
    while (s->nruns > MAX_FANIN) {
        for (size_t first = 0; first < s->nruns; first++) {
            size_t n = s->nruns - first < MAX_FANIN ? s->nruns - first : MAX_FANIN;
            if (n < 2)
                break;
            rc = merge_group(s, first, n, err);
            if (rc)
                return rc;
        }
    }
    free(s->wbuf);
    s->wbuf = NULL;
    return open_readers(s, 0, s->nruns, err);
}

int sorter_rewind(sorter *s, nba_error *err)
{
    if (!s->finished)
        return nba_error_set(err, -EINVAL, "sorter not finished");
    if (!s->nruns) {
        s->next_entry = 0;
        return 0;
    }
    return open_readers(s, 0, s->nruns, err);
}

int sorter_next(sorter *s, sorter_record *out, nba_error *err)
{
    if (!s->finished)
        return nba_error_set(err, -EINVAL, "sorter not finished");
    if (s->nruns)
        return merge_next(s, out, err);
    if (s->next_entry == s->nentries)
        return 0;
    const rec_header *h = header_at(s, s->entries[s->next_entry++].off);
    const uint8_t *k = (const uint8_t *)(h + 1);
    *out = (sorter_record){k, h->key_len, k + h->key_len, h->val_len, {h->tag[0], h->tag[1]}};
    return 1;
}

uint64_t sorter_count(const sorter *s)
{
    return s->count;
}

size_t sorter_runs(const sorter *s)
{
    return s->nruns;
}

void sorter_free(sorter *s)
{
    if (!s)
        return;
    free_readers(s);
    if (s->fd >= 0)
        close(s->fd);
    free(s->mem);
    free(s->entries);
    free(s->runs);
    free(s->wbuf);
    free(s->dir);
    free(s);
}
