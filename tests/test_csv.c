/* Unit tests of the CSV reader: a table of small files with the records (and
 * their line numbers) or the error each must give, then the limits and a file
 * large enough to cross many read-buffer boundaries. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "csv.h"

#define MAX_RECORDS 6
#define MAX_FIELDS  5

typedef struct csv_case {
    const char *name;
    const char *input;
    size_t input_len; /* 0: strlen(input) */
    /* Expected records: each a NULL-terminated list of fields; the list of
     * records ends at the first one whose first field is NULL. */
    const char *records[MAX_RECORDS][MAX_FIELDS + 1];
    size_t lines[MAX_RECORDS];
    /* When set, reading must fail on this line with this text in the
     * message, after the records above were returned. */
    size_t err_line;
    const char *err_text;
} csv_case;

static const csv_case cases[] = {
    {"simple", "a,b,c\n1,2,3\n", 0, {{"a", "b", "c"}, {"1", "2", "3"}}, {1, 2}, 0, NULL},
    {"no final line break", "a,b\n1,2", 0, {{"a", "b"}, {"1", "2"}}, {1, 2}, 0, NULL},
    {"crlf", "a,b\r\n1,2\r\n", 0, {{"a", "b"}, {"1", "2"}}, {1, 2}, 0, NULL},
    {"bom", "\xEF\xBB\xBFid,name\n1,x\n", 0, {{"id", "name"}, {"1", "x"}}, {1, 2}, 0, NULL},
    {"only a bom", "\xEF\xBB\xBF", 0, {{NULL}}, {0}, 0, NULL},
    {"empty file", "", 0, {{NULL}}, {0}, 0, NULL},
    {"quoted comma and doubled quotes",
     "id,note\n1,\"late, very \"\"late\"\"\"\n",
     0,
     {{"id", "note"}, {"1", "late, very \"late\""}},
     {1, 2},
     0,
     NULL},
    {"embedded line breaks move the line numbers",
     "id,note\n1,\"line one\nline two\nline three\"\n2,after\n",
     0,
     {{"id", "note"}, {"1", "line one\nline two\nline three"}, {"2", "after"}},
     {1, 2, 5},
     0,
     NULL},
    {"crlf inside quotes is kept", "\"a\r\nb\"\r\nc\r\n", 0, {{"a\r\nb"}, {"c"}}, {1, 3}, 0, NULL},
    {"empty fields", ",,\n\"\",x,\"\"\n", 0, {{"", "", ""}, {"", "x", ""}}, {1, 2}, 0, NULL},
    {"blank lines are not records", "a\n\nb\r\n\r\n\n", 0, {{"a"}, {"b"}}, {1, 3}, 0, NULL},
    {"chinese and other scripts",
     "id,name\nC1,王秀英\nC2,陳志明\nC3,\"Zoë 😀, ok\"\n",
     0,
     {{"id", "name"}, {"C1", "王秀英"}, {"C2", "陳志明"}, {"C3", "Zoë 😀, ok"}},
     {1, 2, 3, 4},
     0,
     NULL},
    {"quote inside an unquoted field",
     "a,b\nx,b\"c\n",
     0,
     {{"a", "b"}},
     {1},
     2,
     "quote inside an unquoted field"},
    {"text after a closing quote",
     "a\n\"x\"y,z\n",
     0,
     {{"a"}},
     {1},
     2,
     "text after the closing quote"},
    {"unterminated quote names the line it opened on",
     "a\n\"abc\ndef\n",
     0,
     {{"a"}},
     {1},
     2,
     "never closed"},
    {"invalid utf-8",
     "id,name\n1,ok\n2,\xff\n",
     0,
     {{"id", "name"}, {"1", "ok"}},
     {1, 2},
     3,
     "invalid UTF-8 in field 2"},
    {"invalid utf-8 after an embedded line break",
     "id,note\n1,\"first\nsecond \xC3(\"\n",
     0,
     {{"id", "note"}},
     {1},
     3,
     "invalid UTF-8 in field 2"},
    {"overlong utf-8", "x\n\xC0\xAF\n", 0, {{"x"}}, {1}, 2, "invalid UTF-8"},
    {"utf-8 surrogate", "x\n\xED\xA0\x80\n", 0, {{"x"}}, {1}, 2, "invalid UTF-8"},
    {"utf-8 past U+10FFFF", "x\n\xF4\x90\x80\x80\n", 0, {{"x"}}, {1}, 2, "invalid UTF-8"},
    {"truncated utf-8 at the end", "x\nab\xE4\xB8", 0, {{"x"}}, {1}, 2, "invalid UTF-8"},
    {"nul byte", "x\na\0b\n", 6, {{"x"}}, {1}, 2, "NUL byte"},
    {"bare carriage return", "a\rb\n", 0, {{NULL}}, {0}, 1, "carriage return"},
    {"errors after quoted line breaks have the right line",
     "\"a\nb\",c\nd,\"e\"x\n",
     0,
     {{"a\nb", "c"}},
     {1},
     3,
     "text after the closing quote"},
};

/* Each test writes its files into its own mkdtemp directory, removed by
 * the teardown even when an assertion fails half-way. */
typedef struct tmpdir {
    char path[64];
    char file[128]; /* path/t.csv */
} tmpdir;

static int setup(void **state)
{
    tmpdir *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    strcpy(t->path, "/tmp/test_csv.XXXXXX");
    if (!mkdtemp(t->path))
        return -1;
    snprintf(t->file, sizeof t->file, "%s/t.csv", t->path);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tmpdir *t = *state;
    unlink(t->file);
    int rc = rmdir(t->path);
    free(t);
    return rc;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void table_cases(void **state)
{
    const char *path = ((tmpdir *)*state)->file;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const csv_case *c = &cases[i];
        print_message("case: %s\n", c->name);
        write_file(path, c->input, c->input_len ? c->input_len : strlen(c->input));

        csv_reader *r = NULL;
        nba_error err = {{0}};
        assert_int_equal(csv_open(path, &r, &err), 0);
        assert_string_equal(csv_path(r), path);
        csv_record rec;
        size_t n = 0;
        for (; n < MAX_RECORDS && c->records[n][0]; n++) {
            assert_int_equal(csv_next(r, &rec, &err), 1);
            assert_int_equal(csv_line(r), c->lines[n]);
            size_t want = 0;
            while (c->records[n][want])
                want++;
            assert_int_equal(rec.count, want);
            for (size_t f = 0; f < want; f++) {
                assert_string_equal(rec.fields[f], c->records[n][f]);
                assert_int_equal(rec.lengths[f], strlen(c->records[n][f]));
            }
        }
        if (c->err_text) {
            assert_int_equal(csv_next(r, &rec, &err), -EINVAL);
            char prefix[160];
            snprintf(prefix, sizeof prefix, "%s:%zu: ", path, c->err_line);
            if (strncmp(err.msg, prefix, strlen(prefix)) != 0 || !strstr(err.msg, c->err_text))
                fail_msg("case %s: got '%s', want '%s...%s'", c->name, err.msg, prefix,
                         c->err_text);
            /* The reader does not go on past broken text; a record with
             * invalid UTF-8 or a NUL byte was read to its end, and reading
             * goes on after it (here: to the end of the file). */
            if (strstr(c->err_text, "UTF-8") || strstr(c->err_text, "NUL")) {
                assert_false(csv_failed(r));
                assert_int_equal(csv_next(r, &rec, &err), 0);
            } else {
                assert_true(csv_failed(r));
                assert_int_equal(csv_next(r, &rec, &err), -EINVAL);
            }
        } else {
            assert_int_equal(csv_next(r, &rec, &err), 0);
            assert_int_equal(csv_next(r, &rec, &err), 0);
        }
        csv_close(r);
    }
}

static void open_missing_file(void **state)
{
    (void)state;
    csv_reader *r = NULL;
    nba_error err = {{0}};
    assert_int_equal(csv_open("/nonexistent/dir/x.csv", &r, &err), -ENOENT);
    assert_null(r);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.csv"));
    assert_int_equal(csv_open("/tmp", &r, &err), -EISDIR);
    assert_null(r);
}

/* A field just under the record limit is fine; one over it is an error on
 * the line where the record starts. */
static void record_size_limit(void **state)
{
    const char *path = ((tmpdir *)*state)->file;

    size_t big = (1u << 20) - 16;
    size_t len = 0;
    char *data = malloc(2 * big + 256);
    assert_non_null(data);
    len += (size_t)sprintf(data + len, "id,text\n1,");
    memset(data + len, 'x', big);
    len += big;
    len += (size_t)sprintf(data + len, "\n2,\"");
    memset(data + len, 'y', big + 100);
    len += big + 100;
    len += (size_t)sprintf(data + len, "\"\n");
    write_file(path, data, len);
    free(data);

    csv_reader *r = NULL;
    nba_error err = {{0}};
    csv_record rec;
    assert_int_equal(csv_open(path, &r, &err), 0);
    assert_int_equal(csv_next(r, &rec, &err), 1);
    assert_int_equal(csv_next(r, &rec, &err), 1);
    assert_int_equal(rec.lengths[1], big);
    assert_int_equal(rec.fields[1][big - 1], 'x');
    assert_int_equal(csv_next(r, &rec, &err), -EINVAL);
    char want[160];
    snprintf(want, sizeof want, "%s:3: record longer than", path);
    assert_non_null(strstr(err.msg, want));
    csv_close(r);

    /* Too many fields. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 5000; i++)
        fputs(i ? ",x" : "x", f);
    fputc('\n', f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(csv_open(path, &r, &err), 0);
    assert_int_equal(csv_next(r, &rec, &err), -EINVAL);
    assert_non_null(strstr(err.msg, ":1: record has more than"));
    csv_close(r);
}

/* Many records, with quoted line breaks, doubled quotes and multi-byte text
 * of varying lengths, so that every kind of token sooner or later straddles
 * the end of a read buffer. Checks every field and every line number. */
static void large_file_crosses_buffers(void **state)
{
    const char *path = ((tmpdir *)*state)->file;

    const size_t rows = 60000;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("id,note,name\r\n", f);
    for (size_t i = 0; i < rows; i++) {
        fprintf(f, "%zu,\"", i);
        for (size_t k = 0; k < i % 23; k++)
            fputs("ab\"\"", f);
        if (i % 3 == 0)
            fputs("\nnext", f);
        fputs("\",", f);
        for (size_t k = 0; k < i % 7; k++)
            fputs("王秀英", f);
        fputs(i % 2 ? "\r\n" : "\n", f);
    }
    assert_int_equal(fclose(f), 0);

    csv_reader *r = NULL;
    nba_error err = {{0}};
    csv_record rec;
    assert_int_equal(csv_open(path, &r, &err), 0);
    assert_int_equal(csv_next(r, &rec, &err), 1);
    assert_string_equal(rec.fields[2], "name");
    size_t line = 2;
    char want[256];
    uint64_t last = csv_bytes_read(r);
    for (size_t i = 0; i < rows; i++) {
        assert_int_equal(csv_next(r, &rec, &err), 1);
        assert_int_equal(csv_line(r), line);
        assert_int_equal(rec.count, 3);
        assert_int_equal(strtoul(rec.fields[0], NULL, 10), i);
        size_t n = 0;
        want[0] = '\0';
        for (size_t k = 0; k < i % 23; k++)
            n += (size_t)sprintf(want + n, "ab\"");
        if (i % 3 == 0)
            n += (size_t)sprintf(want + n, "\nnext");
        assert_string_equal(rec.fields[1], want);
        assert_int_equal(rec.lengths[2], (i % 7) * strlen("王秀英"));
        line += i % 3 == 0 ? 2 : 1;
        /* How far through the file: up to the end of this record. */
        assert_true(csv_bytes_read(r) > last);
        last = csv_bytes_read(r);
    }
    assert_int_equal(csv_next(r, &rec, &err), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(csv_size(r), (uint64_t)sb.st_size);
    assert_int_equal(csv_bytes_read(r), (uint64_t)sb.st_size);
    csv_close(r);
}

/* A record with invalid UTF-8 is reported with its line, and the records
 * after it are read as if it had not been there. */
static void reading_goes_on_after_bad_utf8(void **state)
{
    const char *path = ((tmpdir *)*state)->file;
    static const char text[] = "id,note\n1,\"a\nb\"\n2,caf\xE9\n3,fine\n";
    write_file(path, text, strlen(text));
    csv_reader *r = NULL;
    nba_error err = {{0}};
    csv_record rec;
    assert_int_equal(csv_open(path, &r, &err), 0);
    assert_int_equal(csv_next(r, &rec, &err), 1);
    assert_int_equal(csv_next(r, &rec, &err), 1);
    assert_int_equal(csv_next(r, &rec, &err), -EINVAL);
    assert_non_null(strstr(err.msg, ":4: invalid UTF-8 in field 2"));
    assert_int_equal(csv_line(r), 4);
    assert_false(csv_failed(r));
    assert_int_equal(csv_next(r, &rec, &err), 1);
    assert_int_equal(csv_line(r), 5);
    assert_string_equal(rec.fields[1], "fine");
    assert_int_equal(csv_next(r, &rec, &err), 0);
    csv_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(table_cases, setup, teardown),
        cmocka_unit_test(open_missing_file),
        cmocka_unit_test_setup_teardown(record_size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(large_file_crosses_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(reading_goes_on_after_bad_utf8, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
