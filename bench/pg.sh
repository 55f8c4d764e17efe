#!/usr/bin/env bash
# bench/pg.sh -- the PostgreSQL store against pgbench on the same database in
# the same run (about four minutes), ending in one table of ratios and the
# architecture's targets for it. See docs/performance.md and
# docs/scale-out.md.
#
# One throwaway PostgreSQL 15 (tests/pg/pgctl.sh: Unix socket, fsync off, so
# both sides pay the same commit and neither a disk's fsync). References,
# run by pgbench with prepared statements at the same concurrency as the
# HTTP clients (and again at each concurrency of BENCH_PG_SWEEP):
#   INSERT  a bare one-row INSERT into a table with a bigserial key
#   UPDATE  a bare UPDATE by primary key of one of 100 000 rows
#   queue   a bare SQL queue (informative): lease the oldest free row of a
#           filled table with FOR UPDATE SKIP LOCKED, then delete it by
#           key, two statements a pair as a consumer makes them, beside
#           acquire + delete
#   SELECT 1  from one client: a round trip, which each bare statement
#           pays in full and a merged one shares (it tells hosts apart)
# and, for comparison, the store's own publish statement with 4 events as
# literals (out/pgstmt prints it) from 2 clients: the database's part of a
# publish without the server.
# Distribuerad on that database (schema "bench", default pool), driven by
# out/loadgen: publish; consume (acquire the oldest + delete it, from a
# filled queue), both also at the concurrencies of BENCH_PG_SWEEP; batches
# of 1 000; three replicas on the same schema at the same total
# concurrency against one (the mean of one replica's runs just before and
# just after theirs), twice: at the concurrency of the run, where each
# replica merges only the few requests it sees (informative), and at 48
# connections, where the database is the limit (the target); wakeup.py:
# an acquire parked on one replica, a publish through another, the time to
# the answer; the ceiling: out/distribuerad-null, the same server whose
# publish, acquire and delete statements do no work (a round trip each,
# answered in the shape the store reads), publishing and consuming at the
# concurrency of the run right after the store's own runs, so the publish
# and acquire + delete ratios can be read against the most any statement
# could reach on this host; and, with every event those runs left
# stored, the reads a dashboard makes (GET /channels, a page of 50)
# against a count(*) of the table, the cost of a read that visits every
# event; last, consumer cycles (publish, lock or acquire, delete) on a
# channel of 1 000 000 queued events against one of 1 000, the better of
# two runs each. Beside the publish and the acquire + delete rows and
# their references: the machine's CPU an item and its idle share
# (/proc/stat), which tell whether a ratio is bound by the work an item
# costs or by the waits between.
#
# Usage: bench/pg.sh   (make bench runs it after run.sh; make -C bench pg alone)
#   BENCH_SECS=N      seconds per throughput run (default 3, after 1 s of warm-up)
#   BENCH_PG_CONNS=N  concurrency of both sides (default 12: HTTP connections,
#                     pgbench clients; three replicas get N/3 each)
#   BENCH_PG_SWEEP="N ..."  more concurrencies at which publish and acquire +
#                     delete are compared with their references, both sides
#                     at N (default "24 48"; "" for none), and the best rate
#                     of each side over all of them against the other's best
#   BENCH_PG_SAT_CONNS="N ..."  the concurrencies of the three-replica
#                     comparisons where the database is the limit (default
#                     "48 96": 16 and 32 to each of the three), whose runs
#                     last at least 5 s; the target's ratio is the three's
#                     best rate over them against one replica's best (a
#                     replica that peaks at 48 no longer gains at 96, while
#                     three with 16 each may still be bound by merging)
#   BENCH_KEEP=1      keep the work directory (server logs, raw outputs)
#   BENCH_BIN=PATH    the server binary (default ../distribuerad), e.g. to
#                     compare two builds run after run (the ceiling's
#                     server is always this tree's out/distribuerad-null)
# While the server does not yet serve from PostgreSQL (it exits after
# migrating), the references are measured and the rest is reported as not
# run. Every process started here is stopped on any way out.
set -u
cd "$(dirname "$0")" || exit 1
BIN=${BENCH_BIN:-../distribuerad}
O=out
SECS=${BENCH_SECS:-3}
C=${BENCH_PG_CONNS:-12}
SAT=${BENCH_PG_SAT_CONNS-48 96}
SWEEP=${BENCH_PG_SWEEP-24 48}
SAT_SECS=$(( SECS > 5 ? SECS : 5 ))
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
W=$(mktemp -d /tmp/distribuerad-pgbench.XXXXXX)
PIDS=""
DB=""
ROWS=()

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    [ -n "$DB" ] && ../tests/pg/pgctl.sh stop "$DB"
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: work files kept in $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s bench pg: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }
NULLBIN=$O/distribuerad-null
for t in "$BIN" $O/loadgen $NULLBIN; do [ -x "$t" ] || die "$t is missing; run make bench"; done
[ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pgbench" ] ||
    die "needs PostgreSQL 15 and pgbench (scripts/deps.sh bench installs postgresql-15)"
forget() { local p np=""; for p in $PIDS; do [ "$p" = "$1" ] || np="$np $p"; done; PIDS=$np; }
kv() { sed -nE "s/.*(^| )$2=([^ ]*).*/\2/p" <<<"$1" | head -n 1; }
calc() { awk "BEGIN {printf \"$1\", $2}" 2>/dev/null || echo -; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
met() { awk "BEGIN {print ($1) ? \"yes\" : \"NO\"}" 2>/dev/null || echo -; }
larger() { awk -v a="$1" -v b="$2" 'BEGIN {print (b > a) ? b : a}'; }
fmt() { awk -v v="$1" 'BEGIN {s = sprintf("%.0f", v); r = ""; while (length(s) > 3) {r = " " substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3)} print s r}'; }
row() { ROWS+=("$1|$2|$3|$4|$5|$6"); }

# run OUTFILE CMD...: a tool in the background, waited for, so a signal
# reaches the trap at once and the tool is stopped with the rest.
run() {
    local out=$1; shift
    "$@" >"$out" 2>>"$W/tools.err" &
    local p=$!
    PIDS="$PIDS $p"
    wait "$p"
    local rc=$?
    forget "$p"
    [ $rc -eq 0 ] || log "$(basename "$1") exited $rc: $(tail -n 3 "$W/tools.err" | tr '\n' ' ')"
    return $rc
}

# lg VAR LOADGEN-ARGS...: one loadgen run against 127.0.0.1, its line in VAR.
lg() {
    local var=$1; shift
    run "$W/lg.out" $O/loadgen -a 127.0.0.1 "$@"
    printf -v "$var" '%s' "$(cat "$W/lg.out")"
}

# lg_use VAR PER LOADGEN-ARGS...: lg, and in VAR_USE the machine's CPU over
# the run and its warm-up for every PER answers (cpu_use).
lg_use() {
    local var=$1 per=$2 c0 n
    shift 2
    c0=$(cpu_now)
    lg "$var" "$@"
    n=$(kv "${!var}" total)
    printf -v "${var}_USE" '%s' "$(cpu_use "$c0" "$(cpu_now)" "$(( ${n:-0} / per ))")"
}

# cpu_now: the machine's busy and total jiffies so far (all CPUs).
cpu_now() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
# cpu_use BEFORE AFTER N: the machine's CPU for each of N items in µs, and
# its idle share, between two cpu_now readings: "66 us / 2% idle".
cpu_use() {
    awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; all = y[2] - x[2]
        if (n > 0 && all > 0) printf "%.0f us / %.0f%% idle", busy * 1e6 / hz / n, 100 * (all - busy) / all; else print "-"}'
}

# ---------------------------------------------------------------------------
# The database and the references.
log "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); concurrency $C, ${SECS}s a run"
DB=$(../tests/pg/pgctl.sh start) || die "the throwaway PostgreSQL did not start"
URL=$(../tests/pg/pgctl.sh url "$DB")
sql() { "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$URL" -c "$1"; }
sql "CREATE SCHEMA ref;
     CREATE TABLE ref.ins (id bigserial PRIMARY KEY, channel text NOT NULL, data bytea NOT NULL,
                           published_at bigint NOT NULL);
     CREATE TABLE ref.kv (k int PRIMARY KEY, v bigint NOT NULL);
     INSERT INTO ref.kv SELECT g, 0 FROM generate_series(1, 100000) g;" &&
    sql "VACUUM ANALYZE ref.kv" || die "cannot make the reference tables"
# The same 16 bytes of data as loadgen's events.
printf '%s\n' "INSERT INTO ref.ins (channel, data, published_at) VALUES ('bench', '\\x30313233343536373839616263646566', 0);" >"$W/insert.sql"
printf '%s\n' '\set k random(1, 100000)' 'UPDATE ref.kv SET v = v + 1 WHERE k = :k;' >"$W/update.sql"
printf '%s\n' 'SELECT 1;' >"$W/select1.sql"
# A bare queue in SQL: lease the oldest free row with SKIP LOCKED, then
# delete it by key, two statements and two commits, as a consumer does;
# no HTTP, no merging, none of the contract's bookkeeping.
printf '%s\n' 'WITH c AS MATERIALIZED (SELECT id FROM ref.q WHERE leased IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE ref.q SET leased = 1 FROM c WHERE ref.q.id = c.id RETURNING ref.q.id AS i \gset' \
    'DELETE FROM ref.q WHERE id = :i AND leased = 1;' >"$W/queue.sql"

# pgb VAR SCRIPT [CLIENTS]: 1 s of warm-up, then SECS measured; tps into
# VAR. CLIENTS defaults to the concurrency of the run.
pgb() {
    local var=$1 script=$2 c=${3:-$C} c0 c1
    run "$W/pgb.out" "$PGBIN/pgbench" -n -M prepared -c "$c" -j 2 -T 1 -f "$script" "$URL" || return 1
    c0=$(cpu_now)
    run "$W/pgb.out" "$PGBIN/pgbench" -n -M prepared -c "$c" -j 2 -T "$SECS" -f "$script" "$URL" || return 1
    c1=$(cpu_now)
    printf -v "$var" '%s' "$(sed -nE 's/^tps = ([0-9.]+).*/\1/p' "$W/pgb.out" | head -n 1)"
    printf -v "${var}_USE" '%s' "$(cpu_use "$c0" "$c1" \
        "$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$W/pgb.out")")"
}

# ---------------------------------------------------------------------------
# The servers: start NAME starts one on the database, sets SPID and SPORT;
# returns 1 if it exits before it listens.
LIMITS=()
"$BIN" --help 2>&1 | grep -q -- '-max-channel-events' && LIMITS+=(-max-channel-events 1000000000)
"$BIN" --help 2>&1 | grep -q -- '-max-events' && LIMITS+=(-max-events 1000000000)
# start NAME [BINARY SCHEMA]: the server by default, on schema "bench".
start() {
    local name=$1 bin=${2:-$BIN} schema=${3:-bench}
    : >"$W/$name.log"
    "$bin" -database-url "$URL" -database-schema "$schema" -address 127.0.0.1 -port 0 "${LIMITS[@]}" \
        >>"$W/$name.log" 2>&1 &
    SPID=$!
    PIDS="$PIDS $SPID"
    SPORT=""
    for _ in $(seq 300); do
        SPORT=$(sed -nE 's#.*listening on http://[^ ]*:([0-9]+).*#\1#p' "$W/$name.log" | head -n 1)
        [ -n "$SPORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.05
    done
    forget "$SPID"
    return 1
}
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; forget "$1"; }

# sum_of REGEX FILE...: the sum of the values of the key=value pairs whose
# "key=" matches REGEX, over the files' lines.
sum_of() {
    local re=$1; shift
    awk -v re="$re" '{for (i = 1; i <= NF; i++) if ($i ~ re) {sub(/^[^=]*=/, "", $i); s += $i}} END {print s + 0}' "$@"
}
# merged PORT...: "statements requests" from the replicas' /metrics, summed.
merged() {
    local p
    for p in "$@"; do curl -s "http://127.0.0.1:$p/metrics"; done | awk '
        $1 == "distribuerad_database_batches_total{op=\"publish\"}" {b += $2}
        $1 == "distribuerad_database_batched_requests_total{op=\"publish\"}" {r += $2}
        END {print b + 0, r + 0}'
}
per_statement() { # "B0 R0" "B1 R1": requests per statement between the two
    awk -v a="$1" -v b="$2" 'BEGIN {split(a, x, " "); split(b, y, " ");
        if (y[1] > x[1]) printf "%.1f", (y[2] - x[2]) / (y[1] - x[1]); else print "-"}'
}
# replicas VAR CONNS SECS: one replica publishing over CONNS connections,
# then the three together over CONNS/3 each, then one again (the table grows
# by every run, and a later run on a bigger table is slower, so the three
# are compared with the mean of the runs on either side). VAR gets "before=
# after= one= three= merged1= merged3= errors=": mergedN is the requests a
# publish statement carried on average, one replica's and the three's.
replicas() {
    local var=$1 c=$2 secs=$3 per=$(( ($2 + 2) / 3 )) before after three m1 m3 errs p i=0 lgs=""
    m1=$(merged "$P1")
    lg before -p "$P1" -s publish -c "$c" -d "$secs" -q rep
    m1=$(per_statement "$m1" "$(merged "$P1")")
    m3=$(merged "$P1" "$P2" "$P3")
    for p in "$P1" "$P2" "$P3"; do
        i=$((i + 1))
        $O/loadgen -a 127.0.0.1 -p "$p" -s publish -c "$per" -d "$secs" -q rep >"$W/rep$i" 2>>"$W/tools.err" &
        lgs="$lgs $!"
    done
    PIDS="$PIDS $lgs"
    for p in $lgs; do wait "$p"; forget "$p"; done
    m3=$(per_statement "$m3" "$(merged "$P1" "$P2" "$P3")")
    three=$(sum_of '^rate=' "$W/rep1" "$W/rep2" "$W/rep3")
    errs=$(sum_of '^(non2xx|errors)=' "$W/rep1" "$W/rep2" "$W/rep3")
    lg after -p "$P1" -s publish -c "$c" -d "$secs" -q rep
    errs=$((errs + $(kv "$before" non2xx) + $(kv "$before" errors) + $(kv "$after" non2xx) + $(kv "$after" errors)))
    printf -v "$var" 'before=%s after=%s one=%s three=%s merged1=%s merged3=%s errors=%s' \
        "$(kv "$before" rate)" "$(kv "$after" rate)" \
        "$(awk -v a="$(kv "$before" rate)" -v b="$(kv "$after" rate)" 'BEGIN {print (a + b) / 2}')" \
        "$three" "$m1" "$m3" "$errs"
}

log "pgbench: bare one-row INSERT, $C clients"
pgb INS "$W/insert.sql" || die "pgbench INSERT failed"
log "pgbench: SELECT 1, one client"
pgb RT "$W/select1.sql" 1 || RT=""
SERVES=1
if ! start r1; then
    SERVES=0
    WHY=$(tail -n 1 "$W/r1.log" | sed -E 's/^[0-9T:.Z-]+ (error )?//')
    log "the server does not serve from PostgreSQL: $WHY"
    log "pgbench: bare UPDATE by key, $C clients"
    pgb UPD "$W/update.sql" || die "pgbench UPDATE failed"
fi

if [ "$SERVES" = 1 ]; then
    R1=$SPID P1=$SPORT
    # The ceiling: statements that do nothing, on a schema of their own;
    # each of its runs right after the run it bounds.
    RN="" NULLPUB="" NULLCONS=""
    if start null "$NULLBIN" ceiling; then
        RN=$SPID PN=$SPORT
    else
        log "the ceiling's server did not start: $(tail -n 1 "$W/null.log")"
    fi
    log "distribuerad: single publish, $C connections"
    lg_use PUB 1 -p "$P1" -s publish -c "$C" -d "$SECS" -q pub
    if [ -n "$RN" ]; then
        log "ceiling: single publish, $C connections, statements that do nothing"
        lg_use NULLPUB 1 -p "$PN" -s publish -c "$C" -d "$SECS" -q pub
    fi
    for n in $SWEEP; do
        log "pgbench INSERT, $n clients; distribuerad: single publish, $n connections"
        pgb "INS_$n" "$W/insert.sql" "$n" || die "pgbench INSERT failed"
        lg_use "PUB_$n" 1 -p "$P1" -s publish -c "$n" -d "$SECS" -q pub
    done
    # The store's own publish statement (bench/pgstmt prints it) with its
    # arrays as literals, 4 events, under pgbench with 2 clients: what the
    # database does with it when nothing stands between (the replica keeps
    # two such statements in flight).
    STMT=""
    if $O/pgstmt dq_publish_fast >"$W/stmt.txt" 2>>"$W/tools.err"; then
        python3 - "$W/stmt.txt" 4 >"$W/stmt.sql" <<'EOF2'
import sys
sql, n = open(sys.argv[1]).read().strip(), int(sys.argv[2])
arr = lambda v, t: "'{%s}'::%s[]" % (",".join([v] * n), t)
vals = {1: "'pub'", 2: "1000000000", 3: arr('"\\x30313233343536373839616263646566"', "bytea"),
        4: arr("f", "bool"), 5: arr("0", "int2"), 6: arr("NULL", "int8"), 7: arr("0", "int8"),
        8: arr("3600000000000", "int8")}
for k in sorted(vals, reverse=True):
    sql = sql.replace("$%d" % k, vals[k])
print(sql + ";")
EOF2
        log "pgbench: the store's publish statement, 4 events, 2 clients"
        live() { sql "SELECT coalesce(sum(live), 0) FROM bench.counters WHERE channel = 'pub'"; }
        before=$(live)
        PGOPTIONS='-c search_path=bench -c jit=off' pgb STMT "$W/stmt.sql" 2 || STMT=""
        # a statement that found no channel inserts nothing, fast
        [ "$(live)" -gt "$before" ] || { log "the statement published nothing: not reported"; STMT=""; }
    fi
    log "pgbench: bare UPDATE by key, $C clients"
    pgb UPD "$W/update.sql" || die "pgbench UPDATE failed"
    # Enough queued for the warm-up and the run at up to 30 k pairs/s, in
    # the bare queue as in the store's.
    FILL=$(( (SECS + 2) * 30 ))
    log "pgbench: a bare SQL queue, lease with SKIP LOCKED + delete, $C clients"
    QUEUE=""
    sql "CREATE TABLE ref.q (id bigserial PRIMARY KEY, data bytea NOT NULL, leased int);
         CREATE INDEX q_free ON ref.q (id) WHERE leased IS NULL;
         INSERT INTO ref.q (data) SELECT '\\x30313233343536373839616263646566'
             FROM generate_series(1, $FILL * 1000)" && sql "VACUUM ANALYZE ref.q" &&
        pgb QUEUE "$W/queue.sql" || QUEUE=""
    log "distribuerad: acquire + delete from a queue of $FILL 000, $C connections"
    lg IGNORED -p "$P1" -s batch -b 1000 -c 4 -n "$FILL" -q cons
    lg_use CONS 2 -p "$P1" -s consume -c "$C" -d "$SECS" -q cons
    if [ -n "$RN" ]; then
        log "ceiling: acquire + delete, $C connections, statements that do nothing"
        lg_use NULLCONS 2 -p "$PN" -s consume -c "$C" -d "$SECS" -q cons
    fi
    for n in $SWEEP; do
        log "pgbench UPDATE, $n clients; distribuerad: acquire + delete from $FILL 000 more, $n connections"
        pgb "UPD_$n" "$W/update.sql" "$n" || die "pgbench UPDATE failed"
        lg IGNORED -p "$P1" -s batch -b 1000 -c 4 -n "$FILL" -q cons
        lg_use "CONS_$n" 2 -p "$P1" -s consume -c "$n" -d "$SECS" -q cons
    done
    log "distribuerad: batches of 1 000, 4 connections"
    lg BATCH -p "$P1" -s batch -b 1000 -c 4 -d "$SECS" -q batch

    if [ -n "$RN" ]; then stop "$RN"; fi

    start r2 || die "a second replica did not start: $(tail -n 1 "$W/r2.log")"
    R2=$SPID P2=$SPORT
    start r3 || die "a third replica did not start: $(tail -n 1 "$W/r3.log")"
    R3=$SPID P3=$SPORT
    log "distribuerad: three replicas on one schema, $C connections in all"
    replicas R12 "$C" "$SECS"
    for n in $SAT; do
        log "distribuerad: three replicas on one schema, $n connections in all"
        replicas "RSAT_$n" "$n" "$SAT_SECS"
    done

    log "wake-up: acquire parked on replica 2, publish through replica 3, 200 rounds"
    run "$W/wake" python3 wakeup.py -a "$P2" -b "$P3" -n 200 -q wake || true
    WAKE=$(cat "$W/wake")

    # The runs above left about a million events. Statistics first (the
    # replicas ANALYZE within seconds of a change of a tenth, autovacuum
    # within a minute), then the median of 7 of each read.
    "$PGBIN/psql" -X -q "$URL" -c "ANALYZE bench.events" 2>>"$W/tools.err"
    STORED=$("$PGBIN/psql" -X -At "$URL" -c "SELECT count(*) FROM bench.events" 2>>"$W/tools.err")
    log "reads beside $STORED stored events: GET /channels, a page of 50, count(*)"
    # get_ms PATH: the time of a GET in ms; median: of the lines read.
    get_ms() { curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$P1$1" | awk '{print $1 * 1000}'; }
    count_ms() { "$PGBIN/psql" -X -At "$URL" -c '\timing on' -c "SELECT count(*) FROM bench.events" |
        sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p'; }
    median() { sort -n | awk '{v[NR] = $1} END {printf "%.1f", v[int((NR + 1) / 2)]}'; }
    CHANS_MS=$(for _ in 1 2 3 4 5 6 7; do get_ms /channels; done | median)
    PAGE_MS=$(for _ in 1 2 3 4 5 6 7; do get_ms "/batch/events?limit=50"; done | median)
    COUNT_MS=$(for _ in 1 2 3 4 5 6 7; do count_ms; done | median)
    stop "$R2"; stop "$R3"

    # Consumer cycles (publish, take the oldest, delete it: the queue keeps
    # its length) on a channel of 1 000 events and one of 1 000 000, both
    # filled first so that both runs see the same table, then vacuumed
    # and its statistics gathered (else autovacuum's visit for the million
    # new rows, and a replica's ANALYZE of them, fall in the first runs).
    log "consumer cycles at 1 000 and 1 000 000 queued, $C connections"
    lg IGNORED -p "$P1" -s batch -b 1000 -c 1 -n 1 -q shallow
    lg IGNORED -p "$P1" -s batch -b 1000 -c 4 -n 1000 -q deep
    "$PGBIN/psql" -X -q "$URL" -c "VACUUM (ANALYZE) bench.events" 2>>"$W/tools.err"
    # Each twice, in the order 1k 1M 1M 1k, and the better of each two
    # kept (neighbours on a shared machine only ever slow a run down); all
    # four in CYCLES, whose errors count.
    CYCLES=() LOCKDEL_1K="" LOCKDEL_1M="" ACQDEL_1K="" ACQDEL_1M=""
    for s in lockdel acqdel; do
        for q in shallow deep deep shallow; do
            lg CYC -p "$P1" -s "$s" -c "$C" -d "$SECS" -q "$q"
            CYCLES+=("$CYC")
            [ "$q" = shallow ] && l="${s^^}_1K" || l="${s^^}_1M"
            a=$(kv "${!l}" cycle_rate) b=$(kv "$CYC" cycle_rate)
            [ "$(larger "$a" "$b")" = "$a" ] || printf -v "$l" '%s' "$CYC"
        done
    done
    stop "$R1"
fi

# ---------------------------------------------------------------------------
# The table.
# replica_rows LINE LABEL [NOTE]: the rows of one replicas() comparison,
# with NOTE in the target column.
replica_rows() {
    local t o
    t=$(kv "$1" three) o=$(kv "$1" one)
    row "3 replicas, $2 (events/s)" "$(fmt "$t")" "1 replica $(fmt "$o")" "$(ratio "$t" "$o")" "${3:-}" ""
    row "  1 replica before / after" "$(fmt "$(kv "$1" before)") / $(fmt "$(kv "$1" after)")" "" "" "" ""
    row "  requests a statement, one / three" "$(kv "$1" merged1) / $(kv "$1" merged3)" "" "" "" ""
}
# sat_rows: the comparisons at the concurrencies of SAT, then each side's
# best over them, held to the target.
sat_rows() {
    local n l three=0 one=0
    [ -n "$SAT" ] || return 0
    for n in $SAT; do
        l="RSAT_$n"
        replica_rows "${!l}" "$n conns in all, ${SAT_SECS}s"
        three=$(larger "$three" "$(kv "${!l}" three)") one=$(larger "$one" "$(kv "${!l}" one)")
    done
    row "3 replicas, best of $SAT conns" "$(fmt "$three")" "1 replica $(fmt "$one")" "$(ratio "$three" "$one")" ">= 0.95 x one" "$(met "$three >= 0.95 * $one")"
}
# ceiling_rows RUN KEY UNIT REF REFLABEL ITEM: the ceiling's run RUN (its
# KEY, in UNIT) against the reference REF, and RUN_USE, the machine's CPU
# an ITEM; nothing if the ceiling's server did not run.
ceiling_rows() {
    local run=$1 key=$2 unit=$3 ref=$4 rl=$5 item=$6 v u
    [ -n "${!run}" ] || return 0
    v=$(kv "${!run}" "$key") u="${run}_USE"
    row "  ceiling: statements doing nothing" "$(fmt "$v") $unit" "$rl $(fmt "$ref") tps" "$(ratio "$v" "$ref")" "" ""
    row "    its machine CPU $item / idle" "${!u}" "" "" "" ""
}
# sweep_rows RUN KEY REF LABEL UNIT REFLABEL REFUNIT FACTOR ITEM: for each
# concurrency of SWEEP, the run RUN_n (its KEY) against REF_n, held to
# FACTOR x, with the machine's CPU an ITEM; then each side's best over C
# and SWEEP against the other's.
sweep_rows() {
    local run=$1 key=$2 ref=$3 label=$4 unit=$5 rl=$6 ru=$7 f=$8 item=$9 n l v r u ur best bestr
    [ -n "$SWEEP" ] || return 0
    best=$(kv "${!run}" "$key") bestr=${!ref}
    for n in $SWEEP; do
        l="${run}_$n" v=$(kv "${!l}" "$key") l="${ref}_$n" r=${!l:-}
        l="${run}_${n}_USE" u=${!l:-} l="${ref}_${n}_USE" ur=${!l:--}
        row "$label, $n conns ($unit)" "$(fmt "$v")" "$rl $(fmt "$r") $ru" "$(ratio "$v" "$r")" ">= $f x $rl" "$(met "$v >= $f * $r")"
        row "  machine CPU $item / idle" "$u" "$ur" "" "" ""
        best=$(larger "$best" "$v") bestr=$(larger "$bestr" "$r")
    done
    row "  each side's best, $C $SWEEP conns" "$(fmt "$best")" "$rl $(fmt "$bestr") $ru" "$(ratio "$best" "$bestr")" "" ""
}
if [ "$SERVES" = 1 ]; then
    P=$(kv "$PUB" rate)
    row "publish, $C conns (events/s)" "$(fmt "$P")" "INSERT $(fmt "$INS") tps" "$(ratio "$P" "$INS")" ">= 0.7 x INSERT" "$(met "$P >= 0.7 * $INS")"
    row "  publish latency p50 / p99 (us)" "$(kv "$PUB" p50_us) / $(kv "$PUB" p99_us)" "" "" "" ""
    row "  machine CPU an event / idle" "$PUB_USE" "$INS_USE" "" "" ""
    [ -n "$STMT" ] && SE=$(calc "%.0f" "$STMT * 4") &&
        row "  its statement alone, 2 x 4 events" "$(fmt "$SE") events/s" "INSERT $(fmt "$INS") tps" "$(ratio "$SE" "$INS")" "" ""
    ceiling_rows NULLPUB rate "events/s" "$INS" INSERT "an event"
    sweep_rows PUB rate INS "publish" "events/s" "INSERT" "tps" 0.7 "an event"
    A=$(kv "$CONS" cycle_rate)
    row "acquire + delete, $C conns (pairs/s)" "$(fmt "$A")" "UPDATE $(fmt "$UPD") tps" "$(ratio "$A" "$UPD")" ">= 0.3 x UPDATE" "$(met "$A >= 0.3 * $UPD")"
    row "  machine CPU a pair / idle" "$CONS_USE" "${UPD_USE:--}" "" "" ""
    row "  empty acquires (queue ran dry)" "$(kv "$CONS" empty_acquires)" "" "" "0" "$(met "$(kv "$CONS" empty_acquires) == 0")"
    [ -n "$QUEUE" ] &&
        row "  a bare SQL queue: lease + delete" "$(fmt "$QUEUE") pairs/s" "UPDATE $(fmt "$UPD") tps" "$(ratio "$QUEUE" "$UPD")" "" ""
    ceiling_rows NULLCONS cycle_rate "pairs/s" "$UPD" UPDATE "a pair"
    sweep_rows CONS cycle_rate UPD "acquire + delete" "pairs/s" "UPDATE" "tps" 0.3 "a pair"
    if [ -n "$SWEEP" ]; then
        E=0
        for n in $SWEEP; do l="CONS_$n" v=$(kv "${!l}" empty_acquires) E=$((E + ${v:-0})); done
        row "  empty acquires at $SWEEP conns" "$E" "" "" "0" "$(met "$E == 0")"
    fi
    B=$(kv "$BATCH" publish_rate)
    row "batches of 1 000, 4 conns (events/s)" "$(fmt "$B")" "INSERT $(fmt "$INS") rows/s" "$(ratio "$B" "$INS")" ">= 50 000" "$(met "$B >= 50000")"
    row "  batch latency p50 / p99 (ms)" "$(calc "%.1f / %.1f" "$(kv "$BATCH" p50_us) / 1000, $(kv "$BATCH" p99_us) / 1000")" "" "" "" ""
    sat_rows
    replica_rows "$R12" "$C conns in all" "(replica-bound)"
    row "wake-up across replicas p50 / p99 (ms)" "$(kv "$WAKE" p50_ms) / $(kv "$WAKE" p99_ms)" "" "" "p99 <= 100" "$(met "$(kv "$WAKE" p99_ms) <= 100")"
    row "  rounds; max (ms); missed the wait" "$(kv "$WAKE" rounds); $(kv "$WAKE" max_ms); $(kv "$WAKE" empty)" "" "" "0 missed" "$(met "$(kv "$WAKE" empty) == 0")"
    row "GET /channels, $(fmt "$STORED") events (ms)" "$CHANS_MS" "count(*) $COUNT_MS ms" "$(ratio "$CHANS_MS" "$COUNT_MS")" "" ""
    row "a page of 50 events (ms)" "$PAGE_MS" "count(*) $COUNT_MS ms" "$(ratio "$PAGE_MS" "$COUNT_MS")" "" ""
    for s in lockdel acqdel; do
        l="${s^^}_1K" k=$(kv "${!l}" cycle_rate) l="${s^^}_1M" m=$(kv "${!l}" cycle_rate)
        [ "$s" = lockdel ] && label="publish+lock+delete" || label="publish+acquire+delete"
        row "$label cycles/s, 1M queued" "$(fmt "$m")" "1k queued $(fmt "$k")" "$(ratio "$m" "$k")" ">= 0.8 x 1k" "$(met "$m >= 0.8 * $k")"
    done
else
    for f in "publish (events/s)|>= 0.7 x INSERT" "acquire + delete (pairs/s)|>= 0.3 x UPDATE" \
             "batches of 1 000 (events/s)|>= 50 000" "3 replicas (events/s)|>= 0.95 x one" \
             "wake-up across replicas p99 (ms)|<= 100"; do
        row "${f%%|*}" "not run" "" "" "${f#*|}" "-"
    done
fi
row "pgbench bare one-row INSERT (tps)" "" "$(fmt "$INS")" "" "" ""
[ -n "${UPD:-}" ] && row "pgbench bare UPDATE by key (tps)" "" "$(fmt "$UPD")" "" "" ""
[ -n "${RT:-}" ] && row "pgbench SELECT 1, one client (us a round trip)" "" "$(calc "%.0f" "1e6 / $RT")" "" "" ""

echo
echo "Distribuerad on PostgreSQL  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) CPUs  PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')  Linux $(uname -r)"
echo "one throwaway cluster on a Unix socket (fsync off), the same for pgbench and the server; $C clients; ${SECS}s per run after 1s warm-up"
printf '%s\n' "${ROWS[@]}" | awk -F'|' '
    BEGIN {printf "%-42s %-22s %-26s %-6s %-16s %s\n", "figure", "Distribuerad", "reference", "ratio", "target", "met";
           printf "%s\n", "------------------------------------------------------------------------------------------------------------------------"}
    {printf "%-42s %-22s %-26s %-6s %-16s %s\n", $1, $2, $3, $4, $5, $6}'
if [ "$SERVES" = 1 ]; then
    n=0 lines=("$PUB" "$CONS" "$BATCH" "$NULLPUB" "$NULLCONS" "${CYCLES[@]}")
    for c in $SWEEP; do l="PUB_$c" lines+=("${!l}"); l="CONS_$c" lines+=("${!l}"); done
    for l in "${lines[@]}"; do
        a=$(kv "$l" non2xx) b=$(kv "$l" errors) n=$((n + ${a:-0} + ${b:-0}))
    done
    n=$((n + $(kv "$R12" errors)))
    for c in $SAT; do l="RSAT_$c" n=$((n + $(kv "${!l}" errors))); done
    echo "non-2xx answers and broken requests across Distribuerad runs: $n"
else
    echo "Distribuerad's rows were not run: the server does not serve from PostgreSQL ($WHY)."
fi
