/* expr.c - being written. */
typedef int nba_placeholder_expr;
