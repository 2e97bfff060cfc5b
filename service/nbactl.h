/* nbactl.h - what the nbactl commands share: exit codes, usage, option
 * helpers, and one entry point per command (one file per command group). */
#ifndef NBA_NBACTL_H
#define NBA_NBACTL_H

#include <stdbool.h>

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

/* The commands: argv[0] is the command's name. Each returns an exit code. */
int nbactl_load(int argc, char **argv);     /* nbactl_load.c */
int nbactl_decide(int argc, char **argv);   /* nbactl_remote.c */
int nbactl_ping(int argc, char **argv);     /* nbactl_remote.c */
int nbactl_status(int argc, char **argv);   /* nbactl_remote.c */
int nbactl_reload(int argc, char **argv);   /* nbactl_remote.c */
int nbactl_outbox(int argc, char **argv);   /* nbactl_outbox.c */
int nbactl_history(int argc, char **argv);  /* nbactl_outbox.c */
int nbactl_incident(int argc, char **argv); /* nbactl_incident.c */
int nbactl_db(int argc, char **argv);       /* nbactl_db.c: list, switch, prune */

/* In-process: the rule files' tools (check, test, simulate) and explain. */
int nbactl_rules(int argc, char **argv);   /* nbactl_rules.c */
int nbactl_explain(int argc, char **argv); /* nbactl_explain.c */

#endif
