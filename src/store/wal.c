/*
 * wal.c -- the append-only log (see wal.h for the design).
 */
#include "wal.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "fsync.h"
#include "base/sclock.h"
#include "base/util.h"

#define WAL_FILE "distribuerad.log"
#define WAL_TMP "distribuerad.log.rewrite"
#define WAL_LOCK "distribuerad.lock"
#define WAL_MAGIC "DISTRLOG"
#define WAL_HEADER 16
#define WAL_FRAME 12              /* length, payload CRC, frame CRC */
#define WAL_FRAME_V1 8            /* version 1: length, payload CRC */

struct wal {
    char *dir;
    char *path;
    int fd;
    int lock_fd;
    int dir_fd;
    int sync_fd;              /* eventfd the fsync thread signals */
    wal_fsync_t mode;
    int truncate_corrupt;
    uint64_t rewrite_min;
    uint32_t version;         /* of the file as read at replay */
    uint32_t salt;            /* seeds every record's CRC (from the header) */
    unsigned frame;           /* frame size of the file as read */
    uint64_t size;            /* bytes of whole records: where the next goes */
    uint64_t room;            /* the file's length: zeros from size on */
    uint64_t room_retry;      /* after a failed extension, not before size gets here */
    uint64_t pos;             /* bytes ever committed: only grows, also across
                                 rewrites; the fsync thread counts in it */
    uint64_t base_size;       /* size after open or the last rewrite */
    unsigned char *pending;   /* records added, not yet committed */
    size_t pending_len, pending_cap;
    uint64_t pending_records;
    int defer;                /* commits wait for wal_flush (see wal_set_defer) */
    int write_failing;
    fsyncer_t *fsyncer;
    wal_metrics_t m;
    wal_log_fn log;
    pid_t rw_pid;             /* the rewrite's writer process; 0 if none */
    int rw_done_fd;           /* its pipe: one byte when it succeeded */
    char *rw_tmp;             /* its file */
    unsigned char *rw_buf;    /* records committed since it started */
    size_t rw_len, rw_cap;
    uint32_t rw_salt;         /* the new file's salt */
    int64_t rw_started;       /* monotonic ns */
    int64_t rw_retry_at;      /* after a failed rewrite, not before (monotonic ns) */
    int64_t rw_backoff_ns;    /* doubles with each failure in a row */
    uint64_t cut_at;          /* where replay cut a damaged tail; 0 if none */
};

static void say(wal_t *w, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(wal_t *w, const char *level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->log)
        w->log(level, msg);
    else
        fprintf(stderr, "distribuerad: %s: %s\n", level, msg);
}

/* ==== CRC-32C (Castagnoli) ====
 *
 * With SSE 4.2 (every x86-64 CPU since 2008) the crc32 instruction does
 * eight bytes a step with no table. The portable version, slicing by 8,
 * reads an 8 KiB table: at a few hundred records a second that table is
 * out of the cache at every record, and its misses cost more than the
 * arithmetic. The instruction computes the same reflected CRC, without the
 * inversions at both ends, which are done here for both. */

static uint32_t crc_table[8][256];

static void crc_init(void)
{
    if (crc_table[0][1])
        return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t wal_crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
    crc_init();
    const unsigned char *p = buf;
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
              crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
              crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *p, size_t len)
{
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

uint32_t wal_crc32c(uint32_t crc, const void *buf, size_t len)
{
    static int hw = -1; /* the CPU's answer, asked once */
    if (hw < 0)
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    return hw ? crc_sse42(crc, buf, len) : wal_crc32c_portable(crc, buf, len);
}
#else
uint32_t wal_crc32c(uint32_t crc, const void *buf, size_t len)
{
    return wal_crc32c_portable(crc, buf, len);
}
#endif

/* ==== record encoding ====
 * A record is its type, a 16-bit mask of the fields present, then each
 * present field in the mask's bit order (docs/WAL.md, "Records"). The
 * table below is that layout: one row a field, naming its bit, how it is
 * encoded and where it lives in core_rec_t. A field is present when its
 * member is nonzero (a string: not empty); "more" is a bit alone. */

enum {
    F_STATE = 1 << 0, F_NOW = 1 << 1, F_ID = 1 << 2, F_AT = 1 << 3, F_LIVES_UNTIL = 1 << 4, F_LOCKED_UNTIL = 1 << 5,
    F_TOKEN = 1 << 6, F_TTL = 1 << 7, F_CHANNEL = 1 << 8, F_NAME = 1 << 9, F_CRON = 1 << 10,
    F_DATA = 1 << 11, F_MORE = 1 << 12, /* version 2: the change goes on in the next record */
    F_NUMS = 1 << 13, /* u8 count (1-CORE_REC_NUMS), then that many u64 */
    F_ATTR = 1 << 14, F_KEY = 1 << 15, /* version 3 */
};

typedef enum field_kind {
    K_BIT,                    /* the mask bit alone; the member is 1 */
    K_U8,
    K_U64,                    /* an int64_t or uint64_t member */
    K_ID,                     /* u64 hi, u32 lo */
    K_STR,                    /* u32 length, bytes */
    K_NUMS,                   /* u8 n_nums, then that many u64 of nums[] */
} field_kind_t;

typedef struct rec_field {
    uint16_t bit;
    uint8_t kind;             /* field_kind_t */
    uint16_t off;             /* the member (K_NUMS: n_nums) */
    uint16_t len_off;         /* K_STR: the uint32_t member of its length */
} rec_field_t;

#define REC_OF(m) offsetof(core_rec_t, m)
#define REC_GET(r, off, type) (*(type const *)((const char *)(r) + (off))) /* the member's value */
#define REC_AT(r, off, type) ((type *)((char *)(r) + (off)))                /* where to write it */

static const rec_field_t rec_fields[] = {
    {F_STATE, K_U8, REC_OF(state), 0},
    {F_NOW, K_U64, REC_OF(now), 0},
    {F_ID, K_ID, REC_OF(id), 0},
    {F_AT, K_U64, REC_OF(at), 0},
    {F_LIVES_UNTIL, K_U64, REC_OF(lives_until), 0},
    {F_LOCKED_UNTIL, K_U64, REC_OF(locked_until), 0},
    {F_TOKEN, K_U64, REC_OF(token), 0},
    {F_TTL, K_U64, REC_OF(ttl_ns), 0},
    {F_CHANNEL, K_STR, REC_OF(channel), REC_OF(channel_len)},
    {F_NAME, K_STR, REC_OF(name), REC_OF(name_len)},
    {F_CRON, K_STR, REC_OF(cron), REC_OF(cron_len)},
    {F_DATA, K_STR, REC_OF(data), REC_OF(data_len)},
    {F_MORE, K_BIT, REC_OF(more), 0},
    {F_NUMS, K_NUMS, REC_OF(n_nums), 0},
    {F_ATTR, K_U8, REC_OF(attr), 0},
    {F_KEY, K_STR, REC_OF(key), REC_OF(key_len)},
};
#define REC_FIELDS (sizeof(rec_fields) / sizeof(rec_fields[0]))

static int field_present(const core_rec_t *r, const rec_field_t *f)
{
    switch (f->kind) {
    case K_U64: return REC_GET(r, f->off, uint64_t) != 0;
    case K_ID: return r->id.hi || r->id.lo;
    case K_STR: return REC_GET(r, f->len_off, uint32_t) != 0;
    default: return REC_GET(r, f->off, uint8_t) != 0; /* K_BIT, K_U8, K_NUMS */
    }
}

static unsigned mask_of(const core_rec_t *r)
{
    unsigned m = 0;
    for (size_t i = 0; i < REC_FIELDS; i++)
        m |= field_present(r, &rec_fields[i]) ? rec_fields[i].bit : 0;
    return m;
}

/* Bytes of f's encoding in r (f present). */
static size_t field_size(const core_rec_t *r, const rec_field_t *f)
{
    switch (f->kind) {
    case K_BIT: return 0;
    case K_U8: return 1;
    case K_U64: return 8;
    case K_ID: return 12;
    case K_STR: return 4 + (size_t)REC_GET(r, f->len_off, uint32_t);
    default: return 1 + 8 * (size_t)r->n_nums; /* K_NUMS */
    }
}

size_t wal_record_size(const core_rec_t *r)
{
    size_t n = WAL_FRAME + 3;
    for (size_t i = 0; i < REC_FIELDS; i++)
        n += field_present(r, &rec_fields[i]) ? field_size(r, &rec_fields[i]) : 0;
    return n;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static unsigned char *put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static unsigned char *putstr(unsigned char *p, const char *s, uint32_t len)
{
    p = put32(p, len);
    memcpy(p, s, len);
    return p + len;
}

static unsigned char *field_put(unsigned char *p, const core_rec_t *r, const rec_field_t *f)
{
    switch (f->kind) {
    case K_BIT: return p;
    case K_U8: *p++ = REC_GET(r, f->off, uint8_t); return p;
    case K_U64: return put64(p, REC_GET(r, f->off, uint64_t));
    case K_ID: return put32(put64(p, r->id.hi), r->id.lo);
    case K_STR: return putstr(p, REC_GET(r, f->off, const char *), REC_GET(r, f->len_off, uint32_t));
    default: /* K_NUMS */
        *p++ = r->n_nums;
        for (unsigned i = 0; i < r->n_nums; i++)
            p = put64(p, r->nums[i]);
        return p;
    }
}

/* Encodes r as a framed record whose CRC is seeded with the file's salt. */
static size_t encode(const core_rec_t *r, uint32_t salt, unsigned char *buf)
{
    unsigned m = mask_of(r);
    unsigned char *p = buf + WAL_FRAME;
    *p++ = r->type;
    *p++ = (unsigned char)m;
    *p++ = (unsigned char)(m >> 8);
    for (size_t i = 0; i < REC_FIELDS; i++)
        if (m & rec_fields[i].bit)
            p = field_put(p, r, &rec_fields[i]);
    uint32_t len = (uint32_t)(p - buf - WAL_FRAME);
    put32(buf, len);
    put32(buf + 4, wal_crc32c(salt, buf + WAL_FRAME, len));
    put32(buf + 8, wal_crc32c(salt, buf, 8));
    return (size_t)(p - buf);
}

size_t wal_encode(const core_rec_t *r, unsigned char *buf)
{
    return encode(r, 0, buf);
}

typedef struct reader {
    const unsigned char *p, *end;
    int bad;
} reader_t;

static uint64_t get_n(reader_t *rd, int n)
{
    if (rd->end - rd->p < n) {
        rd->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)rd->p[i] << (8 * i);
    rd->p += n;
    return v;
}

static const char *get_str(reader_t *rd, uint32_t *len)
{
    *len = (uint32_t)get_n(rd, 4);
    if (rd->bad || (size_t)(rd->end - rd->p) < *len) {
        rd->bad = 1;
        *len = 0;
        return "";
    }
    const char *s = (const char *)rd->p;
    rd->p += *len;
    return s;
}

/* Reads f into r: 0, or -1 for a count of numbers out of range (a
 * short record shows in rd->bad). */
static int field_get(reader_t *rd, core_rec_t *r, const rec_field_t *f)
{
    switch (f->kind) {
    case K_BIT: *REC_AT(r, f->off, uint8_t) = 1; return 0;
    case K_U8: *REC_AT(r, f->off, uint8_t) = (uint8_t)get_n(rd, 1); return 0;
    case K_U64: *REC_AT(r, f->off, uint64_t) = get_n(rd, 8); return 0;
    case K_ID:
        r->id.hi = get_n(rd, 8);
        r->id.lo = (uint32_t)get_n(rd, 4);
        return 0;
    case K_STR: *REC_AT(r, f->off, const char *) = get_str(rd, REC_AT(r, f->len_off, uint32_t)); return 0;
    default: /* K_NUMS */
        r->n_nums = (uint8_t)get_n(rd, 1);
        if (r->n_nums == 0 || r->n_nums > CORE_REC_NUMS)
            return -1;
        for (unsigned i = 0; i < r->n_nums; i++)
            r->nums[i] = get_n(rd, 8);
        return 0;
    }
}

int wal_decode(const unsigned char *p, size_t len, core_rec_t *r)
{
    reader_t rd = {p, p + len, 0};
    memset(r, 0, sizeof(*r));
    r->channel = r->name = r->cron = r->data = r->key = "";
    r->type = (uint8_t)get_n(&rd, 1);
    unsigned m = (unsigned)get_n(&rd, 2);
    for (size_t i = 0; i < REC_FIELDS; i++)
        if ((m & rec_fields[i].bit) && field_get(&rd, r, &rec_fields[i]) != 0)
            return -1;
    if (rd.bad || rd.p != rd.end)
        return -1;
    /* Records that name an event or a job need a channel. */
    if (r->type != CORE_REC_IDGEN && r->channel_len == 0)
        return -1;
    return 0;
}

/* ==== appending ==== */

static void journal_add_cb(void *arg, const core_rec_t *r)
{
    wal_t *w = arg;
    size_t need = wal_record_size(r);
    if (w->pending_len + need > w->pending_cap) {
        w->pending_cap = (w->pending_len + need) * 2;
        w->pending = xrealloc(w->pending, w->pending_cap);
    }
    w->pending_len += encode(r, w->salt, w->pending + w->pending_len);
    w->pending_records++;
}

/* Cuts the file back to `at` after a failed write; a file that cannot
 * be cut would keep half a record, so the process stops instead. */
static void cut_back(int fd, uint64_t at)
{
    if (ftruncate(fd, (off_t)at) != 0 || lseek(fd, (off_t)at, SEEK_SET) < 0) {
        fprintf(stderr, "distribuerad: cannot cut the log back after a failed write: %s\n", strerror(errno));
        abort();
    }
}

/* Writes buf fully at offset `at` of fd, or cuts the file back to `at`. */
static int write_all(int fd, const unsigned char *buf, size_t len, uint64_t at)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(at + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : ENOSPC;
            /* Never leave half a record: the next append would follow it
             * and replay would stop there. */
            cut_back(fd, at);
            errno = err;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

/* Zeros written ahead of the records: an fdatasync of a write into
 * them need not also write the file's new length, which costs about as
 * much again as the records (docs/WAL.md, "Room"). */
#define WAL_ROOM (1u << 20)

/* Writes zeros over [from, to), or cuts the file back to `from`. */
static int zero_fill(int fd, uint64_t from, uint64_t to)
{
    static unsigned char zeros[64 * 1024]; /* bss: the zero page, never written */
    for (uint64_t at = from; at < to; at += sizeof(zeros)) {
        size_t n = to - at < sizeof(zeros) ? (size_t)(to - at) : sizeof(zeros);
        if (write_all(fd, zeros, n, at) != 0) {
            cut_back(fd, from);
            return -1;
        }
    }
    return 0;
}

/* Makes sure len bytes from size on fall in zeros, when that can be had:
 * where the disk is full or the file size limited, records are appended
 * as they come, and more room is tried again a WAL_ROOM later. */
static void make_room(wal_t *w, size_t len)
{
    ASSERT(w->room >= w->size);
    if (w->size + len <= w->room || w->size < w->room_retry)
        return;
    uint64_t to = (w->size + len + WAL_ROOM) & ~(uint64_t)4095;
    if (zero_fill(w->fd, w->room, to) != 0) {
        w->room_retry = w->size + WAL_ROOM;
        return;
    }
    sync_file_range(w->fd, (off_t)w->room, (off_t)(to - w->room), SYNC_FILE_RANGE_WRITE);
    w->room = to;
}

/* Writes the pending records in one call. On failure they are dropped
 * and their positions skipped, so no later change ever has them. */
static int write_pending(wal_t *w)
{
    if (w->pending_len == 0)
        return 0;
    make_room(w, w->pending_len);
    int rc = write_all(w->fd, w->pending, w->pending_len, w->size);
    if (rc != 0) {
        int err = errno;
        w->room = w->size; /* the failed write cut the file there */
        w->m.write_errors++;
        if (!w->write_failing)
            say(w, "error", "writing the log %s failed: %s; changes are refused until it works again",
                w->path, strerror(err));
        w->write_failing = 1;
        w->pos += w->pending_len;
        /* Nothing of those positions is to be synced: an answer that
         * waits for the fsync of what came before them must not wait
         * for them (their own answers are refused). */
        fsyncer_written(w->fsyncer, w->pos);
        errno = err;
    } else {
        if (w->write_failing)
            say(w, "info", "writing the log %s works again", w->path);
        w->write_failing = 0;
        if (w->rw_pid > 0) {
            if (w->rw_len + w->pending_len > w->rw_cap) {
                w->rw_cap = (w->rw_len + w->pending_len) * 2;
                w->rw_buf = xrealloc(w->rw_buf, w->rw_cap);
            }
            memcpy(w->rw_buf + w->rw_len, w->pending, w->pending_len);
            w->rw_len += w->pending_len;
        }
        w->size += w->pending_len;
        if (w->room < w->size)
            w->room = w->size; /* appended: there was no room to be had */
        w->pos += w->pending_len;
        w->m.bytes_written += w->pending_len;
        w->m.records_written += w->pending_records;
        fsyncer_written(w->fsyncer, w->pos);
    }
    w->pending_len = 0;
    w->pending_records = 0;
    return rc;
}

static int journal_commit_cb(void *arg)
{
    wal_t *w = arg;
    /* Deferred, a change stays in `pending` for the turn's one write. While
     * writes fail, each change is written alone instead, so a failure
     * refuses that change only and nothing has to be undone. */
    if (w->defer && !w->write_failing)
        return 0;
    return write_pending(w);
}

void wal_set_defer(wal_t *w, int on)
{
    if (!on)
        write_pending(w);
    w->defer = on;
}

uint64_t wal_pending_end(wal_t *w)
{
    return w->pos + w->pending_len;
}

int wal_flush(wal_t *w)
{
    return write_pending(w);
}

/* ==== open ==== */

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int write_header(int fd, uint32_t salt)
{
    unsigned char h[WAL_HEADER] = WAL_MAGIC;
    put32(h + 8, WAL_VERSION);
    put32(h + 12, salt);
    return write_all(fd, h, sizeof(h), 0);
}

/* A new file's salt: random, so no event data can hold a record that
 * passes for one of this file's (see record_after); never 0, which marks
 * a file upgraded from version 1. */
static uint32_t new_salt(void)
{
    uint32_t s = 0;
    while (s == 0) {
        if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            s = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec ^ (uint32_t)getpid() << 16;
        }
    }
    return s;
}

/* Creates dir and its missing parents, fsyncing each parent so the new
 * directory survives a crash. */
static int mkdir_p(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) == 0)
        return S_ISDIR(sb.st_mode) ? 0 : (errno = ENOTDIR, -1);
    char *copy = xstrndup(dir, strlen(dir));
    char *slash = strrchr(copy, '/');
    int rc = 0;
    if (slash && slash != copy) {
        *slash = '\0';
        rc = mkdir_p(copy);
    }
    if (rc == 0 && mkdir(dir, 0755) != 0 && errno != EEXIST)
        rc = -1;
    if (rc == 0) {
        const char *parent = slash == copy ? "/" : slash ? copy : ".";
        int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
    int saved = errno;
    free(copy);
    errno = saved;
    return rc;
}

wal_t *wal_open(const wal_config_t *cfg, char *err, size_t errlen)
{
    wal_t *w = xcalloc(1, sizeof(*w));
    w->fd = w->lock_fd = w->dir_fd = w->sync_fd = w->rw_done_fd = -1;
    w->dir = xstrndup(cfg->dir, strlen(cfg->dir));
    w->path = join(cfg->dir, WAL_FILE);
    w->rw_tmp = join(cfg->dir, WAL_TMP);
    w->mode = cfg->fsync;
    w->truncate_corrupt = cfg->truncate_corrupt;
    w->rewrite_min = cfg->rewrite_min;
    w->log = cfg->log;
    char *lock = join(cfg->dir, WAL_LOCK);
    const char *what = "";
    if (mkdir_p(cfg->dir) != 0) {
        what = cfg->dir;
        snprintf(err, errlen, "cannot create the data directory %s: %s", what, strerror(errno));
        goto error;
    }
    if ((w->dir_fd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "cannot open the data directory %s: %s", cfg->dir, strerror(errno));
        goto error;
    }
    if ((w->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        snprintf(err, errlen, "cannot open %s: %s", lock, strerror(errno));
        goto error;
    }
    if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "the data directory %s is in use by another distribuerad (%s is locked)",
                 cfg->dir, lock);
        goto error;
    }
    if ((w->fd = open(w->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        snprintf(err, errlen, "cannot open the log %s: %s", w->path, strerror(errno));
        goto error;
    }
    /* A rewrite cut short by a crash left its file; the log is whole. */
    unlink(w->rw_tmp);
    if ((w->sync_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "cannot create an eventfd: %s", strerror(errno));
        goto error;
    }
    free(lock);
    return w;
error:
    free(lock);
    wal_close(w);
    return NULL;
}

/* ==== replay ==== */

static int fsync_dir(wal_t *w)
{
    return fsync(w->dir_fd);
}

/* Starts a new, empty log file (or completes a header cut short). */
static int init_file(wal_t *w, char *err, size_t errlen)
{
    w->salt = new_salt();
    w->version = WAL_VERSION;
    w->frame = WAL_FRAME;
    if (ftruncate(w->fd, 0) != 0 || lseek(w->fd, 0, SEEK_SET) < 0 || write_header(w->fd, w->salt) != 0 ||
        fsync(w->fd) != 0 || fsync_dir(w) != 0) {
        snprintf(err, errlen, "cannot write the log %s: %s", w->path, strerror(errno));
        return -1;
    }
    w->size = WAL_HEADER;
    return 0;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int check_header(wal_t *w, const unsigned char *p, char *err, size_t errlen)
{
    if (memcmp(p, WAL_MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s is not a distribuerad log (bad magic); move it away to start empty", w->path);
        return -1;
    }
    w->version = get32(p + 8);
    w->salt = get32(p + 12);
    w->frame = w->version == 1 ? WAL_FRAME_V1 : WAL_FRAME;
    if (w->version == 1 && w->salt == 0)
        return 0; /* read, then rewritten as the current version */
    if (w->version == 2)
        return 0; /* the same frames; its records use no field of version 3 */
    if (w->version != WAL_VERSION) {
        snprintf(err, errlen, "%s has log format version %u; this distribuerad reads versions 1 to %d",
                 w->path, w->version, WAL_VERSION);
        return -1;
    }
    return 0;
}

/* Cuts the file at `at`, the start of the change holding the damage found
 * at `off` (a torn or corrupt tail). */
static int cut(wal_t *w, uint64_t off, uint64_t at, const char *why, char *err, size_t errlen)
{
    if (at == off)
        say(w, "warn", "log %s: %s at offset %llu; cutting the log there (%llu bytes dropped)", w->path, why,
            (unsigned long long)off, (unsigned long long)(w->size - at));
    else
        say(w, "warn", "log %s: %s at offset %llu, in a change that begins at offset %llu; cutting the log "
            "there (%llu bytes dropped)", w->path, why, (unsigned long long)off, (unsigned long long)at,
            (unsigned long long)(w->size - at));
    if (ftruncate(w->fd, (off_t)at) != 0 || fsync(w->fd) != 0) {
        snprintf(err, errlen, "cannot cut the log %s: %s", w->path, strerror(errno));
        return -1;
    }
    w->size = at;
    w->cut_at = at;
    return 0;
}

static int all_zero(const unsigned char *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Is the frame at q, of a file with this salt, whole and sound? Version 2
 * only. Its length is then the payload's. */
static int frame_ok(const unsigned char *p, uint64_t q, uint64_t size, uint32_t salt, uint32_t *len)
{
    if (size - q < WAL_FRAME || wal_crc32c(salt, p + q, 8) != get32(p + q + 8))
        return 0;
    *len = get32(p + q);
    return *len >= 3 && *len <= WAL_MAX_RECORD && *len <= size - q - WAL_FRAME;
}

/* Does a whole, valid record that ends a change start at `from` or after?
 * If so, a change after the damage was written whole: the damage is not a
 * torn tail. Only asked once damage is found, so a byte-by-byte search is
 * affordable; the type and mask bytes are checked before the CRCs to skip
 * garbage cheaply. The CRCs' seed is the file's random salt, which no
 * client sees: event data cannot hold a frame that passes. */
static int change_after(const wal_t *w, const unsigned char *p, uint64_t from)
{
    uint64_t size = w->size;
    for (uint64_t q = from; q + w->frame + 3 <= size; q++) {
        const unsigned char *payload = p + q + w->frame;
        uint32_t len = get32(p + q);
        if (payload[0] < CORE_REC_PUBLISH || payload[0] > CORE_REC_IDGEN || payload[2] >= 0x20)
            continue;
        if (w->frame == WAL_FRAME ? !frame_ok(p, q, size, w->salt, &len)
                                  : len < 3 || len > size - q - w->frame)
            continue;
        core_rec_t r;
        if (wal_crc32c(w->salt, payload, len) == get32(p + q + 4) && wal_decode(payload, len, &r) == 0 &&
            !r.more)
            return 1;
    }
    return 0;
}

/* The records of one change, read whole but not yet applied. Strings
 * point into the mapped file. */
typedef struct unit {
    core_rec_t *recs;
    uint64_t *offs;
    size_t n, cap;
    uint64_t start;           /* offset of its first record */
} unit_t;

static void unit_push(unit_t *u, const core_rec_t *r, uint64_t off)
{
    if (u->n == u->cap) {
        u->cap = u->cap ? 2 * u->cap : 64;
        u->recs = xrealloc(u->recs, u->cap * sizeof(*u->recs));
        u->offs = xrealloc(u->offs, u->cap * sizeof(*u->offs));
    }
    u->offs[u->n] = off;
    u->recs[u->n++] = *r;
}

/* Checks the frame at off and decodes it into r: NULL, or what is wrong.
 * *skip: where a search for good records after damage may start. A sound
 * version-2 frame says where its record ends, so the search skips its
 * payload (event data, which may look like anything); a record that runs
 * past the end of the file behind a sound frame is torn for certain. */
static const char *read_record(wal_t *w, const unsigned char *p, uint64_t off, uint32_t *len, core_rec_t *r,
                               uint64_t *skip)
{
    uint64_t rest = w->size - off;
    *skip = off + 1;
    *len = rest >= 4 ? get32(p + off) : 0;
    if (w->frame == WAL_FRAME && rest >= WAL_FRAME && wal_crc32c(w->salt, p + off, 8) == get32(p + off + 8))
        *skip = (uint64_t)*len + WAL_FRAME > rest ? w->size : off + WAL_FRAME + *len;
    else if (w->frame == WAL_FRAME && rest >= WAL_FRAME)
        return "a record with a bad frame checksum";
    if (rest < w->frame || (uint64_t)*len + w->frame > rest)
        return "a record cut short (the server stopped while writing it)";
    if (*len == 0 || *len > WAL_MAX_RECORD || wal_crc32c(w->salt, p + off + w->frame, *len) != get32(p + off + 4))
        return "a record with a bad checksum";
    if (wal_decode(p + off + w->frame, *len, r) != 0 || (w->version == 1 && r->more))
        return "a record that cannot be decoded";
    return NULL;
}

static int damaged(wal_t *w, const char *why, uint64_t off, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "log %s is damaged: %s at offset %llu, with %llu bytes after it. Nothing was changed. Restore "
             "the file from a backup, or start with -truncate-corrupt-log to drop that record and "
             "everything after it", w->path, why, (unsigned long long)off, (unsigned long long)(w->size - off));
    return -1;
}

enum { REPLAY_ON, REPLAY_CUT, REPLAY_AGAIN, REPLAY_FAILED = -1 };

/* Applies a change read whole: REPLAY_ON, REPLAY_FAILED (err set),
 * REPLAY_CUT (the log ends before it now) or REPLAY_AGAIN (cut after part
 * of it was applied: replay must start over). */
static int apply_unit(wal_t *w, core_t *c, const unit_t *u, uint64_t end, char *err, size_t errlen)
{
    for (size_t k = 0; k < u->n; k++) {
        if (core_apply(c, &u->recs[k]) == CORE_OK)
            continue;
        /* A whole, valid record that does not fit is never what a crash
         * leaves; it is cut only at the very end of the file. */
        const char *why = "a record that does not fit the state before it";
        if (!w->truncate_corrupt && end != w->size)
            return damaged(w, why, u->offs[k], err, errlen);
        if (cut(w, u->offs[k], u->start, why, err, errlen) != 0)
            return REPLAY_FAILED;
        return k > 0 ? REPLAY_AGAIN : REPLAY_CUT;
    }
    return REPLAY_ON;
}

/* Damage at off, inside the change that begins at u->start: a torn tail
 * (zeros to the end, or no whole change after it) is cut at the change's
 * start; anything else stops start-up unless cutting was asked for. */
static int on_damage(wal_t *w, const unsigned char *p, const unit_t *u, uint64_t off, uint64_t skip,
                     const char *why, char *err, size_t errlen)
{
    int torn = all_zero(p + off, w->size - off) || !change_after(w, p, skip);
    if (!torn && !w->truncate_corrupt)
        return damaged(w, why, off, err, errlen);
    return cut(w, off, u->start, why, err, errlen) == 0 ? REPLAY_CUT : REPLAY_FAILED;
}

/* Do zeros run from off, where a change would begin, to the end? That
 * is the room written ahead of the records (make_room), not damage. */
static int at_room(const wal_t *w, const unsigned char *p, uint64_t off)
{
    return w->size - off >= 4 && get32(p + off) == 0 && all_zero(p + off, w->size - off);
}

/* Replays the records of p[WAL_HEADER..size), a change at a time. */
static int replay_records(wal_t *w, core_t *c, const unsigned char *p, wal_replay_stats_t *st,
                          char *err, size_t errlen)
{
    unit_t u = {.start = WAL_HEADER};
    uint64_t off = WAL_HEADER;
    int rc = REPLAY_ON;
    while (rc == REPLAY_ON && off < w->size) {
        uint32_t len;
        uint64_t skip;
        core_rec_t r;
        if (u.n == 0 && at_room(w, p, off)) {
            w->size = off;
            break;
        }
        const char *why = read_record(w, p, off, &len, &r, &skip);
        if (why) {
            rc = on_damage(w, p, &u, off, skip, why, err, errlen);
            break;
        }
        unit_push(&u, &r, off);
        off += w->frame + len;
        if (r.more)
            continue;
        rc = apply_unit(w, c, &u, off, err, errlen);
        if (rc == REPLAY_ON)
            st->records += u.n;
        u.n = 0;
        u.start = off;
    }
    /* The file ends inside a change: its last records were never written. */
    if (rc == REPLAY_ON && u.n > 0)
        rc = cut(w, off, u.start, "a change cut short (the server stopped while writing it)", err, errlen) == 0
                 ? REPLAY_CUT : REPLAY_FAILED;
    free(u.recs);
    free(u.offs);
    return rc;
}

/* Replays a mapped file of at least a header; core_replay_end runs before
 * the mapping goes, since held-back records point into it. */
static int replay_mapped(wal_t *w, core_t *c, const unsigned char *p, ntime_t now, wal_replay_stats_t *st,
                         char *err, size_t errlen)
{
    if (check_header(w, p, err, errlen) != 0)
        return -1;
    int rc;
    while ((rc = replay_records(w, c, p, st, err, errlen)) == REPLAY_AGAIN) {
        core_replay_reset(c);
        st->records = 0;
    }
    if (rc == REPLAY_FAILED)
        return -1;
    core_replay_end(c, now);
    return 0;
}

/* A file of an older version (1: no salt, 8-byte frames, each record a
 * change of its own; 2: no priorities, keys, deliveries, settings or
 * dead letters) is rewritten as the current version right after it is
 * read. */
static int upgrade(wal_t *w, core_t *c, ntime_t now, char *err, size_t errlen)
{
    uint32_t old = w->version;
    if (wal_maybe_rewrite(w, c, now, 1) != 1) {
        snprintf(err, errlen, "cannot rewrite the log %s (format version %u) as version %d; see the error "
                 "above, fix it and start again (the log is unchanged)", w->path, old, WAL_VERSION);
        return -1;
    }
    say(w, "info", "log %s: format version %u rewritten as version %d", w->path, old, WAL_VERSION);
    return 0;
}

int wal_replay(wal_t *w, core_t *c, ntime_t now, wal_replay_stats_t *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    int64_t t0 = sclock_mono();
    struct stat sb;
    if (fstat(w->fd, &sb) != 0) {
        snprintf(err, errlen, "cannot stat the log %s: %s", w->path, strerror(errno));
        return -1;
    }
    w->size = (uint64_t)sb.st_size;
    core_replay_begin(c);
    if (w->size < WAL_HEADER) {
        /* Empty, or the header itself was cut short: nothing was logged. */
        if (init_file(w, err, errlen) != 0)
            return -1;
        core_replay_end(c, now);
    } else {
        unsigned char *p = mmap(NULL, w->size, PROT_READ, MAP_PRIVATE, w->fd, 0);
        if (p == MAP_FAILED) {
            snprintf(err, errlen, "cannot read the log %s: %s", w->path, strerror(errno));
            return -1;
        }
        madvise(p, w->size, MADV_SEQUENTIAL);
        int rc = replay_mapped(w, c, p, now, st, err, errlen);
        munmap(p, sb.st_size);
        if (rc != 0)
            return -1;
    }
    w->room = w->cut_at || (uint64_t)sb.st_size < w->size ? w->size : (uint64_t)sb.st_size;
    st->bytes = w->size;
    st->cut_at = w->cut_at;
    st->events = core_counters(c)->events;
    if (lseek(w->fd, (off_t)w->size, SEEK_SET) < 0) {
        snprintf(err, errlen, "cannot seek in the log %s: %s", w->path, strerror(errno));
        return -1;
    }
    w->base_size = w->size;
    w->pos = w->size;
    w->fsyncer = fsyncer_start(w->fd, w->mode, w->pos, w->sync_fd);
    core_journal_t j = {journal_add_cb, journal_commit_cb, w};
    core_set_journal(c, &j);
    if (w->version != WAL_VERSION && upgrade(w, c, now, err, errlen) != 0)
        return -1;
    st->elapsed_ns = sclock_mono() - t0;
    return 0;
}

int wal_rebuild(wal_t *w, core_t *c, ntime_t now, char *err, size_t errlen)
{
    /* The file ends on the last whole change written: replaying it gives
     * the state without the changes that were dropped. */
    ASSERT(w->pending_len == 0);
    core_replay_reset(c);
    unsigned char *p = mmap(NULL, w->size, PROT_READ, MAP_PRIVATE, w->fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot read the log %s back: %s", w->path, strerror(errno));
        return -1;
    }
    madvise(p, w->size, MADV_SEQUENTIAL);
    wal_replay_stats_t st = {0};
    int rc = replay_mapped(w, c, p, now, &st, err, errlen);
    munmap(p, w->size);
    if (rc != 0)
        return -1;
    core_journal_t j = {journal_add_cb, journal_commit_cb, w};
    core_set_journal(c, &j);
    return 0;
}

/* ==== rewrite ==== */

typedef struct rewriter {
    wal_t *w;
    int fd;
    unsigned char *buf;
    size_t len, cap;
    uint64_t size;
    uint32_t salt;
    int failed;
} rewriter_t;

static void rw_flush(rewriter_t *rw)
{
    if (rw->len && !rw->failed && write_all(rw->fd, rw->buf, rw->len, rw->size) != 0)
        rw->failed = errno ? errno : EIO;
    if (!rw->failed)
        rw->size += rw->len;
    rw->len = 0;
}

static void rw_add(void *arg, const core_rec_t *r)
{
    rewriter_t *rw = arg;
    size_t need = wal_record_size(r);
    if (rw->len + need > rw->cap) {
        rw_flush(rw);
        if (need > rw->cap) {
            rw->cap = need;
            rw->buf = xrealloc(rw->buf, rw->cap);
        }
    }
    rw->len += encode(r, rw->salt, rw->buf + rw->len);
}

/* The child: writes the snapshot of its copy of the state to tmp and
 * makes it durable. Exits 0 on success. */
static void rewrite_child(wal_t *w, core_t *c, ntime_t now, const char *tmp, pid_t parent, int done_fd)
{
    /* The child must not outlive the server, nor hold its sockets, its
     * log or the data directory's lock if it is killed. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    /* One close per descriptor rather than close_range: valgrind keeps
     * descriptors of its own above the limit it reports and guards
     * close(), but not close_range. */
    struct rlimit rl;
    int top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1 << 20 ? (int)rl.rlim_cur : 1 << 16;
    for (int fd = 3; fd < top; fd++)
        if (fd != done_fd)
            close(fd);
    rewriter_t rw = {.w = w, .cap = 1 << 20, .size = WAL_HEADER, .salt = w->rw_salt};
    rw.buf = xmalloc(rw.cap);
    rw.fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (rw.fd < 0 || write_header(rw.fd, rw.salt) != 0)
        _exit(1);
    core_journal_t j = {rw_add, NULL, &rw};
    core_snapshot(c, now, &j);
    rw_flush(&rw);
    /* Success is a byte on the pipe, not the exit status: a tool such as
     * valgrind may change the status of a child that exits with the
     * parent's memory still allocated. */
    if (!rw.failed && fsync(rw.fd) == 0 && write(done_fd, "1", 1) == 1)
        _exit(0);
    _exit(1);
}

static void rewrite_abandon(wal_t *w, const char *why, int err)
{
    /* A rewrite fails when the disk is full or broken: retrying at once
     * would fork and write the whole state every turn. */
    w->rw_backoff_ns = w->rw_backoff_ns ? w->rw_backoff_ns * 2 : 10 * NTIME_NS_PER_S;
    if (w->rw_backoff_ns > 600 * NTIME_NS_PER_S)
        w->rw_backoff_ns = 600 * NTIME_NS_PER_S;
    w->rw_retry_at = sclock_mono() + w->rw_backoff_ns;
    say(w, "error", "rewriting the log %s failed (%s%s%s); still using the old log, next try in %lld s",
        w->path, why, err ? ": " : "", err ? strerror(err) : "", (long long)(w->rw_backoff_ns / NTIME_NS_PER_S));
    unlink(w->rw_tmp);
    w->rw_pid = 0;
    w->rw_len = 0;
}

/* The parent, once the child succeeded: appends what was logged since the
 * fork, makes the new file durable, puts it in place of the old one. */
static int rewrite_finish(wal_t *w)
{
    int fd = open(w->rw_tmp, O_RDWR | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        rewrite_abandon(w, "cannot open the new file", errno);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uint64_t size = (uint64_t)sb.st_size;
    /* Only the version-1 upgrade changes the salt, and nothing is
     * committed while it runs. */
    ASSERT(w->rw_salt == w->salt || w->rw_len == 0);
    /* The rename must be on disk before the old file's records are
     * forgotten, and the new file whole before the rename. */
    if (write_all(fd, w->rw_buf, w->rw_len, size) != 0 || fsync(fd) != 0 ||
        rename(w->rw_tmp, w->path) != 0 || fsync_dir(w) != 0) {
        rewrite_abandon(w, "cannot complete the new file", errno);
        close(fd);
        return -1;
    }
    size += w->rw_len;
    uint64_t old = w->size;
    /* Everything committed so far is in the new file, on disk. */
    fsyncer_set_fd(w->fsyncer, fd, w->pos);
    close(w->fd);
    w->fd = fd;
    w->salt = w->rw_salt;
    w->version = WAL_VERSION;
    w->frame = WAL_FRAME;
    w->size = w->base_size = w->room = size;
    w->room_retry = 0;
    w->m.rewrites++;
    w->rw_pid = 0;
    w->rw_len = 0;
    w->rw_backoff_ns = 0;
    uint64_t one = 1; /* answers waiting for an fsync can go now */
    ssize_t r = write(w->sync_fd, &one, sizeof(one));
    (void)r;
    say(w, "info", "rewrote the log %s: %llu -> %llu bytes in %.1f ms", w->path, (unsigned long long)old,
        (unsigned long long)size, (double)(sclock_mono() - w->rw_started) / 1e6);
    return 1;
}

/* Checks on a running rewrite; wait: block until it ends. */
static int rewrite_poll(wal_t *w, int wait)
{
    int status;
    pid_t r;
    do
        r = waitpid(w->rw_pid, &status, wait ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 0;
    int err = r < 0 ? errno : 0;
    char ok = 0;
    ssize_t got = read(w->rw_done_fd, &ok, 1);
    close(w->rw_done_fd);
    w->rw_done_fd = -1;
    if (got != 1 || ok != '1') {
        rewrite_abandon(w, "the writer process failed", err);
        return -1;
    }
    return rewrite_finish(w);
}

int wal_maybe_rewrite(wal_t *w, core_t *c, ntime_t now, int force)
{
    if (w->rw_pid > 0)
        return rewrite_poll(w, force);
    if (!force && (w->size < w->rewrite_min || w->size < 2 * w->base_size || w->write_failing ||
                   sclock_mono() < w->rw_retry_at))
        return 0;
    /* The child's snapshot would hold changes not written yet, and their
     * write would then add them to rw_buf a second time. */
    if (w->pending_len > 0)
        return 0;
    /* Like Redis's AOF rewrite: a child writes the state it inherited while
     * the server goes on; what is logged meanwhile is kept in rw_buf and
     * appended to the new file before it replaces the old one. */
    w->rw_started = sclock_mono();
    w->rw_len = 0;
    /* A version-1 file has no salt: its rewrite gets one. */
    w->rw_salt = w->version == WAL_VERSION ? w->salt : new_salt();
    pid_t parent = getpid();
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        say(w, "error", "cannot start the log rewrite: pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        say(w, "error", "cannot start the log rewrite: fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0)
        rewrite_child(w, c, now, w->rw_tmp, parent, fds[1]);
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK); /* read once the child has exited */
    w->rw_done_fd = fds[0];
    w->rw_pid = pid;
    return force ? rewrite_poll(w, 1) : 0;
}

int wal_rewrite_running(const wal_t *w)
{
    return w->rw_pid > 0;
}

/* ==== state ==== */

uint64_t wal_written(wal_t *w)
{
    return w->pos;
}

uint64_t wal_synced(wal_t *w)
{
    return w->fsyncer ? fsyncer_synced(w->fsyncer) : w->pos;
}

wal_fsync_t wal_fsync_mode(const wal_t *w)
{
    return w->mode;
}

int wal_sync_fd(wal_t *w)
{
    return w->sync_fd;
}

int wal_failing(const wal_t *w)
{
    return w->write_failing || wal_fsync_failing(w);
}

int wal_fsync_failing(const wal_t *w)
{
    return w->fsyncer && fsyncer_failing(w->fsyncer);
}

void wal_get_metrics(wal_t *w, wal_metrics_t *m)
{
    *m = w->m;
    m->size = w->size;
    if (w->fsyncer) {
        fsync_stats_t fs;
        fsyncer_stats(w->fsyncer, &fs);
        m->fsync_errors = fs.errors;
        m->fsync_time = fs.time;
    }
}

void wal_close(wal_t *w)
{
    if (!w)
        return;
    if (w->rw_pid > 0) {
        kill(w->rw_pid, SIGKILL);
        waitpid(w->rw_pid, NULL, 0);
        close(w->rw_done_fd);
        unlink(w->rw_tmp);
    }
    if (write_pending(w) != 0)
        say(w, "error", "the last changes could not be written to the log %s: %s", w->path, strerror(errno));
    if (w->fsyncer) {
        if (fsyncer_flush(w->fsyncer) != 0)
            say(w, "error", "the final fsync of the log %s failed: %s", w->path, strerror(errno));
        fsyncer_stop(w->fsyncer);
    }
    /* The room is left to the next start only by a crash. */
    if (w->fd >= 0 && w->room > w->size && ftruncate(w->fd, (off_t)w->size) != 0)
        say(w, "warn", "cannot cut the room off the log %s: %s", w->path, strerror(errno));
    if (w->fd >= 0)
        close(w->fd);
    if (w->sync_fd >= 0)
        close(w->sync_fd);
    if (w->dir_fd >= 0)
        close(w->dir_fd);
    if (w->lock_fd >= 0)
        close(w->lock_fd); /* releases the flock */
    free(w->pending);
    free(w->rw_buf);
    free(w->rw_tmp);
    free(w->path);
    free(w->dir);
    free(w);
}
