/* daemon.h - the real nbad in a black-box test: the sample data loaded with
 * the real nbactl, nbad started on a free loopback port, stopped with
 * SIGTERM and its exit status checked.
 *
 * With NBAD_WRAPPER set (e.g. "valgrind --error-exitcode=99
 * --leak-check=full"), nbad runs under that command, and every wait here is
 * longer; a test that measures time or memory asks daemon_wrapped() first.
 * Binaries come from NBAD_BIN and NBACTL_BIN, the sample data from
 * NBA_SOURCE_DIR; ctest sets them. */
#ifndef NBA_TESTS_DAEMON_H
#define NBA_TESTS_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct daemon_proc {
    pid_t pid;
    int port;
    char log[256]; /* nbad's stderr */
} daemon_proc;

/* The environment variable `name`; exits the test when it is not set. */
const char *test_env(const char *name);

/* Writes text to path, replacing it (fails the test on error). */
void test_write_file(const char *path, const char *text);

/* The file's content (at most 1 MiB) in a buffer shared by every call, or
 * "" when it cannot be read. */
char *test_slurp(const char *path);

/* Runs argv with stdout and stderr into out_path; returns its exit status,
 * or -1 when it did not exit. */
int test_run(char *const argv[], const char *out_path);

/* A loopback port nothing listens on now. */
int test_free_port(void);

/* True when nbad runs under NBAD_WRAPPER. */
bool daemon_wrapped(void);

/* Milliseconds a test should wait for something nbad does promptly:
 * `ms`, or ten times as long under NBAD_WRAPPER. */
int daemon_patience_ms(int ms);

/* Loads the sample data (deploy/sample: customers.csv and the incidents
 * incidents.sh prints, dated relative to now) into the database directory
 * db with nbactl load; work is a directory for the CSV. Returns 0, or -1
 * with nbactl's output on stderr. */
int daemon_load_sample(const char *work, const char *db);

/* Starts nbad with the arguments args (NULL-terminated, without the
 * program name; --port 0 is added: nbad binds a free port, and d->port is
 * the one it logs) and its stderr in log_path. in_child, if not NULL, runs
 * in the child just before exec (to set limits). Waits until nbad logs
 * that it listens (so it must log at info or debug). Returns 0, or -1 with
 * nbad's log on stderr (d->pid is then 0). */
int daemon_start(daemon_proc *d, const char *log_path, char *const args[], void (*in_child)(void));

/* Runs nbad with the arguments args (NULL-terminated, without the program
 * name) to its end, stdout and stderr into out_path, under NBAD_WRAPPER
 * when set (so a start that fails is checked for leaks too). Returns its
 * exit status, or -1 when it did not exit. */
int daemon_run(char *const args[], const char *out_path);

/* Sends `sig` (0: none, it was sent already) and waits, bounded, for nbad to exit. Returns its exit
 * status, or -1 when it was killed by a signal or had to be. */
int daemon_stop_with(daemon_proc *d, int sig);

/* daemon_stop_with(d, SIGTERM); prints the log when the status is not 0. */
int daemon_stop(daemon_proc *d);

#endif
