/* nbactl incident: the customer service system's side of the live
 * incident feed, by hand. Sends the same protocol messages a feed sends;
 * nbad answers once the report is durable, and every decision after that
 * sees it.
 *
 *   nbactl incident report --customer ID --incident ID --kind KIND
 *                          --severity 1..5 [--at ISO8601] [--flight F]
 *                          [--note TEXT] [--host H] [--port P] [--json]
 *   nbactl incident resolve --customer ID --incident ID [--at ISO8601]
 *                           [--host H] [--port P] [--json]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "nbactl.h"

int nbactl_incident(int argc, char **argv)
{
    static const struct option opts[] = {
        {"customer", required_argument, NULL, 'c'}, {"incident", required_argument, NULL, 'i'},
        {"kind", required_argument, NULL, 'k'},     {"severity", required_argument, NULL, 's'},
        {"at", required_argument, NULL, 'a'},       {"flight", required_argument, NULL, 'f'},
        {"note", required_argument, NULL, 'n'},     {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},     {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    if (argc < 2 || (strcmp(argv[1], "report") != 0 && strcmp(argv[1], "resolve") != 0))
        return nbactl_usage("incident needs report or resolve");
    bool report = strcmp(argv[1], "report") == 0;

    Nba__V1__Incident inc = NBA__V1__INCIDENT__INIT;
    const char *host = NBACTL_DEFAULT_HOST;
    int port = NBACTL_DEFAULT_PORT;
    bool json = false;
    int64_t at = 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            inc.customer_id = optarg;
            break;
        case 'i':
            inc.incident_id = optarg;
            break;
        case 'k':
            inc.kind = optarg;
            break;
        case 's': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 1 || v > 5)
                return nbactl_usage("--severity takes 1 (minor) to 5 (severe)");
            inc.severity = (int32_t)v;
            break;
        }
        case 'a':
            if (clock_parse_iso8601(optarg, strlen(optarg), &at) != 0)
                return nbactl_usage("--at takes an ISO 8601 time such as 2026-11-22T10:00:00Z");
            break;
        case 'f':
            inc.flight = optarg;
            break;
        case 'n':
            inc.note = optarg;
            break;
        case 'H':
            host = optarg;
            break;
        case 'p':
            if (!nbactl_parse_port(optarg, &port))
                return nbactl_usage("--port takes 1..65535");
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            return nbactl_help();
        default:
            return nbactl_usage(NULL);
        }
    }
    if (optind < argc - 1)
        return nbactl_usage("incident takes no positional arguments");
    if (!inc.customer_id[0] || !inc.incident_id[0])
        return nbactl_usage("incident needs --customer and --incident");
    if (report && (!inc.kind[0] || inc.severity == 0))
        return nbactl_usage("incident report needs --kind and --severity");

    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__IncidentReport rep = NBA__V1__INCIDENT_REPORT__INIT;
    Nba__V1__IncidentResolve res = NBA__V1__INCIDENT_RESOLVE__INIT;
    req.id = 1;
    if (report) {
        inc.occurred_at_ms = at;
        rep.incident = &inc;
        req.body_case = NBA__V1__REQUEST__BODY_REPORT_INCIDENT;
        req.report_incident = &rep;
    } else {
        res.customer_id = inc.customer_id;
        res.incident_id = inc.incident_id;
        res.resolved_at_ms = at;
        req.body_case = NBA__V1__REQUEST__BODY_RESOLVE_INCIDENT;
        req.resolve_incident = &res;
    }
    return nbactl_call(host, port, &req, json, NBA__V1__CHANNEL__CHANNEL_UNSPECIFIED);
}
