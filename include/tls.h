/* tls.h - TLS on the binary protocol: the server's certificate and key, and
 * the CA certificates that clients' certificates are checked against.
 *
 * A tls_context is made at start, from PEM files read while nbad may still
 * be root, and shared by every worker thread: each TLS connection gets its
 * own session (tls_session_new) and drives it on its non-blocking socket
 * (connection.c). tls_context_reload() reads the same files again (a
 * renewed certificate) for the connections that come next; connections
 * already made keep the certificate they were made with. OpenSSL writes to
 * sockets with write(2), so a process serving TLS ignores SIGPIPE (nbad
 * does).
 *
 * Versions: TLS 1.2 and 1.3 only. Client certificates: with a client CA,
 * every client must present a certificate that chains to it, or the
 * handshake fails; without one, clients are not asked for any.
 */
#ifndef NBA_TLS_H
#define NBA_TLS_H

#include <stddef.h>
#include "error.h"

typedef struct tls_context tls_context;
typedef struct ssl_st SSL;

/* Makes a server context from the certificate (chain) in cert_path and its
 * private key in key_path, both PEM; client_ca_path (PEM, may be NULL)
 * names the CA certificates client certificates must chain to. Returns 0,
 * -ENOENT or -EACCES when a file cannot be read, -EINVAL when a file does
 * not hold what it should (no certificate, no key, a key that does not
 * match the certificate), or -ENOMEM; the message names the file. */
int tls_context_new(const char *cert_path, const char *key_path, const char *client_ca_path,
                    tls_context **out, nba_error *err);

/* Reads the context's files again and, when they make a good context (the
 * same checks as tls_context_new), serves every new session from them.
 * When they do not, the context goes on as it was. Any thread. Returns 0
 * or the errors of tls_context_new() with their message. The files must be
 * readable by the user nbad runs as by then (it may have dropped root). */
int tls_context_reload(tls_context *t, nba_error *err);

/* The certificate file the context was made from, for messages. */
const char *tls_context_cert_path(const tls_context *t);

/* Frees the context. Sessions made from it may outlive it (OpenSSL counts
 * their references). NULL is allowed. */
void tls_context_free(tls_context *t);

/* True when the context asks every client for a certificate. */
int tls_context_verifies_clients(const tls_context *t);

/* A new server-side session on the connected socket fd, which it reads and
 * writes but does not own. The caller frees it with SSL_free(). Returns
 * NULL when out of memory. Any thread. */
SSL *tls_session_new(tls_context *t, int fd);

/* Writes into buf (of size `size`) why the last OpenSSL call on this thread
 * failed ("certificate verify failed", ...), or `fallback` when OpenSSL
 * left no reason, and clears the thread's OpenSSL error queue. Returns buf. */
const char *tls_error_text(char *buf, size_t size, const char *fallback);

/* Writes into buf a short description of an established session, for the
 * debug log: the protocol, the cipher and the client certificate's subject
 * ("TLSv1.3 TLS_AES_256_GCM_SHA384, client CN=kiosk-17"). Returns buf. */
const char *tls_session_describe(SSL *ssl, char *buf, size_t size);

#endif
