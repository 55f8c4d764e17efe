/*
 * client.h -- a small blocking client for the Distribuerad HTTP API (libcurl).
 *
 * A client holds one server base URL, an optional bearer token and one
 * libcurl handle, so consecutive requests reuse one keep-alive connection.
 * A client is used by one thread at a time; threads that work in parallel
 * each make their own. Call dq_global_init() once, before any thread starts.
 *
 * A request either reaches the server (dq_request returns 0 and the answer's
 * status and body, whatever the status) or it does not (returns -1 with a
 * sentence in resp->err: connection refused, timed out, aborted). Paths are
 * sent as given: escape each segment taken from the user with dq_escape().
 *
 * Times: timeouts are in milliseconds.
 */
#ifndef CLI_CLIENT_H
#define CLI_CLIENT_H

#include <stddef.h>

typedef struct dq_client dq_client_t;

typedef struct dq_resp {
    long status;   /* HTTP status; 0 if the request did not reach the server */
    char *body;    /* the answer's body, NUL-terminated; malloc'd, may be "" */
    size_t len;    /* bytes of body */
    char err[256]; /* why the request failed, when dq_request returned -1 */
} dq_resp_t;

/* Initialises libcurl for the process; 0 or -1. */
int dq_global_init(void);
void dq_global_cleanup(void);

/* A client for base_url (e.g. "http://localhost:3333"; a trailing '/' is
 * dropped) sending "Authorization: Bearer <token>" when token is not NULL
 * or empty. Strings are copied. Returns NULL if libcurl fails. */
dq_client_t *dq_client_new(const char *base_url, const char *token);
void dq_client_free(dq_client_t *c); /* dq_client_free(NULL) does nothing */

/* While set, the next requests are aborted (dq_request returns -1) as soon
 * as should_stop(arg) returns non-zero; it is asked about once a second and
 * whenever data moves. NULL turns it off. For long-polls that a signal
 * must be able to cut short. */
void dq_client_set_stop(dq_client_t *c, int (*should_stop)(void *), void *arg);

/* Sends method path (starting with '/', query included) with body[0..len)
 * (NULL: no body) as application/json, plus headers, a NULL-terminated list
 * of "Name: value" lines (or NULL), and waits at most timeout_ms for the
 * whole exchange. Fills *r (free it with dq_resp_free). Returns 0 if an
 * answer came, -1 otherwise. */
int dq_request(dq_client_t *c, const char *method, const char *path, const char *body, size_t len,
               const char *const *headers, long timeout_ms, dq_resp_t *r);

void dq_resp_free(dq_resp_t *r);

/* The "error" sentence of an error answer's JSON body, or, if the body has
 * none, the body itself (cut to fit) or the status line. Writes it into
 * buf[0..n) and returns buf. */
const char *dq_resp_error(const dq_resp_t *r, char *buf, size_t n);

/* seg percent-encoded as one path segment (everything but A-Z a-z 0-9 - . _ ~);
 * the caller frees the result. */
char *dq_escape(const char *seg);

/* Parses a duration in Go's syntax ("300ms", "1.5h", "1h30m"; "0" alone)
 * into *ns. Returns 0, or -1 if s is not one, is negative or is longer
 * than 100 years. The server checks the same strings again; dq parses them
 * only to time its own requests. */
int dq_duration_ns(const char *s, long long *ns);

#endif
