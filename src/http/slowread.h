/*
 * slowread.h -- cutting off clients that do not read their answers.
 *
 * h2o 2.2 keeps an answer it could not write yet (a listing of megabytes,
 * a batch answer) for as long as the connection stays open, and has no
 * write timeout: twenty clients that ask for a big listing and never read
 * held half a gigabyte. Each connection gets a watch (allocated at accept,
 * freed when the connection closes). An answer of at least SLOWREAD_MIN
 * bytes (smaller ones fit the kernel's socket buffer) puts its connection
 * on a FIFO with a due time one timeout later; all due times are that one
 * timeout after their start, so the FIFO is in due order. At its due time
 * a connection that h2o is still writing to is cut off (shutdown, so h2o's
 * pending write fails and h2o frees the connection and its buffers) unless
 * the client acknowledged bytes since the last look (TCP_INFO), in which
 * case it is looked at again one timeout later: a slow but steady reader
 * gets its whole answer.
 *
 * Times: ntime_t of the server's clock; the timeout in ns.
 */
#ifndef HTTP_SLOWREAD_H
#define HTTP_SLOWREAD_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <stdint.h>
#include "base/ntime.h"

#define SLOWREAD_MIN (16 * 1024)

typedef struct sr_conn {
    struct sr_conn *prev, *next;
    h2o_socket_t *sock;
    void *owner;              /* for the close callback */
    ntime_t due;              /* look again then */
    uint64_t acked;           /* bytes the client acknowledged at the last look */
    int linked;
} sr_conn_t;

typedef struct slowread {
    sr_conn_t *head, *tail;   /* watched connections, due order */
    int64_t timeout_ns;
    uint64_t cut;             /* connections cut off, ever */
} slowread_t;

/* A watch for sock; freed by slowread_conn_free. */
sr_conn_t *slowread_conn_new(h2o_socket_t *sock, void *owner);
void slowread_conn_free(slowread_t *sr, sr_conn_t *c);

/* An answer of len bytes was handed to h2o on c's connection at now. */
void slowread_answered(slowread_t *sr, sr_conn_t *c, size_t len, ntime_t now);

/* Cuts off the connections due at now that made no progress. Returns
 * max_ms (-1: no limit) lowered to the wait until the next due time. */
int32_t slowread_sweep(slowread_t *sr, ntime_t now, int32_t max_ms);

#endif
