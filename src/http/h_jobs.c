/*
 * h_jobs.c -- recurring jobs: list, add, get, delete.
 */
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

/* Reads the body of a job add into def. Returns 0 or -1 with e set. */
static int parse_job(const jval_t *o, store_job_def_t *def, size_t max_data, reqerr_t *e)
{
    if (o->type != JV_OBJECT) {
        reqerr_set(e, 400, "expected a JSON object with \"name\" and \"cronDef\"");
        return -1;
    }
    memset(def, 0, sizeof(*def));
    def->data = "";
    def->ttl_ns = HTTP_DEFAULT_TTL_NS;
    const jval_t *f[FJOB_N];
    int has_ttl;
    if (reqjson_fields(o, &req_job_body, f, e) < 0 ||
        required(f[FJOB_NAME], "name", "the job's name, e.g. \"nightly-report\"", &def->name, &def->name_len,
                 e) < 0 ||
        required(f[FJOB_CRON_DEF], "cronDef", "a cron definition, e.g. \"*/5 * * * *\" or \"@hourly\"",
                 &def->cron_def, &def->cron_len, e) < 0 ||
        reqjson_string_of(f[FJOB_DATA], "data", &def->data, &def->data_len, e) < 0 ||
        (has_ttl = reqjson_duration_of(f[FJOB_TTL], "ttl", 1, &def->ttl_ns, e)) < 0)
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

void handle_job_add(route_args_t *a)
{
    reqerr_t e;
    jdoc_t doc;
    store_job_def_t def;
    if (handler_body(a, 0, &doc) != 0) {
        jparse_free(&doc);
        return;
    }
    if (parse_job(doc.root, &def, a->ctx->limits->max_data, &e) != 0) {
        jparse_free(&doc);
        http_error(a, e.status, "%s", e.msg);
        return;
    }
    store_t *st = http_call(a, added_job);
    st->ops->job_put(st, route_chan(a), &def, 0, http_then, a);
    jparse_free(&doc);
}

static void got_job(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK)
        http_store_error(a, res, res->status == STORE_NOT_FOUND ? NO_SUCH_JOB : NULL);
    else
        answered_job(a, res, 200);
}

void handle_job_get(route_args_t *a)
{
    store_t *st = http_call(a, got_job);
    st->ops->job_get(st, route_chan(a), a->param, a->param_len, 0, http_then, a);
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
