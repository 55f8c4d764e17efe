/*
 * test_wal.c -- the log: CRC-32C vectors, record encode/decode for every
 * record type, decode of damaged payloads, and core -> journal -> replay
 * round trips in a temp directory through the public APIs of core.h and
 * wal.h (with and without a forced rewrite), plus torn and corrupt files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "time/tz.h"
#include "store/wal.h"

#define S NTIME_NS_PER_S
#define MS NTIME_NS_PER_MS
#define T0 ((ntime_t)1795746770263508703LL) /* 2026-11-27T02:32:50.263508703Z */
#define FRAME 12 /* length, payload CRC, frame CRC */

/* A check that says what went wrong in words. */
#define CHECK(ok, what)                                                                       \
    do {                                                                                      \
        if (!(ok))                                                                            \
            fail_msg("%s", what);                                                             \
    } while (0)

/* ---------------------------------------------------------------- CRC ---- */

static void test_crc32c_vectors(void **state)
{
    (void)state;
    unsigned char buf[64];
    assert_int_equal(wal_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(wal_crc32c(0, "", 0), 0);
    assert_int_equal(wal_crc32c(0, "a", 1), 0xC1D04330u);
    /* RFC 3720 (iSCSI) B.4 */
    memset(buf, 0, 32);
    assert_int_equal(wal_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    assert_int_equal(wal_crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    assert_int_equal(wal_crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    assert_int_equal(wal_crc32c(0, buf, 32), 0x113FDB5Cu);
    /* incremental: crc(a || b) = crc(crc(a), b), for every split and
     * every alignment (the 8-byte slicing path and the byte tail) */
    const char *text = "The quick brown fox jumps over the lazy dog, 0123456789!";
    size_t n = strlen(text);
    uint32_t whole = wal_crc32c(0, text, n);
    for (size_t cut = 0; cut <= n; cut++)
        assert_int_equal(wal_crc32c(wal_crc32c(0, text, cut), text + cut, n - cut), whole);
    for (size_t off = 0; off < 8; off++) {
        memcpy(buf + off, text, 40);
        assert_int_equal(wal_crc32c(0, buf + off, 40), wal_crc32c(0, text, 40));
    }
}

/* The instruction and the table agree on every length and alignment, from
 * any starting crc. */
static void test_crc32c_portable_agrees(void **state)
{
    (void)state;
    unsigned char buf[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    assert_int_equal(wal_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= 280; len += len < 40 ? 1 : 13)
            for (uint32_t seed = 0; seed < 3; seed++) {
                uint32_t from = seed * 0x9e3779b9u;
                assert_int_equal(wal_crc32c(from, buf + off, len), wal_crc32c_portable(from, buf + off, len));
            }
}

/* --------------------------------------------------- encode / decode ---- */

static void assert_str(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
}

static void assert_rec_equal(const core_rec_t *a, const core_rec_t *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->now, b->now);
    assert_int_equal(a->id.hi, b->id.hi);
    assert_int_equal(a->id.lo, b->id.lo);
    assert_int_equal(a->at, b->at);
    assert_int_equal(a->lives_until, b->lives_until);
    assert_int_equal(a->locked_until, b->locked_until);
    assert_int_equal(a->token, b->token);
    assert_int_equal(a->ttl_ns, b->ttl_ns);
    assert_str(a->channel, a->channel_len, b->channel, b->channel_len);
    assert_str(a->name, a->name_len, b->name, b->name_len);
    assert_str(a->cron, a->cron_len, b->cron, b->cron_len);
    assert_str(a->data, a->data_len, b->data, b->data_len);
    assert_int_equal(a->more, b->more);
    assert_int_equal(a->n_nums, b->n_nums);
    for (unsigned i = 0; i < a->n_nums; i++)
        assert_true(a->nums[i] == b->nums[i]);
    assert_int_equal(a->attr, b->attr);
    assert_str(a->key, a->key_len, b->key, b->key_len);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Encodes r, checks the frame, decodes and compares; returns the size. */
static size_t roundtrip(const core_rec_t *r)
{
    size_t n = wal_record_size(r);
    unsigned char *buf = malloc(n + 16);
    memset(buf, 0xa5, n + 16);
    size_t m = wal_encode(r, buf);
    assert_int_equal(m, n);
    assert_int_equal(buf[n], 0xa5); /* nothing written past the size */
    uint32_t len = get32(buf);
    assert_int_equal(len + FRAME, n);
    assert_int_equal(get32(buf + 4), wal_crc32c(0, buf + FRAME, len));
    assert_int_equal(get32(buf + 8), wal_crc32c(0, buf, 8));
    core_rec_t d;
    assert_int_equal(wal_decode(buf + FRAME, len, &d), 0);
    assert_rec_equal(r, &d);
    free(buf);
    return n;
}

static const char BIN_DATA[] = {'a', 0, 'b', (char)0xff, (char)0x80, 0, '\n', (char)0xc3};

static void test_record_roundtrip_every_type(void **state)
{
    (void)state;
    static char big[70000];
    memset(big, 'x', sizeof(big));
    eid_t id = {0x0123456789abcdefULL, 0xfedcba98u};
    static const int types[] = {CORE_REC_PUBLISH, CORE_REC_LOCK, CORE_REC_UNLOCK, CORE_REC_EXTEND,
                                CORE_REC_DELETE, CORE_REC_JOB_ADD, CORE_REC_JOB_DEL, CORE_REC_SNAP_EVENT,
                                CORE_REC_SNAP_JOB, CORE_REC_IDGEN, CORE_REC_DEAD_LETTER, CORE_REC_SETTINGS,
                                CORE_REC_PURGE, CORE_REC_CHANNEL_DEL, CORE_REC_REDRIVE, CORE_REC_JOB_REPLACE,
                                CORE_REC_JOB_PAUSE, CORE_REC_JOB_RESUME, CORE_REC_JOB_TRIGGER, CORE_REC_JOB_SKIP};
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        int type = types[ti];
        /* every field set */
        core_rec_t r = {.type = (uint8_t)type, .state = EVENT_LOCKED, .now = T0, .channel = "chan",
                        .channel_len = 4, .id = id, .at = T0 + S, .lives_until = T0 + 2 * S, .locked_until = T0 + 3 * S,
                        .token = 0xdeadbeefcafef00dULL, .ttl_ns = 600 * S, .name = "job name",
                        .name_len = 8, .cron = "@every 1h30m", .cron_len = 12, .data = BIN_DATA,
                        .data_len = sizeof(BIN_DATA), .more = 1, .n_nums = CORE_REC_NUMS,
                        .nums = {1, UINT64_MAX, 0, 3600 * S, T0}, .attr = 0x39,
                        .key = "idem\0key", .key_len = 8};
        roundtrip(&r);
        /* only the fields that type uses, empty data */
        core_rec_t m = {.type = (uint8_t)type, .now = T0, .channel = "c", .channel_len = 1, .id = id};
        switch (type) {
        case CORE_REC_PUBLISH: m.at = T0; m.ttl_ns = S; break;
        case CORE_REC_LOCK: m.at = T0 + S; m.token = 7; break;
        case CORE_REC_EXTEND: m.at = T0 + S; break;
        case CORE_REC_JOB_ADD: m.id = (eid_t){0, 0}; m.name = "j"; m.name_len = 1; m.cron = "* * * * *";
                               m.cron_len = 9; m.ttl_ns = S; break;
        case CORE_REC_JOB_DEL: m.id = (eid_t){0, 0}; m.name = "j"; m.name_len = 1; break;
        case CORE_REC_SNAP_EVENT: m.state = EVENT_READY; m.at = T0; m.lives_until = T0 + S; break;
        case CORE_REC_SNAP_JOB: m.id = (eid_t){0, 0}; m.name = "j"; m.name_len = 1; m.cron = "@daily";
                                m.cron_len = 6; m.at = T0; m.ttl_ns = S; m.state = 0x95; m.n_nums = 3;
                                m.nums[0] = 3600 * S; m.nums[1] = 12; break;
        case CORE_REC_JOB_REPLACE: m.id = (eid_t){0, 0}; m.name = "j"; m.name_len = 1; m.cron = "@daily";
                                   m.cron_len = 6; m.ttl_ns = S; m.n_nums = 1; m.nums[0] = 60 * S; break;
        case CORE_REC_JOB_PAUSE: case CORE_REC_JOB_RESUME: case CORE_REC_JOB_SKIP:
            m.id = (eid_t){0, 0}; m.name = "j"; m.name_len = 1; break;
        case CORE_REC_JOB_TRIGGER: m.name = "j"; m.name_len = 1; m.at = T0; m.ttl_ns = S; break;
        case CORE_REC_IDGEN: m.channel = ""; m.channel_len = 0; break;
        default: break;
        }
        roundtrip(&m);
        /* binary, long and negative values */
        core_rec_t b = m;
        b.data = big;
        b.data_len = sizeof(big);
        b.now = -5;
        b.at = INT64_MIN;
        b.lives_until = INT64_MAX;
        b.ttl_ns = -1;
        b.token = UINT64_MAX;
        b.id = (eid_t){UINT64_MAX, UINT32_MAX};
        b.channel = "ch\0nul\xff";
        b.channel_len = 7;
        roundtrip(&b);
    }
    /* zero fields take no room: the smallest record is the frame, type,
     * mask and the channel */
    core_rec_t z = {.type = CORE_REC_UNLOCK, .channel = "c", .channel_len = 1};
    assert_int_equal(roundtrip(&z), FRAME + 3 + 4 + 1);
    core_rec_t g = {.type = CORE_REC_IDGEN};
    assert_int_equal(roundtrip(&g), FRAME + 3);
}

/* The largest data the flags allow, with the longest names, fits one
 * record: replay would take a longer one for damage. */
static void test_largest_event_fits_a_record(void **state)
{
    (void)state;
    static char name[200];
    core_rec_t r = {.type = CORE_REC_SNAP_EVENT, .state = EVENT_LOCKED, .now = T0, .channel = name,
                    .channel_len = sizeof(name), .id = {1, 1}, .at = T0, .lives_until = T0 + S, .locked_until = T0 + S,
                    .token = 1, .ttl_ns = S, .name = name, .name_len = sizeof(name), .data = NULL,
                    .data_len = WAL_MAX_DATA, .more = 1};
    assert_true(wal_record_size(&r) - FRAME <= WAL_MAX_RECORD);
    /* a job: cron and data together come from one body of at most WAL_MAX_DATA */
    r.cron_len = 1;
    r.data_len = WAL_MAX_DATA - 1;
    assert_true(wal_record_size(&r) - FRAME <= WAL_MAX_RECORD);
}

static void test_decode_rejects_damage(void **state)
{
    (void)state;
    core_rec_t r = {.type = CORE_REC_PUBLISH, .now = T0, .channel = "channel", .channel_len = 7,
                    .id = {42, 7}, .at = T0, .ttl_ns = 60 * S, .data = "some data", .data_len = 9,
                    .name = "n", .name_len = 1, .cron = "@hourly", .cron_len = 7, .token = 3,
                    .state = 1, .lives_until = 1, .locked_until = 2};
    size_t n = wal_record_size(&r);
    unsigned char *buf = malloc(n + FRAME);
    wal_encode(&r, buf);
    unsigned char *p = buf + FRAME;
    size_t len = n - FRAME;
    core_rec_t d;
    /* every truncation */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(wal_decode(p, cut, &d), -1);
    /* a trailing byte */
    memcpy(buf + n, "\0", 1);
    assert_int_equal(wal_decode(p, len + 1, &d), -1);
    /* an unknown field bit */
    unsigned char *q = malloc(len);
    memcpy(q, p, len);
    q[2] |= 0x40; /* bit 14: an attr byte that is not there */
    assert_int_equal(wal_decode(q, len, &d), -1);
    /* a string length past the end: the data length is the last field */
    memcpy(q, p, len);
    size_t data_len_at = len - 9 - 4;
    assert_int_equal(get32(q + data_len_at), 9);
    q[data_len_at] = 10;
    assert_int_equal(wal_decode(q, len, &d), -1);
    q[data_len_at + 3] = 0x80; /* a huge length: no overflow */
    assert_int_equal(wal_decode(q, len, &d), -1);
    free(q);
    /* numbers: a count of 0 or past CORE_REC_NUMS */
    core_rec_t nr = {.type = CORE_REC_SNAP_JOB, .now = T0, .channel = "c", .channel_len = 1, .n_nums = 1,
                     .nums = {77}};
    unsigned char b3[128];
    size_t n3 = wal_encode(&nr, b3);
    assert_int_equal(wal_decode(b3 + FRAME, n3 - FRAME, &d), 0);
    assert_true(d.n_nums == 1 && d.nums[0] == 77);
    b3[n3 - 9] = 0; /* the count before the one number */
    assert_int_equal(wal_decode(b3 + FRAME, n3 - FRAME, &d), -1);
    b3[n3 - 9] = CORE_REC_NUMS + 1;
    assert_int_equal(wal_decode(b3 + FRAME, n3 - FRAME, &d), -1);
    /* a record about an event or job without a channel */
    core_rec_t nc = {.type = CORE_REC_DELETE, .now = T0, .id = {1, 1}};
    unsigned char b2[64];
    size_t n2 = wal_encode(&nc, b2);
    assert_int_equal(wal_decode(b2 + FRAME, n2 - FRAME, &d), -1);
    /* garbage never crashes and never reads past len */
    srand(1);
    for (int i = 0; i < 20000; i++) {
        size_t gl = (size_t)(rand() % 64);
        unsigned char *g = malloc(gl ? gl : 1);
        for (size_t k = 0; k < gl; k++)
            g[k] = (unsigned char)(rand() % 4 == 0 ? 0 : rand());
        (void)wal_decode(g, gl, &d);
        free(g);
    }
    free(buf);
}

/* ------------------------------------------------- journal + replay ---- */

static int log_lines;
static char last_log[1024];
static void quiet_log(const char *level, const char *msg)
{
    (void)level;
    log_lines++;
    snprintf(last_log, sizeof(last_log), "%s", msg);
}

typedef struct fixture {
    char dir[64];
    char path[128];
    wal_t *w;
    core_t *c;
} fixture_t;

static void fx_open(fixture_t *f, ntime_t now, int truncate_corrupt, int expect_ok)
{
    char err[1024] = "";
    wal_config_t cfg = {.dir = f->dir, .log = quiet_log, .fsync = WAL_FSYNC_NEVER,
                        .truncate_corrupt = truncate_corrupt, .rewrite_min = 1ULL << 40};
    f->w = wal_open(&cfg, err, sizeof(err));
    if (!f->w)
        fail_msg("wal_open: %s", err);
    f->c = core_new(tz_utc());
    wal_replay_stats_t st;
    int rc = wal_replay(f->w, f->c, now, &st, err, sizeof(err));
    if (expect_ok && rc != 0)
        fail_msg("wal_replay: %s", err);
    if (!expect_ok) {
        assert_int_equal(rc, -1);
        snprintf(last_log, sizeof(last_log), "%s", err);
    }
}

static void fx_close(fixture_t *f)
{
    if (f->c)
        core_set_journal(f->c, NULL);
    wal_close(f->w);
    f->w = NULL;
}

static void fx_free(fixture_t *f)
{
    fx_close(f);
    core_free(f->c);
    f->c = NULL;
}

static int setup_dir(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/test_wal-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/distribuerad.log", f->dir);
    *state = f;
    return 0;
}

static int teardown_dir(void **state)
{
    fixture_t *f = *state;
    if (f->w || f->c)
        fx_free(f);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Ids handed out, so the comparison can look at every one of them. */
typedef struct idset {
    channel_t *ch[64];
    eid_t id[64];
    int n;
} idset_t;

static void ids_add(idset_t *s, channel_t *ch, eid_t id)
{
    assert_true(s->n < 64);
    s->ch[s->n] = ch;
    s->id[s->n++] = id;
}

static channel_t *chan(core_t *c, const char *name)
{
    return core_channel(c, name, strlen(name));
}

static eid_t pub(core_t *c, idset_t *s, const char *chname, ntime_t now, const char *data, size_t len,
                 ntime_t at, int64_t ttl)
{
    channel_t *ch = chan(c, chname);
    event_t *e = core_publish(c, ch, now, data, len, at, ttl);
    assert_non_null(e);
    ids_add(s, ch, event_id(e));
    return event_id(e);
}

static void assert_event_equal(const core_t *ca, const event_t *a, const core_t *cb, const event_t *b)
{
    assert_int_equal(id_cmp(event_id(a), event_id(b)), 0);
    assert_int_equal(event_state(a), event_state(b));
    assert_int_equal(a->published_at, b->published_at);
    assert_int_equal(a->lives_until, b->lives_until);
    assert_int_equal(a->data_len, b->data_len);
    assert_memory_equal(event_data(a), event_data(b), a->data_len);
    if (event_state(a) == EVENT_LOCKED) {
        assert_int_equal(event_locked_until(ca, a), event_locked_until(cb, b));
        assert_int_equal(event_lock_token(ca, a), event_lock_token(cb, b));
    }
    assert_int_equal(event_channel(ca, a)->name_len, event_channel(cb, b)->name_len);
    assert_memory_equal(event_channel(ca, a)->name, event_channel(cb, b)->name, event_channel(ca, a)->name_len);
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->json, b->json);
    assert_int_equal(a->deliveries, b->deliveries);
    assert_int_equal(a->returning, b->returning);
    size_t ka, kb, fa, fb;
    const char *keya = event_key(a, &ka), *keyb = event_key(b, &kb);
    const char *froma = event_dead_lettered_from(a, &fa), *fromb = event_dead_lettered_from(b, &fb);
    assert_int_equal(ka, kb);
    assert_memory_equal(keya ? keya : "", keyb ? keyb : "", ka);
    assert_int_equal(fa, fb);
    assert_memory_equal(froma ? froma : "", fromb ? fromb : "", fa);
}

static void print_visible(const channel_t *x, const channel_t *y)
{
    const channel_t *chs[2] = {x, y};
    for (int k = 0; k < 2; k++) {
        print_message("%s %.*s:", k ? "replayed" : "original", (int)chs[k]->name_len, chs[k]->name);
        for (const event_t *e = channel_first(chs[k]); e; e = channel_next(chs[k], e)) {
            char id[ID_LEN + 1];
            id_format(event_id(e), id);
            print_message(" %s(%.*s,%d)", id, (int)e->data_len, event_data(e), event_state(e));
        }
        print_message("\n");
    }
}

/* The two cores hold the same channels, events (in the same visible
 * order, with the same times, data, locks and tokens) and jobs (with the
 * same phase), as seen at now. */
static void assert_same_state(core_t *a, core_t *b, const idset_t *ids, ntime_t now)
{
    core_tick(a, now);
    core_tick(b, now);
    assert_int_equal(core_counters(a)->events, core_counters(b)->events);
    channel_t **ca, **cb;
    size_t na = core_channels_sorted(a, &ca);
    size_t nb = core_channels_sorted(b, &cb);
    /* b may lack channels that hold nothing (channels are not logged) */
    size_t j = 0;
    for (size_t i = 0; i < na; i++) {
        channel_t *x = ca[i];
        if (j < nb && x->name_len == cb[j]->name_len && !memcmp(x->name, cb[j]->name, x->name_len)) {
            channel_t *y = cb[j++];
            assert_int_equal(x->st.ready, y->st.ready);
            assert_int_equal(x->st.scheduled, y->st.scheduled);
            assert_int_equal(x->st.locked, y->st.locked);
            assert_int_equal(x->st.jobs, y->st.jobs);
            const event_t *ex = channel_first(x), *ey = channel_first(y);
            for (; ex && ey; ex = channel_next(x, ex), ey = channel_next(y, ey)) {
                if (id_cmp(event_id(ex), event_id(ey)) != 0)
                    print_visible(x, y);
                assert_event_equal(a, ex, b, ey);
            }
            assert_null(ex);
            assert_null(ey);
            job_t **ja, **jb;
            size_t nja = core_jobs_sorted(x, &ja), njb = core_jobs_sorted(y, &jb);
            assert_int_equal(nja, njb);
            for (size_t k = 0; k < nja; k++) {
                assert_str(ja[k]->name, ja[k]->name_len, jb[k]->name, jb[k]->name_len);
                assert_string_equal(ja[k]->cron_def, jb[k]->cron_def);
                assert_str(ja[k]->data, ja[k]->data_len, jb[k]->data, jb[k]->data_len);
                assert_int_equal(ja[k]->ttl_ns, jb[k]->ttl_ns);
                assert_int_equal(ja[k]->created_at, jb[k]->created_at);
                assert_int_equal(ja[k]->defined_at, jb[k]->defined_at);
                assert_int_equal(ja[k]->next_at, jb[k]->next_at);
                assert_int_equal(ja[k]->data_json, jb[k]->data_json);
                assert_int_equal(ja[k]->priority, jb[k]->priority);
                assert_int_equal(ja[k]->overlap, jb[k]->overlap);
                assert_int_equal(ja[k]->missed, jb[k]->missed);
                assert_int_equal(ja[k]->missed_window_ns, jb[k]->missed_window_ns);
                assert_int_equal(ja[k]->paused, jb[k]->paused);
                assert_int_equal(ja[k]->runs, jb[k]->runs);
                assert_int_equal(ja[k]->skipped, jb[k]->skipped);
                assert_int_equal(ja[k]->last_run_at, jb[k]->last_run_at);
                assert_int_equal(id_cmp(ja[k]->last_event, jb[k]->last_event), 0);
            }
            free(ja);
            free(jb);
        } else {
            assert_null(channel_first(x));
            assert_int_equal(x->st.jobs + x->st.scheduled, 0);
        }
    }
    assert_int_equal(j, nb);
    free(ca);
    free(cb);
    /* every id ever handed out: the same presence and fields */
    for (int i = 0; i < ids->n; i++) {
        const channel_t *ch = ids->ch[i];
        channel_t *xa = core_channel_find(a, ch->name, ch->name_len);
        channel_t *xb = core_channel_find(b, ch->name, ch->name_len);
        event_t *ea = xa ? core_event_get(a, xa, now, ids->id[i]) : NULL;
        event_t *eb = xb ? core_event_get(b, xb, now, ids->id[i]) : NULL;
        assert_int_equal(ea != NULL, eb != NULL);
        if (ea)
            assert_event_equal(a, ea, b, eb);
    }
}

/* The history's part of settings, keys, priorities, dead letters,
 * holds, redrive, purge and channel delete. */
static ntime_t consumers_history(core_t *c, idset_t *ids, ntime_t t, int *step, fixture_t *f, int rewrite_at)
{
#define STEP()                                                                                      \
    do {                                                                                            \
        t += 3 * MS;                                                                                \
        if ((*step)++ == rewrite_at)                                                                \
            assert_int_equal(wal_maybe_rewrite(f->w, c, t, 1), 1);                                  \
    } while (0)
    event_t *e, *got[2];
    channel_settings_t set = {.max_deliveries = 2, .retry_delay_ns = 2 * S, .dlq = "dl", .dlq_len = 2};
    assert_int_equal(core_settings_set(c, chan(c, "d"), t, &set), CORE_OK);
    STEP();
    core_pub_t kp[2] = {{.data = "{\"k\":[1,2]}", .len = 11, .publish_at = t, .ttl_ns = 600 * S,
                         .priority = 7, .json = 1, .key = "key-1", .key_len = 5},
                        {.data = "p2", .len = 2, .publish_at = t, .ttl_ns = 600 * S, .priority = 2}};
    assert_int_equal(core_publish_batch(c, chan(c, "d"), t, kp, 2, got, NULL, NULL), CORE_OK);
    eid_t d1 = event_id(got[0]), d2 = event_id(got[1]);
    ids_add(ids, chan(c, "d"), d1);
    ids_add(ids, chan(c, "d"), d2);
    STEP();
    /* d2 first (priority 2); its lock lapses: held back for the retry delay */
    assert_int_equal(core_acquire(c, chan(c, "d"), t, 1, 1 * MS, got), 1);
    assert_int_equal(id_cmp(event_id(got[0]), d2), 0);
    t += 2 * MS;
    core_tick(c, t);
    STEP();
    /* d1: the first lapse holds it, the second (at the limit) moves it */
    assert_int_equal(core_lock(c, chan(c, "d"), t, d1, 1 * MS, &e), CORE_OK);
    t += 2 * S + 2 * MS;
    core_tick(c, t);
    STEP();
    assert_int_equal(core_lock(c, chan(c, "d"), t, d1, 1 * MS, &e), CORE_OK);
    t += 2 * MS;
    core_tick(c, t);
    assert_non_null(core_event_get(c, chan(c, "dl"), t, d1));
    ids_add(ids, chan(c, "dl"), d1);
    STEP();
    /* back to where it came from, then UNLOCK with a delay, then at the limit */
    uint64_t moved;
    assert_int_equal(core_redrive(c, chan(c, "dl"), t, NULL, 0, 0, &moved), CORE_OK);
    assert_int_equal(moved, 1);
    STEP();
    assert_int_equal(core_unlock(c, chan(c, "d"), t, d1, NULL, 30 * S, &e), CORE_OK);
    STEP();
    assert_int_equal(core_lock(c, chan(c, "d"), t, d2, 60 * S, &e), CORE_OK);
    assert_int_equal(core_unlock(c, chan(c, "d"), t, d2, NULL, 0, &e), CORE_OK); /* 2nd: moved */
    assert_non_null(core_event_get(c, chan(c, "dl"), t, d2));
    ids_add(ids, chan(c, "dl"), d2);
    STEP();
    /* purge one channel, delete another (its events are not in ids) */
    core_publish(c, chan(c, "p"), t, "purged", 6, t, 600 * S);
    uint64_t n;
    assert_int_equal(core_purge(c, chan(c, "p"), t, &n), CORE_OK);
    STEP();
    core_publish(c, chan(c, "z"), t, "z", 1, t, 600 * S);
    assert_int_equal(core_settings_set(c, chan(c, "z"), t, &set), CORE_OK);
    assert_int_equal(core_channel_delete(c, chan(c, "z"), t), CORE_OK);
    STEP();
#undef STEP
    return t;
}

/* A history of every kind of change; rewrite_at: after which step to
 * force a rewrite (-1: never). Returns the time after the last step. */
static ntime_t history(fixture_t *f, idset_t *ids, int rewrite_at)
{
    core_t *c = f->c;
    ntime_t t = T0;
    event_t *e;
    char err[256];
    job_t *job;
    uint64_t tok;
    int step = 0;
#define STEP()                                                                                      \
    do {                                                                                            \
        t += 3 * MS;                                                                                \
        if (step++ == rewrite_at)                                                                   \
            assert_int_equal(wal_maybe_rewrite(f->w, c, t, 1), 1);                                  \
    } while (0)

    eid_t e1 = pub(c, ids, "a", t, "hello", 5, t, 600 * S);
    STEP();
    eid_t e2 = pub(c, ids, "a", t, BIN_DATA, sizeof(BIN_DATA), t, 600 * S);
    STEP();
    eid_t e3 = pub(c, ids, "a", t, "", 0, t, 90 * S);
    STEP();
    pub(c, ids, "a", t, "delayed", 7, t + 3600 * S, 600 * S);
    STEP();
    eid_t e5 = pub(c, ids, "a", t, "past", 4, t - 3600 * S, 7200 * S);
    STEP();
    eid_t e6 = pub(c, ids, "a", t, "cancelled", 9, t + 60 * S, 600 * S);
    STEP();
    pub(c, ids, "a", t, "short", 5, t, 1 * MS); /* expires during the history */
    STEP();
    core_pub_t batch[3] = {{.data = "b0", .len = 2, .publish_at = t, .ttl_ns = 600 * S},
                           {.data = "b1", .len = 2, .publish_at = t, .ttl_ns = 600 * S, .priority = 3},
                           {.data = "b2", .len = 2, .publish_at = t + 30 * S, .ttl_ns = 600 * S, .json = 1}};
    event_t *out[3];
    assert_int_equal(core_publish_batch(c, chan(c, "b"), t, batch, 3, out, NULL, NULL), CORE_OK);
    for (int i = 0; i < 3; i++)
        ids_add(ids, chan(c, "b"), event_id(out[i]));
    STEP();
    assert_int_equal(core_lock(c, chan(c, "a"), t, e1, 60 * S, &e), CORE_OK);
    STEP();
    assert_int_equal(core_lock(c, chan(c, "a"), t, e2, 60 * S, &e), CORE_OK);
    tok = event_lock_token(c, e);
    STEP();
    assert_int_equal(core_unlock(c, chan(c, "a"), t, e2, &tok, 0, &e), CORE_OK);
    STEP();
    assert_int_equal(core_lock(c, chan(c, "a"), t, e3, 10 * MS, &e), CORE_OK);
    tok = event_lock_token(c, e);
    STEP();
    assert_int_equal(core_extend(c, chan(c, "a"), t, e3, 300 * S, &tok, &e), CORE_OK);
    STEP();
    assert_int_equal(core_delete(c, chan(c, "a"), t, e5, NULL), CORE_OK);
    STEP();
    assert_int_equal(core_delete(c, chan(c, "a"), t, e6, NULL), CORE_OK);
    STEP();
    event_t *acq[4];
    assert_int_equal(core_acquire(c, chan(c, "b"), t, 4, 30 * S, acq), 2);
    STEP();
    /* a lock that runs out, then the event is locked again */
    eid_t e7 = pub(c, ids, "a", t, "relock", 6, t, 600 * S);
    assert_int_equal(core_lock(c, chan(c, "a"), t, e7, 2 * MS, &e), CORE_OK);
    STEP();
    assert_int_equal(core_lock(c, chan(c, "a"), t, e7, 120 * S, &e), CORE_OK);
    STEP();
    assert_int_equal(core_job_add(c, chan(c, "a"), t, "every", 5, "@every 1h30m", 12, "jd", 2, 300 * S, &job,
                                  err, sizeof(err)), CORE_OK);
    STEP();
    assert_int_equal(core_job_add(c, chan(c, "b"), t, "cron", 4, "CRON_TZ=Europe/Stockholm */5 * * * *", 36,
                                  "", 0, 600 * S, &job, err, sizeof(err)), CORE_OK);
    STEP();
    assert_int_equal(core_job_add(c, chan(c, "a"), t, "gone", 4, "@hourly", 7, "x", 1, 600 * S, &job,
                                  err, sizeof(err)), CORE_OK);
    STEP();
    assert_int_equal(core_job_delete(c, chan(c, "a"), t, "gone", 4), CORE_OK);
    STEP();
    /* a job that fires during the history: its events are PUBLISH records */
    assert_int_equal(core_job_add(c, chan(c, "c"), t, "fast", 4, "@every 1s", 9, "tick", 4, 600 * S, &job,
                                  err, sizeof(err)), CORE_OK);
    core_tick(c, t + 1 * S + 1 * MS);
    core_tick(c, t + 2 * S + 1 * MS);
    t += 2 * S + 2 * MS;
    STEP();
    /* jobs people operate: policies, a skip, pause, trigger, replace */
    job_def_t d = {.cron_def = "@every 1s", .cron_len = 9, .data = "{\"n\":1}", .data_len = 7, .data_json = 1,
                   .priority = 3, .overlap = JOB_OVERLAP_SKIP, .missed = JOB_MISSED_ONCE,
                   .missed_window_ns = 300 * S, .ttl_ns = 600 * S};
    int created;
    assert_int_equal(core_job_put(c, chan(c, "d"), t, "op", 2, &d, 1, &job, &created, err, sizeof(err)), CORE_OK);
    assert_int_equal(created, 1);
    core_tick(c, t + 1 * S + 1 * MS); /* fires */
    core_tick(c, t + 2 * S + 1 * MS); /* skipped: the first event is live */
    assert_int_equal(job->runs, 1);
    assert_int_equal(job->skipped, 1);
    t += 2 * S + 2 * MS;
    STEP();
    assert_int_equal(core_job_pause(c, chan(c, "d"), t, "op", 2, 1, &job), CORE_OK);
    STEP();
    event_t *te;
    assert_int_equal(core_job_trigger(c, chan(c, "d"), t, "op", 2, &job, &te), CORE_OK);
    ids_add(ids, chan(c, "d"), event_id(te));
    STEP();
    d.cron_def = "@every 2s";
    d.overlap = JOB_OVERLAP_ALLOW;
    assert_int_equal(core_job_put(c, chan(c, "d"), t, "op", 2, &d, 1, &job, &created, err, sizeof(err)), CORE_OK);
    assert_int_equal(created, 0);
    STEP();
    assert_int_equal(core_job_pause(c, chan(c, "d"), t, "op", 2, 0, &job), CORE_OK);
    core_tick(c, t + 2 * S + 1 * MS); /* fires by the new definition */
    assert_int_equal(job->runs, 3);
    t += 2 * S + 2 * MS;
    STEP();
    t = consumers_history(c, ids, t, &step, f, rewrite_at);
    pub(c, ids, "a", t, "last", 4, t, 600 * S);
    t += 1 * MS;
#undef STEP
    return t;
}

/* Runs the history, closes, reopens and compares; then both go on alike. */
static void replay_and_compare(fixture_t *f, int rewrite_at)
{
    idset_t ids = {.n = 0};
    fx_open(f, T0, 0, 1);
    ntime_t t = history(f, &ids, rewrite_at);
    core_t *old = f->c;
    f->c = NULL;
    core_set_journal(old, NULL);
    fx_close(f);
    fx_open(f, t, 0, 1);
    assert_same_state(old, f->c, &ids, t);
    /* the same later on, when the delayed ones are due and locks ran out */
    assert_same_state(old, f->c, &ids, t + 3599 * S);
    /* acquire hands out the same events in the same order */
    event_t *x[8], *y[8];
    ntime_t later = t + 3599 * S + 1;
    size_t nx = core_acquire(old, chan(old, "a"), later, 8, S, x);
    size_t ny = core_acquire(f->c, chan(f->c, "a"), later, 8, S, y);
    assert_int_equal(nx, ny);
    for (size_t i = 0; i < nx; i++)
        assert_int_equal(id_cmp(event_id(x[i]), event_id(y[i])), 0);
    /* ids stay unique: a new one is larger than any before */
    event_t *n = core_publish(f->c, chan(f->c, "a"), later, "new", 3, later, S);
    assert_non_null(n);
    for (int i = 0; i < ids.n; i++)
        assert_true(id_cmp(event_id(n), ids.id[i]) > 0);
    core_free(old);
    /* and the log of the reopened core replays once more to the same */
    idset_t none = {.n = 0};
    old = f->c;
    f->c = NULL;
    core_set_journal(old, NULL);
    fx_close(f);
    fx_open(f, later, 0, 1);
    assert_same_state(old, f->c, &none, later);
    core_free(old);
    fx_free(f);
}

static void test_replay_plain(void **state)
{
    replay_and_compare(*state, -1);
}

static void test_replay_rewrite_middle(void **state)
{
    replay_and_compare(*state, 9);
}

static void test_replay_rewrite_end(void **state)
{
    replay_and_compare(*state, 26);
}

/* The snapshot of a paused job that has run and skipped. */
static void test_replay_rewrite_paused_job(void **state)
{
    replay_and_compare(*state, 24);
}

static void test_rewrite_shrinks(void **state)
{
    fixture_t *f = *state;
    idset_t ids = {.n = 0};
    fx_open(f, T0, 0, 1);
    ntime_t t = T0;
    channel_t *ch = chan(f->c, "churn");
    for (int i = 0; i < 2000; i++) {
        event_t *e = core_publish(f->c, ch, t, "0123456789012345678901234567890123456789", 40, t, 600 * S);
        assert_non_null(e);
        if (i % 100 != 0)
            assert_int_equal(core_delete(f->c, ch, t, event_id(e), NULL), CORE_OK);
        else
            ids_add(&ids, ch, event_id(e));
        t += MS;
    }
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    uint64_t before = (uint64_t)sb.st_size;
    uint64_t pos = wal_written(f->w);
    assert_int_equal(wal_maybe_rewrite(f->w, f->c, t, 1), 1);
    assert_int_equal(wal_written(f->w), pos); /* a logical position: a rewrite does not move it */
    assert_int_equal(wal_synced(f->w), pos);  /* the new file is on disk */
    assert_int_equal(stat(f->path, &sb), 0);
    uint64_t after = (uint64_t)sb.st_size;
    assert_true(after * 20 < before);
    wal_metrics_t m;
    wal_get_metrics(f->w, &m);
    assert_int_equal(m.size, after);
    assert_int_equal(m.rewrites, 1);
    /* appends after the rewrite go to the new file */
    assert_non_null(core_publish(f->c, ch, t, "after", 5, t, 600 * S));
    assert_true(wal_written(f->w) > after);
    core_t *old = f->c;
    f->c = NULL;
    fx_close(f);
    fx_open(f, t, 0, 1);
    assert_same_state(old, f->c, &ids, t);
    core_free(old);
    fx_free(f);
}

/* ---------------------------------------------------- damaged files ---- */

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void append_bytes(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

/* Publishes five events to the open log, each one PUBLISH record, and
 * returns their offsets (off[5]: the end). */
static void publish_five(fixture_t *f, long off[6], eid_t id[5])
{
    for (int i = 0; i < 5; i++) {
        off[i] = (long)wal_written(f->w);
        event_t *e = core_publish(f->c, chan(f->c, "x"), T0 + i, "payload", 7, T0 + i, 600 * S);
        assert_non_null(e);
        id[i] = event_id(e);
    }
    off[5] = (long)wal_written(f->w);
}

/* A log of five events, closed. */
static void five_events(fixture_t *f, long off[6], eid_t id[5])
{
    fx_open(f, T0, 0, 1);
    publish_five(f, off, id);
    fx_free(f);
}

static void reopen(fixture_t *f, wal_replay_stats_t *st)
{
    char err[512];
    wal_config_t cfg = {.dir = f->dir, .log = quiet_log, .fsync = WAL_FSYNC_NEVER, .rewrite_min = 1ULL << 40};
    f->w = wal_open(&cfg, err, sizeof(err));
    assert_non_null(f->w);
    f->c = core_new(tz_utc());
    assert_int_equal(wal_replay(f->w, f->c, T0 + 10, st, err, sizeof(err)), 0);
}

static int count_live(core_t *c, const eid_t *id, int n)
{
    int k = 0;
    channel_t *ch = core_channel_find(c, "x", 1);
    for (int i = 0; ch && i < n; i++)
        k += core_event_get(c, ch, T0 + 10, id[i]) != NULL;
    return k;
}

static void test_torn_tail_is_cut(void **state)
{
    fixture_t *f = *state;
    long off[6];
    eid_t id[5];
    five_events(f, off, id);
    /* the first half of a copy of the last record */
    unsigned char rec[256];
    int fd = open(f->path, O_RDONLY);
    assert_int_equal(pread(fd, rec, (size_t)(off[5] - off[4]), off[4]), off[5] - off[4]);
    close(fd);
    append_bytes(f->path, rec, (size_t)(off[5] - off[4]) / 2);
    log_lines = 0;
    wal_replay_stats_t st;
    reopen(f, &st);
    assert_int_equal(count_live(f->c, id, 5), 5);
    assert_int_equal(file_size(f->path), off[5]);
    assert_true(log_lines >= 1);
    assert_non_null(strstr(last_log, "cut"));
    assert_int_equal(st.records, 5);
    fx_free(f);
    CHECK(st.cut_at == (uint64_t)off[5], "wal_replay_stats.cut_at is never set");
}

/* The file as it is while the log is open (a crash leaves that): the
 * records, then the zeros written ahead of them. */
static unsigned char *five_events_crashed(fixture_t *f, long off[6], eid_t id[5], long *len)
{
    fx_open(f, T0, 0, 1);
    publish_five(f, off, id);
    *len = file_size(f->path);
    assert_true(*len > off[5]);
    unsigned char *b = malloc((size_t)*len);
    int fd = open(f->path, O_RDONLY);
    assert_int_equal(pread(fd, b, (size_t)*len, 0), *len);
    close(fd);
    fx_free(f);
    assert_int_equal(file_size(f->path), off[5]); /* a clean close leaves no room */
    fd = open(f->path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, b, (size_t)*len), *len);
    close(fd);
    return b;
}

/* Zeros after the last whole change are room, not damage: replay stops
 * there without a word, and the next record goes where they begin. */
static void test_room_after_a_crash(void **state)
{
    fixture_t *f = *state;
    long off[6], len;
    eid_t id[5];
    free(five_events_crashed(f, off, id, &len));
    log_lines = 0;
    wal_replay_stats_t st;
    reopen(f, &st);
    assert_int_equal(count_live(f->c, id, 5), 5);
    assert_int_equal(st.records, 5);
    assert_int_equal(st.bytes, off[5]);
    assert_int_equal(log_lines, 0);
    assert_int_equal(wal_written(f->w), off[5]);
    assert_non_null(core_publish(f->c, chan(f->c, "x"), T0 + 10, "sixth", 5, T0 + 10, 600 * S));
    long end = (long)wal_written(f->w);
    fx_free(f);
    assert_int_equal(file_size(f->path), end);
    reopen(f, &st);
    assert_int_equal(count_live(f->c, id, 5), 5);
    assert_int_equal(st.records, 6);
    fx_free(f);
}

/* A change cut short inside the room is a torn tail as ever. */
static void test_torn_change_in_room_is_cut(void **state)
{
    fixture_t *f = *state;
    long off[6], len;
    eid_t id[5];
    unsigned char *b = five_events_crashed(f, off, id, &len);
    int fd = open(f->path, O_WRONLY);
    size_t half = (size_t)(off[5] - off[4]) / 2;
    assert_int_equal(pwrite(fd, b + off[4], half, off[5]), (ssize_t)half);
    close(fd);
    free(b);
    log_lines = 0;
    wal_replay_stats_t st;
    reopen(f, &st);
    assert_int_equal(count_live(f->c, id, 5), 5);
    assert_int_equal(file_size(f->path), off[5]);
    assert_true(log_lines >= 1);
    assert_non_null(strstr(last_log, "cut"));
    fx_free(f);
}

/* Where no room can be had (a file-size limit), records are appended;
 * once more can be had again, the zeros go after them, not over them. */
static void test_room_after_a_file_size_limit(void **state)
{
    fixture_t *f = *state;
    fx_open(f, T0, 0, 1);
    struct rlimit was;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = {.rlim_cur = 64 * 1024, .rlim_max = was.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    char data[2000];
    memset(data, 'd', sizeof(data));
    int n = 0;
    for (; n < 20; n++) /* 40 kB appended under the limit: no room */
        assert_non_null(core_publish(f->c, chan(f->c, "x"), T0 + n, data, sizeof(data), T0 + n, 600 * S));
    assert_int_equal(file_size(f->path), (long)wal_written(f->w));
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
    signal(SIGXFSZ, old);
    for (; n < 1000; n++) /* 2 MB more: room again, after the records */
        assert_non_null(core_publish(f->c, chan(f->c, "x"), T0 + n, data, sizeof(data), T0 + n, 600 * S));
    assert_true(file_size(f->path) > (long)wal_written(f->w));
    fx_free(f);
    wal_replay_stats_t st;
    log_lines = 0;
    reopen(f, &st);
    assert_int_equal(st.records, 1000);
    assert_int_equal(log_lines, 0);
    fx_free(f);
}

static void test_corrupt_middle_stops_replay(void **state)
{
    fixture_t *f = *state;
    long off[6];
    eid_t id[5];
    five_events(f, off, id);
    /* flip a data byte of the second record */
    int fd = open(f->path, O_RDWR);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, off[2] - 2), 1);
    b ^= 0x20;
    assert_int_equal(pwrite(fd, &b, 1, off[2] - 2), 1);
    close(fd);
    fx_open(f, T0 + 10, 0, 0);
    char want[64];
    snprintf(want, sizeof(want), "offset %ld,", off[1]);
    if (!strstr(last_log, want) || !strstr(last_log, f->path))
        fail_msg("error does not name %s and %s: %s", f->path, want, last_log);
    fx_free(f);
    assert_int_equal(file_size(f->path), off[5]); /* untouched */
    /* with truncation: the first record stays */
    fx_open(f, T0 + 10, 1, 1);
    assert_int_equal(count_live(f->c, id, 5), 1);
    assert_non_null(core_event_get(f->c, chan(f->c, "x"), T0 + 10, id[0]));
    assert_int_equal(file_size(f->path), off[1]);
    fx_free(f);
}

/* A wall-clock step back while the server runs: the loop ticked at T+2s
 * (a lock ran out), then a request stamped T+0.5s locks the event again.
 * Replay ticks only at record times, so at T+0.5s the first lock still
 * holds and the LOCK record "does not fit": the log is refused at start
 * (or, as its last record, silently cut). */
static void test_clock_step_back(void **state)
{
    fixture_t *f = *state;
    fx_open(f, T0, 0, 1);
    channel_t *ch = chan(f->c, "x");
    event_t *e = core_publish(f->c, ch, T0, "e", 1, T0, 600 * S);
    eid_t id = event_id(e);
    assert_int_equal(core_lock(f->c, ch, T0, id, 1 * S, &e), CORE_OK);
    core_tick(f->c, T0 + 2 * S); /* the loop's turn: the lock ends */
    assert_int_equal(core_lock(f->c, ch, T0 + S / 2, id, 60 * S, &e), CORE_OK); /* clock stepped back */
    ntime_t until = event_locked_until(f->c, e);
    assert_non_null(core_publish(f->c, ch, T0 + S / 2 + 1, "after", 5, T0 + S / 2 + 1, 600 * S));
    fx_free(f);
    char err[1024] = "";
    wal_config_t cfg = {.dir = f->dir, .log = quiet_log, .fsync = WAL_FSYNC_NEVER, .rewrite_min = 1ULL << 40};
    f->w = wal_open(&cfg, err, sizeof(err));
    assert_non_null(f->w);
    f->c = core_new(tz_utc());
    wal_replay_stats_t st;
    int rc = wal_replay(f->w, f->c, T0 + 3 * S, &st, err, sizeof(err));
    int ok = rc == 0;
    if (ok) {
        e = core_event_get(f->c, chan(f->c, "x"), T0 + 3 * S, id);
        ok = e && event_state(e) == EVENT_LOCKED && event_locked_until(f->c, e) == until;
    }
    fx_free(f);
    CHECK(ok, "a log written across a wall-clock step back does not replay (LOCK record does not fit)");
}

/* A job fire and a delayed event due at the same instant, in one channel.
 * Live, the tick pops the job's timer first (it was scheduled first) and
 * its event becomes visible first. Replay applies the job's PUBLISH record
 * after ticking to its time, which already made the delayed event visible:
 * the queue order after a restart differs. */
static void test_job_fire_order_replays(void **state)
{
    fixture_t *f = *state;
    char err[256];
    job_t *job;
    fx_open(f, T0, 0, 1);
    channel_t *ch = chan(f->c, "x");
    assert_int_equal(core_job_add(f->c, ch, T0, "tick", 4, "@every 1s", 9, "job", 3, 600 * S, &job, err,
                                  sizeof(err)), CORE_OK);
    core_tick(f->c, T0 + S); /* first fire; the job's timer is set again */
    event_t *e = core_publish(f->c, ch, T0 + S + 200 * MS, "delayed", 7, T0 + 2 * S, 600 * S);
    assert_non_null(e);
    core_tick(f->c, T0 + 2 * S); /* the fire and the delayed event: same instant */
    char live[256] = "", replayed[256] = "";
    for (const event_t *v = channel_first(ch); v; v = channel_next(ch, v))
        snprintf(live + strlen(live), sizeof(live) - strlen(live), "%.*s ", (int)v->data_len, event_data(v));
    fx_free(f);
    fx_open(f, T0 + 2 * S, 0, 1);
    ch = chan(f->c, "x");
    for (const event_t *v = channel_first(ch); v; v = channel_next(ch, v))
        snprintf(replayed + strlen(replayed), sizeof(replayed) - strlen(replayed), "%.*s ", (int)v->data_len,
                 event_data(v));
    fx_free(f);
    assert_string_equal(live, "job job delayed ");
    if (strcmp(live, replayed) != 0)
        print_message("live order: %s; after replay: %s\n", live, replayed);
    CHECK(strcmp(live, replayed) == 0, "a job fire and a delayed event due in the same tick come back in another order");
}

static int cleanup(void **state)
{
    (void)state;
    tz_cleanup();
    return 0;
}

/* A lock that lapsed at the delivery limit while the server was down (or
 * whose move was never written: the process died between the lapse and
 * the write) is moved once the log is back, exactly once: the move is
 * logged then, and a second restart finds it moved, not twice. */
static void test_dead_letter_move_survives_crash(void **state)
{
    fixture_t *f = *state;
    fx_open(f, T0, 0, 1);
    channel_t *ch = chan(f->c, "src");
    channel_settings_t set = {.max_deliveries = 1, .dlq = "dlq", .dlq_len = 3};
    assert_int_equal(core_settings_set(f->c, ch, T0, &set), CORE_OK);
    event_t *e = core_publish(f->c, ch, T0, "poison", 6, T0, 600 * S);
    eid_t id = event_id(e);
    assert_int_equal(core_lock(f->c, ch, T0, id, 1 * S, &e), CORE_OK);
    fx_free(f); /* down before the lock lapses: no move in the log */
    for (int run = 0; run < 2; run++) {
        fx_open(f, T0 + 5 * S, 0, 1);
        core_tick(f->c, T0 + 5 * S + run); /* the first turn with the log attached */
        channel_t *src = core_channel_find(f->c, "src", 3), *dlq = core_channel_find(f->c, "dlq", 3);
        assert_non_null(dlq);
        assert_null(src ? core_event_get(f->c, src, T0 + 6 * S, id) : NULL);
        e = core_event_get(f->c, dlq, T0 + 6 * S, id);
        assert_non_null(e);
        assert_int_equal(core_counters(f->c)->events, 1);
        assert_int_equal(e->deliveries, 1);
        size_t len;
        assert_memory_equal(event_dead_lettered_from(e, &len), "src", 3);
        fx_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_crc32c_portable_agrees),
        cmocka_unit_test(test_record_roundtrip_every_type),
        cmocka_unit_test(test_largest_event_fits_a_record),
        cmocka_unit_test(test_decode_rejects_damage),
        cmocka_unit_test_setup_teardown(test_replay_plain, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_replay_rewrite_middle, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_replay_rewrite_end, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_replay_rewrite_paused_job, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_rewrite_shrinks, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_cut, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_room_after_a_crash, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_torn_change_in_room_is_cut, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_room_after_a_file_size_limit, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_stops_replay, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_clock_step_back, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_job_fire_order_replays, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dead_letter_move_survives_crash, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup);
}
