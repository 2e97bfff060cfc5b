/* nbactl - the command-line tool of nbad, for ops staff and data teams.
 *
 *   nbactl load --db DIR --customers FILE [--incidents FILE] [--map-size BYTES]
 *               [--upsert] [--no-switch] [--max-errors N] [--keys COL,COL]
 *   nbactl db list|switch|prune --db ROOT [GEN] [--keep N] [--json]
 *   nbactl decide --customer ID | --key NAME=VALUE [--channel NAME] [--touchpoint NAME]
 *                 [--context k=v,k=v] [--language TAG] [--location ID]
 *                 [--at ISO8601] [--host H] [--port P] [--json]
 *   nbactl ping [--host H] [--port P] [--json]
 *   nbactl status [--host H] [--port P] [--json]
 *
 * Over TLS when NBACTL_TLS_CA is set (and NBACTL_TLS_CERT, NBACTL_TLS_KEY for
 * a client certificate): see the usage text.
 *
 * Exit codes (sysexits): 0 success, 64 usage, 65 bad data (a CSV row, an
 * error answer), 66 a missing input file or database, 69 nbad unreachable,
 * 70 an internal failure.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbactl.h"

static const char usage_text[] =
    "usage:\n"
    "  nbactl load --db DIR --customers FILE [--incidents FILE] [--map-size BYTES]\n"
    "      Load the warehouse's CSV extracts into the database nbad serves from,\n"
    "      replacing its content. A bad row is reported as file:line and the\n"
    "      database is left exactly as it was.\n"
    "      DIR is a database root: the load builds a new generation beside the one\n"
    "      serving and switches DIR/current to it when it is complete.\n"
    "      --upsert           the files are a delta: insert or replace their rows in\n"
    "                         the current generation, in one transaction\n"
    "      --no-switch        build the new generation but leave current as it is\n"
    "      --max-errors N     skip and report up to N bad rows (default 0: the first\n"
    "                         bad row fails the load)\n"
    "      --keys COL,COL     customers.csv columns holding lookup keys (booking_ref,\n"
    "                         loyalty_card; several in one field separated by ';')\n"
    "                         that contact points may send instead of the customer id\n"
    "  nbactl db list --db ROOT [--json]\n"
    "      The generations of a database root: which is current, sizes, record\n"
    "      counts, when each was loaded, its lookup keys, which a process still\n"
    "      has open.\n"
    "  nbactl db switch --db ROOT [GEN]\n"
    "      Make GEN (default: the newest) the generation serving; also a rollback.\n"
    "  nbactl db prune --db ROOT [--keep N]\n"
    "      Remove every generation but the current one and the N before it\n"
    "      (default 1); one a process still has open is left.\n"
    "  nbactl decide --customer ID | --key NAME=VALUE\n"
    "                [--channel desk|kiosk|ivr|web|mobile|call_center]\n"
    "                [--touchpoint checkin] [--context key=value,...] [--language TAG]\n"
    "                [--location ID] [--at 2026-11-22T10:00:00Z]\n"
    "                [--host 127.0.0.1] [--port 7411] [--json]\n"
    "      Ask a running nbad for the next best actions for a contact.\n"
    "  nbactl ping [--host 127.0.0.1] [--port 7411] [--json]\n"
    "      Check that nbad answers, and which rules it serves.\n"
    "  nbactl rules check [--strict] [--quiet] FILE...\n"
    "      Compile rule files and print every error and warning with file:line:col\n"
    "      and a hint; exits 65 on an error (--strict: on a warning too).\n"
    "  nbactl rules test [DIR | SCENARIO.yaml...] [--allow-uncovered]\n"
    "      Run the scenario files in DIR/tests (default rules/tests) in-process.\n"
    "  nbactl rules simulate --rules NEW... --against CURRENT... --events FILE --db DIR\n"
    "                        [--sample N] [--json]\n"
    "      Replay contact events (JSON lines) against both rulesets; report changes.\n"
    "  nbactl explain [--db DIR --rules FILE... | --host H --port P]\n"
    "                 --customer ID | --key NAME=VALUE\n"
    "                 [--channel NAME] [--touchpoint NAME] [--context key=value,...]\n"
    "                 [--language TAG] [--location ID] [--at ISO8601] [--json]\n"
    "      Show why: every rule's conditions and fate. With --db and --rules it\n"
    "      decides in-process; otherwise it asks the running nbad.\n"
    "  nbactl reload [--host 127.0.0.1] [--port 7411] [--json]\n"
    "      Make nbad recompile its rule files; a file that does not compile is\n"
    "      reported here and the serving rules stay (exit 65).\n"
    "  nbactl incident report --customer ID --incident ID --kind KIND --severity 1..5\n"
    "                         [--at ISO8601] [--flight F] [--note TEXT]\n"
    "                         [--host 127.0.0.1] [--port 7411] [--json]\n"
    "  nbactl incident resolve --customer ID --incident ID [--host H] [--port P]\n"
    "      Report an incident to a running nbad as the customer service system's\n"
    "      feed does, or mark one resolved; answered once durable.\n"
    "  nbactl outbox list --db DIR [--json]\n"
    "  nbactl outbox export --db DIR OUTDIR\n"
    "  nbactl outbox ack --db DIR ID...\n"
    "      The letters nbad decided to send (apology letters, ...): list them,\n"
    "      write each waiting one as OUTDIR/ID.txt, ID.html and ID.json (again\n"
    "      on every export until acknowledged), and acknowledge the ones sent.\n"
    "  nbactl history --db DIR [--customer ID] [--json]\n"
    "      The contact history: every upgrade, letter or reward given, when,\n"
    "      where, by which rule, for which incident.\n"
    "  nbactl status [--host 127.0.0.1] [--port 7411] [--json]\n"
    "      What nbad has done since it started: connections, requests, errors,\n"
    "      the time each decision takes inside nbad, and the database's size.\n"
    "\n"
    "TLS: the commands that talk to a running nbad speak TLS when NBACTL_TLS_CA\n"
    "names the CA certificates (PEM) nbad's certificate must chain to, for the\n"
    "--host given; NBACTL_TLS_CERT and NBACTL_TLS_KEY name this client's\n"
    "certificate and key for an nbad that asks for one (tls_client_ca).\n";

int nbactl_usage(const char *problem)
{
    if (problem)
        fprintf(stderr, "nbactl: %s\n", problem);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

int nbactl_help(void)
{
    fputs(usage_text, stdout);
    return EXIT_OK;
}

bool nbactl_parse_port(const char *text, int *port)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < 1 || v > 65535)
        return false;
    *port = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } commands[] = {
        {"load", nbactl_load},
        {"db", nbactl_db},
        {"decide", nbactl_decide},
        {"ping", nbactl_ping},
        {"status", nbactl_status},
        {"reload", nbactl_reload},
        /* the state nbad writes: letters to send, contact history */
        {"outbox", nbactl_outbox},
        {"history", nbactl_history},
        {"incident", nbactl_incident},
        /* in-process: no daemon needed */
        {"rules", nbactl_rules},
        {"explain", nbactl_explain},
    };
    if (argc < 2)
        return nbactl_usage(NULL);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        return nbactl_help();
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    return nbactl_usage("unknown command");
}
