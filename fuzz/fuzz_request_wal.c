/*
 * fuzz_request_wal.c -- fuzz_request with the write-ahead log on: after
 * each input, a copy of the log must replay to the live state (see the
 * FUZZ_REQUEST_WAL paragraph in fuzz_request.c). Seeds and dictionary are
 * request's.
 */
#define FUZZ_REQUEST_WAL 1
#include "fuzz_request.c"
