/*
 * badreq.h -- JSON answers for the requests h2o refuses by itself.
 *
 * Why: h2o 2.2.5 (lib/http1.c, send_bad_request) answers a request head it
 * cannot parse with a fixed text/plain 400 that it writes straight to the
 * socket, before any handler or filter runs: a malformed request line or
 * header field, more than H2O_MAX_HEADERS (100) header fields, a head still
 * unfinished after H2O_MAX_REQLEN (417 792) bytes, and an HTTP/2 preface
 * (this port speaks HTTP/1.1 only). It does so on the first request of a
 * connection as on any later keep-alive one, then closes the connection.
 * Every error answer of ours is JSON.
 *
 * How: this file defines h2o_socket_write. The executable's definition
 * comes first in the dynamic linker's search order, so libh2o's own calls,
 * which go through its PLT, reach it. It hands every write on to libh2o's
 * definition (found with dlsym(RTLD_NEXT)) unchanged, except a write of
 * exactly h2o's fixed 400: that one is replaced by a JSON 400 (Date, Server,
 * Connection: close) whose message says what was wrong, found by parsing the
 * head, which is still whole in the socket's input buffer, with libh2o's
 * picohttpparser. h2o keeps a pointer to what it writes until the write
 * completes, so the answer is freed only when the socket is disposed: it
 * chains itself into sock->on_close. Status and closing stay h2o's.
 *
 * What it relies on: libh2o is a shared library whose calls to
 * h2o_socket_write are bound at run time (not linked with -Bsymbolic; a
 * static libh2o fails the link with a duplicate symbol instead), and the
 * fixed answer's exact bytes. badreq_selfcheck shows both hold by feeding
 * h2o a bad request on a socketpair and reading the answer; the black-box
 * tests in tests/blackbox/test_conn.py (MalformedRequestTest) check them too.
 */
#ifndef HTTP_BADREQ_H
#define HTTP_BADREQ_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

/* Runs one bad request through h2o's HTTP/1 code on ctx's loop (before the
 * loop watches anything else) and returns 0 if its answer came back as our
 * JSON 400, else -1 and a sentence in err. */
int badreq_selfcheck(h2o_context_t *ctx, h2o_hostconf_t **hosts, char *err, size_t errlen);

#endif
