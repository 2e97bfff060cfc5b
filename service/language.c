/* language.c - which of the ruleset's languages serves a BCP 47 tag.
 *
 * Contact points and the warehouse spell tags their own way ("it-IT",
 * "zh_TW", "EN"). Lookup follows RFC 4647 "lookup": the whole tag, then the
 * tag with its last subtag dropped, and so on ("zh-Hant-TW" -> "zh-Hant",
 * "it-IT" -> "it"), comparing case-insensitively with '_' taken as '-'. At
 * each step the rule file's language_aliases are consulted too, so that
 * knowledge such as "zh-TW is written in Traditional characters" lives in
 * the rule file, not here.
 */
#include "rules_internal.h"

static char norm(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return (char)(ch + ('a' - 'A'));
    return ch == '_' ? '-' : ch;
}

static bool tag_eq(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (norm(a[i]) != norm(b[i]))
            return false;
    return true;
}

/* Lengths first: most tags are of another length. */
int rules_language_exact(const ruleset *rs, const char *tag, size_t len)
{
    for (size_t i = 0; i < rs->n_languages; i++)
        if (rs->language_len[i] == len && tag_eq(rs->languages[i], tag, len))
            return (int)i;
    return -1;
}

/* Index into ruleset.two_letter of a letter, or -1. */
static int letter_index(char ch)
{
    unsigned char n = (unsigned char)norm(ch);
    return n >= 'a' && n <= 'z' ? n - 'a' : -1;
}

int rules_language_lookup(const ruleset *rs, const char *tag, size_t len)
{
    while (len > 0) {
        int a, b;
        if (len == 2 && rs->two_letter_built && (a = letter_index(tag[0])) >= 0 &&
            (b = letter_index(tag[1])) >= 0)
            return rs->two_letter[a][b];
        int i = rules_language_exact(rs, tag, len);
        if (i >= 0)
            return i;
        for (size_t k = 0; k < rs->n_aliases; k++)
            if (rs->aliases[k].tag_len == len && tag_eq(rs->aliases[k].tag, tag, len))
                return (int)rs->aliases[k].language;
        while (len > 0 && tag[len - 1] != '-' && tag[len - 1] != '_')
            len--;
        if (len > 0)
            len--; /* the separator */
    }
    return -1;
}

void rules_language_index(ruleset *rs)
{
    rs->two_letter_built = false;
    if (rs->n_languages > INT16_MAX)
        return; /* not in the table's type: looked up the long way */
    for (int a = 0; a < 26; a++) {
        for (int b = 0; b < 26; b++) {
            char tag[2] = {(char)('a' + a), (char)('a' + b)};
            rs->two_letter[a][b] = (int16_t)rules_language_lookup(rs, tag, 2);
        }
    }
    rs->two_letter_built = true;
}
