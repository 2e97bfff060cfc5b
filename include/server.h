/* server.h - the network side of nbad: a listener and N worker threads.
 *
 * The listener thread accepts connections and hands each to a worker, round
 * robin. Each worker runs its own libevent event_base and its own decider,
 * so a connection lives on one thread and workers share nothing but the
 * read-only store and ruleset. A worker reads every complete frame that has
 * arrived, answers them in order and writes the answers in one go, so a
 * pipelining client costs few system calls per request.
 *
 * Every worker counts its connections, requests, decisions and errors and
 * times each decision (request cut from the input to answer encoded) into
 * its own latency histogram, without a lock; a StatusRequest, on any
 * connection, is answered with all the workers' counts summed and their
 * histograms merged (nbactl status).
 *
 * Limits (config.h): past max_connections served at once, a new connection
 * gets the error too_many_connections and is closed; connections idle for
 * idle_timeout are closed; a slow reader is held back by max_output and
 * max_pipeline. When accepting fails for want of file descriptors (EMFILE,
 * ENFILE) or memory, the listener pauses for a moment rather than spin on
 * the connection still waiting, and logs the episode once when it starts
 * and once when it ends.
 */
#ifndef NBA_SERVER_H
#define NBA_SERVER_H

#include "config.h"
#include "error.h"
#include "rules_live.h"
#include "state.h"
#include "store.h"
#include "store_live.h"
#include "tls.h"

typedef struct server server;

/* Binds the listening socket and starts the worker threads, which decide
 * with the ruleset serving in `rules` (SIGHUP reloads it). With `tls` (may
 * be NULL) connections speak TLS, as cfg->tls_required says (see
 * connection.h); the process must then ignore SIGPIPE. st, rules and tls
 * must outlive the server. From its return, SIGTERM and SIGINT are the
 * server's (a stop, once server_run runs it) and SIGHUP a reload: a client
 * may connect as soon as the port is bound. Returns 0 or a negative errno
 * with a message (address in use, bad address, ...). */
int server_new(const config *cfg, store_live *live, state *state, rules_live *rules,
               tls_context *tls, server **out, nba_error *err);

/* The port actually bound (useful with port 0). */
int server_port(const server *s);

/* Runs the listener loop in the calling thread until SIGTERM or SIGINT, or
 * server_stop(); SIGHUP meanwhile reloads the rules. Then stops accepting,
 * lets every connection answer the requests it has received (see
 * conn_pool_drain), for at most a few seconds, joins the workers and logs
 * what the server did. Returns 0 or a negative errno. */
int server_run(server *s);

/* Asks a running server to stop; safe to call from any thread. */
void server_stop(server *s);

/* Frees a server that is not running. */
void server_free(server *s);

#endif
