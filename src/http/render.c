/*
 * render.c -- API objects as JSON (see render.h).
 */
#include "render.h"

#include <stdio.h>
#include <string.h>

#include "time/duration.h"
#include "time/rfc3339.h"
#include "base/util.h"

/* Appends a string literal with a length known at compile time, so the
 * copy is a few stores rather than a call. */
#define LIT(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) + sizeof(s) - 1)

/* Room for either piece of an event around its escaped data: 89 bytes up
 * to the data, at most 200 after it (a locked event with its token,
 * deliveries and priority). */
#define EVENT_FIXED_MAX 256

/* The decimal digits of v. */
static char *put_uint(char *p, uint32_t v)
{
    char tmp[10];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

static char *put_time(jsonw_t *w, char *p, ntime_t t)
{
    rfc3339_format_cached(&w->times, t, p); /* its NUL is overwritten by what follows */
    return p + RFC3339_LEN;
}

/* Written as fixed fragments around the variable fields rather than key by
 * key through the writer: the keys are constants, so escaping them and
 * checking for room before each token was most of the cost of a listing
 * (3 700 instructions an event before, see git log). One room check covers
 * all but the data, whose escaping makes room for itself. */
void render_event(jsonw_t *w, const store_event_t *e, int with_token)
{
    char *p = jsonw_value_room(w, EVENT_FIXED_MAX + e->data_len);
    p = LIT(p, "{\"eventID\":\"");
    id_format(e->id, p); /* its NUL is overwritten too */
    p = LIT(p + ID_LEN, "\",\"publishedAt\":\"");
    p = put_time(w, p, e->published_at);
    if (e->data_json) { /* any other JSON value: its text, as sent */
        p = LIT(p, "\",\"data\":");
        memcpy(p, e->data, e->data_len);
        p = LIT(p + e->data_len, ",\"livesUntil\":\"");
    } else {
        p = LIT(p, "\",\"data\":\"");
        jsonw_commit(w, p);
        jsonw_escape_into(w, e->data, e->data_len);
        p = jsonw_room(w, EVENT_FIXED_MAX);
        p = LIT(p, "\",\"livesUntil\":\"");
    }
    p = put_time(w, p, e->lives_until);
    switch (e->state) {
    case STORE_SCHEDULED:
        p = LIT(p, "\",\"isLocked\":false,\"state\":\"scheduled\"");
        break;
    case STORE_READY:
        p = LIT(p, "\",\"isLocked\":false,\"state\":\"ready\"");
        break;
    default:
        ASSERT(e->state == STORE_LOCKED);
        p = LIT(p, "\",\"isLocked\":true,\"state\":\"locked\",\"lockedUntil\":\"");
        p = put_time(w, p, e->locked_until);
        if (with_token) {
            p = LIT(p, "\",\"lockToken\":\"");
            token_format(e->token, p);
            p += TOKEN_LEN;
        }
        p = LIT(p, "\"");
        break;
    }
    p = LIT(p, ",\"deliveries\":");
    p = put_uint(p, e->deliveries);
    p = LIT(p, ",\"priority\":");
    *p++ = (char)('0' + e->priority % 10);
    if (e->dead_lettered_from) {
        p = LIT(p, ",\"deadLetteredFrom\":\"");
        jsonw_commit(w, p);
        jsonw_escape_into(w, e->dead_lettered_from, e->dead_lettered_from_len);
        p = jsonw_room(w, 2);
        *p++ = '"';
    }
    *p++ = '}';
    jsonw_commit(w, p);
}

/* Two copies and the id: a snprintf("%.*s") here cost ~1 000 instructions
 * of the ~25 000 a single publish took. */
size_t render_event_path(char *out, const char *chan, size_t chan_len, eid_t id)
{
    char *p = out;
    *p++ = '/';
    memcpy(p, chan, chan_len);
    p = LIT(p + chan_len, "/events/");
    char text[ID_LEN + 1];
    id_format(id, text);
    memcpy(p, text, ID_LEN);
    return (size_t)(p + ID_LEN - out);
}

void render_list_open(jsonw_t *w, const char *channel, size_t len, size_t n)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "channelName");
    jsonw_str(w, channel, len);
    jsonw_key(w, "count");
    jsonw_uint(w, n);
    jsonw_key(w, "events");
    jsonw_arr_begin(w);
}

void render_list_close(jsonw_t *w)
{
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}

void render_list_close_next(jsonw_t *w, const char *next, size_t len)
{
    jsonw_arr_end(w);
    jsonw_key(w, "next");
    jsonw_str(w, next, len);
    jsonw_obj_end(w);
}

void render_event_list(jsonw_t *w, const char *channel, size_t len, const store_event_t *events, size_t n,
                       int with_token)
{
    render_list_open(w, channel, len, n);
    for (size_t i = 0; i < n; i++)
        render_event(w, &events[i], with_token);
    render_list_close(w);
}

static void render_duration(jsonw_t *w, const char *key, int64_t ns)
{
    char buf[DURATION_TEXT_MAX];
    size_t n = duration_format(ns, buf);
    jsonw_key(w, key);
    jsonw_str(w, buf, n);
}

/* The fields Part C adds to a job. */
static void render_job_ops(jsonw_t *w, const store_job_t *j)
{
    jsonw_key(w, "paused");
    jsonw_bool(w, j->paused);
    jsonw_key(w, "overlap");
    jsonw_cstr(w, j->def.overlap == STORE_OVERLAP_SKIP ? "skip" : "allow");
    jsonw_key(w, "missed");
    jsonw_cstr(w, j->def.missed == STORE_MISSED_ONCE ? "once" : "skip");
    render_duration(w, "missedWindow", j->def.missed_window_ns);
    jsonw_key(w, "priority");
    jsonw_uint(w, j->def.priority);
    jsonw_key(w, "runs");
    jsonw_uint(w, j->runs);
    jsonw_key(w, "skipped");
    jsonw_uint(w, j->skipped);
    if (j->last_run_at) {
        jsonw_key(w, "lastRunAt");
        jsonw_time(w, j->last_run_at);
    }
    render_duration(w, "ttlDuration", j->def.ttl_ns);
    if (j->next_runs) {
        jsonw_key(w, "nextRuns");
        jsonw_arr_begin(w);
        for (uint32_t i = 0; i < j->n_next_runs; i++)
            jsonw_time(w, j->next_runs[i]);
        jsonw_arr_end(w);
    }
}

void render_job(jsonw_t *w, const store_job_t *j)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "jobID");
    jsonw_str(w, j->def.name, j->def.name_len);
    jsonw_key(w, "cron");
    jsonw_str(w, j->def.cron_def, j->def.cron_len);
    jsonw_key(w, "data");
    if (j->def.data_json)
        jsonw_raw(w, j->def.data, j->def.data_len);
    else
        jsonw_str(w, j->def.data, j->def.data_len);
    jsonw_key(w, "ttl");
    jsonw_int(w, j->def.ttl_ns);
    jsonw_key(w, "createdAt");
    jsonw_time(w, j->created_at);
    /* A paused job shows none; one whose definition never fires again
     * shows null, as before pausing existed. */
    if (!j->paused) {
        jsonw_key(w, "nextRunAt");
        if (j->next_at == NTIME_MAX)
            jsonw_null(w);
        else
            jsonw_time(w, j->next_at);
    }
    render_job_ops(w, j);
    jsonw_obj_end(w);
}

/* Seconds since a READY event became visible at `at` (0: none), to the
 * millisecond. */
static void put_age(jsonw_t *w, ntime_t at, ntime_t now)
{
    char buf[32];
    int64_t ms = at && now > at ? (now - at) / 1000000 : 0;
    int n = snprintf(buf, sizeof(buf), "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
    jsonw_raw(w, buf, (size_t)n);
}

void render_stats(jsonw_t *w, const store_stats_t *st, ntime_t now)
{
    const struct {
        const char *key;
        uint64_t n;
    } counts[] = {
        {"ready", st->ready},         {"scheduled", st->scheduled}, {"locked", st->locked},
        {"jobs", st->jobs},           {"published", st->published}, {"deleted", st->deleted},
        {"expired", st->expired},     {"deadLettered", st->dead_lettered},
    };
    jsonw_obj_begin(w);
    jsonw_key(w, "channelName");
    jsonw_str(w, st->channel, st->channel_len);
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        jsonw_key(w, counts[i].key);
        jsonw_uint(w, counts[i].n);
    }
    jsonw_key(w, "oldestReadyAge");
    put_age(w, st->oldest_ready_at, now);
    jsonw_obj_end(w);
}

void render_settings(jsonw_t *w, const store_settings_t *s)
{
    char d[DURATION_TEXT_MAX];
    jsonw_obj_begin(w);
    jsonw_key(w, "maxDeliveries");
    jsonw_uint(w, s->max_deliveries);
    jsonw_key(w, "deadLetterChannel");
    jsonw_str(w, s->dead_letter_channel, s->dead_letter_channel_len);
    jsonw_key(w, "retryDelay");
    jsonw_str(w, d, duration_format(s->retry_delay_ns, d));
    jsonw_obj_end(w);
}
