/* nbaceiling - the least a server of nbad's protocol can do, to measure nbad
 * against what this machine can do at all.
 *
 *   nbaceiling --db DIR [--listen 127.0.0.1] [--port 7412] [--threads 2]
 *              [--no-lookup] [--max-frame BYTES]
 *
 * Per request it cuts the frame (frame_cut, as nbad), reads the request id
 * and the contact event's customer_id by scanning the wire bytes
 * (request_scan.h: no protobuf decode), does ONE customer lookup in nbad's
 * LMDB database through the store API exactly as nbad's decider does it
 * (store_reader_begin, store_get_customer into an arena, store_reader_end,
 * arena reset), and answers a fixed pre-encoded Response with the request's
 * id patched in: a decision for a known customer (one greeting) when the
 * customer exists, a decision with known=false when not, a Pong for a Ping.
 * No rules, no incidents, no rendering. --no-lookup skips the database too:
 * the floor of framing and loopback TCP alone.
 *
 * Threads: the main thread accepts and hands each socket round robin to one
 * of --threads workers (as nbad's listener does); each worker runs an epoll
 * loop over its connections. A wakeup reads everything available and
 * answers every whole frame in it; once every ready connection of the
 * wakeup is answered, each one's answers go out with one send.
 *
 * Exit codes: 0 stopped by SIGINT/SIGTERM, 64 usage, 66 no database, 69
 * cannot listen, 70 an internal failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arena.h"
#include "error.h"
#include "frame.h"
#include "request_scan.h"
#include "store.h"
#include "store_live.h"
#include "nba.pb-c.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_USAGE = 64,
    EXIT_NOINPUT = 66,
    EXIT_UNAVAILABLE = 69,
    EXIT_SOFTWARE = 70,
};

#define IN_BUFFER    (64u * 1024u)
#define OUTPUT_LIMIT (1u << 20) /* stop reading while this much waits to be written */
#define MAX_EVENTS   256
#define MAX_THREADS  64
#define ARENA_BLOCK  (16u * 1024u)
#define MAX_REPLY    256u /* bytes of the largest fixed reply body */

typedef struct options {
    const char *db;
    char listen[256];
    int port;
    unsigned threads;
    bool lookup;
    uint32_t max_frame;
} options;

/* A fixed Response body without its id; the id goes in front per answer. */
typedef struct reply {
    uint8_t bytes[MAX_REPLY];
    size_t len;
} reply;

typedef struct replies {
    reply known, unknown, pong;
} replies;

typedef struct conn {
    int fd;
    uint8_t *in; /* bytes read, not yet cut into frames */
    size_t in_len, in_cap;
    uint8_t *out; /* answers not yet written: out[out_off .. out_len) */
    size_t out_off, out_len, out_cap;
    uint32_t events; /* what epoll watches for */
    struct conn *prev, *next;
} conn;

typedef struct worker {
    conn *unflushed[MAX_EVENTS]; /* answered this round, written at its end */
    size_t n_unflushed;
    const options *opt;
    const replies *rep;
    store *st;
    store_reader *reader; /* created on the worker's own thread, as LMDB wants */
    arena arena;
    int epfd;
    int inbox[2]; /* pipe: the acceptor writes each new socket's fd */
    int stop_fd;  /* eventfd shared by all workers, never read: stays readable */
    int init_rc;
    conn *conns; /* every open connection, for cleanup */
    uint64_t answered, found;
    pthread_barrier_t *ready;
    pthread_t tid;
} worker;

/* epoll data for the two non-connection descriptors of a worker */
static char inbox_tag, stop_tag;

/* ---- the fixed replies ---- */

static size_t pack_response(Nba__V1__Response *resp, uint8_t *out)
{
    size_t n = protobuf_c_message_get_packed_size(&resp->base);
    if (n > MAX_REPLY)
        return 0;
    return protobuf_c_message_pack(&resp->base, out);
}

/* The answers, packed with id 0 (left out of the encoding), so that an
 * answer is the id field followed by these bytes. */
static int replies_build(replies *r)
{
    Nba__V1__Action greet = NBA__V1__ACTION__INIT;
    greet.type = "greet";
    greet.rule_id = "greeting";
    greet.message = "Welcome back, Giulia Rossi!";
    Nba__V1__Action *actions[] = {&greet};

    Nba__V1__Decision d = NBA__V1__DECISION__INIT;
    d.customer_id = "C0000001";
    d.known = 1;
    d.language = "en";
    d.ruleset = "airline-checkin@1";
    d.actions = actions;
    d.n_actions = 1;
    Nba__V1__Response resp = NBA__V1__RESPONSE__INIT;
    resp.body_case = NBA__V1__RESPONSE__BODY_DECISION;
    resp.decision = &d;
    r->known.len = pack_response(&resp, r->known.bytes);

    d.known = 0;
    d.actions = NULL;
    d.n_actions = 0;
    r->unknown.len = pack_response(&resp, r->unknown.bytes);

    Nba__V1__Pong pong = NBA__V1__PONG__INIT;
    pong.server = "nbaceiling";
    pong.ruleset = "none";
    resp.body_case = NBA__V1__RESPONSE__BODY_PONG;
    resp.pong = &pong;
    r->pong.len = pack_response(&resp, r->pong.bytes);
    return r->known.len && r->unknown.len && r->pong.len ? 0 : -ENOMEM;
}

/* ---- connections ---- */

static void conn_close(worker *w, conn *c)
{
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->in);
    free(c->out);
    free(c);
}

static void conn_watch(worker *w, conn *c, uint32_t events)
{
    if (events == c->events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static void conn_open(worker *w, int fd)
{
    conn *c = calloc(1, sizeof *c);
    if (c) {
        c->in = malloc(IN_BUFFER);
        c->in_cap = IN_BUFFER;
        c->out = malloc(IN_BUFFER);
        c->out_cap = IN_BUFFER;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (!c || !c->in || !c->out || epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        if (c) {
            free(c->in);
            free(c->out);
        }
        free(c);
        close(fd);
        return;
    }
    c->fd = fd;
    c->events = EPOLLIN;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
}

/* Writes what is queued, once; watches for EPOLLOUT while some is left and
 * stops reading while too much is. Returns false when the connection broke. */
static bool conn_flush(worker *w, conn *c)
{
    if (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return false;
        if (n > 0)
            c->out_off += (size_t)n;
    }
    size_t left = c->out_len - c->out_off;
    if (left == 0)
        c->out_off = c->out_len = 0;
    conn_watch(w, c, left == 0 ? EPOLLIN : EPOLLOUT | (left < OUTPUT_LIMIT ? EPOLLIN : 0));
    return true;
}

/* Makes room for n more bytes of answers. */
static bool out_reserve(conn *c, size_t n)
{
    if (c->out_cap - c->out_len >= n)
        return true;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_cap - c->out_len >= n)
            return true;
    }
    size_t cap = c->out_cap * 2;
    while (cap - c->out_len < n)
        cap *= 2;
    uint8_t *bigger = realloc(c->out, cap);
    if (!bigger)
        return false;
    c->out = bigger;
    c->out_cap = cap;
    return true;
}

/* The one database lookup: does this customer exist? Exactly the calls
 * nbad's decider makes to read a customer. */
static bool customer_found(worker *w, const uint8_t *id, size_t len)
{
    char key[STORE_MAX_ID + 1];
    if (len == 0 || len > STORE_MAX_ID)
        return false;
    memcpy(key, id, len);
    key[len] = '\0';
    Nba__V1__Customer *customer = NULL;
    int rc = store_reader_begin(w->reader);
    if (rc == 0) {
        rc = store_get_customer(w->reader, key, &w->arena, &customer);
        store_reader_end(w->reader);
    }
    arena_reset(&w->arena);
    return rc == 0;
}

/* Answers one frame body: appends [length][id][fixed reply] to out. */
static bool conn_answer(worker *w, conn *c, const uint8_t *body, uint32_t len)
{
    request_info ri;
    if (request_scan(body, len, &ri) != 0)
        return false; /* not a Request: nothing sensible to answer */
    const reply *r = &w->rep->known;
    if (ri.kind == REQUEST_PING) {
        r = &w->rep->pong;
    } else if (w->opt->lookup) {
        bool found = customer_found(w, ri.customer, ri.customer_len);
        w->found += found;
        r = found ? &w->rep->known : &w->rep->unknown;
    }
    if (!out_reserve(c, FRAME_HEADER_SIZE + 11 + r->len))
        return false;
    uint8_t *frame = c->out + c->out_len;
    uint8_t *q = frame + FRAME_HEADER_SIZE;
    uint64_t id = ri.id;
    if (id) { /* proto3 leaves a zero id out, as protobuf-c would */
        *q++ = 0x08;
        while (id >= 0x80) {
            *q++ = (uint8_t)(id | 0x80);
            id >>= 7;
        }
        *q++ = (uint8_t)id;
    }
    memcpy(q, r->bytes, r->len);
    q += r->len;
    frame_put_length(frame, (uint32_t)(q - frame - FRAME_HEADER_SIZE));
    c->out_len += (size_t)(q - frame);
    w->answered++;
    return true;
}

/* Reads everything available, answers every whole frame, writes once. */
static void conn_readable(worker *w, conn *c)
{
    for (;;) {
        if (c->in_len == c->in_cap) {
            /* a frame larger than the buffer: grow to hold it, within the maximum */
            size_t need = c->in_len >= FRAME_HEADER_SIZE
                              ? FRAME_HEADER_SIZE + (size_t)frame_get_length(c->in)
                              : 0;
            if (need <= c->in_cap || need > FRAME_HEADER_SIZE + (size_t)w->opt->max_frame) {
                conn_close(w, c);
                return;
            }
            uint8_t *bigger = realloc(c->in, need);
            if (!bigger) {
                conn_close(w, c);
                return;
            }
            c->in = bigger;
            c->in_cap = need;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (c->in_len < c->in_cap)
                break; /* a short read: the socket is empty */
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        conn_close(w, c); /* closed by the client, or broken */
        return;
    }

    size_t pos = 0;
    for (;;) {
        uint32_t body_len = 0;
        frame_status st = frame_cut(c->in + pos, c->in_len - pos, w->opt->max_frame, &body_len);
        if (st == FRAME_INCOMPLETE)
            break;
        if (st == FRAME_TOO_LARGE ||
            !conn_answer(w, c, c->in + pos + FRAME_HEADER_SIZE, body_len)) {
            conn_close(w, c);
            return;
        }
        pos += FRAME_HEADER_SIZE + body_len;
    }
    if (pos > 0) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    /* Written once the round's other connections are answered, as nbad
     * does (conn_pool_flush): a client is woken once a round. */
    if (c->out_len > c->out_off && w->n_unflushed < MAX_EVENTS) {
        w->unflushed[w->n_unflushed++] = c;
        return;
    }
    if (!conn_flush(w, c))
        conn_close(w, c);
}

/* ---- workers ---- */

static void take_new_sockets(worker *w)
{
    int fds[64];
    ssize_t n;
    while ((n = read(w->inbox[0], fds, sizeof fds)) > 0)
        for (size_t i = 0; i < (size_t)n / sizeof fds[0]; i++)
            conn_open(w, fds[i]);
}

static int worker_init(worker *w)
{
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &inbox_tag};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->inbox[0], &ev) != 0)
        return -errno;
    ev.data.ptr = &stop_tag;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->stop_fd, &ev) != 0)
        return -errno;
    int rc = arena_init(&w->arena, ARENA_BLOCK);
    if (rc)
        return rc;
    if (w->opt->lookup) {
        nba_error err;
        rc = store_reader_new(w->st, &w->reader, &err);
        if (rc)
            fprintf(stderr, "nbaceiling: %s\n", err.msg);
    }
    return rc;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    w->init_rc = worker_init(w);
    pthread_barrier_wait(w->ready);
    bool running = w->init_rc == 0;
    while (running) {
        struct epoll_event evs[MAX_EVENTS];
        int n = epoll_wait(w->epfd, evs, MAX_EVENTS, -1);
        for (int i = 0; i < n && running; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &stop_tag) {
                running = false;
            } else if (tag == &inbox_tag) {
                take_new_sockets(w);
            } else {
                conn *c = tag;
                if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                    conn_readable(w, c); /* may close c */
                else if (evs[i].events & EPOLLOUT && !conn_flush(w, c))
                    conn_close(w, c);
            }
        }
        /* A connection is answered at most once a round and closed only
         * while it is answered, so none of these has been freed. */
        for (size_t i = 0; i < w->n_unflushed; i++)
            if (!conn_flush(w, w->unflushed[i]))
                conn_close(w, w->unflushed[i]);
        w->n_unflushed = 0;
    }
    while (w->conns)
        conn_close(w, w->conns);
    if (w->reader)
        store_reader_free(w->reader);
    w->reader = NULL;
    return NULL;
}

/* ---- options ---- */

static const char usage_text[] =
    "usage: nbaceiling --db DIR [--listen 127.0.0.1] [--port 7412] [--threads 2]\n"
    "                  [--no-lookup] [--max-frame BYTES]\n"
    "A minimal server of nbad's protocol: per request one customer lookup in nbad's\n"
    "database and a fixed answer. The ceiling nbad is measured against.\n"
    "  --db DIR           nbad's database (nbactl load), opened read-only\n"
    "  --listen ADDR      127.0.0.1\n"
    "  --port N           7412\n"
    "  --threads N        worker threads, 2\n"
    "  --no-lookup        answer without reading the database (--db not needed)\n"
    "  --max-frame BYTES  largest request body accepted, 65536\n";

static int usage(const char *fmt, const char *arg)
{
    if (fmt) {
        fputs("nbaceiling: ", stderr);
        fprintf(stderr, fmt, arg);
        fputc('\n', stderr);
    }
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static bool parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (*text == '\0' || *text == '-' || *end != '\0' || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int parse_options(int argc, char **argv, options *opt)
{
    enum { OPT_DB = 256, OPT_LISTEN, OPT_PORT, OPT_THREADS, OPT_NO_LOOKUP, OPT_MAX, OPT_HELP };
    static const struct option longopts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"port", required_argument, NULL, OPT_PORT},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"no-lookup", no_argument, NULL, OPT_NO_LOOKUP},
        {"max-frame", required_argument, NULL, OPT_MAX},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    *opt = (options){.port = 7412, .threads = 2, .lookup = true, .max_frame = FRAME_DEFAULT_MAX};
    snprintf(opt->listen, sizeof opt->listen, "127.0.0.1");
    unsigned long u;
    int o;
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case OPT_DB:
            opt->db = optarg;
            break;
        case OPT_LISTEN:
            if (snprintf(opt->listen, sizeof opt->listen, "%s", optarg) >= (int)sizeof opt->listen)
                return usage("--listen %s is too long", optarg);
            break;
        case OPT_PORT:
            if (!parse_uint(optarg, 1, 65535, &u))
                return usage("--port takes 1..65535, not %s", optarg);
            opt->port = (int)u;
            break;
        case OPT_THREADS:
            if (!parse_uint(optarg, 1, MAX_THREADS, &u))
                return usage("--threads takes 1..64, not %s", optarg);
            opt->threads = (unsigned)u;
            break;
        case OPT_NO_LOOKUP:
            opt->lookup = false;
            break;
        case OPT_MAX:
            if (!parse_uint(optarg, 64, 16u * 1024 * 1024, &u))
                return usage("--max-frame takes 64..16777216 bytes, not %s", optarg);
            opt->max_frame = (uint32_t)u;
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            exit(EXIT_OK);
        default:
            return usage(NULL, NULL);
        }
    }
    if (optind < argc)
        return usage("unexpected argument %s", argv[optind]);
    if (opt->lookup && !opt->db)
        return usage("--db DIR is needed (or --no-lookup)%s", "");
    return 0;
}

/* ---- main ---- */

static int listen_on(const options *opt, nba_error *err)
{
    char service[16];
    snprintf(service, sizeof service, "%d", opt->port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(opt->listen, service, &hints, &res);
    if (gai != 0)
        return nba_error_set(err, -EINVAL, "%s: %s", opt->listen, gai_strerror(gai));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return nba_error_set(err, -e, "cannot listen on %s port %d: %s", opt->listen, opt->port,
                             strerror(e));
    }
    freeaddrinfo(res);
    return fd;
}

/* Accepts until a signal comes; hands sockets to the workers round robin. */
static void accept_loop(int lfd, int sigfd, worker *workers, unsigned n)
{
    unsigned next = 0;
    struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return;
        if (p[1].revents)
            return;
        if (!(p[0].revents & POLLIN))
            continue;
        for (;;) {
            int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE)
                    poll(NULL, 0, 100); /* the backlog keeps it; try again shortly */
                break;
            }
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            worker *w = &workers[next++ % n];
            if (write(w->inbox[1], &fd, sizeof fd) != (ssize_t)sizeof fd)
                close(fd);
        }
    }
}

int main(int argc, char **argv)
{
    options opt;
    int code = parse_options(argc, argv, &opt);
    if (code)
        return code;

    replies rep;
    if (replies_build(&rep) != 0) {
        fprintf(stderr, "nbaceiling: the fixed replies do not fit %u bytes\n", MAX_REPLY);
        return EXIT_SOFTWARE;
    }
    nba_error err;
    store *st = NULL;
    if (opt.lookup) {
        int rc = store_open_serving(opt.db, 0, MAX_THREADS + 2, &st, NULL, &err);
        if (rc) {
            fprintf(stderr, "nbaceiling: %s\n", err.msg);
            return rc == -ENOENT ? EXIT_NOINPUT : EXIT_SOFTWARE;
        }
    }
    int lfd = listen_on(&opt, &err);
    if (lfd < 0) {
        fprintf(stderr, "nbaceiling: %s\n", err.msg);
        store_close(st);
        return EXIT_UNAVAILABLE;
    }

    /* Only the main thread takes the signals, through a signalfd. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    int sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    code = EXIT_SOFTWARE;
    pthread_barrier_t ready;
    worker *workers = calloc(opt.threads, sizeof *workers);
    unsigned started = 0;
    if (sigfd < 0 || stop_fd < 0 || !workers ||
        pthread_barrier_init(&ready, NULL, opt.threads + 1) != 0) {
        fprintf(stderr, "nbaceiling: cannot set up: %s\n", strerror(errno));
        goto out;
    }
    for (unsigned i = 0; i < opt.threads; i++) {
        worker *w = &workers[i];
        *w = (worker){.opt = &opt, .rep = &rep, .st = st, .stop_fd = stop_fd, .ready = &ready};
        w->epfd = w->inbox[0] = w->inbox[1] = -1;
    }
    for (unsigned i = 0; i < opt.threads; i++) {
        worker *w = &workers[i];
        if (pipe2(w->inbox, O_NONBLOCK | O_CLOEXEC) != 0) {
            fprintf(stderr, "nbaceiling: cannot set up: %s\n", strerror(errno));
            goto stop;
        }
    }
    for (; started < opt.threads; started++)
        if (pthread_create(&workers[started].tid, NULL, worker_main, &workers[started]) != 0)
            break;
    if (started < opt.threads) {
        /* the barrier counts every worker; without them all nobody passes */
        fprintf(stderr, "nbaceiling: cannot start %u threads\n", opt.threads);
        exit(EXIT_SOFTWARE);
    }
    pthread_barrier_wait(&ready);
    bool ok = true;
    for (unsigned i = 0; i < opt.threads; i++)
        if (workers[i].init_rc) {
            fprintf(stderr, "nbaceiling: a worker could not start: %s\n",
                    strerror(-workers[i].init_rc));
            ok = false;
        }
    if (ok) {
        fprintf(stderr, "nbaceiling: listening on %s port %d, %u threads, %s\n", opt.listen,
                opt.port, opt.threads,
                opt.lookup ? "one customer lookup per request" : "no lookup");
        accept_loop(lfd, sigfd, workers, opt.threads);
        code = EXIT_OK;
    }
stop:;
    uint64_t one = 1;
    if (write(stop_fd, &one, sizeof one) != sizeof one)
        exit(EXIT_SOFTWARE);
    uint64_t answered = 0, found = 0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(workers[i].tid, NULL);
        answered += workers[i].answered;
        found += workers[i].found;
    }
    if (code == EXIT_OK)
        fprintf(stderr, "nbaceiling: answered %llu requests (%llu customers found)\n",
                (unsigned long long)answered, (unsigned long long)found);
    for (unsigned i = 0; i < opt.threads; i++) {
        worker *w = &workers[i];
        if (w->epfd >= 0)
            close(w->epfd);
        for (int k = 0; k < 2; k++)
            if (w->inbox[k] >= 0)
                close(w->inbox[k]);
        arena_destroy(&w->arena);
    }
    pthread_barrier_destroy(&ready);
out:
    free(workers);
    if (stop_fd >= 0)
        close(stop_fd);
    if (sigfd >= 0)
        close(sigfd);
    close(lfd);
    store_close(st);
    return code;
}
