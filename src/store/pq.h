/*
 * pq.h -- libpq, loaded when the PostgreSQL store starts.
 *
 * The server does not link libpq: a server on the memory store never
 * loads it, nor the twenty-odd libraries it pulls in (Kerberos, LDAP,
 * GnuTLS, ...: 3.4 MiB resident and a hundred mappings at start). pq_load()
 * opens libpq.so.5 with dlopen and resolves every function the store
 * calls into pq_api; the macros below turn PQclear(r) into
 * (pq_api.PQclear)(r), so the store's code reads as plain libpq.
 * libpq-fe.h still gives the types and prototypes at compile time.
 *
 * Rules: a file that calls libpq includes this header, not libpq-fe.h
 * (which it includes first, so a later include of libpq-fe.h is a no-op).
 * A call to a function missing from PQ_FUNCS does not link (no -lpq), so
 * nothing can call libpq around the table. Nothing may call through the
 * table before pq_load() returned 0; pg_start() calls it first.
 */
#ifndef STORE_PQ_H
#define STORE_PQ_H

#include <stddef.h>
#include <libpq-fe.h>

/* The file dlopen looks for: libpq's soname, in Debian's package libpq5. */
#define PQ_LIBRARY "libpq.so.5"

/* Every libpq function the PostgreSQL store (and its unit tests) call. */
#define PQ_FUNCS(X)                                                                                          \
    X(PQclear) X(PQconnectPoll) X(PQconnectStart) X(PQconnectdb) X(PQconninfoFree) X(PQconninfoParse)       \
    X(PQconsumeInput) X(PQenterPipelineMode) X(PQerrorMessage) X(PQescapeIdentifier) X(PQexec)             \
    X(PQexecParams) X(PQfinish) X(PQflush) X(PQfreemem) X(PQftype) X(PQgetResult) X(PQgetisnull)           \
    X(PQgetlength) X(PQgetvalue) X(PQhost) X(PQisBusy) X(PQnfields) X(PQnotifies) X(PQntuples)             \
    X(PQpipelineSync) X(PQport) X(PQresultErrorField) X(PQresultErrorMessage) X(PQresultStatus)            \
    X(PQsendPrepare) X(PQsendQuery) X(PQsendQueryParams) X(PQsendQueryPrepared) X(PQserverVersion)         \
    X(PQsetNoticeProcessor) X(PQsetnonblocking) X(PQsocket) X(PQstatus)

typedef struct pq_api {
#define PQ_MEMBER(name) __typeof__(name) *name;
    PQ_FUNCS(PQ_MEMBER)
#undef PQ_MEMBER
} pq_api_t;

/* Filled by pq_load(); all NULL before. */
extern pq_api_t pq_api;

/* Loads libpq and resolves PQ_FUNCS, once: later calls return 0 at once.
 * Returns 0, or -1 with a sentence in err naming the library, its Debian
 * package and dlerror()'s reason (nothing stays loaded then). Blocking;
 * for start-up. */
int pq_load(char *err, size_t errlen);

/* pq.c resolves the table by the functions' own names. */
#ifndef PQ_LOADER
#define PQclear (pq_api.PQclear)
#define PQconnectPoll (pq_api.PQconnectPoll)
#define PQconnectStart (pq_api.PQconnectStart)
#define PQconnectdb (pq_api.PQconnectdb)
#define PQconninfoFree (pq_api.PQconninfoFree)
#define PQconninfoParse (pq_api.PQconninfoParse)
#define PQconsumeInput (pq_api.PQconsumeInput)
#define PQenterPipelineMode (pq_api.PQenterPipelineMode)
#define PQerrorMessage (pq_api.PQerrorMessage)
#define PQescapeIdentifier (pq_api.PQescapeIdentifier)
#define PQexec (pq_api.PQexec)
#define PQexecParams (pq_api.PQexecParams)
#define PQfinish (pq_api.PQfinish)
#define PQflush (pq_api.PQflush)
#define PQfreemem (pq_api.PQfreemem)
#define PQftype (pq_api.PQftype)
#define PQgetResult (pq_api.PQgetResult)
#define PQgetisnull (pq_api.PQgetisnull)
#define PQgetlength (pq_api.PQgetlength)
#define PQgetvalue (pq_api.PQgetvalue)
#define PQhost (pq_api.PQhost)
#define PQisBusy (pq_api.PQisBusy)
#define PQnfields (pq_api.PQnfields)
#define PQnotifies (pq_api.PQnotifies)
#define PQntuples (pq_api.PQntuples)
#define PQpipelineSync (pq_api.PQpipelineSync)
#define PQport (pq_api.PQport)
#define PQresultErrorField (pq_api.PQresultErrorField)
#define PQresultErrorMessage (pq_api.PQresultErrorMessage)
#define PQresultStatus (pq_api.PQresultStatus)
#define PQsendPrepare (pq_api.PQsendPrepare)
#define PQsendQuery (pq_api.PQsendQuery)
#define PQsendQueryParams (pq_api.PQsendQueryParams)
#define PQsendQueryPrepared (pq_api.PQsendQueryPrepared)
#define PQserverVersion (pq_api.PQserverVersion)
#define PQsetNoticeProcessor (pq_api.PQsetNoticeProcessor)
#define PQsetnonblocking (pq_api.PQsetnonblocking)
#define PQsocket (pq_api.PQsocket)
#define PQstatus (pq_api.PQstatus)
#endif

#endif
