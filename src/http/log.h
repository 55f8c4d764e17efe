/*
 * log.h -- one line per notable happening, to stderr.
 *
 * Text lines: "2026-11-27T02:32:50.263Z info listening on ...". With
 * log_set_json(1), one JSON object per line instead:
 * {"time":"...","level":"info","msg":"..."}. Never log event data or secrets.
 *
 * Access lines (log_access) carry their parts as fields in JSON, so a log
 * pipeline needs no parsing: {"time","level":"info","msg":"access","peer",
 * "method","path","status","duration" (seconds),"bytes"}; as text they read
 * access 127.0.0.1 "GET /c/events" 200 0.042ms 57.
 */
#ifndef HTTP_LOG_H
#define HTTP_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct log_access {
    const char *peer;         /* numeric address, or "-" */
    const char *method;       /* method.len bytes, not NUL-terminated */
    size_t method_len;
    const char *path;         /* printable ASCII (escaped by the caller) */
    int status;
    int64_t duration_ns;      /* arrival to answer */
    size_t bytes;             /* body bytes of the answer */
} log_access_t;

void log_set_json(int on);

/* One line for an answered request. */
void log_access(const log_access_t *a);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
