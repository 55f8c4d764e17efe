/*
 * assets.c -- the bytes of the files in src/http/assets/, in the binary.
 *
 * .incbin copies a file into the object at assembly time: no generator to
 * build or run, and the same for gcc and clang. Paths are relative to the
 * directory the compiler runs in, the top of the tree (the Makefile and
 * fuzz/run.sh both compile from there). The Makefile makes assets.o depend
 * on the files, so an edited page is rebuilt in. Each file is followed by
 * a NUL so that an empty one still has an address.
 */
#include "assets.h"

#include <string.h>

#define ASSET_DIR "src/http/assets/"

#define ASSET_BYTES(sym, file)                                              \
    __asm__(".pushsection .rodata\n"                                        \
            ".balign 16\n"                                                  \
            ".globl " #sym "\n.hidden " #sym "\n" #sym ":\n"                \
            ".incbin \"" ASSET_DIR file "\"\n"                              \
            ".globl " #sym "_end\n.hidden " #sym "_end\n" #sym "_end:\n"    \
            ".byte 0\n"                                                     \
            ".popsection\n");                                               \
    extern const unsigned char sym[], sym##_end[]

ASSET_BYTES(asset_index_html, "index.html");
ASSET_BYTES(asset_app_js, "app.js");
ASSET_BYTES(asset_app_css, "app.css");
ASSET_BYTES(asset_favicon_svg, "favicon.svg");
ASSET_BYTES(asset_openapi_json, "openapi.json");

#define ROW(name, type, sym) {name, type, sym, 0}
static asset_t table[] = {
    ROW("index.html", "text/html; charset=utf-8", asset_index_html),
    ROW("app.js", "text/javascript; charset=utf-8", asset_app_js),
    ROW("app.css", "text/css; charset=utf-8", asset_app_css),
    ROW("favicon.svg", "image/svg+xml", asset_favicon_svg),
    ROW("openapi.json", "application/json", asset_openapi_json),
};
#define NASSETS (sizeof(table) / sizeof(table[0]))

/* The ends are only known at link time, so the lengths are filled in at
 * the first lookup (one thread serves requests). */
static const unsigned char *const ends[NASSETS] = {
    asset_index_html_end, asset_app_js_end, asset_app_css_end, asset_favicon_svg_end, asset_openapi_json_end,
};

const asset_t *assets_find(const char *name, size_t len)
{
    for (size_t i = 0; i < NASSETS; i++) {
        if (strlen(table[i].name) != len || memcmp(table[i].name, name, len) != 0)
            continue;
        table[i].len = (size_t)(ends[i] - table[i].data);
        return &table[i];
    }
    return NULL;
}
