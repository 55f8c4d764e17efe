/*
 * h_jobs.c -- recurring jobs: list, add, get, delete.
 */
#include <stdlib.h>
#include "handlers.h"
#include "render.h"
#include "reqjson.h"
#include "router.h"

void handle_jobs_list(h2o_req_t *req, route_args_t *a)
{
    channel_t blank;
    const channel_t *ch = route_channel_view(a, &blank);
    job_t **jobs = NULL;
    size_t n = ch == &blank ? 0 : core_jobs_sorted((channel_t *)ch, &jobs);
    jsonw_t *w = &a->ctx->out;
    jsonw_obj_begin(w);
    jsonw_key(w, "channelName");
    jsonw_str(w, ch->name, ch->name_len);
    jsonw_key(w, "jobs");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n; i++)
        render_job(w, jobs[i]);
    jsonw_arr_end(w);
    jsonw_obj_end(w);
    free(jobs);
    http_respond(req, 200, w);
}

typedef struct job_body {
    const char *name, *cron, *data;
    size_t name_len, cron_len, data_len;
    int64_t ttl_ns;
} job_body_t;

/* A required string field: present and not empty. */
static int required(const jval_t *v, const char *key, const char *example, const char **s,
                    size_t *len, reqerr_t *e)
{
    int rc = reqjson_string_of(v, key, s, len, e);
    if (rc < 0)
        return -1;
    if (rc == 0 || *len == 0) {
        reqerr_set(e, 400, "field \"%s\" is required%s (%s)", key, rc ? " and must not be empty" : "",
                   example);
        return -1;
    }
    return 0;
}

/* Reads the body of a job add. Returns 0 or -1 with e set. */
static int parse_job(const jval_t *o, ntime_t now, size_t max_data, job_body_t *j, reqerr_t *e)
{
    if (o->type != JV_OBJECT) {
        reqerr_set(e, 400, "expected a JSON object with \"name\" and \"cronDef\"");
        return -1;
    }
    const jval_t *f[FJOB_N];
    j->data = "";
    j->data_len = 0;
    j->ttl_ns = CORE_DEFAULT_TTL_NS;
    if (reqjson_fields(o, &req_job_body, f, e) < 0 ||
        required(f[FJOB_NAME], "name", "the job's name, e.g. \"nightly-report\"", &j->name, &j->name_len, e) < 0 ||
        required(f[FJOB_CRON_DEF], "cronDef", "a cron definition, e.g. \"*/5 * * * *\" or \"@hourly\"",
                 &j->cron, &j->cron_len, e) < 0 ||
        reqjson_string_of(f[FJOB_DATA], "data", &j->data, &j->data_len, e) < 0 ||
        reqjson_duration_of(f[FJOB_TTL], "ttl", 1, &j->ttl_ns, e) < 0)
        return -1;
    char err[128];
    if (router_valid_name(j->name, j->name_len, err, sizeof(err)) != 0) {
        reqerr_set(e, 400, "field \"name\": %s", err);
        return -1;
    }
    if (j->data_len > max_data) {
        reqerr_set(e, 413, "field \"data\" is %zu bytes; the limit is %zu", j->data_len, max_data);
        return -1;
    }
    /* Each fire publishes an event living until fire + ttl. A fire is
     * never before now; the core caps one that would pass the end of the
     * time range, which only a server running in the 2160s can reach. */
    if (!reqjson_fits(now, j->ttl_ns)) {
        reqerr_set(e, 400, "field \"ttl\" is too long: now plus \"ttl\" must be before 2262-01-01");
        return -1;
    }
    return 0;
}

void handle_job_add(h2o_req_t *req, route_args_t *a)
{
    reqerr_t e;
    jdoc_t doc;
    job_body_t j;
    ntime_t now = http_now();
    if (reqjson_parse(req->entity.base, req->entity.len, 0, a->ctx->limits->max_body, &doc, &e) ||
        parse_job(doc.root, now, a->ctx->limits->max_data, &j, &e)) {
        jparse_free(&doc);
        http_error(req, e.status, "%s", e.msg);
        return;
    }
    channel_t *ch = route_channel_create(req, a, 0);
    if (!ch) {
        jparse_free(&doc);
        return;
    }
    job_t *job;
    char err[300];
    core_status_t st = core_job_add(a->ctx->core, ch, now, j.name, j.name_len, j.cron, j.cron_len, j.data,
                                    j.data_len, j.ttl_ns, &job, err, sizeof(err));
    jparse_free(&doc);
    if (st != CORE_OK)
        route_channel_undo(a);
    if (st == CORE_CONFLICT)
        http_error(req, 409, "a job named this already exists in this channel");
    else if (st == CORE_IO)
        http_error_io(req);
    else if (st != CORE_OK)
        http_error(req, 400, "field \"cronDef\": %s", err);
    else {
        render_job(&a->ctx->out, job);
        http_respond(req, 201, &a->ctx->out);
    }
}

void handle_job_get(h2o_req_t *req, route_args_t *a)
{
    core_tick(a->ctx->core, http_now());
    channel_t *ch = route_channel_find(a);
    job_t *job = ch && a->param_len ? core_job_get(a->ctx->core, ch, a->param, a->param_len) : NULL;
    if (!job) {
        http_error(req, 404, "no such job");
        return;
    }
    render_job(&a->ctx->out, job);
    http_respond(req, 200, &a->ctx->out);
}

void handle_job_delete(h2o_req_t *req, route_args_t *a)
{
    channel_t *ch = route_channel_find(a);
    core_status_t st = !ch || a->param_len == 0 ? CORE_NOT_FOUND
                                         : core_job_delete(a->ctx->core, ch, http_now(), a->param, a->param_len);
    if (st == CORE_NOT_FOUND)
        http_error(req, 404, "no such job");
    else if (st == CORE_IO)
        http_error_io(req);
    else
        http_respond_empty(req, 202);
}
