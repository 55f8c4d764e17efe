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
    channel_t *ch = route_channel(req, a);
    if (!ch)
        return;
    job_t **jobs;
    size_t n = core_jobs_sorted(ch, &jobs);
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

/* Reads the body of a job add. Returns 0 or -1 with e set. */
static int parse_job(const jval_t *o, const char **name, size_t *name_len, const char **cron,
                     size_t *cron_len, const char **data, size_t *data_len, int64_t *ttl,
                     size_t max_data, reqerr_t *e)
{
    if (o->type != JV_OBJECT) {
        reqerr_set(e, 400, "expected a JSON object with \"name\" and \"cronDef\"");
        return -1;
    }
    *data = "";
    *data_len = 0;
    *ttl = CORE_DEFAULT_TTL_NS;
    int has_name, has_cron;
    if ((has_name = reqjson_string(o, "name", name, name_len, e)) < 0 ||
        (has_cron = reqjson_string(o, "cronDef", cron, cron_len, e)) < 0 ||
        reqjson_string(o, "data", data, data_len, e) < 0 || reqjson_duration(o, "ttl", 1, ttl, e) < 0)
        return -1;
    if (!has_name || *name_len == 0 || !has_cron || *cron_len == 0) {
        reqerr_set(e, 400, "fields \"name\" and \"cronDef\" are required and must not be empty");
        return -1;
    }
    char err[128];
    if (router_valid_name(*name, *name_len, err, sizeof(err)) != 0) {
        reqerr_set(e, 400, "field \"name\": %s", err);
        return -1;
    }
    if (*data_len > max_data) {
        reqerr_set(e, 413, "field \"data\" is %zu bytes; the limit is %zu", *data_len, max_data);
        return -1;
    }
    return 0;
}

void handle_job_add(h2o_req_t *req, route_args_t *a)
{
    reqerr_t e;
    jdoc_t doc;
    const char *name, *cron, *data;
    size_t name_len, cron_len, data_len;
    int64_t ttl;
    if (reqjson_parse(req->entity.base, req->entity.len, 0, a->ctx->limits->max_body, &doc, &e) ||
        parse_job(doc.root, &name, &name_len, &cron, &cron_len, &data, &data_len, &ttl,
                  a->ctx->limits->max_data, &e)) {
        jparse_free(&doc);
        http_error(req, e.status, "%s", e.msg);
        return;
    }
    channel_t *ch = route_channel(req, a);
    if (!ch) {
        jparse_free(&doc);
        return;
    }
    job_t *job;
    char err[300];
    core_status_t st = core_job_add(a->ctx->core, ch, http_now(), name, name_len, cron, cron_len,
                                    data, data_len, ttl, &job, err, sizeof(err));
    jparse_free(&doc);
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
    channel_t *ch = route_channel(req, a);
    if (!ch)
        return;
    job_t *job = a->param_len ? core_job_get(a->ctx->core, ch, a->param, a->param_len) : NULL;
    if (!job) {
        http_error(req, 404, "no such job");
        return;
    }
    render_job(&a->ctx->out, job);
    http_respond(req, 200, &a->ctx->out);
}

void handle_job_delete(h2o_req_t *req, route_args_t *a)
{
    channel_t *ch = route_channel(req, a);
    if (!ch)
        return;
    core_status_t st = a->param_len == 0 ? CORE_NOT_FOUND
                                         : core_job_delete(a->ctx->core, ch, http_now(), a->param, a->param_len);
    if (st == CORE_NOT_FOUND)
        http_error(req, 404, "no such job");
    else if (st == CORE_IO)
        http_error_io(req);
    else
        http_respond_empty(req, 202);
}
