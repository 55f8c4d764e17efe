/*
 * pgstmt.c -- prints the SQL of one of the PostgreSQL store's prepared
 * statements (src/store/pgsql.c), so that bench/pg.sh can run the store's
 * own statement under pgbench beside the server: what the database alone
 * does with it, with no server in between.
 *
 * Usage: pgstmt NAME      (NAME as prepared, e.g. dq_publish_fast)
 * Prints the statement's text on one line; exit 1 if there is none.
 */
#include <stdio.h>
#include <string.h>
#include "store/pg_int.h"

int main(int argc, char **argv)
{
    if (argc != 2 || !strcmp(argv[1], "-h")) {
        fprintf(stderr, "usage: pgstmt NAME   (a statement of src/store/pgsql.c, e.g. dq_publish_fast)\n");
        return argc == 2 ? 0 : 1;
    }
    for (int i = 0; i < Q_COUNT; i++)
        if (pg_stmts[i].name && !strcmp(pg_stmts[i].name, argv[1])) {
            printf("%s\n", pg_stmts[i].sql);
            return 0;
        }
    fprintf(stderr, "pgstmt: no statement named %s\n", argv[1]);
    return 1;
}
