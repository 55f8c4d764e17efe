#!/usr/bin/env bash
# bench/run.sh -- every Distribuerad benchmark in one run (1-3 minutes), ending
# in one table of figures, each with its ratio to a reference measured in the
# same run (the h2o hello responder, beanstalkd, an empty wake-up loop) and
# its target (the architecture's "Targets"). See docs/performance.md.
#
# Usage: bench/run.sh            (make bench builds the tools first)
#   BENCH_SECS=N   seconds per throughput run (default 3, after 1 s of warm-up)
#   BENCH_QUICK=1  shorter quiet phase (cron 12 s) for a smoke test
#   BENCH_KEEP=1   keep the work directory (server logs, raw outputs)
# Every process started here is stopped on any way out.
set -u
cd "$(dirname "$0")"
BIN=../distribuerad
O=out
SECS=${BENCH_SECS:-3}
CRON_SECS=30
IDLE_SECS=10
[ "${BENCH_QUICK:-0}" = 1 ] && CRON_SECS=12
W=$(mktemp -d /tmp/distribuerad-bench.XXXXXX)
PIDS=""
ROWS=()

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: work files kept in $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in "$BIN" $O/loadgen $O/hello $O/beanstalk $O/core_bench $O/wakefloor $O/syncfloor $O/replay_bench; do
    [ -x "$t" ] || { echo "bench: $t is missing; run make bench" >&2; exit 1; }
done
command -v curl >/dev/null && command -v python3 >/dev/null ||
    { echo "bench: needs curl and python3 (scripts/deps.sh bench)" >&2; exit 1; }

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
forget() { local p np=""; for p in $PIDS; do [ "$p" = "$1" ] || np="$np $p"; done; PIDS=$np; }

# run OUTFILE CMD...: runs a tool in the background and waits for it, so a
# signal reaches the trap at once and the tool is stopped with the rest.
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

# start NAME CMD...: starts a server that logs "listening on http://ADDR:PORT",
# sets SPID and SPORT.
start() {
    local name=$1; shift
    : >"$W/$name.log"
    "$@" >>"$W/$name.log" 2>&1 &
    SPID=$!
    PIDS="$PIDS $SPID"
    SPORT=""
    for _ in $(seq 100); do
        SPORT=$(sed -nE 's#.*listening on http://[^ ]*:([0-9]+).*#\1#p' "$W/$name.log" | head -n 1)
        [ -n "$SPORT" ] && break
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$SPORT" ]; then
        log "$name did not start: $(tail -n 3 "$W/$name.log")"
        exit 1
    fi
}

stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; forget "$1"; }

kv() { sed -nE "s/.*(^| )$2=([^ ]*).*/\2/p" <<<"$1" | head -n 1; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# context switches of every thread of the process
ctxt() { cat /proc/"$1"/task/*/status | awk '/_ctxt_switches:/ {s += $2} END {print s}'; }
# CPU: utime+stime in clock ticks (/proc/PID/stat), and ns on CPU summed over
# threads (/proc/PID/task/*/schedstat), which has far finer resolution.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {print s}'; }
# ns the process's threads spent runnable but waiting for a CPU (neighbours)
rq_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $2} END {print s}'; }
calc() { awk "BEGIN {printf \"$1\", $2}" 2>/dev/null || echo -; }

# row FIGURE VALUE REFERENCE RATIO TARGET MET
row() { ROWS+=("$1|$2|$3|$4|$5|$6"); }
met() { awk "BEGIN {print ($1) ? \"yes\" : \"NO\"}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
fmt() { awk -v v="$1" 'BEGIN {s = sprintf("%.0f", v); r = ""; while (length(s) > 3) {r = " " substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3)} print s r}'; }

# lg VAR LOADGEN-ARGS...: runs loadgen, its result line into VAR (not in a
# $(...) subshell, so the trap can always stop it).
lg() {
    local var=$1; shift
    : >"$W/lg.out"
    run "$W/lg.out" $O/loadgen -a 127.0.0.1 "$@"
    printf -v "$var" '%s' "$(cat "$W/lg.out")"
}

# Limits high enough that the runs measure speed, not the 429 of a full
# channel (flags of builds that have them).
LIMITS=()
"$BIN" --help 2>&1 | grep -q -- '-max-channel-events' && LIMITS+=(-max-channel-events 1000000000)
"$BIN" --help 2>&1 | grep -q -- '-max-events' && LIMITS+=(-max-events 1000000000)
SRV=("$BIN" -in-memory -address 127.0.0.1 -port 0 "${LIMITS[@]}")

# measured VAR PID LOADGEN-ARGS...: lg, plus for server PID cpu_us_per_req=
# (its CPU time per request, warm-up included) and rq_wait_pct= (share of
# the run it spent runnable but waiting for a CPU: the neighbours' share)
measured() {
    local var=$1 pid=$2; shift 2
    local c0 q0 t0 line n
    c0=$(cpu_ns "$pid") q0=$(rq_ns "$pid") t0=$(date +%s%N)
    lg line "$@"
    n=$(kv "$line" total)
    printf -v "$var" '%s cpu_us_per_req=%s rq_wait_pct=%s' "$line" \
        "$(calc "%.2f" "($(cpu_ns "$pid") - $c0) / 1000 / ${n:-0}")" \
        "$(calc "%.0f" "($(rq_ns "$pid") - $q0) / ($(date +%s%N) - $t0) * 100")"
}

log "machine: $(nproc) CPUs, $(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD0=$(cut -d' ' -f1 /proc/loadavg)

# ---------------------------------------------------------------------------
# 1. Quiet phase, everything idle at once: wake-ups of a server with nothing
# due; two servers with 30 '@every 1s' jobs each, created together (one
# keep-alive client, within a few ms) or spread over a second (as users
# create them); and wakefloor, the bare cost of 30 wake-ups a second here.
log "quiet phase: idle wake-ups over ${IDLE_SECS}s; 30 '@every 1s' jobs x 2 servers over ${CRON_SECS}s"
start idle "${SRV[@]}"
IDLE_PID=$SPID IDLE_PORT=$SPORT
start cronb "${SRV[@]}"
CB_PID=$SPID CB_PORT=$SPORT
start crons "${SRV[@]}"
CS_PID=$SPID CS_PORT=$SPORT
add_jobs() { # PORT SPREAD_SECONDS
    python3 - "$1" "$2" <<'EOF2'
import http.client, json, sys, time
port, spread = int(sys.argv[1]), float(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
for i in range(30):
    name = "job%02d" % i
    c.request("POST", "/cron/jobs", json.dumps({"name": name, "cronDef": "@every 1s", "data": name}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 201:
        sys.exit("adding a job answered %d" % r.status)
    time.sleep(spread / 30)
EOF2
}
add_jobs "$CB_PORT" 0 || exit 1
add_jobs "$CS_PORT" 1 || exit 1
RSS_START=$(rss_kb "$IDLE_PID")
$O/wakefloor -n 30 -d "$CRON_SECS" >"$W/floor" &
FLOOR_PID=$!
PIDS="$PIDS $FLOOR_PID"
C0=$(ctxt "$IDLE_PID")
for s in CB CS; do
    eval "p=\$${s}_PID"
    eval "${s}_N0=$(cpu_ns "$p") ${s}_T0=$(cpu_ticks "$p") ${s}_C0=$(ctxt "$p")"
done
T0=$(date +%s.%N)
sleep "$IDLE_SECS"
WAKEUPS=$(( $(ctxt "$IDLE_PID") - C0 ))
sleep $((CRON_SECS - IDLE_SECS))
T1=$(date +%s.%N)
ELAPSED=$(calc "%.3f" "$T1 - $T0")
HZ=$(getconf CLK_TCK)
for s in CB CS; do
    eval "p=\$${s}_PID n0=\$${s}_N0 t0=\$${s}_T0 c0=\$${s}_C0 port=\$${s}_PORT"
    eval "${s}_CPU=$(calc "%.4f" "($(cpu_ns "$p") - $n0) / 1e9 / $ELAPSED * 100")"
    eval "${s}_TICKS=$(calc "%.4f" "($(cpu_ticks "$p") - $t0) / $HZ / $ELAPSED * 100")"
    eval "${s}_WAKE=$(calc "%.1f" "($(ctxt "$p") - $c0) / $ELAPSED")"
    curl -sf "http://127.0.0.1:$port/cron/jobs" >"$W/jobs.json"
    curl -sf "http://127.0.0.1:$port/cron/events" >"$W/events.json"
    L=$(python3 - "$W/jobs.json" "$W/events.json" <<'EOF2'
import json, sys, calendar, time
def ns(s):  # RFC 3339 UTC as the server writes it: ...T05:08:08.041836734Z
    base, frac = s[:19], (s[20:-1] if len(s) > 20 and s[19] == "." else "")
    sec = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return sec * 10**9 + int((frac + "000000000")[:9])
jobs = {j["data"]: ns(j["createdAt"]) for j in json.load(open(sys.argv[1]))["jobs"]}
fires, late, early, dup = {}, [], 0, 0
for e in json.load(open(sys.argv[2]))["events"]:
    # @every keeps a grid of whole seconds: the k-th time (k >= 1) is
    # createdAt with its fraction dropped, plus k s (docs/API.md).
    c, p = jobs[e["data"]] // 10**9 * 10**9, ns(e["publishedAt"])
    k = round((p - c) / 1e9)
    d = p - (c + k * 10**9)
    early += d < 0
    dup += k in fires.setdefault(e["data"], set())
    fires[e["data"]].add(k)
    late.append(d)
late.sort()
missed = sum(max(ks) - len(ks) for ks in fires.values())
q = lambda f: late[min(len(late) - 1, int(f * len(late)))] / 1e6 if late else 0
print("fires=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f early=%d dup=%d missed=%d" %
      (len(late), q(0.5), q(0.99), late[-1] / 1e6 if late else 0, early, dup, missed))
EOF2
)
    eval "${s}_LATE=\$L"
    log "$s: cpu $(eval echo \$${s}_CPU)%, $(eval echo \$${s}_WAKE) wake-ups/s, lateness $L"
done
wait "$FLOOR_PID"
forget "$FLOOR_PID"
FLOOR=$(cat "$W/floor")
stop "$CB_PID"
stop "$CS_PID"

# ---------------------------------------------------------------------------
# 2. Memory on the idle server: 20 000 events, then 1 000 000; then the
# consumer cycles against the 1 000 000-event queue.
log "memory: 20 000 then 1 000 000 queued events of 16 bytes"
lg IGNORED -p "$IDLE_PORT" -s publish -c 10 -n 20000 -q mem
sleep 0.2
RSS_20K=$(rss_kb "$IDLE_PID")
lg IGNORED -p "$IDLE_PORT" -s batch -b 1000 -c 2 -n 980 -q mem
sleep 0.2
RSS_1M=$(rss_kb "$IDLE_PID")
COUNT=$(curl -sf "http://127.0.0.1:$IDLE_PORT/mem" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ready"])')
log "rss: start ${RSS_START} kB, 20k ${RSS_20K} kB, ${COUNT} events ${RSS_1M} kB"

log "consumer cycles at 1 000 000 queued (10 connections, ${SECS}s each)"
measured LD_1M "$IDLE_PID" -p "$IDLE_PORT" -s lockdel -c 10 -d "$SECS" -q mem
measured AD_1M "$IDLE_PID" -p "$IDLE_PORT" -s acqdel -c 10 -d "$SECS" -q mem
stop "$IDLE_PID"
# beanstalkd right after, so both see much the same neighbours
log "beanstalkd put/reserve/delete, 10 connections, 1 000 000 queued"
run "$W/bs1m" $O/beanstalk -c 10 -d "$SECS" -q 1000000 || exit 1
BS_1M=$(cat "$W/bs1m")

log "consumer cycles at 1 000 queued"
start small "${SRV[@]}"
lg IGNORED -p "$SPORT" -s batch -b 1000 -c 1 -n 1 -q mem
measured LD_1K "$SPID" -p "$SPORT" -s lockdel -c 10 -d "$SECS" -q mem
measured AD_1K "$SPID" -p "$SPORT" -s acqdel -c 10 -d "$SECS" -q mem
stop "$SPID"
log "beanstalkd put/reserve/delete, 10 connections, 1 000 queued"
run "$W/bs1k" $O/beanstalk -c 10 -d "$SECS" -q 1000 || exit 1
BS_1K=$(cat "$W/bs1k")

# ---------------------------------------------------------------------------
# 3. Single publish against the hello ceiling: three interleaved rounds,
# best of each (other tenants of a shared machine only ever slow a run down),
# and the server's CPU time per request, which noise bends far less.
log "single publish, 50 connections: hello and Distribuerad, three rounds each"
start hello $O/hello -address 127.0.0.1 -port 0
HELLO_PID=$SPID HELLO_PORT=$SPORT
HELLO_RSS0=$(rss_kb "$HELLO_PID")
start pub "${SRV[@]}"
PUB_PID=$SPID PUB_PORT=$SPORT
best() { # the line with the higher rate
    if awk -v a="$(kv "$1" rate)" -v b="$(kv "$2" rate)" 'BEGIN {exit !(a >= b)}'; then echo "$1"; else echo "$2"; fi
}
HELLO="" PUB="" RATES="" HC="" PC=""
for round in 1 2 3; do
    measured h "$HELLO_PID" -p "$HELLO_PORT" -s publish -c 50 -d "$SECS"
    measured p "$PUB_PID" -p "$PUB_PORT" -s publish -c 50 -d "$SECS"
    RATES="$RATES hello $(kv "$h" rate) ($(kv "$h" cpu_us_per_req) us cpu), distribuerad $(kv "$p" rate) ($(kv "$p" cpu_us_per_req) us cpu);"
    HELLO=$( [ -z "$HELLO" ] && echo "$h" || best "$HELLO" "$h")
    PUB=$( [ -z "$PUB" ] && echo "$p" || best "$PUB" "$p")
    HC=$(awk -v a="${HC:-1e9}" -v b="$(kv "$h" cpu_us_per_req)" 'BEGIN {print (b < a) ? b : a}')
    PC=$(awk -v a="${PC:-1e9}" -v b="$(kv "$p" cpu_us_per_req)" 'BEGIN {print (b < a) ? b : a}')
done
log "req/s:$RATES"
measured HELLO_P8 "$HELLO_PID" -p "$HELLO_PORT" -s publish -c 50 -P 8 -d "$SECS"
measured PUB_P8 "$PUB_PID" -p "$PUB_PORT" -s publish -c 50 -P 8 -d "$SECS"
stop "$HELLO_PID"
stop "$PUB_PID"

log "batch publish, 1000 events a request, 4 connections"
start batch "${SRV[@]}"
measured BATCH "$SPID" -p "$SPORT" -s batch -b 1000 -c 4 -d "$SECS" -q batch
stop "$SPID"

log "GET of a 20 000-event queue, 4 connections"
start get "${SRV[@]}"
lg IGNORED -p "$SPORT" -s batch -b 1000 -c 1 -n 20 -q big
measured GET "$SPID" -p "$SPORT" -s get -c 4 -d "$SECS" -q big
stop "$SPID"

# As many consumer connections as producers: h2o serves about one request
# per connection per loop turn, so fewer consumers fall behind.
log "mixed: 25 producers, 25 consumers (acquire up to 10, long-poll 1s, pipelined deletes)"
start mixed "${SRV[@]}"
lg MIXED -p "$SPORT" -s mixed -c 50 -m 25 -x 10 -d "$SECS" -q mixed
MIXED_LEFT=$(curl -sf "http://127.0.0.1:$SPORT/mixed" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["ready"] + d["locked"])')
stop "$SPID"

# ---------------------------------------------------------------------------
# 4. With the log, when this build has one (-fsync appears in --help).
# Single publish in each -fsync mode and in memory, servers side by side,
# three interleaved rounds (best rate, least CPU per request), then the
# batch in each mode; and the disk's own fdatasync time, which bounds
# -fsync always at 50 connections / fsync time (group commit).
if "$BIN" --help 2>&1 | grep -q -- '-fsync'; then
    HAVE_LOG=1
    LOGMODES="memory never interval always"
    declare -A LP LPORT LOGPUB LOGCPU LOGBATCH
    for mode in $LOGMODES; do
        rm -rf "$W/data-$mode"
        if [ "$mode" = memory ]; then
            start "log-$mode" "${SRV[@]}"
        else
            start "log-$mode" "$BIN" -data-dir "$W/data-$mode" -fsync "$mode" -address 127.0.0.1 -port 0 "${LIMITS[@]}"
        fi
        LP[$mode]=$SPID LPORT[$mode]=$SPORT LOGPUB[$mode]="" LOGCPU[$mode]=1e9
    done
    log "single publish, 50 connections, in memory and -fsync never/interval/always: three rounds"
    for round in 1 2 3; do
        for mode in $LOGMODES; do
            measured x "${LP[$mode]}" -p "${LPORT[$mode]}" -s publish -c 50 -d "$SECS"
            LOGPUB[$mode]=$( [ -z "${LOGPUB[$mode]}" ] && echo "$x" || best "${LOGPUB[$mode]}" "$x")
            LOGCPU[$mode]=$(awk -v a="${LOGCPU[$mode]}" -v b="$(kv "$x" cpu_us_per_req)" 'BEGIN {print (b < a) ? b : a}')
        done
    done
    log "req/s: $(for mode in $LOGMODES; do echo -n "$mode $(kv "${LOGPUB[$mode]}" rate) "; done)"
    for mode in $LOGMODES; do
        [ "$mode" = memory ] || { measured x "${LP[$mode]}" -p "${LPORT[$mode]}" -s batch -b 1000 -c 4 -d "$SECS" -q batch; LOGBATCH[$mode]=$x; }
        stop "${LP[$mode]}"
    done
    # The disk's fdatasync as the log uses it (records written over zeros,
    # docs/WAL.md "Room") and, for comparison, after appends.
    SF=$($O/syncfloor -n 500 -s 2048 -d "$W" 2>>"$W/tools.err")
    FSYNC=$(grep '^zeros' <<<"$SF")
    FSYNC_APPEND=$(grep '^append' <<<"$SF")
    log "fdatasync on the data directory's disk: over zeros $FSYNC; appending $FSYNC_APPEND"
else
    HAVE_LOG=0
    log "this build has no -fsync flag (no log yet): durable runs skipped"
fi

# ---------------------------------------------------------------------------
# The seed's own scenario (seed.py): 30 jobs @every 1s, 30 publishes and 60
# pick-ups (LOCK + DELETE) a second, 20 000 stored events; CPU and RSS of
# ours with the default flags (the log, -fsync interval), ours in memory,
# and another server when BENCH_OTHER gives its command line, with {port}
# where its port goes (it must exec the server, so its PID is the server's:
# BENCH_OTHER='/path/to/original -port {port}').
SEED_SECS=${BENCH_SEED_SECS:-20}
seed_run() { # VAR PID PORT
    run "$W/seed.out" python3 ./seed.py -p "$3" -P "$2" -d "$SEED_SECS" || exit 1
    printf -v "$1" '%s' "$(cat "$W/seed.out")"
}
log "seed scenario, ${SEED_SECS}s each: ours (default flags), ours in memory${BENCH_OTHER:+, and $BENCH_OTHER}"
rm -rf "$W/seed-data"
start seed-default "$BIN" -data-dir "$W/seed-data" -address 127.0.0.1 -port 0
seed_run SEED_DEF "$SPID" "$SPORT"
stop "$SPID"
start seed-memory "$BIN" -in-memory -address 127.0.0.1 -port 0
seed_run SEED_MEM "$SPID" "$SPORT"
stop "$SPID"
SEED_OTHER=""
if [ -n "${BENCH_OTHER:-}" ]; then
    OPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    : >"$W/other.log"
    ${BENCH_OTHER//\{port\}/$OPORT} >>"$W/other.log" 2>&1 &
    OPID=$!
    PIDS="$PIDS $OPID"
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$OPORT/" && break; sleep 0.1; done
    seed_run SEED_OTHER "$OPID" "$OPORT"
    stop "$OPID"
fi
log "seed: ours $SEED_DEF; in memory $SEED_MEM${SEED_OTHER:+; other $SEED_OTHER}"

# ---------------------------------------------------------------------------
# Restart: a log of 1 000 000 published events, replayed by the real server.
if [ "$HAVE_LOG" = 1 ]; then
    log "restart with 1 000 000 events in the log"
    run "$W/replay" $O/replay_bench -b "$BIN" -n 1000000 -d "$W/replay-data" || exit 1
    REPLAY=$(cat "$W/replay")
fi

# ---------------------------------------------------------------------------
# 5. The core in process.
log "core in process (1 000, 100 000, 1 000 000 queued)"
run "$W/core" $O/core_bench -t 0.3 -r 2 || exit 1
core() { awk -v op="$1" -v n="$2" '$2 == "op=" op && $3 == "queued=" n {sub("rate=", "", $6); print $6}' "$W/core"; }
core_heap() { awk -v n="$1" '$2 == "op=heap" && $3 == "queued=" n {sub("overhead_per_event=", "", $5); print $5}' "$W/core"; }

# ---------------------------------------------------------------------------
# The table.
H=$(kv "$HELLO" rate) P=$(kv "$PUB" rate)
row "single publish, 50 conns (req/s, best of 3)" "$(fmt "$P")" "hello $(fmt "$H")" "$(ratio "$P" "$H")" ">= 0.92 x hello" "$(met "$P >= 0.92 * $H")"
row "  server CPU per request (us, least of 3)" "$PC" "hello $HC" "$(ratio "$HC" "$PC")" ">= 0.92 x hello" "$(met "$HC >= 0.92 * $PC")"
row "  requests per CPU-second" "$(fmt "$(calc "%.0f" "1e6 / $PC")")" "hello $(fmt "$(calc "%.0f" "1e6 / $HC")")" "" "" ""
row "  server waited for a CPU (% of run)" "$(kv "$PUB" rq_wait_pct)" "hello $(kv "$HELLO" rq_wait_pct)" "" "" ""
row "  latency p50 / p99 (us)" "$(kv "$PUB" p50_us) / $(kv "$PUB" p99_us)" "hello $(kv "$HELLO" p50_us) / $(kv "$HELLO" p99_us)" "" "" ""
HP8=$(kv "$HELLO_P8" rate) PP8=$(kv "$PUB_P8" rate)
row "single publish, pipelined 8 (req/s)" "$(fmt "$PP8")" "hello $(fmt "$HP8")" "$(ratio "$PP8" "$HP8")" "" ""
row "  server CPU per request (us)" "$(kv "$PUB_P8" cpu_us_per_req)" "hello $(kv "$HELLO_P8" cpu_us_per_req)" "$(ratio "$(kv "$HELLO_P8" cpu_us_per_req)" "$(kv "$PUB_P8" cpu_us_per_req)")" "" ""
B=$(kv "$BATCH" publish_rate)
row "batch publish, 1000/request (events/s)" "$(fmt "$B")" "hello $(fmt "$H") req/s" "$(ratio "$B" "$H")" ">= 2 000 000" "$(met "$B >= 2000000")"
BE=$(calc "%.0f" "1e9 / $(kv "$BATCH" cpu_us_per_req)")
row "  events per CPU-second" "$(fmt "$BE")" "" "" ">= 2 000 000" "$(met "$BE >= 2000000")"
row "  CPU per event (us); req/s; waited (%)" "$(calc "%.3f" "$(kv "$BATCH" cpu_us_per_req) / 1000"); $(fmt "$(kv "$BATCH" rate)"); $(kv "$BATCH" rq_wait_pct)" "" "" "" ""
row "  batch latency p50 / p99 (ms)" "$(calc "%.1f / %.1f" "$(kv "$BATCH" p50_us) / 1000, $(kv "$BATCH" p99_us) / 1000")" "" "" "" ""
BSC1=$(kv "$BS_1K" cycle_rate) BSC2=$(kv "$BS_1M" cycle_rate)
for n in 1K 1M; do
    eval "ld=\$LD_$n ad=\$AD_$n"
    bs=$BSC1; [ $n = 1M ] && bs=$BSC2
    q=1k; [ $n = 1M ] && q=1M
    row "publish+lock+delete cycles/s, $q queued" "$(fmt "$(kv "$ld" cycle_rate)")" "beanstalkd $(fmt "$bs")" "$(ratio "$(kv "$ld" cycle_rate)" "$bs")" "" ""
    row "publish+acquire+delete cycles/s, $q queued" "$(fmt "$(kv "$ad" cycle_rate)")" "beanstalkd $(fmt "$bs")" "$(ratio "$(kv "$ad" cycle_rate)" "$bs")" "" ""
done
BSR=$(ratio "$BSC2" "$BSC1")
for op in LD AD; do
    eval "k=\$${op}_1K m=\$${op}_1M"
    name="lock"; [ $op = AD ] && name="acquire"
    r=$(ratio "$(kv "$m" cycle_rate)" "$(kv "$k" cycle_rate)")
    c=$(ratio "$(kv "$k" cpu_us_per_req)" "$(kv "$m" cpu_us_per_req)")
    row "  $name+delete: rate at 1M / rate at 1k" "$r" "beanstalkd $BSR" "" ">= 0.80" "$(met "$r >= 0.8")"
    row "  $name+delete: CPU/req at 1k / at 1M" "$c ($(kv "$k" cpu_us_per_req) / $(kv "$m" cpu_us_per_req) us)" "" "" ">= 0.80" "$(met "$c >= 0.8")"
done
row "  server CPU per request, cycles 1k (us)" "lock $(kv "$LD_1K" cpu_us_per_req), acquire $(kv "$AD_1K" cpu_us_per_req)" "beanstalkd $(kv "$BS_1K" cpu_us_per_op)" "$(ratio "$(kv "$BS_1K" cpu_us_per_op)" "$(kv "$AD_1K" cpu_us_per_req)")" "" ""
row "  server CPU per request, cycles 1M (us)" "lock $(kv "$LD_1M" cpu_us_per_req), acquire $(kv "$AD_1M" cpu_us_per_req)" "beanstalkd $(kv "$BS_1M" cpu_us_per_op)" "$(ratio "$(kv "$BS_1M" cpu_us_per_op)" "$(kv "$AD_1M" cpu_us_per_req)")" "" ""
row "  cycle latency p50 / p99 (us), 1M, lock" "$(kv "$LD_1M" p50_us) / $(kv "$LD_1M" p99_us)" "beanstalkd $(kv "$BS_1M" p50_us) / $(kv "$BS_1M" p99_us)" "" "" ""
row "GET 20 000 events (req/s; MB/s)" "$(calc "%.1f" "$(kv "$GET" rate)"); $(kv "$GET" in_mbps)" "" "" "" ""
row "  events served/s; CPU per event (ns)" "$(fmt "$(calc "%.0f" "$(kv "$GET" rate) * 20000")"); $(calc "%.0f" "$(kv "$GET" cpu_us_per_req) * 1000 / 20000")" "" "" "" ""
row "  GET latency p50 / p99 (ms)" "$(calc "%.1f / %.1f" "$(kv "$GET" p50_us) / 1000, $(kv "$GET" p99_us) / 1000")" "" "" "" ""
row "mixed: published / consumed (events/s)" "$(fmt "$(kv "$MIXED" publish_rate)") / $(fmt "$(kv "$MIXED" delete_rate)")" "" "" "" ""
row "  mixed: requests/s; left queued; p99 (us)" "$(fmt "$(kv "$MIXED" rate)"); $MIXED_LEFT; $(kv "$MIXED" p99_us)" "" "" "" ""
if [ "$HAVE_LOG" = 1 ]; then
    LH=$(kv "${LOGPUB[memory]}" rate)
    row "in memory (same rounds): single publish (req/s)" "$(fmt "$LH")" "hello $(fmt "$H")" "$(ratio "$LH" "$H")" "" ""
    for mode in never interval always; do
        lp=${LOGPUB[$mode]} lc=${LOGCPU[$mode]} lb=${LOGBATCH[$mode]}
        r=$(kv "$lp" rate)
        tgt="" ok=""
        [ $mode = interval ] && tgt=">= 0.95 x memory" && ok=$(met "$r >= 0.95 * $LH")
        row "log, fsync $mode: single publish (req/s)" "$(fmt "$r")" "hello $(fmt "$H")" "$(ratio "$r" "$H")" "" ""
        row "  ratio to in memory (same rounds)" "$(ratio "$r" "$LH")" "memory $(fmt "$LH")" "" "$tgt" "$ok"
        row "  server CPU per request (us, least of 3)" "$lc" "memory ${LOGCPU[memory]}" "$(ratio "${LOGCPU[memory]}" "$lc")" "" ""
        row "log, fsync $mode: batch (events/s)" "$(fmt "$(kv "$lb" publish_rate)")" "" "" "" ""
        row "  server CPU per event (us)" "$(calc "%.3f" "$(kv "$lb" cpu_us_per_req) / 1000")" "" "" "" ""
    done
    CEIL=$(calc "%.0f" "50 / ($(kv "$FSYNC" mean_us) / 1e6)")
    RA=$(kv "${LOGPUB[always]}" rate)
    row "  fsync always vs the disk's ceiling" "$(fmt "$RA")" "ceiling $(fmt "$CEIL")" "$(ratio "$RA" "$CEIL")" ">= 0.5 x hello or 0.8 x ceiling" "$(met "$RA >= 0.5 * $H || $RA >= 0.8 * $CEIL")"
    row "  fdatasync here p50 / mean / p99 (us)" "$(kv "$FSYNC" p50_us) / $(kv "$FSYNC" mean_us) / $(kv "$FSYNC" p99_us)" "appending $(kv "$FSYNC_APPEND" p50_us) / $(kv "$FSYNC_APPEND" mean_us) / $(kv "$FSYNC_APPEND" p99_us)" "" "" ""
    row "restart, 1 000 000 events in the log: replay (ms)" "$(kv "$REPLAY" replay_ms)" "" "" "<= 1000" "$(met "$(kv "$REPLAY" replay_ms) <= 1000")"
    row "  start to listening (ms); log size (MB)" "$(kv "$REPLAY" start_to_listen_ms); $(calc "%.0f" "$(kv "$REPLAY" log_bytes) / 1e6")" "" "" "" ""
else
    row "with the log (-data-dir)" "not in this build" "" "" "" ""
fi
SD=$(kv "$SEED_DEF" cpu_pct) SM=$(kv "$SEED_MEM" cpu_pct)
row "seed scenario: CPU, default flags (%)" "$SD" "memory $SM" "$(ratio "$SD" "$SM")" "<= 1.2 x memory" "$(met "$SD <= 1.2 * $SM")"
if [ -n "$SEED_OTHER" ]; then
    SO=$(kv "$SEED_OTHER" cpu_pct)
    row "  CPU against the other server (%)" "$SD" "other $SO" "$(ratio "$SD" "$SO")" "<= 0.3 x other" "$(met "$SD <= 0.3 * $SO")"
    row "  RSS of the other server (MiB)" "$(calc "%.2f" "$(kv "$SEED_OTHER" rss_kb) / 1024")" "" "" "" ""
fi
row "seed scenario: RSS, default flags (MiB)" "$(calc "%.2f" "$(kv "$SEED_DEF" rss_kb) / 1024")" "memory $(calc "%.2f" "$(kv "$SEED_MEM" rss_kb) / 1024")" "" "<= 7.91" "$(met "$(kv "$SEED_DEF" rss_kb) <= 7.91 * 1024")"
row "  requests/s; non-2xx" "$(kv "$SEED_DEF" req_rate); $(kv "$SEED_DEF" non2xx)" "memory $(kv "$SEED_MEM" req_rate); $(kv "$SEED_MEM" non2xx)" "" "" ""
BS_OVER=$(calc "%.0f" "($(kv "$BS_1M" rss_loaded_kb) - $(kv "$BS_1M" rss_base_kb)) * 1024 / 1000000 - 16")
OVER_20K=$(calc "%.0f" "($RSS_20K - $RSS_START) * 1024 / 20000 - 16")
OVER_1M=$(calc "%.0f" "($RSS_1M - $RSS_START) * 1024 / $COUNT - 16")
row "RSS at start (MiB)" "$(calc "%.2f" "$RSS_START / 1024")" "hello $(calc "%.2f" "$HELLO_RSS0 / 1024"), bs $(calc "%.2f" "$(kv "$BS_1K" rss_base_kb) / 1024")" "" "" ""
row "RSS holding 20 000 events (MiB)" "$(calc "%.2f" "$RSS_20K / 1024")" "" "" "<= 6" "$(met "$RSS_20K <= 6 * 1024")"
row "  overhead per event at 20 000 (bytes)" "$OVER_20K" "" "" "" ""
row "overhead per event at 1 000 000 (bytes)" "$OVER_1M" "beanstalkd $BS_OVER" "$(ratio "$OVER_1M" "$BS_OVER")" "<= 120" "$(met "$OVER_1M <= 120")"
row "  RSS at 1M (MiB); core heap overhead (B)" "$(calc "%.1f" "$RSS_1M / 1024"); $(core_heap 1000000)" "beanstalkd $(calc "%.1f" "$(kv "$BS_1M" rss_loaded_kb) / 1024") MiB" "" "" ""
row "idle wake-ups in ${IDLE_SECS}s, nothing due" "$WAKEUPS" "" "" "0" "$(met "$WAKEUPS == 0")"
FL=$(kv "$FLOOR" cpu_pct)
row "CPU, 30 jobs created together (%)" "$CB_CPU" "floor $FL" "$(ratio "$CB_CPU" "$FL")" "<= 0.05" "$(met "$CB_CPU <= 0.05")"
row "  wake-ups/s; CPU from utime+stime (%)" "$CB_WAKE; $CB_TICKS" "floor 30/s" "" "" ""
row "CPU, 30 jobs created 33 ms apart (%)" "$CS_CPU" "floor $FL" "$(ratio "$CS_CPU" "$FL")" "<= 0.05" "$(met "$CS_CPU <= 0.05")"
row "  wake-ups/s; CPU from utime+stime (%)" "$CS_WAKE; $CS_TICKS" "floor $(kv "$FLOOR" us_per_wakeup) us/wake-up" "" "" ""
for s in CB CS; do
    eval "L=\$${s}_LATE"
    what="together"; [ $s = CS ] && what="spread"
    row "job lateness p50/p99/max (ms), $what" "$(kv "$L" p50_ms) / $(kv "$L" p99_ms) / $(kv "$L" max_ms)" "floor $(kv "$FLOOR" p99_ms) p99" "" "p99 <= 2" "$(met "$(kv "$L" p99_ms) <= 2")"
    row "  fires; early; twice; missed" "$(kv "$L" fires); $(kv "$L" early); $(kv "$L" dup); $(kv "$L" missed)" "" "" "0 early, 0 twice" "$(met "$(kv "$L" early) == 0 && $(kv "$L" dup) == 0")"
done
row "  floor's own lateness p50/p99/max (ms)" "" "$(kv "$FLOOR" p50_ms) / $(kv "$FLOOR" p99_ms) / $(kv "$FLOOR" max_ms)" "" "" ""
CP=$(core publish 1000)
row "core publish, in process (ops per CPU-s)" "$(fmt "$CP")" "" "" ">= 10 000 000" "$(met "$CP >= 10000000")"
for op in publish lock+delete acquire+delete timer-churn; do
    a=$(core "$op" 1000) b=$(core "$op" 100000) c=$(core "$op" 1000000)
    row "  core $op, 1k / 100k / 1M (M/CPU-s)" "$(calc "%.2f / %.2f / %.2f" "$a / 1e6, $b / 1e6, $c / 1e6")" "" "1M/1k $(ratio "$c" "$a")" "" ""
done

LOAD1=$(cut -d' ' -f1 /proc/loadavg)
echo
echo "Distribuerad benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) CPUs  $(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)  Linux $(uname -r)"
echo "loadavg at start $LOAD0, at end $LOAD1; ${SECS}s per throughput run after 1s warm-up; loopback; in memory"
printf '%s\n' "${ROWS[@]}" | awk -F'|' '
    BEGIN {printf "%-44s %-26s %-30s %-6s %-16s %s\n", "figure", "Distribuerad", "reference", "ratio", "target", "met";
           printf "%s\n", "--------------------------------------------------------------------------------------------------------------------------------------"}
    {printf "%-44s %-26s %-30s %-6s %-16s %s\n", $1, $2, $3, $4, $5, $6}'
echo "ratio: ours / reference for rates; reference / ours for CPU per request (both: above 1 = ahead)."
echo "Rates are wall-clock and bent by neighbours (the 'waited for a CPU' rows); CPU per request is the steadier figure."
NON2XX=0
for l in "$PUB" "$BATCH" "$LD_1K" "$LD_1M" "$AD_1K" "$AD_1M" "$GET" "$MIXED"; do
    NON2XX=$((NON2XX + $(kv "$l" non2xx) + $(kv "$l" errors)))
done
echo "non-2xx answers and broken requests across Distribuerad runs: $NON2XX"
