/*
 * prom.h -- Prometheus text exposition: the lines of /metrics.
 *
 * A growable text buffer and the three shapes every series takes: the
 * HELP/TYPE head, one sample, and a histogram (cumulative buckets with
 * `le` labels in seconds, then _sum and _count). The buffer is malloc'd
 * and owned by its user, who frees out->buf.
 */
#ifndef PROM_H
#define PROM_H

#include <stddef.h>
#include "hist.h"

typedef struct prom_text {
    char *buf;                /* NUL-terminated; NULL while empty */
    size_t len, cap;
} prom_text_t;

/* "# HELP name help" and "# TYPE name type". */
void prom_head(prom_text_t *out, const char *name, const char *type, const char *help);

/* "name{labels} v"; labels "" or "{k=\"v\",...}". */
void prom_value(prom_text_t *out, const char *name, const char *labels, double v);

/* A whole histogram series: its head, buckets, _sum and _count. */
void prom_hist(prom_text_t *out, const char *name, const char *help, const hist_t *h);

/* Appends len bytes. */
void prom_append(prom_text_t *out, const char *s, size_t len);

#endif
