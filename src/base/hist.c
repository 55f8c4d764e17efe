/*
 * hist.c -- fixed-bucket histograms (see hist.h).
 */
#include "hist.h"

#include <string.h>
#include "util.h"

void hist_init(hist_t *h, const int64_t *bounds_ns, unsigned n)
{
    ASSERT(n <= HIST_MAX_BOUNDS);
    memset(h, 0, sizeof(*h));
    h->bounds_ns = bounds_ns;
    h->n_bounds = n;
}

void hist_observe(hist_t *h, int64_t ns)
{
    unsigned b = 0;
    while (b < h->n_bounds && ns > h->bounds_ns[b])
        b++;
    h->counts[b]++;
    h->count++;
    h->sum_s += (double)ns / 1e9;
}
