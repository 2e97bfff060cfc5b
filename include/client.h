/* client.h - a small blocking client of the nbad protocol, over TCP or
 * TLS, for nbactl and the tests. (The load generator has its own
 * non-blocking one.)
 *
 * Ownership: a response returned is the caller's, freed with
 * nba__v1__response__free_unpacked(); paths passed in are only read during
 * the call. */
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

/* TLS for client_connect_tls(): the CA certificates (PEM) nbad's
 * certificate must chain to, checked for the host connected to (a name or
 * an IP address); and, for an nbad that asks for one, this client's
 * certificate and key (PEM; both or neither). */
typedef struct client_tls {
    const char *ca_path;
    const char *cert_path; /* may be NULL */
    const char *key_path;  /* may be NULL */
} client_tls;

/* client_connect, then a TLS handshake as tls says (NULL: plain TCP, as
 * client_connect). OpenSSL writes to the socket with write(2): a process
 * using TLS here ignores SIGPIPE, or a server that goes away kills it. Errors as client_connect,
 * and -EPROTO when the handshake fails (nbad's certificate not trusted, or this client's refused:
 * the message says which as OpenSSL tells it), -EINVAL when a file cannot be used. */
int client_connect_tls(const char *host, int port, int timeout_ms, const client_tls *tls,
                       nba_client **out, nba_error *err);

/* Sends one request frame. */
int client_send(nba_client *c, const Nba__V1__Request *req, nba_error *err);

/* Sends raw bytes (for tests of malformed frames). */
int client_send_raw(nba_client *c, const void *bytes, size_t n, nba_error *err);

/* Receives one response frame. The caller frees *resp with
 * nba__v1__response__free_unpacked(*resp, NULL). Returns 0, -ECONNRESET when
 * the server closed the connection, -ETIMEDOUT, -EBADMSG, or -EPROTO for a
 * TLS alert from the server ("TLS: tlsv13 alert certificate required": with
 * TLS 1.3 a refused client certificate is told here, not at connect). */
int client_recv(nba_client *c, Nba__V1__Response **resp, nba_error *err);

/* client_send then client_recv. */
int client_call(nba_client *c, const Nba__V1__Request *req, Nba__V1__Response **resp,
                nba_error *err);

void client_close(nba_client *c);

#endif
