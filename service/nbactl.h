/* nbactl.h - what the nbactl commands share: exit codes, usage, option
 * helpers, and one entry point per command (one file per command group). */
#ifndef NBA_NBACTL_H
#define NBA_NBACTL_H

#include <stdbool.h>

#include "arena.h"
#include "facts.h"
#include "state.h"
#include "nba.pb-c.h"

/* Exit codes (sysexits), the same for every command. */
enum nbactl_exit {
    EXIT_OK = 0,
    EXIT_USAGE = 64,       /* bad command line */
    EXIT_DATAERR = 65,     /* bad data: a CSV row, a rule file, an error answer */
    EXIT_NOINPUT = 66,     /* a missing input file or database */
    EXIT_UNAVAILABLE = 69, /* nbad unreachable */
    EXIT_SOFTWARE = 70,    /* an internal failure */
    EXIT_CANTCREAT = 73,   /* cannot create the database directory */
    EXIT_TEMPFAIL = 75,    /* busy: another load is working on the database; try again */
};

#define NBACTL_DEFAULT_HOST "127.0.0.1"
#define NBACTL_DEFAULT_PORT 7411

/* Prints "nbactl: problem" (if any) and the usage on stderr; returns
 * EXIT_USAGE. */
int nbactl_usage(const char *problem);

/* Prints the usage on stdout (for --help); returns EXIT_OK. */
int nbactl_help(void);

/* Sends req to nbad at host:port and prints the answer, readably or (json)
 * as JSON; channel is the contact's, for the readable decision. Returns an
 * exit code: EXIT_UNAVAILABLE when nbad cannot be reached, EXIT_DATAERR for
 * an error answer or a refused reload. (nbactl_remote.c) */
int nbactl_call(const char *host, int port, const Nba__V1__Request *req, bool json,
                Nba__V1__Channel channel);

/* Parses a TCP port 1..65535. */
bool nbactl_parse_port(const char *text, int *port);

/* The state nbad wrote under a database root (DB/state), for the tools
 * that decide in-process (explain, rules simulate), so that they see the
 * history and recovered incidents a decision in nbad sees. (nbactl_outbox.c) */
typedef struct nbactl_state {
    state *st; /* NULL: nbad never wrote anything there */
    state_reader *reader;
} nbactl_state;

/* Opens DB/state read for facts when it exists. Returns EXIT_OK (with an
 * empty s when there is none) or an exit code after a message. */
int nbactl_state_open(const char *db, nbactl_state *s);

/* Adds the customer's state to f (facts_add_state), in a snapshot of its
 * own; nothing without a state. Returns 0 or a negative errno. */
int nbactl_state_add(nbactl_state *s, arena *a, facts *f);

void nbactl_state_close(nbactl_state *s);

/* The commands: argv[0] is the command's name. Each returns an exit code. */
int nbactl_load(int argc, char **argv);     /* nbactl_load.c */
int nbactl_db(int argc, char **argv);       /* nbactl_db.c: list, switch, prune */
int nbactl_decide(int argc, char **argv);   /* nbactl_remote.c */
int nbactl_ping(int argc, char **argv);     /* nbactl_remote.c */
int nbactl_status(int argc, char **argv);   /* nbactl_remote.c */
int nbactl_reload(int argc, char **argv);   /* nbactl_remote.c */
int nbactl_outbox(int argc, char **argv);   /* nbactl_outbox.c */
int nbactl_history(int argc, char **argv);  /* nbactl_outbox.c */
int nbactl_incident(int argc, char **argv); /* nbactl_incident.c */

/* In-process: the rule files' tools (check, test, simulate) and explain. */
int nbactl_rules(int argc, char **argv);   /* nbactl_rules.c */
int nbactl_explain(int argc, char **argv); /* nbactl_explain.c */

#endif
