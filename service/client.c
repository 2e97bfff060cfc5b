/* client.c - see include/client.h. */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "frame.h"

/* Responses larger than this are treated as a broken stream. Decisions are a
 * few hundred bytes; this leaves room for much richer ones. */
#define CLIENT_MAX_RESPONSE (16u * 1024u * 1024u)

struct nba_client {
    int fd;
    uint8_t *buf; /* receive buffer, grown to the largest response seen */
    size_t cap;
};

/* Connects fd to addr, waiting at most timeout_ms (0 = no bound). */
static int connect_within(int fd, const struct sockaddr *addr, socklen_t len, int timeout_ms)
{
    if (timeout_ms <= 0)
        return connect(fd, addr, len) == 0 ? 0 : -errno;
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int rc = connect(fd, addr, len) == 0 ? 0 : -errno;
    if (rc == -EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, timeout_ms);
        if (n == 0) {
            rc = -ETIMEDOUT;
        } else if (n < 0) {
            rc = -errno;
        } else {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            rc = -soerr;
        }
    }
    fcntl(fd, F_SETFL, flags);
    return rc;
}

int client_connect(const char *host, int port, int timeout_ms, nba_client **out, nba_error *err)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0)
        return nba_error_set(err, -EINVAL, "%s: %s", host, gai_strerror(gai));

    int rc = -ECONNREFUSED, fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        rc = connect_within(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms);
        if (rc == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return nba_error_set(err, rc, "cannot connect to %s:%d: %s", host, port, strerror(-rc));

    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (timeout_ms > 0) {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    nba_client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return nba_error_set(err, -ENOMEM, "out of memory");
    }
    c->fd = fd;
    *out = c;
    return 0;
}

static int io_error(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK ? -ETIMEDOUT : -e;
}

int client_send_raw(nba_client *c, const void *bytes, size_t n, nba_error *err)
{
    const uint8_t *p = bytes;
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int rc = io_error(errno);
            return nba_error_set(err, rc, "send: %s", strerror(-rc));
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int client_send(nba_client *c, const Nba__V1__Request *req, nba_error *err)
{
    size_t size = frame_packed_size(&req->base);
    uint8_t stackbuf[4096];
    uint8_t *buf = size <= sizeof stackbuf ? stackbuf : malloc(size);
    if (!buf)
        return nba_error_set(err, -ENOMEM, "out of memory");
    frame_pack(&req->base, buf);
    int rc = client_send_raw(c, buf, size, err);
    if (buf != stackbuf)
        free(buf);
    return rc;
}

/* Reads exactly n bytes. */
static int read_full(nba_client *c, uint8_t *p, size_t n, nba_error *err)
{
    while (n > 0) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r == 0)
            return nba_error_set(err, -ECONNRESET, "the server closed the connection");
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int rc = io_error(errno);
            return nba_error_set(err, rc, "receive: %s", strerror(-rc));
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int client_recv(nba_client *c, Nba__V1__Response **resp, nba_error *err)
{
    uint8_t header[FRAME_HEADER_SIZE];
    int rc = read_full(c, header, sizeof header, err);
    if (rc)
        return rc;
    uint32_t len = frame_get_length(header);
    if (len > CLIENT_MAX_RESPONSE)
        return nba_error_set(err, -EBADMSG, "response frame of %u bytes is too large", len);
    if (len > c->cap) {
        uint8_t *buf = realloc(c->buf, len);
        if (!buf)
            return nba_error_set(err, -ENOMEM, "out of memory");
        c->buf = buf;
        c->cap = len;
    }
    rc = read_full(c, c->buf, len, err);
    if (rc)
        return rc;
    *resp = nba__v1__response__unpack(NULL, len, c->buf);
    if (!*resp)
        return nba_error_set(err, -EBADMSG, "response is not a valid nba.v1.Response");
    return 0;
}

int client_call(nba_client *c, const Nba__V1__Request *req, Nba__V1__Response **resp,
                nba_error *err)
{
    int rc = client_send(c, req, err);
    return rc ? rc : client_recv(c, resp, err);
}

void client_close(nba_client *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->buf);
    free(c);
}
