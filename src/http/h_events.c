/*
 * h_events.c -- events: list, publish (one or a batch), get, lock/unlock/
 * extend, delete.
 */
#include <string.h>
#include <strings.h>
#include "handlers.h"
#include "render.h"
#include "reqjson.h"

typedef core_pub_t pub_t;

static void send_reqerr(h2o_req_t *req, const reqerr_t *e)
{
    http_error(req, e->status, "%s", e->msg);
}

/* The publish time of a body: publishAt, now + publishIn, or now. */
static int publish_time(const jval_t *const *f, ntime_t now, ntime_t *at, reqerr_t *e)
{
    int64_t in;
    int has_at, has_in;
    if ((has_at = reqjson_time_of(f[FPUB_PUBLISH_AT], "publishAt", at, e)) < 0 ||
        (has_in = reqjson_duration_of(f[FPUB_PUBLISH_IN], "publishIn", 0, &in, e)) < 0)
        return -1;
    if (has_at && has_in) {
        reqerr_set(e, 400, "give either \"publishAt\" or \"publishIn\", not both");
        return -1;
    }
    if (!has_at)
        *at = now;
    if (has_in) {
        if (!reqjson_fits(now, in)) {
            reqerr_set(e, 400, "field \"publishIn\" is too long: now plus \"publishIn\" must be before 2262-01-01");
            return -1;
        }
        *at = now + in;
    }
    return has_at ? 1 : has_in ? 2 : 0;
}

/* Reads one publish body. Returns 0, or -1 with e set. */
static int parse_pub(const jval_t *o, const http_limits_t *lim, ntime_t now, pub_t *p, reqerr_t *e)
{
    if (o->type != JV_OBJECT) {
        reqerr_set(e, 400, "expected a JSON object with \"data\" (or an array of them)");
        return -1;
    }
    p->data = "";
    p->len = 0;
    p->ttl_ns = CORE_DEFAULT_TTL_NS;
    const jval_t *f[FPUB_N];
    int from;
    if (reqjson_fields(o, &req_publish_body, f, e) < 0 ||
        reqjson_string_of(f[FPUB_DATA], "data", &p->data, &p->len, e) < 0 ||
        reqjson_duration_of(f[FPUB_TTL], "ttl", 1, &p->ttl_ns, e) < 0 ||
        (from = publish_time(f, now, &p->publish_at, e)) < 0)
        return -1;
    if (p->len > lim->max_data) {
        reqerr_set(e, 413, "field \"data\" is %zu bytes; the limit is %zu", p->len, lim->max_data);
        return -1;
    }
    if (!reqjson_fits(p->publish_at, p->ttl_ns)) {
        static const char *const base[] = {"now", "\"publishAt\"", "now plus \"publishIn\""};
        reqerr_set(e, 400, "field \"ttl\" is too long: %s plus \"ttl\" must be before 2262-01-01",
                   base[from]);
        return -1;
    }
    return 0;
}

static void publish_one(h2o_req_t *req, route_args_t *a, const jval_t *o, ntime_t now)
{
    reqerr_t e;
    pub_t p;
    if (parse_pub(o, a->ctx->limits, now, &p, &e) != 0) {
        send_reqerr(req, &e);
        return;
    }
    channel_t *ch = route_channel_create(req, a, 1);
    if (!ch)
        return;
    event_t *ev = core_publish(a->ctx->core, ch, now, p.data, p.len, p.publish_at, p.ttl_ns);
    if (!ev) {
        route_channel_undo(a);
        http_error_io(req);
        return;
    }
    size_t loc_len = RENDER_EVENT_PATH_LEN(a->channel_raw.len);
    char *loc = h2o_mem_alloc_pool(&req->pool, loc_len);
    render_event_path(loc, a->channel_raw.base, a->channel_raw.len, event_id(ev));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, loc, loc_len);
    render_event(&a->ctx->out, ev, 0);
    http_respond(req, 201, &a->ctx->out);
}

/* All or nothing: every element is checked before any is published. */
static void publish_batch(h2o_req_t *req, route_args_t *a, const jval_t *arr, ntime_t now)
{
    size_t n = arr->u.kids.n;
    if (n == 0) {
        http_error(req, 400, "an empty array publishes nothing; send at least one event");
        return;
    }
    if (n > a->ctx->limits->max_batch) {
        http_error(req, 413, "batch of %zu events; the limit is %zu", n, a->ctx->limits->max_batch);
        return;
    }
    core_pub_t *p = h2o_mem_alloc_pool(&req->pool, n * sizeof(*p));
    size_t i = 0;
    for (const jval_t *el = arr->u.kids.first; el; el = el->next, i++) {
        reqerr_t e;
        if (parse_pub(el, a->ctx->limits, now, &p[i], &e) != 0) {
            http_error(req, e.status, "events[%zu]: %s", i, e.msg);
            return;
        }
    }
    channel_t *ch = route_channel_create(req, a, n);
    if (!ch)
        return;
    event_t **evs = h2o_mem_alloc_pool(&req->pool, n * sizeof(*evs));
    if (core_publish_batch(a->ctx->core, ch, now, p, n, evs) != CORE_OK) {
        route_channel_undo(a);
        http_error_io(req);
        return;
    }
    render_event_list(&a->ctx->out, ch, evs, n, 0);
    http_respond(req, 201, &a->ctx->out);
}

void handle_publish(h2o_req_t *req, route_args_t *a)
{
    reqerr_t e;
    jdoc_t doc;
    if (reqjson_parse(req->entity.base, req->entity.len, 0, a->ctx->limits->max_body, &doc, &e)) {
        jparse_free(&doc);
        send_reqerr(req, &e);
        return;
    }
    ntime_t now = http_now();
    if (doc.root->type == JV_ARRAY)
        publish_batch(req, a, doc.root, now);
    else
        publish_one(req, a, doc.root, now);
    jparse_free(&doc);
}

void handle_events_list(h2o_req_t *req, route_args_t *a)
{
    core_tick(a->ctx->core, http_now());
    channel_t blank;
    const channel_t *ch = route_channel_view(a, &blank);
    jsonw_t *w = &a->ctx->out;
    render_list_open(w, ch, ch->st.ready + ch->st.locked);
    for (event_t *e = ch == &blank ? NULL : channel_first(ch); e; e = channel_next(ch, e))
        render_event(w, e, 0);
    render_list_close(w);
    http_respond(req, 200, w);
}

/* The {id} of the path, or -1 if it cannot be an event id. */
static int path_id(route_args_t *a, eid_t *id)
{
    return id_parse(a->param_raw.base, a->param_raw.len, id);
}

void handle_event_get(h2o_req_t *req, route_args_t *a)
{
    eid_t id;
    channel_t *ch = route_channel_find(a);
    event_t *e = ch && path_id(a, &id) == 0 ? core_event_get(a->ctx->core, ch, http_now(), id) : NULL;
    if (!e) {
        http_error(req, 404, "no such event (unknown, expired or deleted)");
        return;
    }
    render_event(&a->ctx->out, e, 0);
    http_respond(req, 200, &a->ctx->out);
}

/* The lease token of a request: the body's "lockToken" member (field, or
 * NULL), else the Lock-Token header. Returns 1 with *token set, 0 if none,
 * -1 on a bad type. A token that is not well-formed cannot match any
 * lock: it becomes 0, which is never issued. */
static int request_token(h2o_req_t *req, const jval_t *field, uint64_t *token, reqerr_t *e)
{
    const char *s = NULL;
    size_t len = 0;
    int rc = reqjson_string_of(field, "lockToken", &s, &len, e);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("lock-token"), -1);
        if (i < 0)
            return 0;
        s = req->headers.entries[i].value.base;
        len = req->headers.entries[i].value.len;
    }
    if (core_token_parse(s, len, token) != 0)
        *token = 0;
    return 1;
}

enum action { ACT_LOCK, ACT_UNLOCK, ACT_EXTEND };

/* Reads a PUT/PATCH body (NULL: empty) into the action, the ttl and the
 * lockToken member (*token_field, NULL if absent). */
static int parse_update(const jval_t *body, enum action *act, int64_t *ttl,
                        const jval_t **token_field, reqerr_t *e)
{
    *act = ACT_LOCK;
    *ttl = CORE_DEFAULT_LOCK_NS;
    *token_field = NULL;
    if (!body)
        return 0;
    if (body->type != JV_OBJECT) {
        reqerr_set(e, 400, "expected a JSON object such as {\"action\":\"LOCK\",\"ttl\":\"1m\"}");
        return -1;
    }
    const jval_t *f[FUPD_N];
    const char *s;
    size_t len;
    int rc;
    if (reqjson_fields(body, &req_update_body, f, e) < 0 ||
        (rc = reqjson_string_of(f[FUPD_ACTION], "action", &s, &len, e)) < 0)
        return -1;
    if (rc > 0) {
        if (len == 4 && strncasecmp(s, "LOCK", 4) == 0)
            *act = ACT_LOCK;
        else if (len == 6 && strncasecmp(s, "UNLOCK", 6) == 0)
            *act = ACT_UNLOCK;
        else if (len == 6 && strncasecmp(s, "EXTEND", 6) == 0)
            *act = ACT_EXTEND;
        else {
            reqerr_set(e, 400, "field \"action\" must be LOCK, UNLOCK or EXTEND, not \"%.*s\"",
                       len > 40 ? 40 : (int)len, s);
            return -1;
        }
    }
    *token_field = f[FUPD_LOCK_TOKEN];
    return reqjson_duration_of(f[FUPD_TTL], "ttl", 1, ttl, e) < 0 ? -1 : 0;
}

static void answer_update(h2o_req_t *req, route_args_t *a, enum action act, core_status_t st,
                          event_t *ev, int has_token)
{
    if (st == CORE_GONE)
        http_error(req, 410, act == ACT_EXTEND ? "event is not locked (or expired, deleted, unknown)"
                             : act == ACT_LOCK ? "event is locked, expired, deleted, not yet published or unknown"
                                               : "event is expired, deleted, not yet published or unknown");
    else if (st == CORE_CONFLICT)
        http_error(req, 409, "lockToken does not match the event's current lock");
    else if (st == CORE_IO)
        http_error_io(req);
    else {
        /* The token goes to whoever took the lock; an EXTEND shows it only
         * to a caller who proved it knows it, so the token cannot be
         * learned by extending someone else's lock. */
        render_event(&a->ctx->out, ev, act == ACT_LOCK || (act == ACT_EXTEND && has_token));
        http_respond(req, 202, &a->ctx->out);
    }
}

void handle_event_update(h2o_req_t *req, route_args_t *a)
{
    reqerr_t e;
    jdoc_t doc;
    if (reqjson_parse(req->entity.base, req->entity.len, 1, a->ctx->limits->max_body, &doc, &e)) {
        jparse_free(&doc);
        send_reqerr(req, &e);
        return;
    }
    enum action act;
    int64_t ttl;
    uint64_t token;
    int has_token = 0;
    const jval_t *token_field;
    if (parse_update(doc.root, &act, &ttl, &token_field, &e) != 0 ||
        (has_token = request_token(req, token_field, &token, &e)) < 0) {
        jparse_free(&doc);
        send_reqerr(req, &e);
        return;
    }
    jparse_free(&doc);
    ntime_t now = http_now();
    if (act != ACT_UNLOCK && !reqjson_fits(now, ttl)) {
        http_error(req, 400, "field \"ttl\" is too long: now plus the lock's \"ttl\" must be before 2262-01-01");
        return;
    }
    core_t *c = a->ctx->core;
    /* An unknown channel holds no events: the answer is the one for an
     * unknown event, and no channel is created. */
    channel_t *ch = route_channel_find(a);
    eid_t id;
    event_t *ev = NULL;
    core_status_t st = CORE_GONE;
    if (ch && path_id(a, &id) == 0) {
        const uint64_t *tok = has_token ? &token : NULL;
        if (act == ACT_LOCK)
            st = core_lock(c, ch, now, id, ttl, &ev);
        else if (act == ACT_UNLOCK)
            st = core_unlock(c, ch, now, id, tok, &ev);
        else
            st = core_extend(c, ch, now, id, ttl, tok, &ev);
    }
    answer_update(req, a, act, st, ev, has_token);
}

void handle_event_delete(h2o_req_t *req, route_args_t *a)
{
    reqerr_t e;
    uint64_t token;
    int has_token = request_token(req, NULL, &token, &e);
    core_t *c = a->ctx->core;
    channel_t *ch = route_channel_find(a);
    eid_t id;
    core_status_t st = CORE_NOT_FOUND;
    if (ch && path_id(a, &id) == 0)
        st = core_delete(c, ch, http_now(), id, has_token > 0 ? &token : NULL);
    if (st == CORE_NOT_FOUND)
        http_error(req, 404, "no such event (unknown, expired or deleted)");
    else if (st == CORE_CONFLICT)
        http_error(req, 409, "lockToken does not match the event's current lock");
    else if (st == CORE_IO)
        http_error_io(req);
    else
        http_respond_empty(req, 202);
}
