/*
 * log.h -- one line per notable happening, to stderr.
 *
 * Text lines: "2026-11-27T02:32:50.263Z info listening on ...". With
 * log_set_json(1), one JSON object per line instead:
 * {"time":"...","level":"info","msg":"..."}. Never log event data or secrets.
 */
#ifndef HTTP_LOG_H
#define HTTP_LOG_H

void log_set_json(int on);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
