/*
 * wal.h -- the append-only log of changes: append, replay, rewrite.
 *
 * One file, DIR/distribuerad.log: a 16-byte header ("DISTRLOG", u32 format
 * version, u32 salt) then records. A record is
 *     u32 length | u32 CRC-32C of the payload | u32 CRC-32C of the 8 bytes
 *     before | payload (length bytes)
 * (both CRCs seeded with the salt), and its payload is a core_rec_t: u8 type, u16 field mask, then each
 * field whose bit is set, in a fixed order, little-endian (see wal.c and
 * docs/WAL.md). Zero fields are left out. The frame's own CRC vouches for
 * the length, so a record cut short is told from a damaged length without
 * looking inside the payload; the salt is random per file, so event data
 * cannot contain a frame that passes for one of the file's own.
 *
 * Changes: the records of one change (a batch publish, an acquire) carry
 * the "more" bit on all but the last. Replay applies a change only once
 * its last record is read, so a change is in the log whole or not at all.
 *
 * Writing: the core hands records to the journal (wal_journal) before it
 * applies a change; commit write()s them in one call before the answer is
 * sent. A failed or short write is cut back, so the file always ends on a
 * whole change, and the change is not applied. fsync runs on the thread
 * of fsync.h, by the chosen policy.
 * Deferred writing (wal_set_defer, what the server uses): commit only
 * keeps the change, already applied in memory, and wal_flush writes every
 * change of a loop turn in one write() before any of their answers
 * leaves. If that write fails, the owner undoes the turn with
 * wal_rebuild, and until a write succeeds again each change is written
 * by its own commit as above. Positions (wal_pending_end) of records that
 * were dropped are never handed out again.
 *
 * Room: while the log is open the file runs on past its records in
 * zeros, written 1 MiB ahead, so that an fdatasync of records written
 * over them need not also write a new file length. Where zeros cannot be
 * written the records are appended. Closing cuts the zeros off; replay
 * takes zeros from the start of a change to the end as that room.
 *
 * Replay: changes are applied in order through core_apply. Damage that a
 * crash mid-write leaves (zeros to the end, or no whole change after it)
 * is a torn tail: the log is cut at the start of the change it is in, with
 * a log line. Damage with a whole change after it is corruption: start-up
 * stops and names the file and offset, unless truncation was asked for.
 * A version-1 file (8-byte frames, no salt, each record a change) is read,
 * then rewritten as the current version before the server starts; so is
 * a version-2 file (version 3 adds fields, see docs/WAL.md).
 *
 * Rewrite: when the file passes rewrite_min bytes and twice its size after
 * the last rewrite, a forked child writes the state it inherited as
 * snapshot records to DIR/distribuerad.log.rewrite and fsyncs it, while
 * the server goes on and keeps what it logs meanwhile in memory too. When
 * the child is done, that tail is appended, the file fsynced and renamed
 * over the log, and the directory fsynced (so a crash leaves the old or
 * the new file, whole).
 *
 * DIR/distribuerad.lock is held with flock so two servers never share a
 * directory.
 */
#ifndef WAL_H
#define WAL_H

#include <stddef.h>
#include <stdint.h>
#include "base/hist.h"
#include "core/core.h"

#define WAL_VERSION 3

/* The largest record payload; a longer one is damage. */
#define WAL_MAX_RECORD (1u << 30)
/* The most bytes of data (and of a request body) the server may accept:
 * room is left for the other fields of a record, names included, so every
 * accepted event or job fits one record. */
#define WAL_MAX_DATA (WAL_MAX_RECORD - 64 * 1024)

typedef enum wal_fsync { WAL_FSYNC_ALWAYS, WAL_FSYNC_INTERVAL, WAL_FSYNC_NEVER } wal_fsync_t;

/* Where the log reports what happened ("info", "warn", "error"). */
typedef void (*wal_log_fn)(const char *level, const char *msg);

typedef struct wal_config {
    const char *dir;
    wal_log_fn log;           /* NULL: stderr */
    wal_fsync_t fsync;
    int truncate_corrupt;     /* cut the log at a bad record instead of stopping */
    uint64_t rewrite_min;     /* bytes before a rewrite is considered */
} wal_config_t;

typedef struct wal_replay_stats {
    uint64_t records, bytes, events, jobs;
    int64_t elapsed_ns;
    uint64_t cut_at;          /* offset where a torn or corrupt tail was cut; 0 if none */
} wal_replay_stats_t;

typedef struct wal wal_t;

/* Opens (creating the directory and file if needed) and locks the log.
 * Returns NULL with one sentence in err naming the path and the reason. */
wal_t *wal_open(const wal_config_t *cfg, char *err, size_t errlen);

/* Replays the whole log into c (which must be new), then ends the replay at
 * now and attaches the journal so later changes are logged. Returns 0, or
 * -1 with err saying what is wrong and what to do. */
int wal_replay(wal_t *w, core_t *c, ntime_t now, wal_replay_stats_t *st, char *err, size_t errlen);

/* Starts a rewrite if the log has grown enough, or completes one whose
 * child has finished; call it once per loop turn. force: rewrite now and
 * wait for it. Returns 1 when a rewrite completed, 0 if nothing completed
 * yet, -1 on failure (logged; the old log stays in use). */
int wal_maybe_rewrite(wal_t *w, core_t *c, ntime_t now, int force);

/* on 1: commits keep their change for wal_flush (except while writes
 * fail); 0: each commit writes (what is kept is written first). */
void wal_set_defer(wal_t *w, int on);

/* Writes every change kept since the last flush in one write(): 0, or -1
 * (errno set) when it failed; they are then dropped, the file still ends
 * on the last change written before them, and the caller must undo them
 * in memory (wal_rebuild). */
int wal_flush(wal_t *w);

/* The position the log reaches once what is kept is written: an answer
 * that shows a kept change waits for wal_written() (or wal_synced())
 * to reach it. Equal to wal_written() when nothing is kept. */
uint64_t wal_pending_end(wal_t *w);

/* Rebuilds c from the file after a failed wal_flush: c is emptied and the
 * log replayed into it up to now, as at start-up. Returns 0, or -1 with
 * err set (c is then unusable). Costs about 0.2 s per million records. */
int wal_rebuild(wal_t *w, core_t *c, ntime_t now, char *err, size_t errlen);

/* Nonzero while a rewrite's child runs (the loop should wake to finish it). */
int wal_rewrite_running(const wal_t *w);

/* Positions in the log's history: bytes committed since the log was
 * created, and how many of them are known to be on disk. They only grow,
 * also across rewrites (which shrink the file, not the history), so an
 * answer waiting for "synced >= its position" is never stranded. */
uint64_t wal_written(wal_t *w);
uint64_t wal_synced(wal_t *w);
wal_fsync_t wal_fsync_mode(const wal_t *w);

/* A file descriptor that becomes readable when wal_synced() advances or an
 * fsync fails (eventfd); read 8 bytes to reset it. */
int wal_sync_fd(wal_t *w);

/* Nonzero while the last write or fsync failed (/readyz reports it). */
int wal_failing(const wal_t *w);
/* Nonzero while the last fsync failed. */
int wal_fsync_failing(const wal_t *w);

typedef struct wal_metrics {
    uint64_t bytes_written, records_written, write_errors;
    uint64_t fsync_errors;
    hist_t fsync_time;        /* see fsync.h; count 0 without the thread */
    uint64_t rewrites, size;
} wal_metrics_t;
void wal_get_metrics(wal_t *w, wal_metrics_t *m);

/* Writes what is pending, fsyncs, stops the fsync thread, unlocks and
 * frees. wal_close(NULL) does nothing. */
void wal_close(wal_t *w);

/* Encodes r into buf (which must hold wal_record_size(r) bytes) as a whole
 * framed record; returns its size. For tests and tools. */
size_t wal_record_size(const core_rec_t *r);
size_t wal_encode(const core_rec_t *r, unsigned char *buf);

/* Decodes the payload of one record. Strings point into p. Returns 0 or -1. */
int wal_decode(const unsigned char *p, size_t len, core_rec_t *r);

/* CRC-32C of buf, continuing from crc (0 to start): with the CPU's crc32
 * instruction where it has one. */
uint32_t wal_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same by table, on any CPU; for tests. */
uint32_t wal_crc32c_portable(uint32_t crc, const void *buf, size_t len);

#endif
