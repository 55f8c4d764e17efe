/*
 * reqjson.h -- reading request bodies: JSON parsing (jparse) and typed
 * field access with one readable error per failure.
 *
 * Every getter returns 1 when the field is present and valid, 0 when it is
 * absent (missing or JSON null, which counts as absent), and -1 when it is
 * invalid, after writing the status and a sentence naming the field into
 * the reqerr_t. Nothing is sent from here: the handler sends the error, so
 * a batch can prefix it with the element's index.
 *
 * Each kind of body accepts a fixed set of fields (the tables below); a
 * member that names none of them is an error, so a typo such as "delay"
 * cannot silently change what happens. Names match without regard to case,
 * as Go's encoding/json matches them in the original.
 *
 * Times: every duration is at most REQ_DURATION_MAX_NS (100 years); the
 * store checks that every instant computed from one lies before
 * NTIME_END (2262-01-01, base/ntime.h), so no sum can wrap.
 */
#ifndef HTTP_REQJSON_H
#define HTTP_REQJSON_H

#include <stddef.h>
#include "base/ntime.h"
#include "json/jparse.h"

#define REQ_DURATION_MAX_NS (876000LL * 3600 * NTIME_NS_PER_S) /* 876000h, 100 years */

/* ---- accepted fields ----
 * One list per kind of body: X(enum constant, name as documented). A
 * handler gets an array indexed by the constants from reqjson_fields();
 * accepting one more field is one more line here. */
#define REQ_PUBLISH_FIELDS(X) \
    X(FPUB_DATA, "data")          \
    X(FPUB_PUBLISH_AT, "publishAt") \
    X(FPUB_PUBLISH_IN, "publishIn") \
    X(FPUB_TTL, "ttl")            \
    X(FPUB_PRIORITY, "priority")  \
    X(FPUB_KEY, "key")
#define REQ_UPDATE_FIELDS(X)  \
    X(FUPD_ACTION, "action")    \
    X(FUPD_TTL, "ttl")          \
    X(FUPD_LOCK_TOKEN, "lockToken") \
    X(FUPD_DELAY, "delay")
#define REQ_ACQUIRE_FIELDS(X) \
    X(FACQ_MAX, "max")          \
    X(FACQ_TTL, "ttl")          \
    X(FACQ_WAIT, "wait")
#define REQ_JOB_FIELDS(X)     \
    X(FJOB_NAME, "name")        \
    X(FJOB_CRON_DEF, "cronDef") \
    X(FJOB_DATA, "data")        \
    X(FJOB_TTL, "ttl")          \
    X(FJOB_PRIORITY, "priority") \
    X(FJOB_OVERLAP, "overlap")  \
    X(FJOB_MISSED, "missed")    \
    X(FJOB_MISSED_WINDOW, "missedWindow")

#define REQ_SETTINGS_FIELDS(X)                  \
    X(FSET_MAX_DELIVERIES, "maxDeliveries")         \
    X(FSET_DEAD_LETTER_CHANNEL, "deadLetterChannel") \
    X(FSET_RETRY_DELAY, "retryDelay")
#define REQ_REDRIVE_FIELDS(X) \
    X(FRED_TO, "to")            \
    X(FRED_MAX, "max")

#define REQ_FIELD_ENUM(id, name) id,
enum { REQ_PUBLISH_FIELDS(REQ_FIELD_ENUM) FPUB_N };
enum { REQ_UPDATE_FIELDS(REQ_FIELD_ENUM) FUPD_N };
enum { REQ_ACQUIRE_FIELDS(REQ_FIELD_ENUM) FACQ_N };
enum { REQ_JOB_FIELDS(REQ_FIELD_ENUM) FJOB_N };
enum { REQ_SETTINGS_FIELDS(REQ_FIELD_ENUM) FSET_N };
enum { REQ_REDRIVE_FIELDS(REQ_FIELD_ENUM) FRED_N };

typedef struct reqbody {
    const char *const *names; /* the accepted fields, in the enum's order */
    size_t n;
    const char *expected;     /* what to send, for a body that is no object:
                                 "expected a JSON object <expected>" */
} reqbody_t;

/* The bodies; a job's is req_job_body for POST (a name in the body) and
 * req_job_put_body for PUT (the name in the path). */
extern const reqbody_t req_publish_body, req_update_body, req_acquire_body, req_job_body, req_job_put_body;
extern const reqbody_t req_settings_body, req_redrive_body;

typedef struct reqerr {
    int status;      /* 400, 413, ... */
    char msg[320];
} reqerr_t;

void reqerr_set(reqerr_t *e, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses body[0..len) as one JSON value into doc. Returns 0 with the value
 * in doc->root (NULL for an empty body when empty_ok), or -1 with e set
 * (an empty body otherwise, a body over max_body, malformed JSON). Either
 * way the caller calls jparse_free(doc) afterwards; the values point into
 * body, so body must outlive them. */
int reqjson_parse(const char *body, size_t len, int empty_ok, size_t max_body, jdoc_t *doc,
                  reqerr_t *e);

/* A string: *s and *len are its bytes (not NUL-terminated; NUL bytes may
 * occur), owned by the document. */
int reqjson_string(const jval_t *o, const char *key, const char **s, size_t *len, reqerr_t *e);

/* A Go duration string of at most REQ_DURATION_MAX_NS. positive: must be
 * > 0 (else >= 0). */
int reqjson_duration(const jval_t *o, const char *key, int positive, int64_t *ns, reqerr_t *e);

/* An RFC 3339 time string. */
int reqjson_time(const jval_t *o, const char *key, ntime_t *t, reqerr_t *e);

/* The same three for a member already found (v NULL when absent), for a
 * handler that reads an object's members in one pass; key only names the
 * field in errors. */
int reqjson_string_of(const jval_t *v, const char *key, const char **s, size_t *len, reqerr_t *e);
int reqjson_duration_of(const jval_t *v, const char *key, int positive, int64_t *ns, reqerr_t *e);
int reqjson_time_of(const jval_t *v, const char *key, ntime_t *t, reqerr_t *e);

/* Event data: a string (*s its decoded bytes, *json 0) or any other JSON
 * value (*s its JSON text as sent, *json 1). */
int reqjson_data_of(const jval_t *v, const char *key, const char **s, size_t *len, uint8_t *json,
                    reqerr_t *e);

/* A JSON integer within [min, max]. */
int reqjson_int(const jval_t *o, const char *key, int64_t min, int64_t max, int64_t *v,
                reqerr_t *e);
int reqjson_int_of(const jval_t *v, const char *key, int64_t min, int64_t max, int64_t *out,
                   reqerr_t *e);

/* Sorts the members of object o into out[0..b->n), indexed by the body's
 * enum: out[i] is the member named b->names[i], NULL if there is none.
 * A name matches without regard to ASCII case, and U+017F and U+212A match
 * 's' and 'k', as in Go's encoding/json; a member given as JSON null is
 * skipped (null counts as absent), and of two members that match one field
 * the later wins. Returns 0, or -1 with e set: o is not an object (the
 * sentence says what b expects), or e names the first member that matches
 * no field and lists the accepted ones. */
int reqjson_fields(const jval_t *o, const reqbody_t *b, const jval_t **out, reqerr_t *e);

#endif
