/* letters.h - the letters a ruleset sends after a contact: an apology
 * letter, a note about goodwill miles.
 *
 * The rule files' `letters:` section (rules/README.md, "Letters") gives,
 * per letter and per language, a one-line subject and a body of
 * paragraphs, with the same placeholders as messages ({{customer.name}},
 * {{incident.kind | incident_kinds}}). A letter is named after the action
 * type it goes with, or an action names it with `letter:`; the effects of
 * a decision (policy.h) say which letter each recorded action sends.
 *
 * A letter is rendered when the caller queues it, never on a decision's
 * path: it reads the compiled ruleset and the facts, and allocates only
 * from the caller's arena.
 */
#ifndef NBA_LETTERS_H
#define NBA_LETTERS_H

#include "arena.h"
#include "facts.h"
#include "ruleset.h"
#include "nba.pb-c.h"

/* Renders letter `letter` (an action type, or ruleset_effect.letter) for
 * the customer and event in f, about `incident` (the effect's incident;
 * NULL: {{incident.*}} placeholders render as nothing), in `language`: a
 * BCP 47 tag, usually the decision's language, looked up as decisions look
 * tags up (aliases, shorter prefixes); when NULL or not spoken, the
 * language a decision for f would start from. A language without its own
 * letter gets the default_language letter, as messages do.
 *
 * *subject: one line (a line break in a value becomes a space, so the
 * subject is safe as a mail header). *text: the paragraphs, separated by a blank line,
 * line breaks within a paragraph kept. *html: a whole UTF-8 HTML document
 * (lang set to the letter's language, the subject as its title, each
 * paragraph a <p>, line breaks <br>) in which every character of the
 * letter, substituted values included, is escaped (& < > " '). All three
 * are NUL-terminated, in arena a, valid until it is reset.
 *
 * Returns 0; -ENOENT when the ruleset has no such letter (the outputs are
 * then left alone); -ENOMEM when the arena cannot grow. */
int ruleset_render_letter(const ruleset *rs, const facts *f, const Nba__V1__Incident *incident,
                          const char *letter, const char *language, arena *a, const char **subject,
                          const char **text, const char **html);

/* The language ruleset_render_letter() writes `letter` in for these
 * arguments ("it"; "en" for a language without its own letter), for the
 * outbox entry's language. NULL when the ruleset has no such letter. Valid
 * while the ruleset lives. */
const char *ruleset_letter_language(const ruleset *rs, const facts *f, const char *letter,
                                    const char *language);

#endif
