/*
 * assets.h -- the files the binary serves as they are: the dashboard's
 * page, script and style sheet (GET /ui, /ui/assets/<name>) and the OpenAPI
 * document (GET /openapi.json).
 *
 * The files live in src/http/assets/ and are compiled in (assets.c pulls
 * their bytes in with the assembler's .incbin), so the binary needs nothing
 * on disk and always serves the files it was built with. They hold no data
 * of the server: no token is needed to fetch them.
 */
#ifndef HTTP_ASSETS_H
#define HTTP_ASSETS_H

#include <stddef.h>

typedef struct asset {
    const char *name;          /* file name in src/http/assets/, e.g. "app.js" */
    const char *type;          /* Content-Type */
    const unsigned char *data; /* static, never freed */
    size_t len;
} asset_t;

/* The asset of that name (len bytes, no NUL needed), or NULL. */
const asset_t *assets_find(const char *name, size_t len);

#endif
