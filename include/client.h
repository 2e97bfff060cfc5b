/* client.h - a small blocking client of the nbad protocol, for nbactl and
 * the tests. (The load generator has its own non-blocking one.) */
#ifndef NBA_CLIENT_H
#define NBA_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "nba.pb-c.h"

typedef struct nba_client nba_client;

/* Connects to host:port over TCP. timeout_ms bounds the connect and every
 * later send and receive (0 = no bound). Returns 0, or a negative errno with
 * a message (-ECONNREFUSED, -ETIMEDOUT, -EINVAL for an unknown host). */
int client_connect(const char *host, int port, int timeout_ms, nba_client **out, nba_error *err);

/* Sends one request frame. */
int client_send(nba_client *c, const Nba__V1__Request *req, nba_error *err);

/* Sends raw bytes (for tests of malformed frames). */
int client_send_raw(nba_client *c, const void *bytes, size_t n, nba_error *err);

/* Receives one response frame. The caller frees *resp with
 * nba__v1__response__free_unpacked(*resp, NULL). Returns 0, -ECONNRESET when
 * the server closed the connection, -ETIMEDOUT, or -EBADMSG. */
int client_recv(nba_client *c, Nba__V1__Response **resp, nba_error *err);

/* client_send then client_recv. */
int client_call(nba_client *c, const Nba__V1__Request *req, Nba__V1__Response **resp,
                nba_error *err);

void client_close(nba_client *c);

#endif
