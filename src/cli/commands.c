/*
 * commands.c -- the table of dq's commands (see dq.h for its columns).
 *
 * Path templates name positionals by index: {0} is the first. A positional
 * whose field is set also fills that body member ("data", "cronDef") or,
 * written "?next", that query parameter.
 */
#include "dq.h"

#define CH {"CHANNEL", NULL, NULL}
#define ID {"ID", NULL, NULL}
#define NAME {"NAME", NULL, NULL}
#define TOKEN {"--token", "T", "Lock-Token", DQ_HEADER, "the lease token of the lock (409 if it is not the current one)"}
#define JSON_FLAG {"--json", NULL, NULL, DQ_FLAG, "DATA is a JSON value (object, array, number, ...), sent as it is"}

#define JOB_OPTS                                                                                   \
    {"--ttl", "D", "ttl", DQ_STR, "how long each event it publishes lives (default 10m)"},         \
    {"--priority", "N", "priority", DQ_INT, "priority of its events, 0 (first) to 9"},              \
    {"--overlap", "allow|skip", "overlap", DQ_STR, "skip a fire while the previous event is live"}, \
    {"--missed", "skip|once", "missed", DQ_STR, "after downtime, fire once for a missed time"},     \
    {"--missed-window", "D", "missedWindow", DQ_STR, "how old a missed time may be (default 1h)"},  \
    JSON_FLAG

#define JOB_HELP                                                                             \
    "CRON is five fields (minute hour day-of-month month day-of-week), a descriptor such as\n" \
    "@hourly or \"@every 10s\", optionally after CRON_TZ=Zone. DATA is the data of each\n"     \
    "event it publishes (\"-\": read it from stdin).\n"

static const char work_help[] =
    "Takes events from CHANNEL one at a time per slot (a long-poll acquire) and runs\n"
    "CMD ARGS... once for each: the event's data on its stdin (a string as its text,\n"
    "any other JSON value as JSON), and in its environment DQ_CHANNEL, DQ_EVENT_ID and\n"
    "DQ_DELIVERIES (how many times the event has been handed out, this time included).\n"
    "While CMD runs, the lease is extended every third of --ttl. When CMD exits 0 the\n"
    "event is deleted with its lease token; otherwise it is unlocked (held back for\n"
    "--retry-delay when given) so that it is retried.\n"
    "\n"
    "On SIGTERM or SIGINT dq stops taking events, lets running commands finish,\n"
    "settles their events and exits 0. If the server cannot be reached or is busy, dq\n"
    "says so on stderr and tries again; if it refuses the acquire (bad option, wrong\n"
    "token) dq exits 1. CMD's stdout and stderr are dq's.\n";

const dq_cmd_t dq_commands[] = {
    {"publish", "POST", NULL, "/{0}/events", NULL, {CH, {"[DATA]", "data", NULL}},
     {{"--ttl", "D", "ttl", DQ_STR, "how long the event lives (default 10m)"},
      {"--in", "D", "publishIn", DQ_STR, "publish after this long (a delayed event)"},
      {"--at", "TIME", "publishAt", DQ_STR, "publish at this RFC 3339 time"},
      {"--priority", "N", "priority", DQ_INT, "0 (handed out first) to 9; default 0"},
      {"--key", "K", "key", DQ_STR, "idempotency key: while an event with it lives, publish nothing"},
      JSON_FLAG,
      {"--batch", NULL, NULL, DQ_FLAG, "read a JSON array of event bodies from stdin, publish them all"}},
     0, NULL, "publish an event",
     "DATA is the event's data, a string (\"-\": read it from stdin; left out: \"\").\n"},
    {"list", "GET", NULL, "/{0}/events", NULL, {CH},
     {{"--limit", "N", "limit", DQ_QUERY, "at most N events; the answer's \"next\" continues"},
      {"--after", "CURSOR", "after", DQ_QUERY, "continue after this cursor"},
      {"--state", "S", "state", DQ_QUERY, "ready, locked, scheduled or visible (the default)"}},
     0, NULL, "list a channel's events", "Without options: every visible event, oldest first.\n"},
    {"get", "GET", NULL, "/{0}/events/{1}", NULL, {CH, ID}, {{0}}, 0, NULL, "show one event", NULL},
    {"acquire", "POST", NULL, "/{0}/acquire", NULL, {CH},
     {{"--max", "N", "max", DQ_INT, "at most N events (1-1000, default 1)"},
      {"--ttl", "D", "ttl", DQ_STR, "lock them for D (default 1m)"},
      {"--wait", "D", "wait", DQ_STR, "wait up to D (at most 60s) for one to come"}},
     0, NULL, "lock and take the oldest free events",
     "Each event comes with a lockToken for extend, unlock and delete.\n"},
    {"lock", "PUT", NULL, "/{0}/events/{1}", "\"action\":\"LOCK\"", {CH, ID},
     {{"--ttl", "D", "ttl", DQ_STR, "lock for D (default 1m)"}}, 0, NULL, "lock one event", NULL},
    {"unlock", "PUT", NULL, "/{0}/events/{1}", "\"action\":\"UNLOCK\"", {CH, ID},
     {TOKEN, {"--delay", "D", "delay", DQ_STR, "hold the event back for D before it is free again"}},
     0, NULL, "release a lock", NULL},
    {"extend", "PUT", NULL, "/{0}/events/{1}", "\"action\":\"EXTEND\"", {CH, ID},
     {TOKEN, {"--ttl", "D", "ttl", DQ_STR, "the lock now ends D from now (default 1m)"}}, 0, NULL,
     "extend a lock", NULL},
    {"delete", "DELETE", NULL, "/{0}/events/{1}", NULL, {CH, ID}, {TOKEN}, 0, NULL,
     "delete (acknowledge) an event", NULL},
    {"purge", "POST", NULL, "/{0}/purge", NULL, {CH}, {{0}}, 0, NULL,
     "delete every event of a channel", "Jobs and settings stay.\n"},
    {"stats", "GET", NULL, "/{0}", NULL, {CH}, {{0}}, 0, NULL, "a channel's counts", NULL},
    {"channels", "GET", NULL, "/channels", NULL, {{0}}, {{0}}, 0, NULL, "every channel's counts", NULL},
    {"settings", "GET", "PUT", "/{0}/settings", NULL, {CH},
     {{"--max-deliveries", "N", "maxDeliveries", DQ_INT, "dead-letter an event after N deliveries (0: never)"},
      {"--dead-letter", "CHANNEL", "deadLetterChannel", DQ_STR, "where such events go (\"\": deleted)"},
      {"--retry-delay", "D", "retryDelay", DQ_STR, "hold an event back for D after its lock runs out"}},
     0, NULL, "show or change a channel's settings",
     "Without options it shows them; with options it changes only those.\n"},
    {"redrive", "POST", NULL, "/{0}/redrive", NULL, {CH},
     {{"--to", "CHANNEL", "to", DQ_STR, "move them there (default: where each came from)"},
      {"--max", "N", "max", DQ_INT, "move at most N"}},
     0, NULL, "move dead-lettered events back", NULL},
    {"ready", "GET", NULL, "/readyz", NULL, {{0}}, {{0}}, 0, NULL,
     "exit 0 if the server is ready (for health checks)",
     "Exits 1 while the server recovers its log or cannot write it (503).\n"},
    {"jobs", "GET", NULL, "/{0}/jobs", NULL, {CH}, {{0}}, 0, NULL, "list a channel's jobs", NULL},
    {"job get", "GET", NULL, "/{0}/jobs/{1}", NULL, {CH, NAME}, {{0}}, 0, NULL, "show one job", NULL},
    {"job add", "POST", NULL, "/{0}/jobs", NULL, {CH, {"NAME", "name", NULL}, {"CRON", "cronDef", NULL}, {"[DATA]", "data", NULL}},
     {JOB_OPTS}, 0, NULL, "add a recurring job (409 if the name is taken)", JOB_HELP},
    {"job put", "PUT", NULL, "/{0}/jobs/{1}", NULL, {CH, NAME, {"CRON", "cronDef", NULL}, {"[DATA]", "data", NULL}},
     {JOB_OPTS}, 0, NULL, "create or replace a job's definition", JOB_HELP},
    {"job rm", "DELETE", NULL, "/{0}/jobs/{1}", NULL, {CH, NAME}, {{0}}, 0, NULL, "delete a job", NULL},
    {"job pause", "POST", NULL, "/{0}/jobs/{1}/pause", NULL, {CH, NAME}, {{0}}, 0, NULL,
     "stop a job from firing", NULL},
    {"job resume", "POST", NULL, "/{0}/jobs/{1}/resume", NULL, {CH, NAME}, {{0}}, 0, NULL,
     "let a paused job fire again", "It fires next at its first scheduled time after now.\n"},
    {"job trigger", "POST", NULL, "/{0}/jobs/{1}/trigger", NULL, {CH, NAME}, {{0}}, 0, NULL,
     "publish a job's event now", "Outside its schedule, also when paused; prints the event.\n"},
    {"job next", "GET", NULL, "/{0}/jobs/{1}", NULL, {CH, NAME, {"[N]", "?next", "5"}}, {{0}}, 0, NULL,
     "show a job with its next N fire times (default 5)", NULL},
    {"work", NULL, NULL, NULL, NULL, {CH},
     {{"--ttl", "D", NULL, DQ_STR, "lease of each event, extended while CMD runs (default 1m)"},
      {"--parallel", "N", NULL, DQ_INT, "run up to N commands at once (default 1)"},
      {"--retry-delay", "D", NULL, DQ_STR, "when CMD fails, hold the event back for D"}},
     1, dq_work, "run a command for each event of a channel", work_help},
    {NULL, NULL, NULL, NULL, NULL, {{0}}, {{0}}, 0, NULL, NULL, NULL},
};
