/* tables.c - decision tables: the cases ops staff think of as a table
 * (tier x incident severity -> compensation; country -> language), written
 * as columns and rows:
 *
 *   tables:
 *     - id: goodwill-miles
 *       policy: first                  # or: priority
 *       columns:
 *         tier: customer.tier
 *         severity: { value: "max(incidents, severity, open)", range: [1, 5] }
 *       rows:
 *         - { tier: platinum, severity: ">= 4", then: [...] }
 *         - { tier: [gold, platinum], severity: "2..3", then: [...] }
 *
 * Each row compiles into a rule whose condition is the table's `when` and
 * its cells, each cell a comparison of the column's value; the rows of a
 * table share an exclusive group of their own, so one row answers: the
 * first that matches (policy first), or the one of highest priority
 * (policy priority). Nothing about tables is left for decision time: the
 * cells also compile into tests of the column values, so that a decision
 * evaluates the table's `when` and each column once, not once per row
 * (ruleset_match). The rows' conditions serve explain and the analyses.
 *
 * Once compiled, each table is checked for gaps (combinations of the values
 * the table mentions that no row covers) and overlaps (rows that can never
 * be chosen, or rows of equal priority that match the same case), over the
 * combinations of one representative value per stretch of each column.
 */
#include "rules_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static size_t map_len(const yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

size_t tables_count_rows(rules_compiler *c, const yaml_node_t *tables, size_t *n_tables)
{
    *n_tables = 0;
    if (tables->type != YAML_SEQUENCE_NODE)
        return 0;
    size_t rows = 0;
    *n_tables = seq_len(tables);
    for (size_t i = 0; i < *n_tables; i++) {
        const yaml_node_t *t = rules_node(c, tables->data.sequence.items.start[i]);
        if (t->type != YAML_MAPPING_NODE)
            continue;
        /* Every `rows` key counts, not just the first: a key given twice is
         * an error, but compiling goes on with the table's last one, and a
         * key with a NUL after "rows" reads as "rows" here. An upper bound
         * is all the room needs. */
        for (yaml_node_pair_t *p = t->data.mapping.pairs.start; p < t->data.mapping.pairs.top;
             p++) {
            const yaml_node_t *k = rules_node(c, p->key), *r = rules_node(c, p->value);
            if (k->type == YAML_SCALAR_NODE &&
                strcmp((const char *)k->data.scalar.value, "rows") == 0 &&
                r->type == YAML_SEQUENCE_NODE)
                rows += seq_len(r);
        }
    }
    return rows;
}

/* ---- columns ---- */

static const char *const row_keys[] = {"then", "id", "priority", "reason", "description"};
#define N_ROW_KEYS (sizeof row_keys / sizeof row_keys[0])

static bool column_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    for (size_t i = 0; i < N_ROW_KEYS; i++)
        if (strcmp(s, row_keys[i]) == 0)
            return false;
    return true;
}

static int compile_column(rules_compiler *c, const yaml_node_t *k, const yaml_node_t *v,
                          table_column *col)
{
    int rc = rules_name_value(c, k, "a column name", &col->name);
    if (rc)
        return rc;
    if (!column_name_ok(col->name))
        return rules_error_node(c->src, k,
                                "a column name uses letters, digits, '_' and '-', and is not "
                                "one of then, id, priority, reason, description");
    enum { C_VALUE, C_VALUES, C_RANGE, C_DESCRIPTION, N_C };
    static const char *const keys[N_C] = {"value", "values", "range", "description"};
    yaml_node_t *vals[N_C] = {0};
    if (v->type == YAML_MAPPING_NODE) {
        rc = rules_mapping(c, v, "a column", keys, N_C, 1u << C_VALUE, vals);
        if (rc)
            return rc;
    } else {
        vals[C_VALUE] = (yaml_node_t *)v;
    }
    if (vals[C_VALUE]->type != YAML_SCALAR_NODE)
        return rules_error_node(c->src, vals[C_VALUE],
                                "a column's value is an expression written as text, such as "
                                "customer.tier or \"max(incidents, severity)\"");
    expr *input;
    rc = expr_compile_value(c, vals[C_VALUE], &input);
    if (rc)
        return rc;
    if (input->type == RT_DYNAMIC)
        expr_settle_dynamic(input, RT_STRING);
    col->input = input;
    int failed = 0;
    if (vals[C_VALUES]) {
        const yaml_node_t *l = vals[C_VALUES];
        if (l->type != YAML_SEQUENCE_NODE)
            return rules_error_node(c->src, l,
                                    "'values' lists the values the column can take, e.g. "
                                    "[platinum, gold, silver, none]");
        size_t n = seq_len(l);
        col->values = rules_alloc(c, (n ? n : 1) * sizeof *col->values);
        if (!col->values)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            const yaml_node_t *item = rules_node(c, l->data.sequence.items.start[i]);
            expr *lit = NULL;
            rc =
                item->type != YAML_SCALAR_NODE
                    ? rules_error_node(c->src, item, "expected a value")
                    : expr_compile_literal(c, item, 0, item->data.scalar.length, input->type, &lit);
            if (rules_failed(&failed, rc))
                return failed;
            if (!rc)
                col->values[col->n_values++] = lit;
        }
    }
    if (vals[C_RANGE]) {
        const yaml_node_t *l = vals[C_RANGE];
        if (!rules_type_numeric(input->type))
            return rules_error_node(c->src, l,
                                    "'range' is for columns of numbers, durations or "
                                    "times; list text values under 'values'");
        if (l->type != YAML_SEQUENCE_NODE || seq_len(l) != 2)
            return rules_error_node(c->src, l, "'range' is [lowest, highest], e.g. [1, 5]");
        expr *lo = NULL, *hi = NULL;
        const yaml_node_t *a = rules_node(c, l->data.sequence.items.start[0]);
        const yaml_node_t *b = rules_node(c, l->data.sequence.items.start[1]);
        if (a->type != YAML_SCALAR_NODE || b->type != YAML_SCALAR_NODE)
            return rules_error_node(c->src, l, "'range' is [lowest, highest], e.g. [1, 5]");
        rc = expr_compile_literal(c, a, 0, a->data.scalar.length, input->type, &lo);
        if (!rc)
            rc = expr_compile_literal(c, b, 0, b->data.scalar.length, input->type, &hi);
        if (rc)
            return rc;
        if (lo->u.num > hi->u.num)
            return rules_error_node(c->src, l, "'range' goes from the lowest to the highest");
        col->has_range = true;
        col->range_lo = lo->u.num;
        col->range_hi = hi->u.num;
    }
    return failed;
}

/* ---- cells ---- */

/* The text of a cell for explain: "severity >= 4", "tier in [gold, silver]". */
static const char *cell_text(rules_compiler *c, const char *column, const char *op,
                             const char *value, size_t len)
{
    size_t size = strlen(column) + strlen(op) + len + 4;
    char *t = rules_alloc(c, size);
    if (t)
        snprintf(t, size, "%s %s %.*s", column, op, (int)len, value);
    return t;
}

static expr *compare(rules_compiler *c, const table_column *col, expr_cmp cmp, expr *lit)
{
    expr *e = expr_new(c, EX_CMP, RT_BOOL, 2);
    if (!e)
        return NULL;
    e->cmp = cmp;
    e->operand = rules_type_numeric(col->input->type) ? RT_NUMBER : col->input->type;
    e->u.kids[0] = (expr *)col->input;
    e->u.kids[1] = lit;
    e->pos = lit->pos;
    e->end = lit->end;
    return e;
}

/* A list cell: the column's value is one of the items. */
static int list_cell(rules_compiler *c, const table_column *col, const yaml_node_t *n,
                     rule_cond *out)
{
    rules_type t = col->input->type;
    size_t count = seq_len(n);
    if (t == RT_BOOL)
        return rules_error_node(c->src, n, "a true/false column takes true, false or \"*\"");
    if (count == 0)
        return rules_error_node(c->src, n,
                                "an empty list would never match; write \"*\" for "
                                "any value");
    expr *list = expr_new(c, EX_LIST, RT_DYNAMIC, 0);
    if (!list)
        return -ENOMEM;
    list->n = count;
    list->list_type = t;
    if (t == RT_STRING)
        list->strs = rules_alloc(c, count * sizeof *list->strs);
    else
        list->nums = rules_alloc(c, count * sizeof *list->nums);
    if (!list->strs && !list->nums)
        return -ENOMEM;
    char text[512];
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = rules_node(c, n->data.sequence.items.start[i]);
        if (item->type != YAML_SCALAR_NODE)
            return rules_error_node(c->src, item, "expected a value");
        expr *lit;
        int rc = expr_compile_literal(c, item, 0, item->data.scalar.length, t, &lit);
        if (rc)
            return rc;
        if (t == RT_STRING)
            list->strs[i] = lit->u.str;
        else
            list->nums[i] = lit->u.num;
        int w = snprintf(text + k, sizeof text - k, "%s%s", i ? ", " : "",
                         (const char *)item->data.scalar.value);
        if (w > 0 && (size_t)w < sizeof text - k)
            k += (size_t)w;
    }
    expr *e = expr_new(c, EX_IN, RT_BOOL, 2);
    if (!e)
        return -ENOMEM;
    e->operand = rules_type_numeric(t) ? RT_NUMBER : t;
    e->u.kids[0] = (expr *)col->input;
    e->u.kids[1] = list;
    char shown[600];
    snprintf(shown, sizeof shown, "[%.*s]", (int)k, text);
    out->e = e;
    out->text = cell_text(c, col->name, "in", shown, strlen(shown));
    return out->text ? 0 : -ENOMEM;
}

/* A cell: "*" (any), a value (equal), an operator and a value (">= 4",
 * "!= gold"), a range of numbers, durations or times ("1..3"), or a list.
 * Sets out->e NULL for "*". */
static int compile_cell(rules_compiler *c, const table_column *col, const yaml_node_t *n,
                        rule_cond *out)
{
    out->e = NULL;
    out->text = NULL;
    if (n->type == YAML_SEQUENCE_NODE)
        return list_cell(c, col, n, out);
    if (n->type != YAML_SCALAR_NODE)
        return rules_error_node(c->src, n,
                                "a cell is a value, an operator and a value (\">= 4\"), a range "
                                "(\"1..3\"), a list ([a, b]) or \"*\"");
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length, i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t end = len;
    while (end > i && (s[end - 1] == ' ' || s[end - 1] == '\t'))
        end--;
    if (end - i == 1 && s[i] == '*')
        return 0;
    rules_type t = col->input->type;
    static const struct {
        const char *op;
        expr_cmp cmp;
    } ops[] = {{"==", CMP_EQ}, {"!=", CMP_NE}, {"<=", CMP_LE},
               {">=", CMP_GE}, {"<", CMP_LT},  {">", CMP_GT}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t ol = strlen(ops[k].op);
        if (end - i < ol || memcmp(s + i, ops[k].op, ol) != 0)
            continue;
        if (t == RT_BOOL && ops[k].cmp != CMP_EQ && ops[k].cmp != CMP_NE)
            return rules_error_scalar(c->src, n, i,
                                      "true/false can only be compared with == or !=");
        expr *lit;
        int rc = expr_compile_literal(c, n, i + ol, end, t, &lit);
        if (rc)
            return rc;
        out->e = compare(c, col, ops[k].cmp, lit);
        if (!out->e)
            return -ENOMEM;
        size_t v = i + ol;
        while (v < end && s[v] == ' ')
            v++;
        out->text = cell_text(c, col->name, ops[k].op, s + v, end - v);
        return out->text ? 0 : -ENOMEM;
    }
    const char *dots = rules_type_numeric(t) ? strstr(s + i, "..") : NULL;
    if (dots && (size_t)(dots - s) < end) {
        size_t d = (size_t)(dots - s);
        expr *lo, *hi;
        int rc = expr_compile_literal(c, n, i, d, t, &lo);
        if (!rc)
            rc = expr_compile_literal(c, n, d + 2, end, t, &hi);
        if (rc)
            return rc;
        if (lo->u.num > hi->u.num)
            return rules_error_scalar(c->src, n, i, "a range goes from the lowest to the highest");
        expr *e = expr_new(c, EX_AND, RT_BOOL, 2);
        if (!e)
            return -ENOMEM;
        e->u.kids[0] = compare(c, col, CMP_GE, lo);
        e->u.kids[1] = compare(c, col, CMP_LE, hi);
        if (!e->u.kids[0] || !e->u.kids[1])
            return -ENOMEM;
        out->e = e;
        out->text = cell_text(c, col->name, "in", s + i, end - i);
        return out->text ? 0 : -ENOMEM;
    }
    expr *lit;
    int rc = expr_compile_literal(c, n, i, end, t, &lit);
    if (rc)
        return rc;
    out->e = compare(c, col, CMP_EQ, lit);
    if (!out->e)
        return -ENOMEM;
    out->text = cell_text(c, col->name, "==", s + i, end - i);
    return out->text ? 0 : -ENOMEM;
}

/* ---- rows ---- */

/* One test of a cell's expression (a comparison or a list), for
 * ruleset_match. */
static void cell_test(const expr *e, size_t column, table_cell *out)
{
    memset(out, 0, sizeof *out);
    const expr *lit = e->u.kids[1];
    out->column = column;
    out->op = e->op;
    out->operand = e->operand;
    out->cmp = e->cmp;
    out->negate = e->negate;
    if (e->op == EX_IN) {
        out->n = lit->n;
        out->nums = lit->nums;
        out->strs = lit->strs;
    } else if (e->operand == RT_STRING) {
        out->str = lit->u.str;
    } else if (e->operand == RT_BOOL) {
        out->b = lit->u.b;
    } else {
        out->num = lit->u.num;
    }
}

/* The row's cells (conds[0..n), of columns[0..n)) as the tests
 * ruleset_match runs over the column values it reads once per table: the
 * rows of a table read the same values, and the table's `when` is apart. */
static int row_tests(rules_compiler *c, const rule_cond *conds, const size_t *columns, size_t n,
                     rule *r)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += conds[i].e->op == EX_AND ? conds[i].e->n : 1;
    table_cell *tests = rules_alloc(c, (count ? count : 1) * sizeof *tests);
    if (!tests)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const expr *e = conds[i].e;
        if (e->op == EX_AND) /* a range: >= lo and <= hi */
            for (size_t j = 0; j < e->n; j++)
                cell_test(e->u.kids[j], columns[i], &tests[k++]);
        else
            cell_test(e, columns[i], &tests[k++]);
    }
    r->cells = tests;
    r->n_cells = count;
    return 0;
}

typedef struct table_ctx {
    rule_table *t;
    int table;     /* index of t */
    long priority; /* the table's */
    const message *reason;
    const rule_cond *guard;
    size_t n_guard;
    const yaml_node_t *group;
    const int *groups; /* compiled with the first row, shared by the others */
    size_t n_groups;
    int own_group;
} table_ctx;

static int compile_row(rules_compiler *c, table_ctx *x, const yaml_node_t *n, size_t row, rule *r,
                       rule_origin *o)
{
    rule_table *t = x->t;
    if (n->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, n,
                                "a row maps column names to cells and gives 'then', e.g. "
                                "{ tier: gold, then: [...] }");
    const yaml_node_t *cells[64] = {0};
    const yaml_node_t *v[N_ROW_KEYS] = {0};
    int failed = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = rules_node(c, p->key);
        const char *s;
        size_t len;
        int rc = rules_scalar(c, k, "a column name", &s, &len);
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        bool found = false;
        for (size_t i = 0; i < t->n_columns && !found; i++) {
            if (strlen(t->columns[i].name) == len && memcmp(t->columns[i].name, s, len) == 0) {
                cells[i] = rules_node(c, p->value);
                found = true;
            }
        }
        for (size_t i = 0; i < N_ROW_KEYS && !found; i++) {
            if (strlen(row_keys[i]) == len && memcmp(row_keys[i], s, len) == 0) {
                v[i] = rules_node(c, p->value);
                found = true;
            }
        }
        if (found)
            continue;
        rules_hint h;
        char hint[96];
        rules_hint_init(&h, s, len);
        for (size_t i = 0; i < t->n_columns; i++)
            rules_hint_try(&h, t->columns[i].name);
        for (size_t i = 0; i < N_ROW_KEYS; i++)
            rules_hint_try(&h, row_keys[i]);
        if (rules_failed(&failed, rules_error_node(c->src, k,
                                                   "unknown column '%.*s' in a row of table "
                                                   "'%s'%s",
                                                   (int)len, s, t->id,
                                                   rules_hint_text(&h, hint, sizeof hint))))
            return failed;
    }
    /* id */
    o->id = v[1];
    if (v[1]) {
        const char *id;
        int rc = rules_name_value(c, v[1], "a row id", &id);
        if (!rc) {
            rc = rules_check_id(c, v[1], id, r->index);
            r->id = id;
        }
        if (rules_failed(&failed, rc))
            return failed;
    }
    if (!r->id) {
        char id[256];
        snprintf(id, sizeof id, "%s#%zu", t->id, row);
        r->id = rules_strndup(c, id, strlen(id));
        if (!r->id)
            return -ENOMEM;
    }
    if (v[4]) {
        const char *s;
        size_t len;
        if (rules_failed(&failed, rules_scalar(c, v[4], "a description", &s, &len)))
            return failed;
    }
    /* priority */
    r->priority = x->priority;
    if (t->by_priority) {
        int rc = v[2] ? rules_integer(c, v[2], "'priority'", &r->priority)
                      : rules_error_node(c->src, n,
                                         "with 'policy: priority' every row gives its "
                                         "'priority'");
        if (rules_failed(&failed, rc))
            return failed;
    } else if (v[2] && rules_failed(&failed, rules_error_node(c->src, v[2],
                                                              "a row's 'priority' counts only "
                                                              "with 'policy: priority'; with "
                                                              "policy first, the first row that "
                                                              "matches answers")))
        return failed;
    /* groups */
    if (!x->groups) {
        int rc = rules_compile_groups(c, x->group, x->own_group, r);
        if (rules_failed(&failed, rc))
            return failed;
        x->groups = r->groups;
        x->n_groups = r->n_groups;
    } else {
        r->groups = x->groups;
        r->n_groups = x->n_groups;
    }
    /* cells, after the table's own condition */
    rule_cond *conds = rules_alloc(c, (x->n_guard + t->n_columns) * sizeof *conds);
    if (!conds)
        return -ENOMEM;
    size_t nc = 0;
    for (size_t i = 0; i < x->n_guard; i++)
        conds[nc++] = x->guard[i];
    bool cells_ok = true;
    size_t columns[64]; /* of each cell, as conds holds them after the guard */
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!cells[i] || !t->columns[i].input)
            continue;
        rule_cond cell;
        int rc = compile_cell(c, &t->columns[i], cells[i], &cell);
        if (rc) {
            cells_ok = false;
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        if (cell.e) {
            columns[nc - x->n_guard] = i;
            conds[nc++] = cell;
        }
    }
    r->conds = conds;
    r->n_conds = nc;
    if (cells_ok) {
        int rc = row_tests(c, &conds[x->n_guard], columns, nc - x->n_guard, r);
        if (rc)
            return rc;
        if (nc == 0) {
            expr *e = expr_new(c, EX_BOOL, RT_BOOL, 0);
            if (!e)
                return -ENOMEM;
            e->u.b = true;
            r->when = e;
        } else if (nc == 1) {
            r->when = conds[0].e;
        } else {
            expr *e = expr_new(c, EX_AND, RT_BOOL, nc);
            if (!e)
                return -ENOMEM;
            for (size_t i = 0; i < nc; i++)
                e->u.kids[i] = (expr *)conds[i].e;
            r->when = e;
        }
    }
    /* actions */
    const message *reason = x->reason;
    if (v[3] && rules_failed(&failed, rules_message_ref(c, v[3], "reason", &reason)))
        return failed;
    if (!v[0]) {
        rules_failed(&failed, rules_error_node(c->src, n,
                                               "a row is missing 'then' (write 'then: []' for "
                                               "a row that does nothing)"));
        return failed;
    }
    if (rules_failed(&failed, rules_compile_actions(c, v[0], reason, true, r)))
        return failed;
    return failed;
}

enum {
    T_ID,
    T_DESCRIPTION,
    T_PRIORITY,
    T_GROUP,
    T_POLICY,
    T_WHEN,
    T_REASON,
    T_COLUMNS,
    T_ROWS,
    N_TABLE_KEYS
};
static const char *const table_keys[N_TABLE_KEYS] = {
    "id", "description", "priority", "group", "policy", "when", "reason", "columns", "rows",
};

static int compile_table(rules_compiler *c, const yaml_node_t *n, rule_table *t, int index)
{
    ruleset *rs = c->rs;
    yaml_node_t *v[N_TABLE_KEYS];
    unsigned required = 1u << T_ID | 1u << T_COLUMNS | 1u << T_ROWS;
    int failed = 0;
    int rc = rules_mapping(c, n, "a table", table_keys, N_TABLE_KEYS, required, v);
    if (rules_failed(&failed, rc) || !v[T_ID] || !v[T_COLUMNS] || !v[T_ROWS])
        return failed;
    table_ctx x = {.t = t, .table = index, .group = v[T_GROUP]};
    const char *id;
    rc = rules_name_value(c, v[T_ID], "a table id", &id);
    if (!rc)
        rc = rules_check_id(c, v[T_ID], id, rs->n_rules);
    if (!rc) {
        for (int i = 0; i < index && !rc; i++)
            if (rs->tables[i].id && strcmp(rs->tables[i].id, id) == 0)
                rc = rules_error_node(c->src, v[T_ID], "duplicate table id '%s'", id);
    }
    if (rc)
        return rc;
    t->id = id;
    if (v[T_DESCRIPTION]) {
        const char *s;
        size_t len;
        if (rules_failed(&failed, rules_scalar(c, v[T_DESCRIPTION], "a description", &s, &len)))
            return failed;
    }
    if (v[T_PRIORITY] &&
        rules_failed(&failed, rules_integer(c, v[T_PRIORITY], "'priority'", &x.priority)))
        return failed;
    if (v[T_POLICY]) {
        const char *s;
        size_t len;
        rc = rules_scalar(c, v[T_POLICY], "a policy", &s, &len);
        if (!rc && strcmp(s, "priority") == 0)
            t->by_priority = true;
        else if (!rc && strcmp(s, "first") != 0)
            rc = rules_error_node(c->src, v[T_POLICY],
                                  "unknown policy '%s' (policy: first, the first row that "
                                  "matches; or policy: priority, the matching row of highest "
                                  "priority)",
                                  s);
        if (rules_failed(&failed, rc))
            return failed;
    }
    if (v[T_REASON] &&
        rules_failed(&failed, rules_message_ref(c, v[T_REASON], "reason", &x.reason)))
        return failed;
    /* the table's own condition: its conjuncts lead every row's conditions */
    if (v[T_WHEN]) {
        expr *when = NULL;
        rc = v[T_WHEN]->type != YAML_SCALAR_NODE
                 ? rules_error_node(c->src, v[T_WHEN], "'when' must be a condition written as text")
                 : expr_compile(c, v[T_WHEN], &when);
        if (rules_failed(&failed, rc))
            return failed;
        if (!rc) {
            size_t n_guard = when->op == EX_AND ? when->n : 1;
            rule_cond *g = rules_alloc(c, n_guard * sizeof *g);
            if (!g)
                return -ENOMEM;
            for (size_t i = 0; i < n_guard; i++) {
                g[i].e = when->op == EX_AND ? when->u.kids[i] : when;
                g[i].text = rules_expr_text(c, v[T_WHEN], g[i].e);
                if (!g[i].text)
                    return -ENOMEM;
            }
            x.guard = g;
            x.n_guard = n_guard;
            t->guard = when;
        }
    }
    /* columns */
    const yaml_node_t *cols = v[T_COLUMNS];
    if (cols->type != YAML_MAPPING_NODE || map_len(cols) == 0) {
        rules_failed(&failed, rules_error_node(c->src, cols,
                                               "'columns' maps column names to the values they "
                                               "show, e.g. { tier: customer.tier }"));
        return failed;
    }
    if (map_len(cols) > 64)
        return rules_error_node(c->src, cols, "a table has at most 64 columns");
    t->columns = rules_alloc(c, map_len(cols) * sizeof *t->columns);
    if (!t->columns)
        return -ENOMEM;
    memset(t->columns, 0, map_len(cols) * sizeof *t->columns);
    t->n_columns = map_len(cols);
    for (size_t i = 0; i < t->n_columns; i++) {
        const yaml_node_pair_t *p = &cols->data.mapping.pairs.start[i];
        rc = compile_column(c, rules_node(c, p->key), rules_node(c, p->value), &t->columns[i]);
        if (rules_failed(&failed, rc))
            return failed;
        if (!t->columns[i].name)
            t->columns[i].name = "?";
    }
    /* rows: rules of their own, exclusive within the table */
    const yaml_node_t *rows = v[T_ROWS];
    if (rows->type != YAML_SEQUENCE_NODE || seq_len(rows) == 0) {
        rules_failed(&failed, rules_error_node(c->src, rows,
                                               "'rows' must be a non-empty list of rows "
                                               "(- { column: cell, then: [...] })"));
        return failed;
    }
    x.own_group = rules_table_group(c, t->id, index);
    if (x.own_group < 0)
        return x.own_group;
    t->first_rule = rs->n_rules;
    for (size_t i = 0; i < seq_len(rows); i++) {
        size_t k = rs->n_rules;
        rule *r = &rs->rules[k];
        rule_origin *o = &c->origins[k];
        memset(r, 0, sizeof *r);
        r->index = k;
        r->table = index;
        r->row = i + 1;
        o->file = c->file;
        o->node = rules_node(c, rows->data.sequence.items.start[i]);
        o->group = v[T_GROUP];
        rc = compile_row(c, &x, o->node, i + 1, r, o);
        rs->n_rules++;
        t->n_rows++;
        if (rc) {
            o->broken = true;
            if (rules_failed(&failed, rc))
                return failed;
        }
    }
    return failed;
}

int tables_compile(rules_compiler *c, const yaml_node_t *tables)
{
    ruleset *rs = c->rs;
    if (tables->type != YAML_SEQUENCE_NODE)
        return rules_error_node(c->src, tables,
                                "'tables' must be a list of decision tables (- id: ...)");
    int failed = 0;
    for (size_t i = 0; i < seq_len(tables); i++) {
        int index = (int)rs->n_tables;
        rule_table *t = &rs->tables[index];
        memset(t, 0, sizeof *t);
        rs->n_tables++;
        int rc = compile_table(c, rules_node(c, tables->data.sequence.items.start[i]), t, index);
        if (rules_failed(&failed, rc))
            return failed;
    }
    return failed;
}

/* ---- gaps and overlaps ---- */

/* Most combinations of column values looked at per table. */
#define CHECK_MAX_POINTS 20000
/* Most gaps named per table. */
#define GAPS_SHOWN 3

/* One representative value of a column. `other` stands for a text no row
 * names. */
typedef struct point {
    double num;
    strv str;
    bool b;
    bool other;
} point;

typedef struct column_points {
    point *p;
    size_t n, cap;
} column_points;

static int add_point(column_points *cp, point pt)
{
    for (size_t i = 0; i < cp->n; i++) {
        const point *q = &cp->p[i];
        if (q->other != pt.other)
            continue;
        if (pt.other || (q->num == pt.num && q->b == pt.b && q->str.len == pt.str.len &&
                         (pt.str.len == 0 || memcmp(q->str.s, pt.str.s, pt.str.len) == 0)))
            return 0;
    }
    if (cp->n == cp->cap) {
        size_t cap = cp->cap ? cp->cap * 2 : 8;
        point *grown = realloc(cp->p, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        cp->p = grown;
        cp->cap = cap;
    }
    cp->p[cp->n++] = pt;
    return 0;
}

/* The cell of row r for column col, or NULL for any value. */
static const expr *cell_of(const rule *r, const table_column *col)
{
    for (size_t i = 0; i < r->n_conds; i++) {
        const expr *e = r->conds[i].e;
        const expr *k = e->op == EX_AND && e->n == 2 ? e->u.kids[0] : e;
        if ((k->op == EX_CMP || k->op == EX_IN) && k->u.kids[0] == col->input)
            return e;
    }
    return NULL;
}

static int cmp_num(double a, double b)
{
    return a < b ? -1 : a > b;
}

static int cmp_str(strv a, strv b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int r = memcmp(a.s, b.s, n);
    return r ? r : a.len < b.len ? -1 : a.len > b.len;
}

static bool ordered(int r, expr_cmp cmp)
{
    switch (cmp) {
    case CMP_EQ:
        return r == 0;
    case CMP_NE:
        return r != 0;
    case CMP_LT:
        return r < 0;
    case CMP_LE:
        return r <= 0;
    case CMP_GT:
        return r > 0;
    case CMP_GE:
        return r >= 0;
    }
    return false;
}

static bool cell_holds(const expr *e, rules_type t, const point *pt)
{
    if (!e)
        return true;
    if (e->op == EX_AND) {
        for (size_t i = 0; i < e->n; i++)
            if (!cell_holds(e->u.kids[i], t, pt))
                return false;
        return true;
    }
    const expr *lit = e->u.kids[1];
    if (e->op == EX_IN) {
        bool found = false;
        for (size_t i = 0; i < lit->n && !found; i++)
            found = t == RT_STRING ? !pt->other && cmp_str(pt->str, lit->strs[i]) == 0
                                   : pt->num == lit->nums[i];
        return e->negate ? !found : found;
    }
    if (t == RT_BOOL)
        return e->cmp == CMP_EQ ? pt->b == lit->u.b : pt->b != lit->u.b;
    if (t == RT_STRING) {
        if (pt->other)
            return e->cmp == CMP_NE;
        return ordered(cmp_str(pt->str, lit->u.str), e->cmp);
    }
    return ordered(cmp_num(pt->num, lit->u.num), e->cmp);
}

static void cell_constants(const expr *e, rules_type t, column_points *consts, int *rc)
{
    if (!e || *rc)
        return;
    if (e->op == EX_AND) {
        for (size_t i = 0; i < e->n; i++)
            cell_constants(e->u.kids[i], t, consts, rc);
        return;
    }
    const expr *lit = e->u.kids[1];
    if (e->op == EX_IN) {
        for (size_t i = 0; i < lit->n && !*rc; i++) {
            point pt = {0};
            if (t == RT_STRING)
                pt.str = lit->strs[i];
            else
                pt.num = lit->nums[i];
            *rc = add_point(consts, pt);
        }
        return;
    }
    point pt = {0};
    if (t == RT_STRING)
        pt.str = lit->u.str;
    else if (t == RT_BOOL)
        pt.b = lit->u.b;
    else
        pt.num = lit->u.num;
    *rc = add_point(consts, pt);
}

static int num_cmp_qsort(const void *a, const void *b)
{
    return cmp_num(((const point *)a)->num, ((const point *)b)->num);
}

/* Values that can never be negative: counts, sums of counts, durations. */
static bool non_negative(const expr *input)
{
    return input->op == EX_COUNT || input->type == RT_DURATION ||
           (input->op == EX_PATH && input->u.path.field == FF_INCIDENT_SEVERITY);
}

/* One representative value per stretch of the column: the constants the
 * cells name, a value between each two (an integer when they are all whole
 * numbers), one below and one above; clipped to `range`. */
static int column_representatives(const rule_table *t, const ruleset *rs, size_t ci,
                                  column_points *out)
{
    const table_column *col = &t->columns[ci];
    rules_type type = col->input->type;
    column_points consts = {0};
    int rc = 0;
    for (size_t r = 0; r < t->n_rows && !rc; r++)
        cell_constants(cell_of(&rs->rules[t->first_rule + r], col), type, &consts, &rc);
    for (size_t i = 0; i < col->n_values && !rc; i++) {
        point pt = {0};
        if (type == RT_STRING)
            pt.str = col->values[i]->u.str;
        else if (type == RT_BOOL)
            pt.b = col->values[i]->u.b;
        else
            pt.num = col->values[i]->u.num;
        rc = add_point(&consts, pt);
    }
    if (rc)
        goto out;
    if (type == RT_BOOL) {
        rc = add_point(out, (point){.b = true});
        if (!rc)
            rc = add_point(out, (point){.b = false});
        goto out;
    }
    if (type == RT_STRING) {
        for (size_t i = 0; i < consts.n && !rc; i++)
            rc = add_point(out, consts.p[i]);
        if (!rc && !col->n_values)
            rc = add_point(out, (point){.other = true});
        goto out;
    }
    if (col->n_values) {
        /* the values that exist, and nothing else */
        for (size_t i = 0; i < col->n_values && !rc; i++)
            rc = add_point(out, (point){.num = col->values[i]->u.num});
        goto out;
    }
    if (col->has_range) {
        rc = add_point(&consts, (point){.num = col->range_lo});
        if (!rc)
            rc = add_point(&consts, (point){.num = col->range_hi});
    }
    if (rc)
        goto out;
    if (consts.n == 0) {
        rc = add_point(out, (point){.num = 0});
        goto out;
    }
    qsort(consts.p, consts.n, sizeof *consts.p, num_cmp_qsort);
    bool whole = type == RT_NUMBER;
    for (size_t i = 0; i < consts.n && whole; i++)
        whole = consts.p[i].num == floor(consts.p[i].num);
    double step = whole ? 1 : type == RT_NUMBER ? 1 : RULES_DAY_MS;
    rc = add_point(out, (point){.num = consts.p[0].num - step});
    for (size_t i = 0; i < consts.n && !rc; i++) {
        rc = add_point(out, consts.p[i]);
        if (rc || i + 1 == consts.n)
            continue;
        double a = consts.p[i].num, b = consts.p[i + 1].num;
        if (whole) {
            if (a + 1 < b)
                rc = add_point(out, (point){.num = a + 1});
        } else {
            rc = add_point(out, (point){.num = a + (b - a) / 2});
        }
    }
    if (!rc)
        rc = add_point(out, (point){.num = consts.p[consts.n - 1].num + step});
    /* keep what can happen */
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        double x = out->p[i].num;
        if (col->has_range && (x < col->range_lo || x > col->range_hi))
            continue;
        if (non_negative(col->input) && x < 0)
            continue;
        out->p[k++] = out->p[i];
    }
    out->n = k;
    if (out->n == 0)
        rc = add_point(out, (point){.num = col->has_range ? col->range_lo : 0});
out:
    free(consts.p);
    return rc;
}

static size_t describe_point(const rule_table *t, const column_points *cps, const size_t *at,
                             char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t ci = 0; ci < t->n_columns; ci++) {
        const table_column *col = &t->columns[ci];
        const point *pt = &cps[ci].p[at[ci]];
        char value[64];
        if (pt->other)
            snprintf(value, sizeof value, "any other value");
        else if (col->input->type == RT_STRING)
            snprintf(value, sizeof value, "%.*s", (int)(pt->str.len < 60 ? pt->str.len : 60),
                     pt->str.s);
        else if (col->input->type == RT_BOOL)
            snprintf(value, sizeof value, "%s", pt->b ? "true" : "false");
        else if (col->input->type == RT_DURATION)
            rules_format_duration(pt->num, value, sizeof value);
        else if (col->input->type == RT_TIME)
            rules_format_time(pt->num, value, sizeof value);
        else
            rules_format_number(pt->num, value, sizeof value);
        int w = snprintf(buf + k, size - k, "%s%s %s %s", k ? ", " : "", col->name,
                         pt->other ? "is" : "=", value);
        if (w < 0 || (size_t)w >= size - k)
            break;
        k += (size_t)w;
    }
    return k;
}

static const char *row_name(const rule *r, char *buf, size_t size)
{
    snprintf(buf, size, "row %zu ('%s')", r->row, r->id);
    return buf;
}

static void check_table(rules_compiler *c, const rule_table *t)
{
    const ruleset *rs = c->rs;
    const rule *rows = &rs->rules[t->first_rule];
    const rule_origin *origins = &c->origins[t->first_rule];
    column_points *cps = calloc(t->n_columns, sizeof *cps);
    size_t *at = calloc(t->n_columns, sizeof *at);
    bool *chosen = calloc(t->n_rows, sizeof *chosen);
    bool *reported = calloc(t->n_rows * t->n_rows, sizeof *reported);
    if (!cps || !at || !chosen || !reported)
        goto out;
    size_t total = 1;
    for (size_t ci = 0; ci < t->n_columns; ci++) {
        if (column_representatives(t, rs, ci, &cps[ci]) != 0 || cps[ci].n == 0)
            goto out;
        total = total > CHECK_MAX_POINTS / cps[ci].n + 1 ? CHECK_MAX_POINTS + 1 : total * cps[ci].n;
    }
    if (total > CHECK_MAX_POINTS)
        goto out; /* too many combinations to look at */

    size_t gaps = 0;
    char where[512], a[300], b[300];
    for (size_t p = 0; p < total; p++) {
        /* the p-th combination */
        size_t rest = p;
        bool has_other = false;
        for (size_t ci = 0; ci < t->n_columns; ci++) {
            at[ci] = rest % cps[ci].n;
            rest /= cps[ci].n;
            has_other |= cps[ci].p[at[ci]].other;
        }
        long best_priority = 0;
        size_t best = t->n_rows;
        for (size_t r = 0; r < t->n_rows; r++) {
            bool holds = rows[r].when != NULL;
            for (size_t ci = 0; ci < t->n_columns && holds; ci++)
                holds = cell_holds(cell_of(&rows[r], &t->columns[ci]), t->columns[ci].input->type,
                                   &cps[ci].p[at[ci]]);
            if (!holds)
                continue;
            if (best == t->n_rows || (t->by_priority && rows[r].priority > best_priority)) {
                best = r;
                best_priority = rows[r].priority;
            } else if (t->by_priority && rows[r].priority == best_priority &&
                       !reported[best * t->n_rows + r]) {
                reported[best * t->n_rows + r] = true;
                describe_point(t, cps, at, where, sizeof where);
                rules_enter_file(c, origins[r].file);
                rules_warn_node(c->src, origins[r].node,
                                "%s and %s of table '%s' both match %s with the same priority; "
                                "the first of them answers; hint: give them different "
                                "priorities, or make their cells exclusive",
                                row_name(&rows[best], a, sizeof a), row_name(&rows[r], b, sizeof b),
                                t->id, where);
            }
        }
        if (best < t->n_rows) {
            chosen[best] = true;
            continue;
        }
        if (has_other)
            continue; /* values nobody named are not a gap */
        if (gaps++ < GAPS_SHOWN) {
            describe_point(t, cps, at, where, sizeof where);
            rules_enter_file(c, origins[0].file);
            rules_warn_node(c->src, origins[0].node,
                            "table '%s' has no row for %s; hint: add a row for it ('then: []' "
                            "if nothing should happen), or a last row with \"*\" for the rest",
                            t->id, where);
        }
    }
    if (gaps > GAPS_SHOWN) {
        rules_enter_file(c, origins[0].file);
        rules_warn_node(c->src, origins[0].node,
                        "table '%s' has %zu more combinations no row "
                        "covers",
                        t->id, gaps - GAPS_SHOWN);
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        if (chosen[r] || !rows[r].when)
            continue;
        rules_enter_file(c, origins[r].file);
        rules_warn_node(c->src, origins[r].node,
                        "%s of table '%s' is never chosen: %s; hint: move it up, or narrow the "
                        "rows before it",
                        row_name(&rows[r], a, sizeof a), t->id,
                        t->by_priority ? "rows of higher priority match every case it matches"
                                       : "earlier rows match every case it matches");
    }
out:
    if (cps)
        for (size_t ci = 0; ci < t->n_columns; ci++)
            free(cps[ci].p);
    free(cps);
    free(at);
    free(chosen);
    free(reported);
}

void tables_check(rules_compiler *c)
{
    const ruleset *rs = c->rs;
    for (size_t i = 0; i < rs->n_tables; i++) {
        const rule_table *t = &rs->tables[i];
        bool ok = t->n_rows > 0 && t->n_columns > 0;
        for (size_t ci = 0; ci < t->n_columns && ok; ci++)
            ok = t->columns[ci].input != NULL;
        if (ok)
            check_table(c, t);
    }
}
