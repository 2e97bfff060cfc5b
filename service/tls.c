/* tls.c - see include/tls.h. The one module that sets OpenSSL up; the
 * connections only drive sessions (connection.c). */
#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct tls_context {
    /* The files, kept for tls_context_reload(). */
    char *cert_path, *key_path, *client_ca_path;
    int verifies_clients;
    /* Replaced by a reload while workers make sessions from it: a session
     * takes its own reference (SSL_new), under the lock. */
    pthread_mutex_t lock;
    SSL_CTX *ctx;
};

const char *tls_error_text(char *buf, size_t size, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(buf, size, "%s", fallback);
        return buf;
    }
    /* The first error is the cause; the later ones are the callers'. */
    const char *reason = ERR_reason_error_string(e);
    if (reason)
        snprintf(buf, size, "%s", reason);
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

/* Opening the file first tells "cannot be read" (a deployment mistake:
 * wrong path, wrong owner) from "does not hold a certificate". */
static int check_readable(const char *path, const char *what, nba_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return nba_error_set(err, -e, "cannot read the TLS %s %s: %s", what, path, strerror(e));
    }
    fclose(f);
    return 0;
}

/* A server SSL_CTX from the three files; see tls_context_new(). */
static int make_ctx(const char *cert_path, const char *key_path, const char *client_ca_path,
                    SSL_CTX **out, nba_error *err)
{
    char why[256];
    int rc;
    *out = NULL;
    if ((rc = check_readable(cert_path, "certificate", err)) ||
        (rc = check_readable(key_path, "key", err)) ||
        (client_ca_path && (rc = check_readable(client_ca_path, "client CA file", err))))
        return rc;

    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return nba_error_set(err, -ENOMEM, "cannot make a TLS context: %s",
                             tls_error_text(why, sizeof why, "out of memory"));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A client that closes without close_notify has sent whole frames or
     * not; the length prefix, not TLS, says which, as on a plain socket. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    /* Answers are written straight from the output buffer, which may move
     * between a write that has to wait and its retry, one record at a time. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Sessions are not resumed: contact points keep their connections. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);

    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
        rc = nba_error_set(err, -EINVAL, "%s: not a PEM certificate: %s", cert_path,
                           tls_error_text(why, sizeof why, "no certificate found"));
        goto fail;
    }
    /* Read apart from the context, which would report a key of another
     * certificate as a bad key rather than as the wrong one. */
    FILE *f = fopen(key_path, "rb");
    EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!key) {
        rc = nba_error_set(err, -EINVAL, "%s: not a PEM private key: %s", key_path,
                           tls_error_text(why, sizeof why, "no key found"));
        goto fail;
    }
    int used = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        rc = nba_error_set(err, -EINVAL, "%s: the key does not match the certificate %s: %s",
                           key_path, cert_path, tls_error_text(why, sizeof why, "mismatch"));
        goto fail;
    }
    if (client_ca_path) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca_path, NULL) != 1) {
            rc = nba_error_set(err, -EINVAL, "%s: no PEM CA certificate: %s", client_ca_path,
                               tls_error_text(why, sizeof why, "no certificate found"));
            goto fail;
        }
        /* The names sent in the CertificateRequest help a client with
         * several certificates pick the right one. */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca_path);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    ERR_clear_error();
    *out = ctx;
    return 0;

fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return rc;
}

int tls_context_new(const char *cert_path, const char *key_path, const char *client_ca_path,
                    tls_context **out, nba_error *err)
{
    *out = NULL;
    tls_context *t = calloc(1, sizeof *t);
    if (!t)
        return nba_error_set(err, -ENOMEM, "out of memory");
    pthread_mutex_init(&t->lock, NULL);
    t->cert_path = strdup(cert_path);
    t->key_path = strdup(key_path);
    t->client_ca_path = client_ca_path ? strdup(client_ca_path) : NULL;
    if (!t->cert_path || !t->key_path || (client_ca_path && !t->client_ca_path)) {
        tls_context_free(t);
        return nba_error_set(err, -ENOMEM, "out of memory");
    }
    int rc = make_ctx(cert_path, key_path, client_ca_path, &t->ctx, err);
    if (rc) {
        tls_context_free(t);
        return rc;
    }
    t->verifies_clients = client_ca_path != NULL;
    *out = t;
    return 0;
}

int tls_context_reload(tls_context *t, nba_error *err)
{
    SSL_CTX *fresh;
    int rc = make_ctx(t->cert_path, t->key_path, t->client_ca_path, &fresh, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&t->lock);
    SSL_CTX *old = t->ctx;
    t->ctx = fresh;
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old); /* sessions made from it hold their own references */
    return 0;
}

const char *tls_context_cert_path(const tls_context *t)
{
    return t->cert_path;
}

void tls_context_free(tls_context *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    pthread_mutex_destroy(&t->lock);
    free(t->cert_path);
    free(t->key_path);
    free(t->client_ca_path);
    free(t);
}

int tls_context_verifies_clients(const tls_context *t)
{
    return t->verifies_clients;
}

SSL *tls_session_new(tls_context *t, int fd)
{
    pthread_mutex_lock(&t->lock);
    SSL *ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->lock);
    if (!ssl)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

const char *tls_session_describe(SSL *ssl, char *buf, size_t size)
{
    char subject[256] = "none";
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (peer) {
        X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof subject);
        X509_free(peer);
    }
    snprintf(buf, size, "%s %s, client certificate %s", SSL_get_version(ssl),
             SSL_get_cipher_name(ssl), subject);
    return buf;
}
