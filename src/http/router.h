/*
 * router.h -- maps method + path to a handler (the table is in router.c).
 *
 * Paths are split on '/'; one trailing slash is ignored, an empty segment
 * matches nothing. {channel} and {name} segments are percent-decoded and
 * must be 1-200 bytes of UTF-8 without control characters or '/'.
 * A path that matches a route shape with another method answers 405 with
 * an Allow header; a path that matches no shape answers 404.
 */
#ifndef HTTP_ROUTER_H
#define HTTP_ROUTER_H

#include "handlers.h"

/* Routes a's request: sets a->route (-1 if no route matched) and its
 * names, then calls the route's handler (or answers 404/405/400 itself). */
void router_dispatch(route_args_t *a);

/* Decodes a percent-encoded segment into out[HTTP_NAME_MAX + 1] and checks
 * it is a valid name. Returns 0, or -1 with a reason in err. */
int router_decode_name(h2o_iovec_t seg, char *out, size_t *out_len, char *err, size_t errlen);

/* Checks s[0..n) is a valid channel or job name; -1 with a reason if not. */
int router_valid_name(const char *s, size_t n, char *err, size_t errlen);

/* Route numbers, for metrics labels. */
int router_route_count(void);
const char *router_route_label(int route);

#endif
