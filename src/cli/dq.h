/*
 * dq.h -- the dq command line: its command table and what commands share.
 *
 * Each command is one row of a table (dq.c): its words, the HTTP method and
 * path template it sends, its positional arguments and options, and how
 * each maps onto the request: a path segment ({0} is the first positional),
 * a body member, a query parameter or a header. A generic runner turns a
 * parsed command line into one request and prints the answer; a row with
 * its own run function (dq work) does more.
 *
 * Output: an answer's JSON body goes to stdout as the server sent it, with
 * a newline; an error answer's sentence goes to stderr. Exit status:
 * DQ_OK (2xx), DQ_REFUSED (the server answered with an error), DQ_USAGE (bad
 * command line, or the server could not be reached).
 */
#ifndef CLI_DQ_H
#define CLI_DQ_H

#include "client.h"

enum { DQ_OK = 0, DQ_REFUSED = 1, DQ_USAGE = 2 };

#define DQ_MAX_POS 4   /* positional arguments of a command */
#define DQ_MAX_OPTS 12 /* options of a command */

typedef enum dq_kind {
    DQ_STR,    /* body member, a JSON string */
    DQ_INT,    /* body member, a JSON integer (checked here) */
    DQ_QUERY,  /* query parameter */
    DQ_HEADER, /* request header */
    DQ_FLAG,   /* no value; the command reads it */
} dq_kind_t;

typedef struct dq_opt {
    const char *name;  /* "--ttl" */
    const char *arg;   /* its value's name in help ("D"), NULL for a flag */
    const char *field; /* body member, query parameter or header name */
    dq_kind_t kind;
    const char *help;
} dq_opt_t;

typedef struct dq_pos {
    const char *name;  /* "CHANNEL"; "[DATA]" when it may be left out */
    const char *field; /* body member it fills, "?x" for a query parameter, NULL: path only */
    const char *dflt;  /* value when left out, or NULL */
} dq_pos_t;

typedef struct dq_args {
    const char *pos[DQ_MAX_POS];
    int npos;
    const char *val[DQ_MAX_OPTS]; /* per option of the row: its value, "" for a set flag */
    char **rest;                  /* after "--", for commands that run a program */
    int nrest;
} dq_args_t;

typedef struct dq_cmd dq_cmd_t;
struct dq_cmd {
    const char *name;        /* "publish", "job add" */
    const char *method;      /* the request's method */
    const char *method_body; /* the method when options give a body (settings: PUT), or NULL */
    const char *path;        /* "/{0}/events/{1}" */
    const char *fixed;       /* members every body has ("\"action\":\"LOCK\""), or NULL */
    dq_pos_t pos[DQ_MAX_POS];
    dq_opt_t opts[DQ_MAX_OPTS];
    int rest;                /* 1: takes "-- CMD ARGS..." */
    int (*run)(const dq_cmd_t *cmd, dq_client_t *c, const dq_args_t *a); /* NULL: one request */
    const char *summary;     /* one line for dq --help */
    const char *help;        /* paragraphs for dq CMD --help */
};

/* The value of option name in a, or NULL if it was not given. */
const char *dq_opt_value(const dq_cmd_t *cmd, const dq_args_t *a, const char *name);

/* dq work (work.c). */
int dq_work(const dq_cmd_t *cmd, dq_client_t *c, const dq_args_t *a);

/* The server's base URL and token as dq was given them (dq.c). */
extern const char *dq_server_url;
extern const char *dq_token;

#endif
