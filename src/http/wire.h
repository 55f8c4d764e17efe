/*
 * wire.h -- checks on a request's raw bytes that h2o does not make.
 *
 * h2o 2.2 reads a body by the first Content-Length header it finds, or by
 * Transfer-Encoding when both are present, and keeps neither header in the
 * request it hands over. A message with two different lengths, or with a
 * length and a transfer coding, is framed differently by different
 * readers (a proxy in front may see a second request inside the body: request
 * smuggling), so RFC 9112 section 6.3 says to refuse it and close the
 * connection. The head is still in the connection's input buffer when the
 * handler runs (h2o consumes it after the answer), so it is scanned there.
 */
#ifndef HTTP_WIRE_H
#define HTTP_WIRE_H

#include <stddef.h>

/* Scans the request head at buf[0..len) (up to its empty line) and returns
 * NULL if its framing is sound, else a sentence saying what conflicts:
 * Content-Length headers with different values, or Content-Length
 * together with Transfer-Encoding. */
const char *wire_framing_conflict(const char *buf, size_t len);

#endif
