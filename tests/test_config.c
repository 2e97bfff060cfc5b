/* Unit tests of the configuration: defaults, the YAML file, the command line
 * and the order in which they override each other. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "frame.h"

/* Each test writes its files into a fresh temporary directory. */
typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/nba-test-config-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/nbad.yaml", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static const char *write_file(void **state, const char *text)
{
    fixture *f = *state;
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return f->path;
}

/* Runs config_from_args on a NULL-terminated list of arguments after
 * "nbad". */
static int from_args(config *c, nba_error *err, ...)
{
    char *argv[32] = {"nbad"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    return config_from_args(c, argc, argv, err);
}

static void defaults(void **state)
{
    (void)state;
    config c;
    assert_int_equal(config_init(&c), 0);
    assert_string_equal(c.listen_addr, "127.0.0.1");
    assert_int_equal(c.port, 7411);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(c.threads, cores > 256 ? 256 : cores);
    assert_true(c.threads >= 1);
    assert_int_equal(c.max_frame, 64 * 1024);
    assert_int_equal(c.max_frame, FRAME_DEFAULT_MAX);
    assert_int_equal(c.map_size, 0);
    assert_int_equal(c.log_min, LOG_INFO);
    assert_null(c.db_dir);
    assert_null(c.rules_path);
    /* Safe limits and no TLS, no user switch, no personal data in logs. */
    assert_int_equal(c.max_connections, 10000);
    assert_int_equal(c.idle_timeout, 300);
    assert_int_equal(c.frame_timeout, 30);
    assert_int_equal(c.max_output, 1 << 20);
    assert_int_equal(c.max_pipeline, 1024);
    assert_null(c.tls_cert);
    assert_null(c.tls_key);
    assert_null(c.tls_client_ca);
    assert_true(c.tls_required);
    assert_null(c.user);
    assert_false(c.log_customer_data);
    assert_true(c.record_contacts);
    config_free(&c);
    config_free(&c); /* idempotent */
}

static void file_sets_every_key(void **state)
{
    const char *path = write_file(state, "# a comment\n"
                                         "db: /var/lib/nbad\n"
                                         "rules: \"rules/checkin.yaml\"\n"
                                         "listen: 0.0.0.0\n"
                                         "port: 7500\n"
                                         "threads: 3\n"
                                         "max_frame: 128KiB\n"
                                         "map_size: \"2 GiB\"\n"
                                         "log_level: debug\n"
                                         "lock_memory: true\n"
                                         "warm_interval: 30\n"
                                         "max_connections: 500\n"
                                         "idle_timeout: 0\n"
                                         "frame_timeout: 7\n"
                                         "max_output: 256KiB\n"
                                         "max_pipeline: 64\n"
                                         "tls_cert: /etc/nbad/tls/server.pem\n"
                                         "tls_key: /etc/nbad/tls/server.key\n"
                                         "tls_client_ca: /etc/nbad/tls/clients.pem\n"
                                         "tls_required: false\n"
                                         "user: nbad\n"
                                         "log_customer_data: true\n"
                                         "record_contacts: false\n");
    config c;
    nba_error err = {{0}};
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_load_file(&c, path, &err), 0);
    assert_string_equal(c.db_dir, "/var/lib/nbad");
    assert_string_equal(c.rules_path, "rules/checkin.yaml");
    assert_string_equal(c.listen_addr, "0.0.0.0");
    assert_int_equal(c.port, 7500);
    assert_int_equal(c.threads, 3);
    assert_int_equal(c.max_frame, 128 * 1024);
    assert_int_equal(c.map_size, (size_t)2 << 30);
    assert_int_equal(c.log_min, LOG_DEBUG);
    assert_true(c.lock_memory);
    assert_int_equal(c.warm_interval, 30);
    assert_int_equal(c.max_connections, 500);
    assert_int_equal(c.idle_timeout, 0);
    assert_int_equal(c.frame_timeout, 7);
    assert_int_equal(c.max_output, 256 * 1024);
    assert_int_equal(c.max_pipeline, 64);
    assert_string_equal(c.tls_cert, "/etc/nbad/tls/server.pem");
    assert_string_equal(c.tls_key, "/etc/nbad/tls/server.key");
    assert_string_equal(c.tls_client_ca, "/etc/nbad/tls/clients.pem");
    assert_false(c.tls_required);
    assert_string_equal(c.user, "nbad");
    assert_true(c.log_customer_data);
    assert_false(c.record_contacts);
    config_free(&c);
}

static void file_keeps_unset_keys_and_accepts_empty(void **state)
{
    config c;
    nba_error err = {{0}};
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_load_file(&c, write_file(state, "port: 0\n"), &err), 0);
    assert_int_equal(c.port, 0);
    assert_string_equal(c.listen_addr, "127.0.0.1");
    assert_int_equal(c.max_frame, 64 * 1024);
    assert_int_equal(config_load_file(&c, write_file(state, "# nothing\n"), &err), 0);
    assert_int_equal(c.port, 0);
    assert_int_equal(config_load_file(&c, write_file(state, "listen: \"::1\"\n"), &err), 0);
    assert_string_equal(c.listen_addr, "::1");
    assert_int_equal(config_load_file(&c, write_file(state, "listen: localhost\n"), &err), 0);
    assert_string_equal(c.listen_addr, "localhost");
    assert_int_equal(config_load_file(&c, write_file(state, "listen: nbad-1.prod.example\n"), &err),
                     0);
    config_free(&c);
}

static void sizes(void **state)
{
    static const struct {
        const char *text;
        uint32_t want;
    } ok[] = {{"65536", 65536},       {"64KiB", 65536},  {"\"64KiB\"", 65536}, {"64 KiB", 65536},
              {"64k", 65536},         {"1MiB", 1 << 20}, {"1M", 1 << 20},      {"16", 16},
              {"256MiB", 256u << 20}, {"100B", 100}};
    static const char *const bad[] = {"64KB", "15",     "257MiB", "abc",
                                      "-1",   "1.5MiB", "KiB",    "99999999999999999999999",
                                      "[1]",  "1 MiB x"};
    fixture *f = *state;
    char text[128];
    nba_error err = {{0}};
    config c;
    assert_int_equal(config_init(&c), 0);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(text, sizeof text, "max_frame: %s\n", ok[i].text);
        write_file(state, text);
        assert_int_equal(config_load_file(&c, f->path, &err), 0);
        assert_int_equal(c.max_frame, ok[i].want);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "max_frame: %s\n", bad[i]);
        write_file(state, text);
        assert_int_equal(config_load_file(&c, f->path, &err), -EINVAL);
        assert_non_null(strstr(err.msg, ":1:12: max_frame: "));
    }
    config_free(&c);
}

/* Each broken file, and where and what the error must say. */
static void file_errors(void **state)
{
    static const struct {
        const char *text;
        const char *where; /* ":line:col: " */
        const char *what;
    } cases[] = {
        {"db: /data\nprot: 7411\n", ":2:1: ", "unknown key \"prot\""},
        {"port: 7411\nthreads: 4\nport: 7412\n", ":3:1: ", "port is set twice"},
        {"port: \"7411\"\n", ":1:7: ", "port: expected an integer 0..65535, got the string"},
        {"port: seventy\n", ":1:7: ", "port: expected an integer 0..65535"},
        {"port: 70000\n", ":1:7: ", "port: 70000 is out of range 0..65535"},
        {"port: -1\n", ":1:7: ", "port: expected an integer"},
        {"threads: 0\n", ":1:10: ", "threads: 0 is out of range 1..256"},
        {"threads: 257\n", ":1:10: ", "out of range 1..256"},
        {"threads: [1, 2]\n", ":1:10: ", "threads: expected a single value, got a list"},
        {"listen:\n  host: x\n", ":2:3: ", "listen: expected a single value, got a mapping"},
        {"listen: 10.0.0.300\n", ":1:9: ", "listen: expected an IP address"},
        {"listen: -host\n", ":1:9: ", "listen: expected an IP address"},
        {"db:\n", ":1:4: ", "db: expected a string, got an empty value"},
        {"db: ~\n", ":1:5: ", "db: expected a string"},
        {"log_level: loud\n", ":1:12: ", "log_level: expected a log level"},
        {"- db\n- rules\n", ":1:1: ", "expected a mapping of settings"},
        {"port: 7411\n  threads: 2\n", ":2:10: ", "invalid YAML"},
        {"port: 1\n---\nport: 2\n", ":3:1: ", "one document"},
        {"? [a]\n: 1\n", ":1:3: ", "expected a setting name"},
        {"max_connections: 0\n", ":1:18: ", "max_connections: 0 is out of range 1..1000000"},
        {"idle_timeout: 86401\n", ":1:15: ", "idle_timeout: 86401 is out of range 0..86400"},
        {"max_output: 1KiB\n", ":1:13: ", "max_output: 1KiB is out of range"},
        {"max_pipeline: 0\n", ":1:15: ", "max_pipeline: 0 is out of range"},
        {"tls_required: \"yes\"\n", ":1:15: ", "tls_required: expected true or false"},
        {"user:\n", ":1:6: ", "user: expected a string"},
        /* the message lists every key, the new ones too */
        {"tls: on\n", ":1:1: ", "log_customer_data, record_contacts)"},
    };
    fixture *f = *state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config c;
        nba_error err = {{0}};
        assert_int_equal(config_init(&c), 0);
        write_file(state, cases[i].text);
        int rc = config_load_file(&c, f->path, &err);
        if (rc != -EINVAL || strncmp(err.msg, f->path, strlen(f->path)) ||
            strncmp(err.msg + strlen(f->path), cases[i].where, strlen(cases[i].where)) ||
            !strstr(err.msg, cases[i].what))
            fail_msg("case %zu: rc %d, message \"%s\"", i, rc, err.msg);
        config_free(&c);
    }
}

static void missing_file(void **state)
{
    (void)state;
    config c;
    nba_error err = {{0}};
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_load_file(&c, "/nonexistent/nbad.yaml", &err), -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/nbad.yaml"));
    config_free(&c);
}

static void args_override_file_wherever_config_stands(void **state)
{
    const char *path = write_file(state, "db: /from/file\n"
                                         "rules: file-rules.yaml\n"
                                         "port: 7500\n"
                                         "threads: 2\n");
    config c;
    nba_error err = {{0}};

    /* --config last: still read first, and --port wins over the file. */
    assert_int_equal(from_args(&c, &err, "--port", "8000", "--config", path, NULL), 0);
    assert_string_equal(c.db_dir, "/from/file");
    assert_string_equal(c.rules_path, "file-rules.yaml");
    assert_int_equal(c.port, 8000);
    assert_int_equal(c.threads, 2);
    config_free(&c);

    /* --opt=value everywhere, --config in the middle. */
    char cfg_arg[160];
    snprintf(cfg_arg, sizeof cfg_arg, "--config=%s", path);
    assert_int_equal(from_args(&c, &err, "--db=/from/args", cfg_arg, "--threads=5",
                               "--max-frame=1MiB", "--listen", "::", "--log-level=warn",
                               "--map-size", "1GiB", NULL),
                     0);
    assert_string_equal(c.db_dir, "/from/args");
    assert_string_equal(c.rules_path, "file-rules.yaml");
    assert_string_equal(c.listen_addr, "::");
    assert_int_equal(c.port, 7500);
    assert_int_equal(c.threads, 5);
    assert_int_equal(c.max_frame, 1 << 20);
    assert_int_equal(c.map_size, (size_t)1 << 30);
    assert_int_equal(c.log_min, LOG_WARN);
    config_free(&c);

    /* Without a file: defaults plus the options; the last repeat wins. */
    assert_int_equal(
        from_args(&c, &err, "--db", "d", "--rules", "r", "--port", "1", "--port", "2", NULL), 0);
    assert_int_equal(c.port, 2);
    assert_string_equal(c.listen_addr, "127.0.0.1");
    config_free(&c);
}

/* Residency: off-by-default locking, a 10 s warm interval, a boolean flag
 * that needs no value, and the values both refuse. */
static void residency_options(void **state)
{
    (void)state;
    config c;
    nba_error err = {{0}};
    assert_int_equal(from_args(&c, &err, "--db", "d", "--rules", "r", NULL), 0);
    assert_false(c.lock_memory);
    assert_int_equal(c.warm_interval, 10);
    config_free(&c);
    assert_int_equal(from_args(&c, &err, "--db", "d", "--lock-memory", "--warm-interval", "0",
                               "--rules", "r", NULL),
                     0);
    assert_true(c.lock_memory);
    assert_int_equal(c.warm_interval, 0);
    config_free(&c);
    assert_int_equal(from_args(&c, &err, "--db", "d", "--rules", "r", "--lock-memory=false", NULL),
                     0);
    assert_false(c.lock_memory);
    config_free(&c);
    assert_int_equal(from_args(&c, &err, "--db", "d", "--rules", "r", "--lock-memory=yes", NULL),
                     -EINVAL);
    assert_non_null(strstr(err.msg, "--lock-memory: expected true or false"));
    config_free(&c);
    assert_int_equal(
        from_args(&c, &err, "--db", "d", "--rules", "r", "--warm-interval", "3601", NULL), -EINVAL);
    assert_non_null(strstr(err.msg, "--warm-interval: 3601 is out of range 0..3600"));
    config_free(&c);
}

static void help_and_version(void **state)
{
    (void)state;
    config c;
    nba_error err = {{0}};
    /* --help prints the usage on stdout: capture it. */
    FILE *out = tmpfile();
    assert_non_null(out);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fileno(out), STDOUT_FILENO);
    int rc = from_args(&c, &err, "--help", NULL);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    assert_int_equal(rc, 1);
    config_free(&c);
    char text[8192] = {0};
    rewind(out);
    size_t n = fread(text, 1, sizeof text - 1, out);
    fclose(out);
    assert_true(n > 0);
    assert_non_null(strstr(text, "--max-frame"));
    assert_non_null(strstr(text, "--max-connections"));
    assert_non_null(strstr(text, "--tls-client-ca"));

    assert_int_equal(from_args(&c, &err, "--db", "x", "-V", NULL), 1);
    config_free(&c);
}

static void bad_command_lines(void **state)
{
    (void)state;
    static const struct {
        const char *args[4];
        const char *what;
    } cases[] = {
        {{"--port", "abc"}, "--port: expected an integer 0..65535"},
        {{"--port", "65536"}, "--port: 65536 is out of range"},
        {{"--threads", "0"}, "--threads: 0 is out of range 1..256"},
        {{"--threads=300"}, "--threads: 300 is out of range"},
        {{"--max-frame", "10KB"}, "--max-frame: expected a size"},
        {{"--listen", "not an address"}, "--listen: expected an IP address"},
        {{"--listen=a..b"}, "--listen: expected an IP address"},
        {{"--db", ""}, "--db: expected a string"},
        {{"--bogus"}, "unknown option \"--bogus\""},
        {{"--port"}, "--port needs a value"},
        {{"--db", "--rules", "r"}, "--db needs a value"},
        {{"serve"}, "unexpected argument \"serve\""},
        {{"--help=yes"}, "--help takes no value"},
        {{"--config", "a", "--config=b"}, "--config given twice"},
        {{"--rules", "r"}, "no database"},
        {{"--db", "d"}, "no rule file"},
        {{"--max-connections", "0"}, "--max-connections: 0 is out of range"},
        {{"--idle-timeout=-5"}, "--idle-timeout: expected an integer"},
        {{"--max-output", "2GiB"}, "--max-output: 2GiB is out of range"},
        {{"--max-pipeline", "many"}, "--max-pipeline: expected an integer"},
        {{"--user", ""}, "--user: expected a string"},
        {{"--log-customer-data=1"}, "--log-customer-data: expected true or false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[8] = {"nbad"};
        int argc = 1;
        for (int k = 0; k < 4 && cases[i].args[k]; k++)
            argv[argc++] = (char *)cases[i].args[k];
        config c;
        nba_error err = {{0}};
        int rc = config_from_args(&c, argc, argv, &err);
        if (rc != -EINVAL || !strstr(err.msg, cases[i].what))
            fail_msg("case %zu: rc %d, message \"%s\"", i, rc, err.msg);
        config_free(&c);
    }
}

/* TLS settings come in pairs: a certificate is useless without its key,
 * and asking clients for certificates needs TLS on. The limits and the
 * booleans take their options. */
static void tls_user_and_limits_from_args(void **state)
{
    (void)state;
    config c;
    nba_error err = {{0}};
    assert_int_equal(from_args(&c, &err, "--db", "d", "--rules", "r", "--tls-cert", "s.pem", NULL),
                     -EINVAL);
    assert_non_null(strstr(err.msg, "set tls_key (--tls-key) too"));
    config_free(&c);
    assert_int_equal(from_args(&c, &err, "--db", "d", "--rules", "r", "--tls-key", "s.key", NULL),
                     -EINVAL);
    assert_non_null(strstr(err.msg, "set tls_cert (--tls-cert) too"));
    config_free(&c);
    assert_int_equal(
        from_args(&c, &err, "--db", "d", "--rules", "r", "--tls-client-ca", "ca.pem", NULL),
        -EINVAL);
    assert_non_null(strstr(err.msg, "tls_client_ca needs TLS on"));
    config_free(&c);

    assert_int_equal(from_args(&c, &err, "--db", "d", "--rules", "r", "--tls-cert=s.pem",
                               "--tls-key", "s.key", "--tls-client-ca", "ca.pem",
                               "--tls-required=false", "--user", "nbad", "--log-customer-data",
                               "--max-connections", "20", "--idle-timeout", "5", "--max-output",
                               "64KiB", "--max-pipeline=8", "--record-contacts=false",
                               "--frame-timeout", "0", NULL),
                     0);
    assert_string_equal(c.tls_cert, "s.pem");
    assert_string_equal(c.tls_key, "s.key");
    assert_string_equal(c.tls_client_ca, "ca.pem");
    assert_false(c.tls_required);
    assert_string_equal(c.user, "nbad");
    assert_true(c.log_customer_data);
    assert_int_equal(c.max_connections, 20);
    assert_int_equal(c.idle_timeout, 5);
    assert_int_equal(c.frame_timeout, 0);
    assert_int_equal(c.max_output, 64 * 1024);
    assert_int_equal(c.max_pipeline, 8);
    assert_false(c.record_contacts);
    config_free(&c);
}

static void config_file_errors_come_through_args(void **state)
{
    const char *path = write_file(state, "db: /d\nrules: r\ncolour: blue\n");
    config c;
    nba_error err = {{0}};
    assert_int_equal(from_args(&c, &err, "--config", path, NULL), -EINVAL);
    assert_non_null(strstr(err.msg, ":3:1: unknown key \"colour\""));
    config_free(&c);
    assert_int_equal(from_args(&c, &err, "--config", "/nonexistent.yaml", NULL), -ENOENT);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test_setup_teardown(file_sets_every_key, setup, teardown),
        cmocka_unit_test_setup_teardown(file_keeps_unset_keys_and_accepts_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(file_errors, setup, teardown),
        cmocka_unit_test(missing_file),
        cmocka_unit_test_setup_teardown(args_override_file_wherever_config_stands, setup, teardown),
        cmocka_unit_test(help_and_version),
        cmocka_unit_test(residency_options),
        cmocka_unit_test(bad_command_lines),
        cmocka_unit_test(tls_user_and_limits_from_args),
        cmocka_unit_test_setup_teardown(config_file_errors_come_through_args, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
