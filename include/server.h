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
 */
#ifndef NBA_SERVER_H
#define NBA_SERVER_H

#include "config.h"
#include "error.h"
#include "rules_live.h"
#include "store.h"

typedef struct server server;

/* Binds the listening socket and starts the worker threads, which decide
 * with the ruleset serving in `rules` (SIGHUP reloads it). st and rules must
 * outlive the server. Returns 0 or a negative errno with a message (address
 * in use, bad address, ...). */
int server_new(const config *cfg, store *st, rules_live *rules, server **out, nba_error *err);

/* The port actually bound (useful with port 0). */
int server_port(const server *s);

/* Runs the listener loop in the calling thread until SIGTERM or SIGINT, or
 * server_stop(); SIGHUP meanwhile reloads the rules. Then stops accepting, lets the workers finish
 * writing what they have answered, and joins them. Returns 0 or a negative errno. */
int server_run(server *s);

/* Asks a running server to stop; safe to call from any thread. */
void server_stop(server *s);

/* Frees a server that is not running. */
void server_free(server *s);

#endif
