/* population.h - who the generated customers are: their first languages, in
 * what proportion, the names people with that language plausibly carry and
 * the airports they fly from.
 *
 * Names are written as the airline's systems hold them for that language:
 * given name first for European languages (Spanish and Brazilian customers
 * often with two family names), family name first without a space for
 * Chinese and Korean, family name, space, given name for Japanese; Chinese
 * names in Traditional characters for zh-Hant and Simplified for zh-Hans.
 */
#ifndef NBA_POPULATION_H
#define NBA_POPULATION_H

#include <stddef.h>
#include "rng.h"

typedef enum name_order {
    NAME_GIVEN_FAMILY,        /* "Giulia Rossi" */
    NAME_GIVEN_FAMILY_FAMILY, /* "José García López", sometimes only one family name */
    NAME_FAMILY_GIVEN,        /* "佐藤 花子" */
    NAME_FAMILY_GIVEN_JOINED, /* "陳志明", "김민준" */
} name_order;

typedef struct word_list {
    const char *const *words;
    unsigned count;
} word_list;

typedef struct language_profile {
    const char *tag; /* BCP 47, as customers.csv's language column holds it */
    unsigned weight; /* share of the customers, relative */
    name_order order;
    word_list given, family;
    word_list airports; /* repeated entries are more frequent */
} language_profile;

extern const language_profile population_languages[];
extern const unsigned population_language_count;

/* Draws a language by weight. */
const language_profile *population_pick_language(rng *r);

/* Writes a plausible full name for lp into out (cap bytes, NUL-terminated,
 * UTF-8; 128 bytes always suffice) and returns its length. Now and then a
 * Latin-script name comes as "Family, Given" or with a quoted nickname, as
 * warehouse extracts do, so that CSV quoting gets exercised. */
size_t population_name(const language_profile *lp, rng *r, char *out, size_t cap);

/* Draws a home airport: mostly one of lp's, sometimes any (expatriates). */
const char *population_airport(const language_profile *lp, rng *r);

#endif
