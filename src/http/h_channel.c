/*
 * h_channel.c -- a channel as a whole: its consumer settings, redriving
 * its dead letters, purging its events, deleting it.
 */
#include <string.h>
#include "handlers.h"
#include "render.h"
#include "reqjson.h"
#include "respond.h"
#include "router.h"

#define NO_SUCH_CHANNEL "no such channel"
#define MAX_DELIVERIES_MAX 1000000

/* ---- settings ---- */

static void got_settings(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK) {
        http_store_error(a, res, NULL);
        return;
    }
    render_settings(&a->ctx->out, res->settings);
    http_respond(a, 200, &a->ctx->out, res->durable_seq);
}

void handle_settings_get(route_args_t *a)
{
    store_t *st = http_call(a, got_settings);
    st->ops->settings_get(st, route_chan(a), http_then, a);
}

/* A channel name given in a body field: 1-200 bytes of UTF-8 without
 * controls or '/'. 0, or -1 with e set. */
static int body_channel(const char *field, const char *s, size_t len, reqerr_t *e)
{
    char err[128];
    if (router_valid_name(s, len, err, sizeof(err)) == 0)
        return 0;
    reqerr_set(e, 400, "field \"%s\" is not a valid channel name: %s", field, err);
    return -1;
}

static int parse_settings(const jval_t *o, store_settings_put_t *p, reqerr_t *e)
{
    const jval_t *f[FSET_N];
    int64_t max = 0;
    int rc_max, rc_dlq, rc_delay;
    memset(p, 0, sizeof(*p));
    p->v.dead_letter_channel = "";
    size_t dlq_len = 0;
    if (reqjson_fields(o, &req_settings_body, f, e) < 0 ||
        (rc_max = reqjson_int_of(f[FSET_MAX_DELIVERIES], "maxDeliveries", 0, MAX_DELIVERIES_MAX, &max, e)) < 0 ||
        (rc_dlq = reqjson_string_of(f[FSET_DEAD_LETTER_CHANNEL], "deadLetterChannel", &p->v.dead_letter_channel,
                                    &dlq_len, e)) < 0 ||
        (rc_delay = reqjson_duration_of(f[FSET_RETRY_DELAY], "retryDelay", 0, &p->v.retry_delay_ns, e)) < 0)
        return -1;
    /* "" clears the dead-letter channel; anything else must be a name. */
    if (rc_dlq > 0 && dlq_len > 0 && body_channel("deadLetterChannel", p->v.dead_letter_channel, dlq_len, e) != 0)
        return -1;
    p->has_max_deliveries = rc_max > 0;
    p->has_dead_letter_channel = rc_dlq > 0;
    p->has_retry_delay = rc_delay > 0;
    p->v.max_deliveries = (uint32_t)max;
    p->v.dead_letter_channel_len = (uint32_t)dlq_len;
    return 0;
}

static int settings_put(route_args_t *a, const jval_t *body, reqerr_t *e)
{
    store_settings_put_t p;
    if (parse_settings(body, &p, e) != 0)
        return -1;
    store_t *st = http_call(a, got_settings);
    st->ops->settings_put(st, route_chan(a), &p, http_then, a);
    return 0;
}

void handle_settings_put(route_args_t *a)
{
    handler_body(a, 0, settings_put);
}

/* ---- redrive, purge: {"<key>": how many} ---- */

/* 200 with res->count under key, or the failure (no_such: the words
 * for STORE_NOT_FOUND, NULL for the usual). */
static void answer_count(route_args_t *a, const store_res_t *res, const char *key, const char *no_such)
{
    if (res->status != STORE_OK) {
        http_store_error(a, res, res->status == STORE_NOT_FOUND ? no_such : NULL);
        return;
    }
    jsonw_t *w = &a->ctx->out;
    jsonw_obj_begin(w);
    jsonw_key(w, key);
    jsonw_uint(w, res->count);
    jsonw_obj_end(w);
    http_respond(a, 200, w, res->durable_seq);
}

static void redriven(route_args_t *a, const store_res_t *res)
{
    answer_count(a, res, "moved", NULL);
}

/* Both fields optional (an empty body too): without "to" each event goes
 * back to its deadLetteredFrom. */
static int redrive(route_args_t *a, const jval_t *body, reqerr_t *e)
{
    const jval_t *f[FRED_N];
    int64_t max = 0;
    store_chan_t to = {NULL, 0};
    int rc_to = 0;
    if (body && (reqjson_fields(body, &req_redrive_body, f, e) < 0 ||
                 (rc_to = reqjson_string_of(f[FRED_TO], "to", &to.name, &to.len, e)) < 0 ||
                 reqjson_int_of(f[FRED_MAX], "max", 1, INT64_MAX, &max, e) < 0 ||
                 (rc_to > 0 && body_channel("to", to.name, to.len, e) != 0)))
        return -1;
    store_t *st = http_call(a, redriven);
    st->ops->redrive(st, route_chan(a), rc_to > 0 ? &to : NULL, (size_t)max, http_then, a);
    return 0;
}

void handle_redrive(route_args_t *a)
{
    handler_body(a, 1, redrive);
}

static void purged(route_args_t *a, const store_res_t *res)
{
    answer_count(a, res, "deleted", NO_SUCH_CHANNEL);
}

void handle_purge(route_args_t *a)
{
    store_t *st = http_call(a, purged);
    st->ops->purge(st, route_chan(a), http_then, a);
}

static void channel_deleted(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK) {
        http_store_error(a, res, res->status == STORE_NOT_FOUND ? NO_SUCH_CHANNEL : NULL);
        return;
    }
    /* Its parked acquires answer now: nothing will arrive for them. */
    acquire_release_channel(a->ctx, a->channel, a->channel_len);
    http_respond_empty(a, 202, res->durable_seq);
}

void handle_channel_delete(route_args_t *a)
{
    store_t *st = http_call(a, channel_deleted);
    st->ops->channel_delete(st, route_chan(a), http_then, a);
}
