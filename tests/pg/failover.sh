#!/bin/sh
# failover.sh -- the failover procedure of docs/scale-out.md, end to end.
#
#   tests/pg/failover.sh [BINARY]     (default ./distribuerad)
#
# 1. A primary (tests/pg/pgctl.sh) and a standby made from it with
#    `pg_basebackup -R`, streaming; the primary then waits for the standby
#    to confirm every commit (synchronous_standby_names), so that what it
#    acknowledged is on both.
# 2. A server given both Unix sockets and target_session_attrs=read-write:
#      host=SOCK1,SOCK2 user=postgres dbname=postgres target_session_attrs=read-write
# 3. Events published; a publisher keeps publishing while the primary is
#    stopped hard (pg_ctl stop -m immediate, a crash); /readyz must turn 503.
# 4. The standby promoted (pg_ctl promote); /readyz must be 200 again
#    within 30 s, without a restart of the server.
# 5. Every event the server acknowledged (201), before or during the
#    failover, is listed; a publish after it succeeds.
#
# Exit status: 0 passed, 1 failed, 77 skipped (PostgreSQL 15 is not
# installed, or this build's server does not serve from PostgreSQL yet; the
# reason is printed). Runs as root (the clusters as the user postgres,
# through runuser) and as a normal user. Ends "failover: passed|FAILED|SKIPPED".
set -u
here=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
BIN=${1:-./distribuerad}
case "$BIN" in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
W=$(mktemp -d "${TMPDIR:-/tmp}/distribuerad-failover-XXXXXX")
P="" S="" SRV="" PUBPID=""

cleanup() {
    [ -n "$PUBPID" ] && kill "$PUBPID" 2>/dev/null
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
    [ -n "$P" ] && "$here/pgctl.sh" stop "$P"
    [ -n "$S" ] && "$here/pgctl.sh" stop "$S"
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

log() { echo "failover: $*" >&2; }
skip() { log "$*"; echo "failover: SKIPPED"; exit 77; }
fail() {
    log "$*"
    [ -f "$W/server.log" ] && { log "server log (tail):"; tail -n 15 "$W/server.log" >&2; }
    echo "failover: FAILED"
    exit 1
}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_at() { as_pg "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$1/sock" -U postgres -d postgres -c "$2"; }
http() { # METHOD PATH [BODY]: prints the status code, body into $W/body
    curl -s -o "$W/body" -w '%{http_code}' -X "$1" --max-time 10 ${3:+-d "$3"} "http://127.0.0.1:$PORT$2"
}
# wait_for SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
wait_for() {
    n=$(($1 * 10)); shift
    while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
    return 1
}

[ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_basebackup" ] ||
    skip "PostgreSQL 15 is not installed (scripts/deps.sh test installs postgresql-15)"
[ -x "$BIN" ] || fail "$BIN not found; run make first"
command -v curl >/dev/null && command -v python3 >/dev/null || fail "needs curl and python3"

# ---- 1. primary and streaming standby ---------------------------------------
P=$("$here/pgctl.sh" start) || fail "the primary did not start"
# pgctl.sh trusts local connections for every database, but a replication
# connection needs its own line.
as_pg sh -c "echo 'local replication all trust' >>'$P/data/pg_hba.conf'"
psql_at "$P" "SELECT pg_reload_conf()" >/dev/null || fail "reload of the primary failed"

S=$(mktemp -d "${TMPDIR:-/tmp}/distribuerad-pg-XXXXXX")
mkdir -p "$S/sock"
if [ "$(id -u)" = 0 ]; then chown -R postgres: "$S"; chmod 755 "$S"; fi
as_pg "$PGBIN/pg_basebackup" -h "$P/sock" -U postgres -D "$S/data" -R -X stream -c fast \
    >"$W/basebackup.log" 2>&1 || { cat "$W/basebackup.log" >&2; fail "pg_basebackup failed"; }
# The standby: the same settings as pgctl.sh's clusters, its own socket.
as_pg "$PGBIN/pg_ctl" -D "$S/data" -l "$S/server.log" -w -t 60 start -o \
    "-c listen_addresses='' -c unix_socket_directories='$S/sock' -c fsync=off \
     -c full_page_writes=off -c shared_buffers=32MB -c max_connections=300 \
     -c max_locks_per_transaction=256" >/dev/null ||
    { cat "$S/server.log" >&2; fail "the standby did not start"; }
streaming() { [ "$(psql_at "$P" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1 ]; }
wait_for 30 streaming || fail "the standby is not streaming from the primary"
# Set after the base backup, so the standby does not inherit it: once
# promoted it has no standby of its own to wait for.
psql_at "$P" "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null &&
    psql_at "$P" "SELECT pg_reload_conf()" >/dev/null || fail "cannot make the standby synchronous"
sync_standby() { [ "$(psql_at "$P" "SELECT sync_state FROM pg_stat_replication")" = sync ]; }
wait_for 10 sync_standby || fail "the standby did not become synchronous"
log "primary $P/sock, standby $S/sock (streaming, synchronous)"

# ---- 2. the server on both hosts ----------------------------------------------
URL="host=$P/sock,$S/sock user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=2"
"$BIN" -database-url "$URL" -database-timeout 2s -address 127.0.0.1 -port 0 >"$W/server.log" 2>&1 &
SRV=$!
PORT=""
for _ in $(seq 300); do
    PORT=$(sed -nE 's#.*listening on http://[^ ]*:([0-9]+).*#\1#p' "$W/server.log" | head -n 1)
    [ -n "$PORT" ] && break
    kill -0 "$SRV" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then
    if ! kill -0 "$SRV" 2>/dev/null; then
        wait "$SRV"; rc=$?; SRV=""
        grep -q "cannot serve requests yet" "$W/server.log" &&
            skip "this build's server does not serve from PostgreSQL yet (it exited $rc after migrating: $(tail -n 1 "$W/server.log"))"
    fi
    fail "the server did not start on the database"
fi
ready() { [ "$(http GET /readyz)" = 200 ]; }
wait_for 10 ready || fail "the server is not ready on the primary"

# ---- 3. publish, then crash the primary under a running publisher ------------
for i in $(seq 1 50); do
    [ "$(http POST /failover/events "{\"data\":\"before $i\"}")" = 201 ] || fail "publish $i answered $(cat "$W/body")"
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["eventID"])' "$W/body" >>"$W/acked"
done
# The publisher writes the id of every 201 it gets, one a line, until stopped.
python3 - "$PORT" "$W/acked" "$W/publisher.stop" <<'EOF' >"$W/publisher.log" 2>&1 &
import http.client, json, os, sys, time
port, acked, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
n = 0
with open(acked, "a") as out:
    while not os.path.exists(stop):
        n += 1
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("POST", "/failover/events", json.dumps({"data": "during %d" % n}))
            r = c.getresponse()
            body = r.read()
            c.close()
            if r.status == 201:
                out.write(json.loads(body)["eventID"] + "\n")
                out.flush()
            elif r.status != 503:
                print("publish answered %d: %s" % (r.status, body[:200]), flush=True)
        except OSError as e:
            print("publish failed: %s" % e, flush=True)
        time.sleep(0.01)
EOF
PUBPID=$!
sleep 1
as_pg "$PGBIN/pg_ctl" -D "$P/data" -w -t 20 stop -m immediate >/dev/null || fail "cannot stop the primary"
log "primary stopped (immediate); $(wc -l <"$W/acked") events acknowledged so far"
not_ready() { [ "$(http GET /readyz)" = 503 ]; }
wait_for 10 not_ready || fail "/readyz did not answer 503 with the primary gone and the standby read-only"
down=$(http POST /failover/events '{"data":"while down"}')
[ "$down" = 503 ] || fail "a publish with no writable database answered $down, not 503: $(cat "$W/body")"
sleep 1

# ---- 4. promote the standby -------------------------------------------------
as_pg "$PGBIN/pg_ctl" -D "$S/data" -w -t 30 promote >/dev/null || fail "pg_ctl promote failed"
t0=$(date +%s%N)
wait_for 30 ready || fail "the server did not become ready again within 30 s of the promotion"
log "ready again $((($(date +%s%N) - t0) / 1000000)) ms after the promotion"
sleep 1
touch "$W/publisher.stop"
wait "$PUBPID"
PUBPID=""
[ "$(http POST /failover/events '{"data":"after"}')" = 201 ] || fail "a publish after the failover answered $(cat "$W/body")"

# ---- 5. everything acknowledged is there ------------------------------------
[ "$(http GET /failover/events)" = 200 ] || fail "listing answered $(cat "$W/body")"
python3 - "$W/body" "$W/acked" <<'EOF' || fail "acknowledged events are missing after the failover"
import json, sys
listed = {e["eventID"] for e in json.load(open(sys.argv[1]))["events"]}
acked = [l.strip() for l in open(sys.argv[2]) if l.strip()]
missing = [i for i in acked if i not in listed]
print("failover: %d events acknowledged, %d listed, %d missing" % (len(acked), len(listed), len(missing)),
      file=sys.stderr)
sys.exit(1 if missing or len(acked) < 50 else 0)
EOF
grep -v '^publish failed: .*Connection refused' "$W/publisher.log" | head -n 5 >&2
echo "failover: passed"
