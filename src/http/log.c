/*
 * log.c -- line-oriented logging to stderr (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "time/rfc3339.h"
#include "json/jsonw.h"

static int json_lines;

void log_set_json(int on)
{
    json_lines = on;
}

static void emit(const char *level, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char when[RFC3339_LEN + 1];
    rfc3339_format((ntime_t)ts.tv_sec * NTIME_NS_PER_S + ts.tv_nsec, when);
    if (!json_lines) {
        fprintf(stderr, "%s %s %s\n", when, level, msg);
        return;
    }
    jsonw_t w;
    jsonw_init(&w, 128 + strlen(msg));
    jsonw_obj_begin(&w);
    jsonw_key(&w, "time");
    jsonw_cstr(&w, when);
    jsonw_key(&w, "level");
    jsonw_cstr(&w, level);
    jsonw_key(&w, "msg");
    jsonw_cstr(&w, msg);
    jsonw_obj_end(&w);
    fprintf(stderr, "%.*s\n", (int)w.len, w.buf);
    jsonw_free(&w);
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
