/*
 * h_events.c -- events: list (whole or in pages), publish (one or a
 * batch, idempotent with a key), get, lock/unlock/extend, delete.
 */
#include <string.h>
#include <strings.h>
#include "handlers.h"
#include "render.h"
#include "reqjson.h"
#include "respond.h"

#define NO_SUCH_EVENT "no such event (unknown, expired or deleted)"
#define TOKEN_MISMATCH "lockToken does not match the event's current lock"
#define KEY_MAX 200    /* bytes of an idempotency key */
#define LIST_MAX 10000 /* events of one page */

/* The value of request header name (lower case), or NULL. */
static const h2o_iovec_t *header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i < 0 ? NULL : &req->headers.entries[i].value;
}

/* Reads one publish body. Returns 0, or -1 with e set. */
static int parse_pub(const jval_t *o, const http_limits_t *lim, store_pub_t *p, reqerr_t *e)
{
    memset(p, 0, sizeof(*p));
    p->data = "";
    p->ttl_ns = HTTP_DEFAULT_TTL_NS;
    int has_at, has_in, has_key;
    int64_t prio = 0;
    const jval_t *f[FPUB_N];
    if (reqjson_fields(o, &req_publish_body, f, e) < 0 ||
        reqjson_data_of(f[FPUB_DATA], "data", &p->data, &p->data_len, &p->data_json, e) < 0 ||
        reqjson_duration_of(f[FPUB_TTL], "ttl", 1, &p->ttl_ns, e) < 0 ||
        (has_at = reqjson_time_of(f[FPUB_PUBLISH_AT], "publishAt", &p->publish_at, e)) < 0 ||
        (has_in = reqjson_duration_of(f[FPUB_PUBLISH_IN], "publishIn", 0, &p->publish_in_ns, e)) < 0 ||
        reqjson_int_of(f[FPUB_PRIORITY], "priority", 0, 9, &prio, e) < 0 ||
        (has_key = reqjson_string_of(f[FPUB_KEY], "key", &p->key, &p->key_len, e)) < 0)
        return -1;
    p->priority = (uint8_t)prio;
    if (has_key && (p->key_len == 0 || p->key_len > KEY_MAX)) {
        reqerr_set(e, 400, "field \"key\" must be 1 to %d bytes long", KEY_MAX);
        return -1;
    }
    if (!has_key)
        p->key = NULL;
    if (p->data_len > lim->max_data) {
        reqerr_set(e, 413, "field \"data\" is %zu bytes; the limit is %zu", p->data_len, lim->max_data);
        return -1;
    }
    if (has_at && has_in) {
        reqerr_set(e, 400, "give either \"publishAt\" or \"publishIn\", not both");
        return -1;
    }
    p->has_publish_at = has_at > 0;
    return 0;
}

/* 201 for a new event, 200 with Idempotent-Replayed for a live key's. */
static int publish_status(route_args_t *a, const store_res_t *res)
{
    if (res->status == STORE_CREATED)
        return 201;
    http_add_header(a->req, "idempotent-replayed", "true", 4);
    return 200;
}

void answer_event_at(route_args_t *a, int status, const store_event_t *ev, uint64_t durable_seq)
{
    h2o_req_t *req = a->req;
    size_t loc_len = RENDER_EVENT_PATH_LEN(a->channel_raw.len);
    char *loc = h2o_mem_alloc_pool(&req->pool, loc_len);
    render_event_path(loc, a->channel_raw.base, a->channel_raw.len, ev->id);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, loc, loc_len);
    render_event(&a->ctx->out, ev, 0);
    http_respond(a, status, &a->ctx->out, durable_seq);
}

static void published_one(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_CREATED && res->status != STORE_REPLAYED)
        http_store_error(a, res, NULL);
    else
        answer_event_at(a, publish_status(a, res), &res->events[0], res->durable_seq);
}

/* The Idempotency-Key header into p: 0, or -1 with e set when it is not
 * 1-200 bytes or disagrees with the body's "key". */
static int key_header(h2o_req_t *req, store_pub_t *p, reqerr_t *e)
{
    const h2o_iovec_t *h = header(req, H2O_STRLIT("idempotency-key"));
    if (!h)
        return 0;
    if (h->len == 0 || h->len > KEY_MAX) {
        reqerr_set(e, 400, "header Idempotency-Key must be 1 to %d bytes long", KEY_MAX);
        return -1;
    }
    if (p->key && !(p->key_len == h->len && memcmp(p->key, h->base, h->len) == 0)) {
        reqerr_set(e, 400, "header Idempotency-Key and field \"key\" disagree; give one, or the same in both");
        return -1;
    }
    p->key = h->base;
    p->key_len = h->len;
    return 0;
}

static int publish_one(route_args_t *a, const jval_t *o, reqerr_t *e)
{
    store_pub_t p;
    if (parse_pub(o, a->ctx->limits, &p, e) != 0 || key_header(a->req, &p, e) != 0)
        return -1;
    store_t *st = http_call(a, published_one);
    st->ops->publish(st, route_chan(a), &p, 1, http_then, a);
    return 0;
}

/* Answers status with the events of res as a list whose "count" is
 * count, and "next" when res names a next page. */
static void answer_list(route_args_t *a, const store_res_t *res, int status, size_t count)
{
    jsonw_t *w = &a->ctx->out;
    render_list_open(w, a->channel, a->channel_len, count);
    for (size_t i = 0; i < res->n_events; i++)
        render_event(w, &res->events[i], 0);
    if (res->next)
        render_list_close_next(w, res->next, res->next_len);
    else
        render_list_close(w);
    http_respond(a, status, w, res->durable_seq);
}

/* A batch lists every element's event, new or not; count counts the new. */
static void published_batch(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_CREATED && res->status != STORE_REPLAYED)
        http_store_error(a, res, NULL);
    else
        answer_list(a, res, publish_status(a, res), res->created);
}

/* All or nothing: every element is checked before any is published. */
static void publish_batch(route_args_t *a, const jval_t *arr)
{
    size_t n = arr->u.kids.n;
    if (n == 0) {
        http_error(a, 400, "an empty array publishes nothing; send at least one event");
        return;
    }
    if (n > a->ctx->limits->max_batch) {
        http_error(a, 413, "batch of %zu events; the limit is %zu", n, a->ctx->limits->max_batch);
        return;
    }
    if (header(a->req, H2O_STRLIT("idempotency-key"))) {
        http_error(a, 400, "header Idempotency-Key is refused on a batch: give each element its own \"key\"");
        return;
    }
    store_pub_t *p = h2o_mem_alloc_pool(&a->req->pool, n * sizeof(*p));
    size_t i = 0;
    for (const jval_t *el = arr->u.kids.first; el; el = el->next, i++) {
        reqerr_t e;
        if (parse_pub(el, a->ctx->limits, &p[i], &e) != 0) {
            http_error(a, e.status, "events[%zu]: %s", i, e.msg);
            return;
        }
    }
    store_t *st = http_call(a, published_batch);
    st->ops->publish(st, route_chan(a), p, n, http_then, a);
}

static int publish(route_args_t *a, const jval_t *body, reqerr_t *e)
{
    if (body->type != JV_ARRAY)
        return publish_one(a, body, e);
    publish_batch(a, body);
    return 0;
}

void handle_publish(route_args_t *a)
{
    handler_body(a, 0, publish);
}

static void listed(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK)
        http_store_error(a, res, NULL);
    else
        answer_list(a, res, 200, res->n_events);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) ('+' is a space) into the pool: the bytes,
 * or NULL if an escape is malformed. */
static char *query_decode(h2o_mem_pool_t *pool, const char *s, size_t len, size_t *out_len)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            *o++ = s[i] == '+' ? ' ' : s[i];
            continue;
        }
        int hi = i + 2 < len ? hexval(s[i + 1]) : -1, lo = i + 2 < len ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return NULL;
        *o++ = (char)(hi << 4 | lo);
        i += 2;
    }
    *out_len = (size_t)(o - out);
    return out;
}

/* One parameter of GET /{c}/events into q. 0, or -1 with e set. */
static int list_param(store_list_t *q, const char *k, size_t klen, const char *v, size_t vlen, reqerr_t *e)
{
    static const struct { const char *name; store_list_state_t st; } states[] = {
        {"visible", STORE_LIST_VISIBLE}, {"ready", STORE_LIST_READY},
        {"locked", STORE_LIST_LOCKED}, {"scheduled", STORE_LIST_SCHEDULED}};
    if (klen == 5 && memcmp(k, "limit", 5) == 0) {
        size_t n = 0, i = 0;
        for (; i < vlen && i < 6 && v[i] >= '0' && v[i] <= '9'; i++)
            n = n * 10 + (size_t)(v[i] - '0');
        if (vlen == 0 || i != vlen || n < 1 || n > LIST_MAX) {
            reqerr_set(e, 400, "parameter \"limit\" must be an integer from 1 to %d", LIST_MAX);
            return -1;
        }
        q->limit = n;
        return 0;
    }
    if (klen == 5 && memcmp(k, "after", 5) == 0) {
        q->after = v;
        q->after_len = vlen;
        return 0;
    }
    if (klen == 5 && memcmp(k, "state", 5) == 0) {
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
            if (strlen(states[i].name) == vlen && memcmp(states[i].name, v, vlen) == 0) {
                q->state = states[i].st;
                return 0;
            }
        reqerr_set(e, 400, "parameter \"state\" must be visible, ready, locked or scheduled");
        return -1;
    }
    reqerr_set(e, 400, "unknown query parameter \"%.*s\"; this route takes limit, after and state",
               klen > 40 ? 40 : (int)klen, k);
    return -1;
}

/* The query string of GET /{c}/events into q. 0, or -1 with e set. */
static int list_query(h2o_req_t *req, store_list_t *q, reqerr_t *e)
{
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        size_t klen, vlen = 0;
        char *k = query_decode(&req->pool, p, (size_t)((eq ? eq : stop) - p), &klen);
        char *v = eq ? query_decode(&req->pool, eq + 1, (size_t)(stop - eq - 1), &vlen) : "";
        if (!k || !v) {
            reqerr_set(e, 400, "malformed percent-encoding in the query string");
            return -1;
        }
        if (klen && list_param(q, k, klen, v, vlen, e) != 0)
            return -1;
        p = stop + 1;
    }
    if (q->after && !q->after_len) {
        reqerr_set(e, 400, "parameter \"after\" is empty; pass the \"next\" of an earlier page");
        return -1;
    }
    return 0;
}

void handle_events_list(route_args_t *a)
{
    reqerr_t e;
    store_list_t q = {route_chan(a), STORE_LIST_VISIBLE, 0, NULL, 0};
    if (list_query(a->req, &q, &e) != 0) {
        http_error(a, e.status, "%s", e.msg);
        return;
    }
    store_t *st = http_call(a, listed);
    st->ops->list(st, &q, http_then, a);
}

/* The {id} of the path; one that cannot be an event id becomes the id
 * that is never made, so the store answers as for an unknown event. */
static eid_t path_id(const route_args_t *a)
{
    eid_t id;
    if (id_parse(a->param_raw.base, a->param_raw.len, &id) != 0)
        id.hi = id.lo = 0;
    return id;
}

static void got_event(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK) {
        http_store_error(a, res, res->status == STORE_NOT_FOUND ? NO_SUCH_EVENT : NULL);
        return;
    }
    render_event(&a->ctx->out, &res->events[0], 0);
    http_respond(a, 200, &a->ctx->out, res->durable_seq);
}

void handle_event_get(route_args_t *a)
{
    store_t *st = http_call(a, got_event);
    st->ops->get(st, route_chan(a), path_id(a), http_then, a);
}

/* The lease token of a request: the body's "lockToken" member (field, or
 * NULL) and the Lock-Token header, which must agree when both are given.
 * Returns 1 with *token set, 0 if none, -1 on a bad type or a
 * disagreement. A token that is not well-formed cannot match any lock:
 * it becomes 0, which is never issued. */
static int request_token(h2o_req_t *req, const jval_t *field, uint64_t *token, reqerr_t *e)
{
    const char *s = NULL;
    size_t len = 0;
    int rc = reqjson_string_of(field, "lockToken", &s, &len, e);
    if (rc < 0)
        return -1;
    const h2o_iovec_t *h = header(req, H2O_STRLIT("lock-token"));
    if (rc > 0 && h && !(h->len == len && memcmp(h->base, s, len) == 0)) {
        reqerr_set(e, 400, "header Lock-Token and field \"lockToken\" disagree; give one, or the same in both");
        return -1;
    }
    if (rc == 0) {
        if (!h)
            return 0;
        s = h->base;
        len = h->len;
    }
    if (token_parse(s, len, token) != 0)
        *token = 0;
    return 1;
}

enum action { ACT_LOCK, ACT_UNLOCK, ACT_EXTEND };

/* Reads a PUT/PATCH body (NULL: empty) into the action, the ttl, the
 * delay (UNLOCK only; 0 if absent) and the lockToken member (*token_field,
 * NULL if absent). */
static int parse_update(const jval_t *body, int *act, int64_t *ttl, int64_t *delay, const jval_t **token_field,
                        reqerr_t *e)
{
    *act = ACT_LOCK;
    *ttl = HTTP_DEFAULT_LOCK_NS;
    *delay = 0;
    *token_field = NULL;
    if (!body)
        return 0;
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
    if (f[FUPD_DELAY] && *act != ACT_UNLOCK) {
        reqerr_set(e, 400, "field \"delay\" is taken only with the action UNLOCK");
        return -1;
    }
    if (reqjson_duration_of(f[FUPD_DELAY], "delay", 0, delay, e) < 0)
        return -1;
    return reqjson_duration_of(f[FUPD_TTL], "ttl", 1, ttl, e) < 0 ? -1 : 0;
}

static void updated(route_args_t *a, const store_res_t *res)
{
    static const char *const gone[] = {
        [ACT_LOCK] = "event is locked, expired, deleted, not yet published or unknown",
        [ACT_UNLOCK] = "event is expired, deleted, not yet published or unknown",
        [ACT_EXTEND] = "event is not locked (or expired, deleted, unknown)",
    };
    if (res->status != STORE_OK) {
        http_store_error(a, res, res->status == STORE_GONE ? gone[a->action]
                                 : res->status == STORE_CONFLICT ? TOKEN_MISMATCH
                                                                 : NULL);
        return;
    }
    if (res->n_events == 0) { /* an UNLOCK at the delivery limit dead-lettered it */
        http_respond_empty(a, 202, res->durable_seq);
        return;
    }
    /* The token goes to whoever took the lock; an EXTEND shows it only to
     * a caller who proved it knows it, so the token cannot be learned by
     * extending someone else's lock. */
    int with_token = a->action == ACT_LOCK || (a->action == ACT_EXTEND && a->has_token);
    render_event(&a->ctx->out, &res->events[0], with_token);
    http_respond(a, 202, &a->ctx->out, res->durable_seq);
}

static int update(route_args_t *a, const jval_t *body, reqerr_t *e)
{
    int64_t ttl, delay;
    uint64_t token;
    const jval_t *token_field;
    if (parse_update(body, &a->action, &ttl, &delay, &token_field, e) != 0 ||
        (a->has_token = request_token(a->req, token_field, &token, e)) < 0)
        return -1;
    const uint64_t *tok = a->has_token ? &token : NULL;
    eid_t id = path_id(a);
    store_t *st = http_call(a, updated);
    if (a->action == ACT_LOCK)
        st->ops->lock(st, route_chan(a), id, ttl, http_then, a);
    else if (a->action == ACT_UNLOCK)
        st->ops->unlock(st, route_chan(a), id, tok, delay, http_then, a);
    else
        st->ops->extend(st, route_chan(a), id, ttl, tok, http_then, a);
    return 0;
}

void handle_event_update(route_args_t *a)
{
    handler_body(a, 1, update);
}

static void deleted(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK) {
        http_store_error(a, res, res->status == STORE_NOT_FOUND ? NO_SUCH_EVENT
                                 : res->status == STORE_CONFLICT ? TOKEN_MISMATCH
                                                                 : NULL);
        return;
    }
    http_respond_empty(a, 202, res->durable_seq);
}

void handle_event_delete(route_args_t *a)
{
    reqerr_t e;
    uint64_t token;
    int has_token = request_token(a->req, NULL, &token, &e); /* no field: cannot fail */
    store_t *st = http_call(a, deleted);
    st->ops->del(st, route_chan(a), path_id(a), has_token > 0 ? &token : NULL, http_then, a);
}
