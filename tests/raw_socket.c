/* raw_socket.c - see raw_socket.h. */
#include "raw_socket.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <cmocka.h>

#include "frame.h"

#define RAW_MAX_RESPONSE (1u << 20)

int raw_connect(int port, int rcvbuf, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0)
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

void raw_send_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            fail_msg("send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

int raw_recv_exact(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 && got == 0)
            return 1;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

Nba__V1__Response *raw_recv_response(int fd)
{
    uint8_t header[FRAME_HEADER_SIZE];
    if (raw_recv_exact(fd, header, sizeof header) != 0)
        return NULL;
    uint32_t len = frame_get_length(header);
    if (len > RAW_MAX_RESPONSE)
        return NULL;
    uint8_t *body = malloc(len ? len : 1);
    assert_non_null(body);
    Nba__V1__Response *r =
        raw_recv_exact(fd, body, len) == 0 ? nba__v1__response__unpack(NULL, len, body) : NULL;
    free(body);
    return r;
}

Nba__V1__Response *raw_expect_response(int fd)
{
    Nba__V1__Response *r = raw_recv_response(fd);
    if (!r)
        fail_msg("no whole response where one was due (EOF, a timeout or a body that does "
                 "not decode)");
    return r;
}
