# tests/image/lifecycle.sh -- the HTTP walk that tests/image/run.sh makes
# against the image (sourced, bash; uses req/expect from lib.sh).
#
# The first run leaves a known state behind: one event locked for an hour,
# one ready, one deleted, one delayed by an hour, and one job; the run after
# the restart must find exactly that again. Event data carries the marker
# "payload-" so run.sh can check that no log line repeats it.

lifecycle_first_run() {
    local c=/$CHANNEL later

    req GET /healthz
    expect "GET /healthz" 200 '"status":"ok"'
    req GET /readyz
    expect "GET /readyz" 200 '"status":"ok"'

    req POST "$c/events" '{"data":"payload-locked","ttl":"2h"}'
    expect "publish" 201 '"eventID":"[0-9a-v]{20}"' '"isLocked":false'
    ID_LOCKED=$(json_str eventID)
    check "publish: Location header" grep -qi "^location: $c/events/$ID_LOCKED\$" <<<"$HEADERS"
    req POST "$c/events" '{"data":"payload-deleted","ttl":"2h"}'
    expect "publish a second" 201
    ID_DELETED=$(json_str eventID)
    req POST "$c/events" '{"data":"payload-ready","ttl":"2h"}'
    expect "publish a third" 201
    ID_READY=$(json_str eventID)
    later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
    req POST "$c/events" "{\"data\":\"payload-delayed\",\"publishAt\":\"$later\",\"ttl\":\"2h\"}"
    expect "publish a delayed event (publishAt in an hour)" 201
    ID_DELAYED=$(json_str eventID)

    req GET "$c/events"
    expect "list: three visible, the delayed one not" 200 '"count":3' \
        "\"eventID\":\"$ID_LOCKED\".*\"eventID\":\"$ID_DELETED\".*\"eventID\":\"$ID_READY\""
    check "list: the delayed event is not listed" body_lacks "$ID_DELAYED"

    req PUT "$c/events/$ID_LOCKED" '{"action":"LOCK","ttl":"1h"}'
    expect "lock" 202
    req PUT "$c/events/$ID_LOCKED" '{"action":"LOCK"}'
    expect "lock again: 410" 410
    req GET "$c/events/$ID_LOCKED"
    expect "get the locked event" 200 '"state":"locked"' '"lockedUntil"'

    req DELETE "$c/events/$ID_DELETED"
    expect "delete" 202
    req DELETE "$c/events/$ID_DELETED"
    expect "delete again: 404" 404

    req GET "$c/events/$ID_DELAYED"
    expect "the delayed event is scheduled" 200 '"state":"scheduled"'

    req POST "$c/jobs" '{"name":"nightly","cronDef":"CRON_TZ=Europe/Stockholm 30 3 * * *","data":"payload-job"}'
    expect "add a job in a named zone (needs tzdata)" 201 '"jobID":"nightly"'
    req POST "$c/jobs" '{"name":"tick","cronDef":"@every 1s","data":"payload-tick","ttl":"2h"}'
    expect "add an @every 1s job" 201
    lifecycle_wait_for_tick
    req DELETE "$c/jobs/tick"
    expect "delete the @every job" 202
    req GET "$c/jobs"
    expect "list jobs" 200 '"jobID":"nightly"'

    # The tick events are acknowledged, so the state left behind is exact.
    local id
    req GET "$c/events"
    for id in $(printf '%s' "$BODY" | grep -o '{[^{}]*"data":"payload-tick"[^{}]*}' |
        grep -o '"eventID":"[^"]*"' | cut -d'"' -f4); do
        req DELETE "$c/events/$id"
    done
    req GET "$c"
    expect "channel counts: 1 ready, 1 scheduled, 1 locked, 1 job" 200 \
        '"ready":1' '"scheduled":1' '"locked":1' '"jobs":1'
}

# The @every 1s job must publish within 10 s (1 s, with room for a slow machine).
lifecycle_wait_for_tick() {
    local i
    for ((i = 0; i < 100; i++)); do
        req GET "/$CHANNEL/events"
        if grep -q '"data":"payload-tick"' <<<"$BODY"; then
            pass "the job fired and published an event"
            return
        fi
        sleep 0.1
    done
    fail "the job fired and published an event" "none after 10 s: ${BODY:0:300}"
}

lifecycle_after_restart() {
    local c=/$CHANNEL
    req GET "$c/events"
    expect "after restart: the ready and the locked event are listed" 200 '"count":2' \
        "\"eventID\":\"$ID_LOCKED\".*\"eventID\":\"$ID_READY\""
    req GET "$c/events/$ID_LOCKED"
    expect "after restart: the lock still holds" 200 '"state":"locked"' '"data":"payload-locked"'
    req PUT "$c/events/$ID_LOCKED" '{"action":"LOCK"}'
    expect "after restart: locking it again is 410" 410
    req GET "$c/events/$ID_READY"
    expect "after restart: the ready event" 200 '"state":"ready"' '"data":"payload-ready"'
    req GET "$c/events/$ID_DELAYED"
    expect "after restart: the delayed event is still scheduled" 200 '"state":"scheduled"'
    req GET "$c/events/$ID_DELETED"
    expect "after restart: the deleted event stays deleted" 404
    req GET "$c/jobs"
    expect "after restart: the job is back, the deleted one is not" 200 '"jobID":"nightly"'
    check "after restart: no tick job" body_lacks '"jobID":"tick"'
    req POST "$c/events" '{"data":"payload-new"}'
    expect "after restart: publish" 201
    check "after restart: a new id sorts after the old ones" test "$(json_str eventID)" \> "$ID_DELAYED"
}
