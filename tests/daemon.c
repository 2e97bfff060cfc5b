/* daemon.c - see daemon.h. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64

const char *test_env(const char *name)
{
    const char *v = getenv(name);
    if (!v) {
        fprintf(stderr, "%s is not set (run this test through ctest)\n", name);
        exit(1);
    }
    return v;
}

void test_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fclose(f);
}

char *test_slurp(const char *path)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    if (!f)
        return strcpy(buf, "");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

int test_run(char *const argv[], const char *out_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

bool daemon_wrapped(void)
{
    const char *w = getenv("NBAD_WRAPPER");
    return w && *w;
}

int daemon_patience_ms(int ms)
{
    return daemon_wrapped() ? ms * 10 : ms;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int daemon_load_sample(const char *work, const char *db)
{
    char customers[512], incidents[512], out[512], cmd[1024];
    const char *src = test_env("NBA_SOURCE_DIR");
    snprintf(customers, sizeof customers, "%s/deploy/sample/customers.csv", src);
    snprintf(incidents, sizeof incidents, "%s/incidents.csv", work);
    snprintf(out, sizeof out, "%s/load.out", work);
    snprintf(cmd, sizeof cmd, "bash '%s/deploy/sample/incidents.sh' > '%s'", src, incidents);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make the sample incidents: %s\n", cmd);
        return -1;
    }
    char *load[] = {(char *)test_env("NBACTL_BIN"),
                    "load",
                    "--db",
                    (char *)db,
                    "--customers",
                    customers,
                    "--incidents",
                    incidents,
                    NULL};
    if (test_run(load, out) != 0) {
        fprintf(stderr, "nbactl load failed:\n%s\n", test_slurp(out));
        return -1;
    }
    return 0;
}

/* Splits NBAD_WRAPPER at blanks into argv[0..), returns the count. */
static int wrapper_args(char *copy, char **argv, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(copy, " \t", &save); t && n < max;
         t = strtok_r(NULL, " \t", &save))
        argv[n++] = t;
    return n;
}

/* argv for nbad: the wrapper's words, nbad, args, and --port when port is
 * not NULL. The words point into `wrapper`. */
static void nbad_argv(char *wrapper, size_t wrapper_size, char *const args[], const char *port,
                      char **argv)
{
    wrapper[0] = '\0';
    if (daemon_wrapped())
        snprintf(wrapper, wrapper_size, "%s", getenv("NBAD_WRAPPER"));
    int argc = wrapper_args(wrapper, argv, MAX_ARGS / 2);
    argv[argc++] = (char *)test_env("NBAD_BIN");
    /* valgrind cannot map the default 64 GiB per database */
    if (argc > 1) {
        argv[argc++] = "--map-size";
        argv[argc++] = "1GiB";
    }
    for (int i = 0; args[i] && argc < MAX_ARGS - 3; i++)
        argv[argc++] = args[i];
    if (port) {
        argv[argc++] = "--port";
        argv[argc++] = (char *)port;
    }
    argv[argc] = NULL;
}

int daemon_run(char *const args[], const char *out_path)
{
    char wrapper[1024];
    char *argv[MAX_ARGS];
    nbad_argv(wrapper, sizeof wrapper, args, NULL, argv);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The port of nbad's "listening on ADDR:PORT ..." line in log, or 0 while
 * that line is not there whole. */
static int listening_port(const char *log)
{
    static const char said[] = " listening on ";
    const char *at = strstr(log, said);
    if (!at)
        return 0;
    at += sizeof said - 1;
    const char *end = strchr(at, ' ');
    const char *colon = end ? memrchr(at, ':', (size_t)(end - at)) : NULL;
    if (!colon || colon + 1 == end)
        return 0;
    int port = 0;
    for (const char *p = colon + 1; p < end; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        port = port * 10 + (*p - '0');
    }
    return port;
}

int daemon_start(daemon_proc *d, const char *log_path, char *const args[], void (*in_child)(void))
{
    memset(d, 0, sizeof *d);
    snprintf(d->log, sizeof d->log, "%s", log_path);
    char wrapper[1024];
    char *argv[MAX_ARGS];
    /* nbad binds a free port itself: one picked here could be taken, by
     * another test's connections, before nbad bound it. */
    nbad_argv(wrapper, sizeof wrapper, args, "0", argv);

    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* A test that fails half-way leaves no nbad behind once it exits. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        if (in_child)
            in_child();
        execvp(argv[0], argv);
        _exit(127);
    }
    d->pid = pid;

    /* The line comes once the port is bound: connections wait in its
     * backlog from then on. */
    int waited = 0, limit = daemon_patience_ms(10000);
    while ((d->port = listening_port(test_slurp(log_path))) == 0) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid || waited >= limit) {
            if (waited >= limit) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
            }
            fprintf(stderr, "nbad did not come up:\n%s\n", test_slurp(log_path));
            d->pid = 0;
            return -1;
        }
        sleep_ms(20);
        waited += 20;
    }
    return 0;
}

int daemon_stop_with(daemon_proc *d, int sig)
{
    if (d->pid <= 0)
        return -1;
    if (sig)
        kill(d->pid, sig);
    int status = 0, waited = 0, limit = daemon_patience_ms(20000);
    pid_t got;
    while ((got = waitpid(d->pid, &status, WNOHANG)) == 0 && waited < limit) {
        sleep_ms(10);
        waited += 10;
    }
    if (got != d->pid) {
        fprintf(stderr, "nbad did not stop within %d ms: killing it\n", limit);
        kill(d->pid, SIGKILL);
        waitpid(d->pid, &status, 0);
        d->pid = 0;
        return -1;
    }
    d->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int daemon_stop(daemon_proc *d)
{
    int status = daemon_stop_with(d, SIGTERM);
    if (status != 0)
        fprintf(stderr, "nbad did not exit cleanly (status %d):\n%s\n", status, test_slurp(d->log));
    return status;
}
