/*
 * render.c -- API objects as JSON (see render.h).
 */
#include "render.h"

#include <string.h>

#include "time/duration.h"
#include "time/rfc3339.h"
#include "base/util.h"

/* Appends a string literal with a length known at compile time, so the
 * copy is a few stores rather than a call. */
#define LIT(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) + sizeof(s) - 1)

/* Room for either piece of an event around its escaped data: 89 bytes up
 * to the data, at most 160 after it (a locked event with its token). */
#define EVENT_FIXED_MAX 256

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
    p = LIT(p, "\",\"data\":\"");
    jsonw_commit(w, p);
    jsonw_escape_into(w, e->data, e->data_len);
    p = jsonw_room(w, EVENT_FIXED_MAX);
    p = LIT(p, "\",\"livesUntil\":\"");
    p = put_time(w, p, e->lives_until);
    switch (e->state) {
    case STORE_SCHEDULED:
        p = LIT(p, "\",\"isLocked\":false,\"state\":\"scheduled\"}");
        break;
    case STORE_READY:
        p = LIT(p, "\",\"isLocked\":false,\"state\":\"ready\"}");
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
        p = LIT(p, "\"}");
        break;
    }
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

void render_stats(jsonw_t *w, const store_stats_t *st)
{
    const struct {
        const char *key;
        uint64_t n;
    } counts[] = {
        {"ready", st->ready},         {"scheduled", st->scheduled}, {"locked", st->locked},
        {"jobs", st->jobs},           {"published", st->published}, {"deleted", st->deleted},
        {"expired", st->expired},
    };
    jsonw_obj_begin(w);
    jsonw_key(w, "channelName");
    jsonw_str(w, st->channel, st->channel_len);
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        jsonw_key(w, counts[i].key);
        jsonw_uint(w, counts[i].n);
    }
    jsonw_obj_end(w);
}
