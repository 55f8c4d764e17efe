/*
 * prom.c -- Prometheus text lines (see prom.h).
 */
#include "prom.h"

#include <stdio.h>
#include <string.h>
#include "util.h"

void prom_append(prom_text_t *out, const char *s, size_t len)
{
    if (out->cap - out->len <= len) {
        size_t cap = out->cap ? out->cap : 4096;
        while (cap - out->len <= len)
            cap *= 2;
        out->buf = xrealloc(out->buf, cap);
        out->cap = cap;
    }
    memcpy(out->buf + out->len, s, len);
    out->len += len;
    out->buf[out->len] = '\0';
}

void prom_head(prom_text_t *out, const char *name, const char *type, const char *help)
{
    char line[384];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    prom_append(out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void prom_value(prom_text_t *out, const char *name, const char *labels, double v)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%s%s %.17g\n", name, labels, v);
    prom_append(out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void prom_hist(prom_text_t *out, const char *name, const char *help, const hist_t *h)
{
    char full[128], labels[64];
    uint64_t cum = 0;
    prom_head(out, name, "histogram", help);
    snprintf(full, sizeof(full), "%s_bucket", name);
    for (unsigned b = 0; b <= h->n_bounds; b++) {
        cum += h->counts[b];
        if (b < h->n_bounds)
            snprintf(labels, sizeof(labels), "{le=\"%g\"}", (double)h->bounds_ns[b] / 1e9);
        else
            snprintf(labels, sizeof(labels), "{le=\"+Inf\"}");
        prom_value(out, full, labels, (double)cum);
    }
    snprintf(full, sizeof(full), "%s_sum", name);
    prom_value(out, full, "", h->sum_s);
    snprintf(full, sizeof(full), "%s_count", name);
    prom_value(out, full, "", (double)cum);
}
