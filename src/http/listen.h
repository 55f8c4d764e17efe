/*
 * listen.h -- the listener: the listening socket, TLS, accepting
 * connections under max_connections (server_int.h holds its state).
 */
#ifndef HTTP_LISTEN_H
#define HTTP_LISTEN_H

#include "server_int.h"

/* Loads TLS (if configured) and binds the listening socket; writes the
 * address bound ("host:port") into bound. Returns 0, or -1 after logging
 * what failed (nothing is left open). */
int listen_start(http_server_t *s, const http_config_t *cfg, char *bound, size_t boundlen);

/* Starts accepting on the server's loop (its context is made). */
void listen_accept_start(http_server_t *s);

/* Stops accepting and closes the listening socket (again: nothing). */
void listen_stop(http_server_t *s);

/* Frees TLS. */
void listen_free(http_server_t *s);

#endif
