/*
 * id.h -- event ids: 20 characters, unique, roughly time-sortable.
 *
 * An id is a 96-bit number: the top 48 bits are the Unix time in
 * milliseconds when it was made, the low 48 bits a counter. A generator hands
 * out strictly increasing ids: next = max(now_ms << 48, last + 1). Because the
 * log replays every id it has handed out (id_gen_observe), ids stay unique
 * across restarts even if the wall clock steps back.
 * Text form: the 96 bits big-endian followed by four zero bits, as 20
 * characters of base32hex in lower case ("0123456789abcdefghijklmnopqrstuv"),
 * so text order equals numeric order (the xid alphabet and length).
 */
#ifndef ID_H
#define ID_H

#include <stddef.h>
#include <stdint.h>
#include "ntime.h"

#define ID_LEN 20

typedef struct eid {
    uint64_t hi; /* ms timestamp << 16 | counter bits 47..32 */
    uint32_t lo; /* counter bits 31..0 */
} eid_t;

typedef struct id_gen {
    eid_t last; /* the largest id made or observed; zero at start */
} id_gen_t;

/* Makes the next id for the instant now (ns). Never returns the same id
 * twice for one generator, and never one <= an observed id. */
eid_t id_gen_next(id_gen_t *gen, ntime_t now);

/* Tells the generator that id exists (replay), so later ids are larger. */
void id_gen_observe(id_gen_t *gen, eid_t id);

/* -1, 0, 1 as a < b, a == b, a > b. */
int id_cmp(eid_t a, eid_t b);

/* A well-mixed 64-bit hash of the id, for hash tables. */
uint64_t id_hash(eid_t id);

/* Writes the 20-character text form and a NUL into out. */
void id_format(eid_t id, char out[ID_LEN + 1]);

/* Parses exactly ID_LEN characters of the text form (lower case only; the
 * last character must have its four padding bits zero). Returns 0 or -1. */
int id_parse(const char *s, size_t len, eid_t *out);

/* ---- lease tokens ----
 * A lease token is a nonzero 64-bit number (0 means "no lock"), written as
 * 16 lower-case hex digits (hex.h). */

#define TOKEN_LEN 16

/* Writes the TOKEN_LEN hex digits and a NUL into out. */
void token_format(uint64_t token, char out[TOKEN_LEN + 1]);

/* 0 and the token, or -1 if s is not TOKEN_LEN lower-case hex digits. */
int token_parse(const char *s, size_t len, uint64_t *out);

#endif
