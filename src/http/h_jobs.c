/*
 * h_jobs.c -- recurring jobs: list, add (POST), define (PUT), get (with a
 * preview of the next runs), delete, pause, resume, trigger.
 */
#include <stdlib.h>
#include <string.h>
#include "handlers.h"
#include "render.h"
#include "reqjson.h"
#include "respond.h"
#include "router.h"

#define NO_SUCH_JOB "no such job"

static void listed_jobs(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK) {
        http_store_error(a, res, NULL);
        return;
    }
    jsonw_t *w = &a->ctx->out;
    jsonw_obj_begin(w);
    jsonw_key(w, "channelName");
    jsonw_str(w, a->channel, a->channel_len);
    jsonw_key(w, "jobs");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < res->n_jobs; i++)
        render_job(w, &res->jobs[i]);
    jsonw_arr_end(w);
    jsonw_obj_end(w);
    http_respond(a, 200, w, res->durable_seq);
}

void handle_jobs_list(route_args_t *a)
{
    store_t *st = http_call(a, listed_jobs);
    st->ops->jobs(st, route_chan(a), http_then, a);
}

/* A required string field: present and not empty. */
static int required(const jval_t *v, const char *key, const char *example, const char **s, size_t *len,
                    reqerr_t *e)
{
    int rc = reqjson_string_of(v, key, s, len, e);
    if (rc < 0)
        return -1;
    if (rc == 0 || *len == 0) {
        reqerr_set(e, 400, "field \"%s\" is required%s (%s)", key, rc ? " and must not be empty" : "", example);
        return -1;
    }
    return 0;
}

/* One of two words: 0 or 1 into *out, or -1 with e naming the field. */
static int policy_of(const jval_t *v, const char *key, const char *w0, const char *w1, uint8_t *out,
                     reqerr_t *e)
{
    const char *s;
    size_t len;
    int rc = reqjson_string_of(v, key, &s, &len, e);
    if (rc <= 0)
        return rc;
    if (len == strlen(w0) && memcmp(s, w0, len) == 0)
        *out = 0;
    else if (len == strlen(w1) && memcmp(s, w1, len) == 0)
        *out = 1;
    else {
        reqerr_set(e, 400, "field \"%s\" must be \"%s\" or \"%s\"", key, w0, w1);
        return -1;
    }
    return 1;
}

/* The Part C fields of a job body: priority, overlap, missed, missedWindow. */
static int parse_job_ops(const jval_t **f, store_job_def_t *def, reqerr_t *e)
{
    int64_t prio = 0;
    uint8_t overlap = 0, missed = 0;
    def->missed_window_ns = HTTP_DEFAULT_MISSED_WINDOW_NS;
    if (reqjson_int_of(f[FJOB_PRIORITY], "priority", 0, 9, &prio, e) < 0 ||
        policy_of(f[FJOB_OVERLAP], "overlap", "allow", "skip", &overlap, e) < 0 ||
        policy_of(f[FJOB_MISSED], "missed", "skip", "once", &missed, e) < 0 ||
        reqjson_duration_of(f[FJOB_MISSED_WINDOW], "missedWindow", 1, &def->missed_window_ns, e) < 0)
        return -1;
    def->priority = (uint8_t)prio;
    def->overlap = overlap ? STORE_OVERLAP_SKIP : STORE_OVERLAP_ALLOW;
    def->missed = missed ? STORE_MISSED_ONCE : STORE_MISSED_SKIP;
    return 0;
}

/* The name of a PUT body: optional, but if given the path's. */
static int put_name(const jval_t *v, const route_args_t *a, store_job_def_t *def, reqerr_t *e)
{
    int rc = reqjson_string_of(v, "name", &def->name, &def->name_len, e);
    if (rc < 0)
        return -1;
    if (rc > 0 && (def->name_len != a->param_len || memcmp(def->name, a->param, a->param_len) != 0)) {
        reqerr_set(e, 400, "field \"name\" must be the job's name in the path, or absent");
        return -1;
    }
    def->name = a->param;
    def->name_len = a->param_len;
    return 0;
}

/* Reads a job body into def: POST (a NULL) needs a name; PUT takes the
 * path's, which must not be empty. Returns 0 or -1 with e set. */
static int parse_job(const jval_t *o, const route_args_t *a, store_job_def_t *def, size_t max_data, reqerr_t *e)
{
    if (a && a->param_len == 0) {
        reqerr_set(e, 400, "invalid job name in the path");
        return -1;
    }
    memset(def, 0, sizeof(*def));
    def->data = "";
    def->ttl_ns = HTTP_DEFAULT_TTL_NS;
    const jval_t *f[FJOB_N];
    int has_ttl;
    if (reqjson_fields(o, a ? &req_job_put_body : &req_job_body, f, e) < 0 ||
        (a ? put_name(f[FJOB_NAME], a, def, e)
           : required(f[FJOB_NAME], "name", "the job's name, e.g. \"nightly-report\"", &def->name,
                      &def->name_len, e)) < 0 ||
        required(f[FJOB_CRON_DEF], "cronDef", "a cron definition, e.g. \"*/5 * * * *\" or \"@hourly\"",
                 &def->cron_def, &def->cron_len, e) < 0 ||
        reqjson_data_of(f[FJOB_DATA], "data", &def->data, &def->data_len, &def->data_json, e) < 0 ||
        (has_ttl = reqjson_duration_of(f[FJOB_TTL], "ttl", 1, &def->ttl_ns, e)) < 0 ||
        parse_job_ops(f, def, e) < 0)
        return -1;
    def->has_ttl = has_ttl > 0;
    char err[128];
    if (router_valid_name(def->name, def->name_len, err, sizeof(err)) != 0) {
        reqerr_set(e, 400, "field \"name\": %s", err);
        return -1;
    }
    if (def->data_len > max_data) {
        reqerr_set(e, 413, "field \"data\" is %zu bytes; the limit is %zu", def->data_len, max_data);
        return -1;
    }
    return 0;
}

static void answered_job(route_args_t *a, const store_res_t *res, int status)
{
    render_job(&a->ctx->out, &res->jobs[0]);
    http_respond(a, status, &a->ctx->out, res->durable_seq);
}

static void added_job(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_CREATED)
        http_store_error(a, res, res->status == STORE_CONFLICT ? "a job named this already exists in this channel"
                                                               : NULL);
    else
        answered_job(a, res, 201);
}

static void got_job(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK)
        http_store_error(a, res, res->status == STORE_NOT_FOUND ? NO_SUCH_JOB : NULL);
    else
        answered_job(a, res, 200);
}

static void put_job(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_CREATED && res->status != STORE_OK)
        http_store_error(a, res, NULL);
    else
        answered_job(a, res, res->status == STORE_CREATED ? 201 : 200);
}

/* POST adds a job (replace 0: 409 for a name in use), PUT defines the
 * job of the path's name (replace 1). */
static int job_write(route_args_t *a, const jval_t *body, int replace, reqerr_t *e)
{
    store_job_def_t def;
    if (parse_job(body, replace ? a : NULL, &def, a->ctx->limits->max_data, e) != 0)
        return -1;
    store_t *st = http_call(a, replace ? put_job : added_job);
    st->ops->job_put(st, route_chan(a), &def, replace, http_then, a);
    return 0;
}

static int job_add(route_args_t *a, const jval_t *body, reqerr_t *e)
{
    return job_write(a, body, 0, e);
}

static int job_define(route_args_t *a, const jval_t *body, reqerr_t *e)
{
    return job_write(a, body, 1, e);
}

void handle_job_add(route_args_t *a)
{
    handler_body(a, 0, job_add);
}

void handle_job_put(route_args_t *a)
{
    handler_body(a, 0, job_define);
}

/* ?next=N (1-100): 0 when absent, -1 when invalid. Other parameters are
 * ignored, as on every route but the events listing. */
static int query_next(const h2o_req_t *req)
{
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    int next = 0;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop - p >= 5 && memcmp(p, "next=", 5) == 0) {
            const char *d = p + 5;
            int v = 0;
            if (d == stop || stop - d > 3)
                return -1;
            for (; d < stop; d++) {
                if (*d < '0' || *d > '9')
                    return -1;
                v = v * 10 + (*d - '0');
            }
            if (v < 1 || v > 100)
                return -1;
            next = v;
        }
        p = stop + 1;
    }
    return next;
}

void handle_job_get(route_args_t *a)
{
    int next = query_next(a->req);
    if (next < 0) {
        http_error(a, 400, "parameter \"next\" must be a whole number from 1 to 100");
        return;
    }
    store_t *st = http_call(a, got_job);
    st->ops->job_get(st, route_chan(a), a->param, a->param_len, (unsigned)next, http_then, a);
}

static void deleted_job(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK)
        http_store_error(a, res, res->status == STORE_NOT_FOUND ? NO_SUCH_JOB : NULL);
    else
        http_respond_empty(a, 202, res->durable_seq);
}

void handle_job_delete(route_args_t *a)
{
    store_t *st = http_call(a, deleted_job);
    st->ops->job_delete(st, route_chan(a), a->param, a->param_len, http_then, a);
}

/* ---- pause, resume, trigger ---- */

static void job_op_done(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK)
        http_store_error(a, res, res->status == STORE_NOT_FOUND ? NO_SUCH_JOB : NULL);
    else
        answered_job(a, res, 200);
}

static void job_op(route_args_t *a, store_job_op_t op, then_fn then)
{
    store_t *st = http_call(a, then);
    st->ops->job_op(st, route_chan(a), a->param, a->param_len, op, http_then, a);
}

void handle_job_pause(route_args_t *a)
{
    job_op(a, STORE_JOB_PAUSE, job_op_done);
}

void handle_job_resume(route_args_t *a)
{
    job_op(a, STORE_JOB_RESUME, job_op_done);
}

static void triggered(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_CREATED)
        http_store_error(a, res, res->status == STORE_NOT_FOUND ? NO_SUCH_JOB : NULL);
    else
        answer_event_at(a, 201, &res->events[0], res->durable_seq);
}

void handle_job_trigger(route_args_t *a)
{
    job_op(a, STORE_JOB_TRIGGER, triggered);
}
