/*
 * log.c -- line-oriented logging to stderr (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "base/sclock.h"
#include "time/rfc3339.h"
#include "json/jsonw.h"

static int json_lines;

void log_set_json(int on)
{
    json_lines = on;
}

/* The wall clock, as an operator reads it beside other logs. */
static void log_time(char when[RFC3339_LEN + 1])
{
    rfc3339_format(sclock_read(CLOCK_REALTIME), when);
}

/* Starts a JSON line: {"time":...,"level":...,"msg":... (left open). */
static void json_head(jsonw_t *w, const char *when, const char *level, const char *msg)
{
    jsonw_init(w, 192 + strlen(msg));
    jsonw_obj_begin(w);
    jsonw_key(w, "time");
    jsonw_cstr(w, when);
    jsonw_key(w, "level");
    jsonw_cstr(w, level);
    jsonw_key(w, "msg");
    jsonw_cstr(w, msg);
}

static void json_end(jsonw_t *w)
{
    jsonw_obj_end(w);
    fprintf(stderr, "%.*s\n", (int)w->len, w->buf);
    jsonw_free(w);
}

static void emit(const char *level, const char *fmt, va_list ap)
{
    char msg[1024], when[RFC3339_LEN + 1];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    log_time(when);
    if (!json_lines) {
        fprintf(stderr, "%s %s %s\n", when, level, msg);
        return;
    }
    jsonw_t w;
    json_head(&w, when, level, msg);
    json_end(&w);
}

void log_access(const log_access_t *a)
{
    char when[RFC3339_LEN + 1], secs[32];
    int mlen = (int)(a->method_len < 16 ? a->method_len : 16);
    log_time(when);
    if (!json_lines) {
        fprintf(stderr, "%s info access %s \"%.*s %s\" %d %.3fms %zu\n", when, a->peer, mlen, a->method, a->path,
                a->status, (double)a->duration_ns / 1e6, a->bytes);
        return;
    }
    jsonw_t w;
    json_head(&w, when, "info", "access");
    jsonw_key(&w, "peer");
    jsonw_cstr(&w, a->peer);
    jsonw_key(&w, "method");
    jsonw_str(&w, a->method, (size_t)mlen);
    jsonw_key(&w, "path");
    jsonw_cstr(&w, a->path);
    jsonw_key(&w, "status");
    jsonw_int(&w, a->status);
    jsonw_key(&w, "duration");
    jsonw_raw(&w, secs, (size_t)snprintf(secs, sizeof(secs), "%.9f", (double)a->duration_ns / 1e9));
    jsonw_key(&w, "bytes");
    jsonw_uint(&w, a->bytes);
    json_end(&w);
}

#define LOG_FN(name, level)            \
    void name(const char *fmt, ...)    \
    {                                  \
        va_list ap;                    \
        va_start(ap, fmt);             \
        emit(level, fmt, ap);          \
        va_end(ap);                    \
    }

LOG_FN(log_info, "info")
LOG_FN(log_warn, "warn")
LOG_FN(log_error, "error")
