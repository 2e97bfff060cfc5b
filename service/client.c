/* client.c - see include/client.h. */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "frame.h"

/* Responses larger than this are treated as a broken stream. Decisions are a
 * few hundred bytes; this leaves room for much richer ones. */
#define CLIENT_MAX_RESPONSE (16u * 1024u * 1024u)

struct nba_client {
    int fd;
    SSL_CTX *ctx; /* with TLS; NULL over plain TCP */
    SSL *ssl;
    char tls_why[160];          /* why the last TLS read or write failed (-EPROTO) */
    bool certificate_requested; /* by the server, and this client has none */
    bool broken;                /* a fatal TLS error: no close_notify on close */
    uint8_t *buf;               /* receive buffer, grown to the largest response seen */
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

/* Why the last OpenSSL call failed, from its error queue (cleared). */
static const char *ssl_reason(char *buf, size_t size, const char *fallback)
{
    unsigned long e = ERR_get_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, size, "%s", reason ? reason : fallback);
    ERR_clear_error();
    return buf;
}

/* Called by OpenSSL when the server asks for a certificate this client
 * has not got: noted, so that the client can say so before it sends a
 * request the server would answer with an alert and a reset. */
static int note_certificate_request(SSL *ssl, X509 **cert, EVP_PKEY **key)
{
    (void)cert;
    (void)key;
    nba_client *c = SSL_get_app_data(ssl);
    c->certificate_requested = true;
    return 0; /* none */
}

static int start_tls(nba_client *c, const char *host, const client_tls *tls, nba_error *err)
{
    char why[256];
    ERR_clear_error();
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx)
        return nba_error_set(err, -ENOMEM, "out of memory");
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(c->ctx, tls->ca_path, NULL) != 1)
        return nba_error_set(err, -EINVAL, "%s: no PEM CA certificate: %s", tls->ca_path,
                             ssl_reason(why, sizeof why, "cannot read it"));
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if (tls->cert_path || tls->key_path) {
        if (!tls->cert_path || !tls->key_path)
            return nba_error_set(err, -EINVAL,
                                 "a client certificate needs its key, and a key "
                                 "its certificate");
        if (SSL_CTX_use_certificate_chain_file(c->ctx, tls->cert_path) != 1)
            return nba_error_set(err, -EINVAL, "%s: not a PEM certificate: %s", tls->cert_path,
                                 ssl_reason(why, sizeof why, "cannot read it"));
        if (SSL_CTX_use_PrivateKey_file(c->ctx, tls->key_path, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(c->ctx) != 1)
            return nba_error_set(err, -EINVAL, "%s: not the PEM key of %s: %s", tls->key_path,
                                 tls->cert_path, ssl_reason(why, sizeof why, "cannot read it"));
    } else {
        SSL_CTX_set_client_cert_cb(c->ctx, note_certificate_request);
    }
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        return nba_error_set(err, -ENOMEM, "out of memory");
    SSL_set_app_data(c->ssl, c);
    /* The certificate must be nbad's: for the address or the name given. */
    X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1) {
        ERR_clear_error();
        if (X509_VERIFY_PARAM_set1_host(param, host, 0) != 1)
            return nba_error_set(err, -EINVAL, "%s: cannot check a certificate for this name",
                                 host);
        SSL_set_tlsext_host_name(c->ssl, host);
    }
    if (SSL_connect(c->ssl) != 1) {
        if (c->certificate_requested) { /* TLS 1.2 refuses it in the handshake */
            ERR_clear_error();
            return nba_error_set(err, -EPROTO,
                                 "TLS: %s asks for a client certificate, and none was given", host);
        }
        long verify = SSL_get_verify_result(c->ssl);
        if (verify != X509_V_OK) {
            ERR_clear_error();
            return nba_error_set(err, -EPROTO, "TLS handshake with %s failed: %s", host,
                                 X509_verify_cert_error_string(verify));
        }
        return nba_error_set(err, -EPROTO, "TLS handshake with %s failed: %s", host,
                             ssl_reason(why, sizeof why, "the connection closed"));
    }
    if (c->certificate_requested)
        return nba_error_set(err, -EPROTO,
                             "TLS: %s asks for a client certificate, and none was given", host);
    return 0;
}

int client_connect_tls(const char *host, int port, int timeout_ms, const client_tls *tls,
                       nba_client **out, nba_error *err)
{
    int rc = client_connect(host, port, timeout_ms, out, err);
    if (rc || !tls)
        return rc;
    rc = start_tls(*out, host, tls, err);
    if (rc) {
        client_close(*out);
        *out = NULL;
    }
    return rc;
}

/* One send or receive on the connection, plain or TLS: bytes moved, 0 at
 * the peer's end of stream, or a negative errno. */
static ssize_t transfer(nba_client *c, void *p, size_t n, bool sending)
{
    if (!c->ssl) {
        ssize_t r = sending ? send(c->fd, p, n, MSG_NOSIGNAL) : recv(c->fd, p, n, 0);
        return r >= 0 ? r : errno == EINTR ? -EINTR : io_error(errno);
    }
    int len = n > INT32_MAX ? INT32_MAX : (int)n;
    int r = sending ? SSL_write(c->ssl, p, len) : SSL_read(c->ssl, p, len);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    c->broken = e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL;
    /* An alert from nbad: with TLS 1.3 a refused client certificate shows
     * here, at the first read, after a handshake the client saw succeed. */
    if (e == SSL_ERROR_SSL) {
        ssl_reason(c->tls_why, sizeof c->tls_why, "protocol error");
        return -EPROTO;
    }
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return -ETIMEDOUT; /* the socket's timeout ran out */
    if (e == SSL_ERROR_SYSCALL && errno)
        return errno == EINTR ? -EINTR : io_error(errno);
    return sending ? -EPIPE : 0;
}

int client_send_raw(nba_client *c, const void *bytes, size_t n, nba_error *err)
{
    uint8_t *p = (uint8_t *)bytes;
    while (n > 0) {
        ssize_t w = transfer(c, p, n, true);
        if (w == -EINTR)
            continue;
        if (w == -EPROTO)
            return nba_error_set(err, -EPROTO, "TLS: %s", c->tls_why);
        if (w <= 0) {
            int rc = w < 0 ? (int)w : -EPIPE;
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
        ssize_t r = transfer(c, p, n, false);
        if (r == -EINTR)
            continue;
        if (r == -EPROTO)
            return nba_error_set(err, -EPROTO, "TLS: %s", c->tls_why);
        if (r == 0)
            return nba_error_set(err, -ECONNRESET, "the server closed the connection");
        if (r < 0)
            return nba_error_set(err, (int)r, "receive: %s", strerror((int)-r));
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
    if (c->ssl) {
        /* close_notify: the request stream ends here. Not after a fatal
         * error, when OpenSSL must not be asked to write again. */
        if (!c->broken && SSL_is_init_finished(c->ssl))
            SSL_shutdown(c->ssl);
        ERR_clear_error();
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    close(c->fd);
    free(c->buf);
    free(c);
}
