/*
 * dq.c -- the dq command: global options, parsing a command line against
 * its row of the table (commands.c), one request, the answer printed.
 */
#include "dq.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "json/jparse.h"
#include "jtext.h"

#define DEFAULT_URL "http://localhost:3333"
#define TIMEOUT_MS 30000L /* for a whole exchange; an acquire adds its wait */

extern const dq_cmd_t dq_commands[];
const char *dq_server_url;
const char *dq_token;

/* Says what is wrong with the command line (fmt has one %s) and where the
 * help is; returns DQ_USAGE. */
static int usage_error(const dq_cmd_t *cmd, const char *fmt, const char *what)
{
    fprintf(stderr, "dq: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\nTry 'dq %s%s--help'.\n", cmd ? cmd->name : "", cmd ? " " : "");
    return DQ_USAGE;
}

/* ---- help ---- */

static void print_usage_line(FILE *f, const dq_cmd_t *cmd)
{
    fprintf(f, "usage: dq [-s URL] %s", cmd->name);
    for (int i = 0; i < DQ_MAX_POS && cmd->pos[i].name; i++)
        fprintf(f, " %s", cmd->pos[i].name);
    if (cmd->opts[0].name)
        fprintf(f, " [options]");
    fprintf(f, "%s\n", cmd->rest ? " -- CMD [ARGS...]" : "");
}

static void print_cmd_help(const dq_cmd_t *cmd)
{
    print_usage_line(stdout, cmd);
    printf("\n%c%s.\n", toupper((unsigned char)cmd->summary[0]), cmd->summary + 1);
    if (cmd->method) {
        printf("Sends %s ", cmd->method_body ? "GET (with options PUT)" : cmd->method);
        for (const char *s = cmd->path; *s; s++)
            if (*s == '{')
                printf("%s", cmd->pos[s[1] - '0'].name), s += 2;
            else
                putchar(*s);
        printf(".\n");
    }
    if (cmd->help)
        printf("\n%s", cmd->help);
    if (cmd->opts[0].name)
        printf("\nOptions:\n");
    for (int i = 0; i < DQ_MAX_OPTS && cmd->opts[i].name; i++) {
        char left[40];
        snprintf(left, sizeof(left), "%s%s%s", cmd->opts[i].name, cmd->opts[i].arg ? " " : "",
                 cmd->opts[i].arg ? cmd->opts[i].arg : "");
        printf("  %-22s %s\n", left, cmd->opts[i].help);
    }
    printf("\nD is a duration such as 300ms, 30s, 1m30s, 2h.\n");
}

static void print_help(const char *group)
{
    if (!group)
        printf("usage: dq [-s URL] COMMAND [ARGS...] [options]\n\n"
               "dq talks to a Distribuerad server: it publishes, lists, locks and deletes\n"
               "events, manages recurring jobs, and runs a program for each event (dq work).\n\n"
               "Commands:\n");
    else
        printf("usage: dq [-s URL] job SUBCOMMAND CHANNEL NAME ...\n\nSubcommands:\n");
    for (const dq_cmd_t *c = dq_commands; c->name; c++)
        if (!group || strncmp(c->name, "job ", 4) == 0)
            printf("  %-12s %s\n", c->name, c->summary);
    if (group)
        return;
    printf("\nOptions:\n"
           "  -s, --server URL   the server (default $DISTRIBUERAD_URL, else " DEFAULT_URL ")\n"
           "  -h, --help         this help; 'dq COMMAND --help' explains a command\n\n"
           "Environment:\n"
           "  DISTRIBUERAD_URL          the server's base URL\n"
           "  DISTRIBUERAD_AUTH_TOKEN   sent as 'Authorization: Bearer <token>'\n\n"
           "Output: the server's JSON answer on stdout; an error answer's message on stderr.\n"
           "Exit status: 0 done, 1 the server refused (4xx/5xx), 2 bad usage or the server\n"
           "could not be reached.\n");
}

/* ---- parsing ---- */

static const dq_cmd_t *find_cmd(const char *w1, const char *w2, int *words)
{
    char name[64];
    *words = 1;
    if (w1 && strcmp(w1, "job") == 0) {
        if (!w2)
            return NULL;
        snprintf(name, sizeof(name), "job %s", w2);
        *words = 2;
    } else {
        snprintf(name, sizeof(name), "%s", w1 ? w1 : "");
    }
    for (const dq_cmd_t *c = dq_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

const char *dq_opt_value(const dq_cmd_t *cmd, const dq_args_t *a, const char *name)
{
    for (int i = 0; i < DQ_MAX_OPTS && cmd->opts[i].name; i++)
        if (strcmp(cmd->opts[i].name, name) == 0)
            return a->val[i];
    return NULL;
}

/* One option at argv[*i] ("--x V", "--x=V", "-s URL"); 0, -1 on error, 1 for --help. */
static int parse_opt(const dq_cmd_t *cmd, int argc, char **argv, int *i, dq_args_t *a)
{
    const char *arg = argv[*i], *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
        return 1;
    int server = (n == 2 && strncmp(arg, "-s", 2) == 0) || (n == 8 && strncmp(arg, "--server", 8) == 0);
    int k = -1;
    for (int j = 0; !server && j < DQ_MAX_OPTS && cmd->opts[j].name; j++)
        if (strlen(cmd->opts[j].name) == n && strncmp(cmd->opts[j].name, arg, n) == 0)
            k = j;
    if (!server && k < 0)
        return usage_error(cmd, "unknown option %s", arg), -1;
    if (!server && !cmd->opts[k].arg) {
        if (eq)
            return usage_error(cmd, "%s takes no value", cmd->opts[k].name), -1;
        a->val[k] = "";
        return 0;
    }
    const char *v = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (!v)
        return usage_error(cmd, "%s needs a value", arg), -1;
    if (server)
        dq_server_url = v;
    else
        a->val[k] = v;
    return 0;
}

static int count_pos(const dq_cmd_t *cmd, int *required)
{
    int n = 0;
    *required = 0;
    for (; n < DQ_MAX_POS && cmd->pos[n].name; n++)
        if (cmd->pos[n].name[0] != '[')
            (*required)++;
    return n;
}

/* Fills a from argv (after the command's words); DQ_OK, DQ_USAGE, or -1 for --help. */
static int parse_args(const dq_cmd_t *cmd, int argc, char **argv, dq_args_t *a)
{
    int required, max = count_pos(cmd, &required), only_pos = 0;
    memset(a, 0, sizeof(*a));
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0 && cmd->rest) {
            a->rest = argv + i + 1;
            a->nrest = argc - i - 1;
            break;
        }
        if (strcmp(argv[i], "--") == 0 && !only_pos) { /* the rest are arguments: data "-5" */
            only_pos = 1;
            continue;
        }
        if (!only_pos && argv[i][0] == '-' && argv[i][1] != '\0') {
            int rc = parse_opt(cmd, argc, argv, &i, a);
            if (rc != 0)
                return rc > 0 ? -1 : DQ_USAGE;
            continue;
        }
        if (a->npos == max)
            return usage_error(cmd, "unexpected argument '%s'", argv[i]);
        a->pos[a->npos++] = argv[i];
    }
    if (a->npos < required)
        return usage_error(cmd, "missing %s", cmd->pos[a->npos].name);
    if (cmd->rest && a->nrest == 0)
        return usage_error(cmd, "missing the command to run, after %s", "--");
    return DQ_OK;
}

/* ---- one request ---- */

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0, got;
    char *buf = xmalloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2)
            buf = xrealloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Adds DATA (a string, or with --json a JSON value; "-" reads stdin). */
static int add_data(const dq_cmd_t *cmd, const dq_args_t *a, jtext_t *b, const char *field, const char *v)
{
    size_t len = strlen(v);
    char *in = strcmp(v, "-") == 0 ? read_all(stdin, &len) : NULL;
    const char *s = in ? in : v;
    int rc = DQ_OK;
    if (dq_opt_value(cmd, a, "--json")) {
        jdoc_t d;
        jparse_err_t e;
        if (jparse(&d, s, len, &e) != 0)
            rc = usage_error(cmd, "DATA is not JSON: %s", e.text);
        else
            jtext_raw(b, field, s, len);
        jparse_free(&d);
    } else {
        jtext_str(b, field, s, len);
    }
    free(in);
    return rc;
}

static int is_int(const char *s)
{
    char *end;
    strtoll(s, &end, 10);
    return *s && *end == '\0';
}

/* The body's members from positionals and options; DQ_OK or DQ_USAGE. */
static int build_body(const dq_cmd_t *cmd, const dq_args_t *a, jtext_t *b)
{
    int rc = DQ_OK;
    for (int i = 0; i < a->npos && rc == DQ_OK; i++) {
        const char *f = cmd->pos[i].field;
        if (f && strcmp(f, "data") == 0)
            rc = add_data(cmd, a, b, f, a->pos[i]);
        else if (f && f[0] != '?')
            jtext_str(b, f, a->pos[i], strlen(a->pos[i]));
    }
    for (int i = 0; i < DQ_MAX_OPTS && cmd->opts[i].name && rc == DQ_OK; i++) {
        const dq_opt_t *o = &cmd->opts[i];
        const char *v = a->val[i];
        if (!v || (o->kind != DQ_STR && o->kind != DQ_INT))
            continue;
        if (o->kind == DQ_INT && !is_int(v))
            return usage_error(cmd, "%s needs an integer", o->name);
        if (o->kind == DQ_INT)
            jtext_raw(b, o->field, v, strlen(v));
        else
            jtext_str(b, o->field, v, strlen(v));
    }
    return rc;
}

/* path with {N} replaced by positional N, escaped, then the query. */
static char *build_path(const dq_cmd_t *cmd, const dq_args_t *a)
{
    jtext_t p = {0};
    for (const char *s = cmd->path; *s; s++) {
        if (*s == '{') {
            char *seg = dq_escape(a->pos[s[1] - '0']);
            jtext_append(&p, seg, strlen(seg));
            free(seg);
            s += 2;
        } else {
            jtext_append(&p, s, 1);
        }
    }
    char sep = '?';
    for (int i = 0; i < DQ_MAX_POS && cmd->pos[i].name; i++) {
        const char *f = cmd->pos[i].field, *v = i < a->npos ? a->pos[i] : cmd->pos[i].dflt;
        if (f && f[0] == '?' && v) {
            char *e = dq_escape(v);
            char q[256];
            snprintf(q, sizeof(q), "%c%s=%s", sep, f + 1, e), sep = '&', free(e);
            jtext_append(&p, q, strlen(q));
        }
    }
    for (int i = 0; i < DQ_MAX_OPTS && cmd->opts[i].name; i++) {
        if (cmd->opts[i].kind != DQ_QUERY || !a->val[i])
            continue;
        char *e = dq_escape(a->val[i]);
        size_t n = strlen(cmd->opts[i].field) + strlen(e) + 3;
        char *q = xmalloc(n);
        snprintf(q, n, "%c%s=%s", sep, cmd->opts[i].field, e), sep = '&';
        jtext_append(&p, q, strlen(q));
        free(q), free(e);
    }
    jtext_append(&p, "", 0);
    return p.buf;
}

/* Prints the answer: the body on stdout when 2xx, else its error on stderr. */
static int print_answer(const dq_resp_t *r)
{
    if (r->status >= 200 && r->status < 300) {
        if (r->len > 0) {
            fwrite(r->body, 1, r->len, stdout);
            if (r->body[r->len - 1] != '\n')
                putchar('\n');
        }
        return fflush(stdout) == 0 ? DQ_OK : DQ_USAGE;
    }
    char msg[512];
    fprintf(stderr, "dq: %s (HTTP %ld)\n", dq_resp_error(r, msg, sizeof(msg)), r->status);
    return DQ_REFUSED;
}

/* An acquire waits for up to --wait: its exchange may take that much longer. */
static long timeout_for(const dq_cmd_t *cmd, const dq_args_t *a)
{
    const char *w = strcmp(cmd->name, "acquire") == 0 ? dq_opt_value(cmd, a, "--wait") : NULL;
    long long ns;
    if (w && dq_duration_ns(w, &ns) == 0)
        return TIMEOUT_MS + (long)(ns / 1000000);
    return TIMEOUT_MS;
}

/* The body of a batch publish: stdin, which must be a JSON array. */
static int batch_body(const dq_cmd_t *cmd, const dq_args_t *a, jtext_t *b)
{
    if (a->npos > 1 || dq_opt_value(cmd, a, "--json") || b->members)
        return usage_error(cmd, "%s takes its events from stdin, with no DATA or other options", "--batch");
    jdoc_t d;
    jparse_err_t e;
    size_t len;
    char *in = read_all(stdin, &len);
    int rc = jparse(&d, in, len, &e) != 0 || d.root->type != JV_ARRAY ? DQ_USAGE : DQ_OK;
    jparse_free(&d);
    if (rc != DQ_OK) {
        free(in);
        return usage_error(cmd, "%s: stdin is not a JSON array", "--batch");
    }
    jtext_free(b);
    b->buf = in, b->len = len, b->cap = len + 1, b->members = 1;
    return DQ_OK;
}

/* The request's headers from DQ_HEADER options, as "Name: value" lines. */
static char **build_headers(const dq_cmd_t *cmd, const dq_args_t *a)
{
    char **h = xcalloc(DQ_MAX_OPTS + 1, sizeof(*h));
    int n = 0;
    for (int i = 0; i < DQ_MAX_OPTS && cmd->opts[i].name; i++) {
        if (cmd->opts[i].kind != DQ_HEADER || !a->val[i])
            continue;
        size_t len = strlen(cmd->opts[i].field) + strlen(a->val[i]) + 3;
        h[n] = xmalloc(len);
        snprintf(h[n++], len, "%s: %s", cmd->opts[i].field, a->val[i]);
    }
    return h;
}

/* Whether the route reads a body (then "{}" at least is sent): the command
 * has fixed members or a positional or option that fills one. */
static int takes_body(const dq_cmd_t *cmd)
{
    int yes = cmd->fixed != NULL;
    for (int i = 0; i < DQ_MAX_POS && cmd->pos[i].name; i++)
        yes |= cmd->pos[i].field && cmd->pos[i].field[0] != '?';
    for (int i = 0; i < DQ_MAX_OPTS && cmd->opts[i].name; i++)
        yes |= cmd->opts[i].kind == DQ_STR || cmd->opts[i].kind == DQ_INT;
    return yes;
}

static int run_request(const dq_cmd_t *cmd, dq_client_t *c, const dq_args_t *a)
{
    jtext_t b;
    jtext_init(&b);
    if (cmd->fixed)
        jtext_members(&b, cmd->fixed, strlen(cmd->fixed));
    int rc = build_body(cmd, a, &b);
    if (rc == DQ_OK && dq_opt_value(cmd, a, "--batch"))
        rc = batch_body(cmd, a, &b);
    else if (rc == DQ_OK)
        jtext_end(&b);
    if (rc != DQ_OK) {
        jtext_free(&b);
        return rc;
    }
    const char *method = b.members && cmd->method_body ? cmd->method_body : cmd->method;
    int send_body = strcmp(method, "GET") != 0 && takes_body(cmd);
    char *path = build_path(cmd, a);
    char **hdrs = build_headers(cmd, a);
    dq_resp_t r;
    if (dq_request(c, method, path, send_body ? b.buf : NULL, b.len, (const char *const *)hdrs,
                   timeout_for(cmd, a), &r) != 0) {
        fprintf(stderr, "dq: cannot reach the server: %s\n", r.err);
        rc = DQ_USAGE;
    } else {
        rc = print_answer(&r);
    }
    dq_resp_free(&r);
    for (int i = 0; hdrs[i]; i++)
        free(hdrs[i]);
    free(hdrs), free(path);
    jtext_free(&b);
    return rc;
}

/* ---- main ---- */

/* Global options before the command; returns the index of the command word,
 * or -1 (help printed or usage error: *rc says which). */
static int parse_globals(int argc, char **argv, int *rc)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_help(NULL);
            return *rc = DQ_OK, -1;
        } else if ((strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "--server") == 0) && i + 1 < argc) {
            dq_server_url = argv[++i];
        } else if (strncmp(argv[i], "--server=", 9) == 0) {
            dq_server_url = argv[i] + 9;
        } else {
            return *rc = usage_error(NULL, "unknown option %s", argv[i]), -1;
        }
    }
    if (i == argc)
        return *rc = usage_error(NULL, "no command given%s", ""), -1;
    return i;
}

int main(int argc, char **argv)
{
    int rc = DQ_OK, words;
    dq_server_url = getenv("DISTRIBUERAD_URL");
    if (!dq_server_url || !*dq_server_url)
        dq_server_url = DEFAULT_URL;
    dq_token = getenv("DISTRIBUERAD_AUTH_TOKEN");
    int i = parse_globals(argc, argv, &rc);
    if (i < 0)
        return rc;
    if (strcmp(argv[i], "help") == 0 && i + 1 == argc)
        return print_help(NULL), DQ_OK;
    const dq_cmd_t *cmd = find_cmd(argv[i], i + 1 < argc ? argv[i + 1] : NULL, &words);
    if (!cmd && strcmp(argv[i], "job") == 0 && i + 1 < argc &&
        (strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0))
        return print_help("job"), DQ_OK;
    if (!cmd && strcmp(argv[i], "job") == 0)
        return usage_error(NULL, "unknown job subcommand '%s' (dq job --help lists them)",
                           i + 1 < argc ? argv[i + 1] : "");
    if (!cmd)
        return usage_error(NULL, "unknown command '%s'", argv[i]);
    dq_args_t a;
    rc = parse_args(cmd, argc - i - words, argv + i + words, &a);
    if (rc != DQ_OK)
        return rc < 0 ? (print_cmd_help(cmd), DQ_OK) : rc;
    if (dq_global_init() != 0)
        return fprintf(stderr, "dq: libcurl failed to start\n"), DQ_USAGE;
    dq_client_t *c = dq_client_new(dq_server_url, dq_token);
    rc = !c ? DQ_USAGE : cmd->run ? cmd->run(cmd, c, &a) : run_request(cmd, c, &a);
    dq_client_free(c);
    dq_global_cleanup();
    return rc;
}
