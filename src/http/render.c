/*
 * render.c -- API objects as JSON (see render.h).
 */
#include "render.h"

static const char *const state_names[] = {"scheduled", "ready", "locked"};

void render_event(jsonw_t *w, const event_t *e, int with_token)
{
    char id[ID_LEN + 1];
    id_format(event_id(e), id);
    jsonw_obj_begin(w);
    jsonw_key(w, "eventID");
    jsonw_str(w, id, ID_LEN);
    jsonw_key(w, "publishedAt");
    jsonw_time(w, e->published_at);
    jsonw_key(w, "data");
    jsonw_str(w, event_data(e), e->data_len);
    jsonw_key(w, "livesUntil");
    jsonw_time(w, e->lives_until);
    jsonw_key(w, "isLocked");
    event_state_t state = event_state(e);
    jsonw_bool(w, state == EVENT_LOCKED);
    jsonw_key(w, "state");
    jsonw_cstr(w, state_names[state]);
    if (state == EVENT_LOCKED) {
        jsonw_key(w, "lockedUntil");
        jsonw_time(w, event_locked_until(e));
        if (with_token) {
            char tok[CORE_TOKEN_LEN + 1];
            core_token_format(event_lock_token(e), tok);
            jsonw_key(w, "lockToken");
            jsonw_str(w, tok, CORE_TOKEN_LEN);
        }
    }
    jsonw_obj_end(w);
}

void render_list_open(jsonw_t *w, const channel_t *ch, size_t n)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "channelName");
    jsonw_str(w, ch->name, ch->name_len);
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

void render_event_list(jsonw_t *w, const channel_t *ch, event_t *const *events, size_t n,
                       int with_token)
{
    render_list_open(w, ch, n);
    for (size_t i = 0; i < n; i++)
        render_event(w, events[i], with_token);
    render_list_close(w);
}

void render_job(jsonw_t *w, const job_t *j)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "jobID");
    jsonw_str(w, j->name, j->name_len);
    jsonw_key(w, "cron");
    jsonw_cstr(w, j->cron_def);
    jsonw_key(w, "data");
    jsonw_str(w, j->data, j->data_len);
    jsonw_key(w, "ttl");
    jsonw_int(w, j->ttl_ns);
    jsonw_key(w, "createdAt");
    jsonw_time(w, j->created_at);
    jsonw_key(w, "nextRunAt");
    if (j->next_at == NTIME_MAX)
        jsonw_null(w);
    else
        jsonw_time(w, j->next_at);
    jsonw_obj_end(w);
}

void render_stats(jsonw_t *w, const channel_t *ch)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "channelName");
    jsonw_str(w, ch->name, ch->name_len);
    jsonw_key(w, "ready");
    jsonw_uint(w, ch->st.ready);
    jsonw_key(w, "scheduled");
    jsonw_uint(w, ch->st.scheduled);
    jsonw_key(w, "locked");
    jsonw_uint(w, ch->st.locked);
    jsonw_key(w, "jobs");
    jsonw_uint(w, ch->st.jobs);
    jsonw_key(w, "published");
    jsonw_uint(w, ch->st.published);
    jsonw_key(w, "deleted");
    jsonw_uint(w, ch->st.deleted);
    jsonw_key(w, "expired");
    jsonw_uint(w, ch->st.expired);
    jsonw_obj_end(w);
}
