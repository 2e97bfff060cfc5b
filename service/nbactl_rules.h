/* nbactl_rules.h - what nbactl's in-process rule commands share (rules
 * check/test/simulate in nbactl_rules.c, explain in nbactl_explain.c):
 * compiling rule files with their problems printed, channel names, and
 * printing decisions and explanations. */
#ifndef NBA_NBACTL_RULES_H
#define NBA_NBACTL_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "ruleset.h"
#include "nba.pb-c.h"

/* Prints one problem as ops staff read it:
 *   file:line:col: error: message
 *     the source line
 *     caret
 *     hint: ...                                                          */
void nbactl_print_diag(const ruleset_diag *d, FILE *fp);

/* Compiles paths[0..n) into *out, printing every error (and, with
 * warnings, every warning) on fp. Returns EXIT_OK or the exit code of the
 * failure (EXIT_NOINPUT for a file that cannot be read, EXIT_DATAERR for
 * a ruleset that does not compile). */
int nbactl_compile(const char *const *paths, size_t n, bool warnings, FILE *fp, ruleset **out);

/* A channel by its name in the contract ("kiosk", "call_center"). */
bool nbactl_channel(const char *name, Nba__V1__Channel *out);
/* "kiosk", or "" for CHANNEL_UNSPECIFIED. */
const char *nbactl_channel_name(Nba__V1__Channel ch);

/* Decisions and explanations, readable and as JSON. */
void nbactl_print_decision(const Nba__V1__Decision *d, FILE *fp);
json_t *nbactl_decision_json(const Nba__V1__Decision *d);
void nbactl_print_explanation(const Nba__V1__Explanation *e, FILE *fp);
json_t *nbactl_explanation_json(const Nba__V1__Explanation *e);

#endif
