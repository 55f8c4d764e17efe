/*
 * wire.c -- checks on a request's raw bytes (see wire.h).
 */
#include "wire.h"

#include <string.h>
#include <strings.h>

static int is_header(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* The value of a header line, without the spaces around it. */
static void header_value(const char *line, size_t len, size_t name_len, const char **v, size_t *vlen)
{
    const char *p = line + name_len + 1, *end = line + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    *v = p;
    *vlen = (size_t)(end - p);
}

const char *wire_framing_conflict(const char *buf, size_t len)
{
    const char *cl = NULL, *p = memchr(buf, '\n', len); /* skip the request line */
    size_t cl_len = 0;
    int te = 0;
    while (p && ++p < buf + len) {
        const char *eol = memchr(p, '\n', (size_t)(buf + len - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(buf + len - p);
        if (n == 0 || (n == 1 && *p == '\r'))
            break; /* the empty line: end of the head */
        if (is_header(p, n, "transfer-encoding")) {
            te = 1;
        } else if (is_header(p, n, "content-length")) {
            const char *v;
            size_t vlen;
            header_value(p, n, sizeof("content-length") - 1, &v, &vlen);
            if (cl && (vlen != cl_len || memcmp(v, cl, vlen) != 0))
                return "the request has Content-Length headers with different values";
            cl = v;
            cl_len = vlen;
        }
        p = eol;
    }
    if (cl && te)
        return "the request has both Content-Length and Transfer-Encoding";
    return NULL;
}
