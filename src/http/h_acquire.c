/*
 * h_acquire.c -- POST /{channel}/acquire: hand out the oldest available
 * events, each locked, and park the request when there are none.
 *
 * A parked request is a waiter on its channel's list (oldest first), with
 * its end of wait in the core's timer heap. It leaves the list in exactly
 * one of three ways: served (events became available), timed out (answered
 * with count 0), or disposed (the client went away and h2o freed the
 * request). The waiter lives in the request's pool with a dispose hook, so
 * a hang-up can never leave a dangling waiter.
 *
 * An acquire creates no channel. One that waits on a channel that does not
 * exist yet is parked on a pending list under the channel's name; when a
 * publish or job add creates the channel, the list moves onto it
 * (acquire_adopt_waiters), ahead of anyone who parks later.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "handlers.h"
#include "render.h"
#include "reqjson.h"
#include "base/util.h"

#define ACQUIRE_MAX 1000
#define ACQUIRE_MAX_WAIT_NS (60LL * NTIME_NS_PER_S)

typedef struct waiter waiter_t;

/* Waiters on a channel that does not exist (yet). Each name with waiters
 * has one; they are few (at most -max-waiters, usually none), so a list
 * searched by name does, and the HTTP layer needs no map of its own. */
typedef struct pending {
    waiter_t *head, *tail;
    struct pending *prev, *next; /* all pending lists */
    size_t name_len;
    char name[HTTP_NAME_MAX];
} pending_t;

struct waiter {
    tnode_t timer;            /* end of the wait */
    waiter_t *prev, *next;
    h2o_req_t *req;
    http_ctx_t *ctx;
    channel_t *channel;       /* NULL while on a pending list */
    pending_t *pending;       /* that list, else NULL */
    size_t max;
    int64_t ttl_ns;
    int route;                /* for metrics */
    ntime_t started;          /* for the access log */
    int linked;               /* on a channel's or a pending list */
};

static size_t nwaiters; /* parked now, all channels */
static pending_t *pendings; /* the pending lists, one per name with waiters */

/* The ends of the list w is on. */
static void list_of(waiter_t *w, void ***head, void ***tail)
{
    if (w->channel) {
        *head = &w->channel->wait_head;
        *tail = &w->channel->wait_tail;
    } else {
        *head = (void **)&w->pending->head;
        *tail = (void **)&w->pending->tail;
    }
}

static pending_t *pending_find(const char *name, size_t len)
{
    for (pending_t *p = pendings; p; p = p->next)
        if (p->name_len == len && memcmp(p->name, name, len) == 0)
            return p;
    return NULL;
}

/* The pending list of a channel name, created if absent. */
static pending_t *pending_get(const char *name, size_t len)
{
    pending_t *p = pending_find(name, len);
    if (p)
        return p;
    ASSERT(len <= HTTP_NAME_MAX);
    p = xcalloc(1, sizeof(*p));
    memcpy(p->name, name, len);
    p->name_len = len;
    p->next = pendings;
    if (pendings)
        pendings->prev = p;
    pendings = p;
    return p;
}

static void pending_free(pending_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        pendings = p->next;
    if (p->next)
        p->next->prev = p->prev;
    free(p);
}

static void unlink_waiter(waiter_t *w)
{
    if (!w->linked)
        return;
    nwaiters--;
    void **head, **tail;
    list_of(w, &head, &tail);
    if (w->prev)
        w->prev->next = w->next;
    else
        *head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        *tail = w->prev;
    w->linked = 0;
    core_timer_cancel(w->ctx->core, &w->timer);
    pending_t *p = w->pending;
    if (p && !p->head)
        pending_free(p);
    w->pending = NULL;
}

/* Appends w to the list whose ends are *head and *tail. */
static void append_waiter(waiter_t *w, void **head, void **tail)
{
    w->next = NULL;
    w->prev = *tail;
    if (*tail)
        ((waiter_t *)*tail)->next = w;
    else
        *head = w;
    *tail = w;
    w->linked = 1;
    nwaiters++;
}

void acquire_adopt_waiters(http_ctx_t *ctx, channel_t *ch)
{
    (void)ctx;
    pending_t *p = pending_find(ch->name, ch->name_len);
    if (!p)
        return;
    ASSERT(!ch->wait_head);
    for (waiter_t *w = p->head; w; w = w->next) {
        w->channel = ch;
        w->pending = NULL;
    }
    ch->wait_head = p->head;
    ch->wait_tail = p->tail;
    pending_free(p);
}

void acquire_orphan_waiters(http_ctx_t *ctx, channel_t *ch)
{
    (void)ctx;
    if (!ch->wait_head)
        return;
    pending_t *p = pending_get(ch->name, ch->name_len);
    ASSERT(!p->head);
    for (waiter_t *w = ch->wait_head; w; w = w->next) {
        w->channel = NULL;
        w->pending = p;
    }
    p->head = ch->wait_head;
    p->tail = ch->wait_tail;
    ch->wait_head = ch->wait_tail = NULL;
}

static void on_waiter_dispose(void *p)
{
    unlink_waiter(p);
}

static void answer(h2o_req_t *req, http_ctx_t *ctx, const channel_t *ch, event_t **evs, size_t n)
{
    render_event_list(&ctx->out, ch, evs, n, 1);
    http_respond(req, 200, &ctx->out);
}

/* Unparks w and answers it count 0. */
static void finish_empty(waiter_t *w)
{
    char name[HTTP_NAME_MAX];
    channel_t blank;
    const channel_t *ch = w->channel;
    if (!ch) {
        /* The pending list, and the name with it, may go with the waiter. */
        memset(&blank, 0, sizeof(blank));
        memcpy(name, w->pending->name, w->pending->name_len);
        blank.name = name;
        blank.name_len = (uint32_t)w->pending->name_len;
        ch = &blank;
    }
    unlink_waiter(w);
    answer(w->req, w->ctx, ch, NULL, 0);
}

/* Has the client of a parked request hung up? HTTP/1 stops reading while
 * a request is in flight, so h2o would only notice at write time: look at
 * the socket before locking anything for it. */
static int client_gone(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (!sock)
        return 0;
    char b;
    ssize_t r = recv(h2o_socket_get_fd(sock), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0;
}

void acquire_serve_waiters(http_ctx_t *ctx)
{
    channel_t *ch;
    while ((ch = core_next_available(ctx->core)) != NULL) {
        while (ch->wait_head && ch->ready_len > 0) {
            waiter_t *w = ch->wait_head;
            unlink_waiter(w);
            if (client_gone(w->req)) {
                /* Nothing is locked for it; the empty answer lets h2o find
                 * the closed socket and free the connection. */
                answer(w->req, ctx, ch, NULL, 0);
                continue;
            }
            event_t **evs = h2o_mem_alloc_pool(&w->req->pool, w->max * sizeof(*evs));
            size_t n = core_acquire(ctx->core, ch, http_now(), w->max, w->ttl_ns, evs);
            answer(w->req, ctx, ch, evs, n);
            http_finished(w->req, w->route, w->started, 1);
        }
    }
}

void acquire_on_timeout(http_ctx_t *ctx, tnode_t *node, ntime_t now)
{
    (void)now;
    (void)ctx;
    waiter_t *w = (waiter_t *)(void *)((char *)node - offsetof(waiter_t, timer));
    finish_empty(w);
    http_finished(w->req, w->route, w->started, 1);
}

void acquire_release_all(http_ctx_t *ctx)
{
    channel_t **chans;
    size_t n = core_channels_sorted(ctx->core, &chans);
    for (size_t i = 0; i < n; i++) {
        while (chans[i]->wait_head)
            finish_empty(chans[i]->wait_head);
    }
    free(chans);
    /* Unlinking a list's last waiter frees the list. */
    while (pendings)
        finish_empty(pendings->head);
}

static int parse_acquire(const jval_t *body, int64_t *max, int64_t *ttl, int64_t *wait, reqerr_t *e)
{
    *max = 1;
    *ttl = CORE_DEFAULT_LOCK_NS;
    *wait = 0;
    if (!body)
        return 0;
    if (body->type != JV_OBJECT) {
        reqerr_set(e, 400, "expected a JSON object such as {\"max\":10,\"ttl\":\"1m\",\"wait\":\"20s\"}");
        return -1;
    }
    const jval_t *f[FACQ_N];
    if (reqjson_fields(body, &req_acquire_body, f, e) < 0 ||
        reqjson_int_of(f[FACQ_MAX], "max", 1, ACQUIRE_MAX, max, e) < 0 ||
        reqjson_duration_of(f[FACQ_TTL], "ttl", 1, ttl, e) < 0 ||
        reqjson_duration_of(f[FACQ_WAIT], "wait", 0, wait, e) < 0)
        return -1;
    if (*wait > ACQUIRE_MAX_WAIT_NS) {
        reqerr_set(e, 400, "field \"wait\" must be at most 60s");
        return -1;
    }
    return 0;
}

/* Parks req until events come or the wait ends: on ch's list, or on the
 * pending list of the request's channel name if ch is NULL. */
static void park(h2o_req_t *req, route_args_t *a, channel_t *ch, int64_t max, int64_t ttl, ntime_t now,
                 int64_t wait)
{
    waiter_t *w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), on_waiter_dispose);
    memset(w, 0, sizeof(*w));
    w->req = req;
    w->ctx = a->ctx;
    w->max = (size_t)max;
    w->ttl_ns = ttl;
    w->route = a->route;
    w->started = now;
    w->channel = ch;
    if (ch) {
        append_waiter(w, &ch->wait_head, &ch->wait_tail);
    } else {
        w->pending = pending_get(a->channel, a->channel_len);
        append_waiter(w, (void **)&w->pending->head, (void **)&w->pending->tail);
    }
    core_timer_set(a->ctx->core, &w->timer, now + wait);
}

void handle_acquire(h2o_req_t *req, route_args_t *a)
{
    reqerr_t e;
    jdoc_t doc;
    int64_t max, ttl, wait;
    if (reqjson_parse(req->entity.base, req->entity.len, 1, a->ctx->limits->max_body, &doc, &e) ||
        parse_acquire(doc.root, &max, &ttl, &wait, &e)) {
        jparse_free(&doc);
        http_error(req, e.status, "%s", e.msg);
        return;
    }
    jparse_free(&doc);
    ntime_t now = http_now();
    if (!reqjson_fits(now, ttl)) {
        http_error(req, 400, "field \"ttl\" is too long: now plus the lock's \"ttl\" must be before 2262-01-01");
        return;
    }
    core_t *c = a->ctx->core;
    channel_t blank;
    channel_t *ch = route_channel_find(a);
    event_t **evs = h2o_mem_alloc_pool(&req->pool, (size_t)max * sizeof(*evs));
    /* Earlier waiters go first: a newcomer only takes events directly when
     * nobody is parked on this channel. */
    size_t n = !ch || ch->wait_head ? 0 : core_acquire(c, ch, now, (size_t)max, ttl, evs);
    if (n == 0 && ch && ch->ready_len > 0 && !ch->wait_head) {
        http_error_io(req); /* there were events, but the locks could not be logged */
        return;
    }
    if (n > 0 || wait == 0) {
        answer(req, a->ctx, ch ? ch : route_channel_view(a, &blank), evs, n);
        return;
    }
    if (nwaiters >= a->ctx->limits->max_waiters) {
        http_error_full(req, "parked acquire requests", a->ctx->limits->max_waiters);
        return;
    }
    park(req, a, ch, max, ttl, now, wait);
}
