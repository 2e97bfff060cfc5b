/* raw_socket.h - a loopback connection to nbad driven byte by byte, for the
 * tests that send what no client library would (garbage, frames split
 * anywhere, a request that never ends) and read what nbad answers before
 * it closes.
 *
 * Functions that say they fail the test do so with cmocka's fail_msg();
 * the others return what happened. A response returned is the caller's,
 * freed with nba__v1__response__free_unpacked(r, NULL). */
#ifndef NBA_TEST_RAW_SOCKET_H
#define NBA_TEST_RAW_SOCKET_H

#include <stddef.h>
#include "nba.pb-c.h"

/* Connects to 127.0.0.1:port with TCP_NODELAY, every send and receive
 * bounded by timeout_ms; rcvbuf > 0 fixes the receive buffer (and so the
 * TCP window, which the kernel would otherwise grow to many MiB). Returns
 * the socket, or -errno when the connection is refused. */
int raw_connect(int port, int rcvbuf, int timeout_ms);

/* Sends all n bytes (MSG_NOSIGNAL); fails the test when it cannot. */
void raw_send_all(int fd, const void *buf, size_t n);

/* Reads exactly n bytes. Returns 0; 1 at a clean EOF before the first
 * byte; -1 on an error, a timeout or EOF part way. */
int raw_recv_exact(int fd, void *buf, size_t n);

/* Reads one response frame (at most 1 MiB) and decodes it. NULL at EOF, on
 * an error or a timeout, or when the body is not an nba.v1.Response. */
Nba__V1__Response *raw_recv_response(int fd);

/* raw_recv_response(), failing the test when no response comes. */
Nba__V1__Response *raw_expect_response(int fd);

#endif
