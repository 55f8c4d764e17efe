/*
 * probe.h -- telling a half-closed client from a closed one.
 *
 * A parked acquire's client may send a FIN while it waits. It may have
 * closed its socket (it will never read an answer), or only shut down
 * its sending side (shutdown(SHUT_WR)) and still be reading. The FIN is
 * the same in both cases; only the next bytes the server sends tell them
 * apart: a closed socket answers them with a reset, a half-closed one
 * acknowledges them. The answer itself must not be those bytes, since it
 * locks events: a delivery that cannot be taken back (it counts in the
 * events' deliveries, and with maxDeliveries an UNLOCK could dead-letter
 * an event nobody got).
 *
 * So the server sends bytes that commit to nothing: an interim
 * "HTTP/1.1 100 Continue" (RFC 9110 section 15.2: an HTTP/1.1 client must
 * accept an unsolicited 1xx), written straight to the socket, which is
 * idle while the request is parked. Then it looks at the socket every few
 * milliseconds:
 *   reset or error             -> PROBE_GONE
 *   every byte acknowledged and no reset for a grace after that (twice
 *   the smoothed RTT, from PROBE_GRACE_MIN_NS to PROBE_LIMIT_NS)
 *                              -> PROBE_ALIVE
 *   no acknowledgement within PROBE_LIMIT_NS -> PROBE_SILENT (a reset
 *   lost on the way, or a client that reads nothing: it gets the
 *   waiter's empty answer, which commits to nothing either)
 * The grace costs little and covers a reset that trails the ACK.
 *
 * Only plain HTTP/1.1 connections are probed: an HTTP/1.0 client need not
 * accept a 1xx, and over TLS the bytes would have to go through the TLS
 * layer, which h2o owns (probe_start refuses both).
 *
 * Times: ntime_t of the server's clock; durations in ns.
 */
#ifndef HTTP_PROBE_H
#define HTTP_PROBE_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include "base/ntime.h"

#define PROBE_STEP_MIN_NS (1 * NTIME_NS_PER_MS)   /* first look after the 100 */
#define PROBE_STEP_MAX_NS (16 * NTIME_NS_PER_MS)  /* looks double up to this apart */
#define PROBE_GRACE_MIN_NS (2 * NTIME_NS_PER_MS)
#define PROBE_LIMIT_NS (1000 * NTIME_NS_PER_MS)   /* unresolved by then: gone */

typedef enum { PROBE_WAIT, PROBE_ALIVE, PROBE_GONE, PROBE_SILENT } probe_result_t;

typedef struct probe {
    ntime_t sent_at;          /* the 100 was written */
    ntime_t alive_at;         /* all acknowledged: alive from then on; 0 until then */
    int64_t step_ns;          /* the next wait between looks */
} probe_t;

/* Writes the 100 on req's connection and starts p. Returns the instant
 * of the first look, or 0 when req cannot be probed (not plain HTTP/1.1,
 * TLS, h2o writing on the socket, the write failed): the caller keeps
 * taking the FIN as a close. */
ntime_t probe_start(probe_t *p, h2o_req_t *req, ntime_t now);

/* Looks at the socket of a started probe. PROBE_WAIT sets *next_at to
 * the instant of the next look. */
probe_result_t probe_check(probe_t *p, h2o_req_t *req, ntime_t now, ntime_t *next_at);

#endif
