#!/bin/bash
# tests/image/run.sh -- builds the container image from ./Dockerfile and tests
# the real thing, without a container engine. `make image-test` runs it.
#
# 1. debootstrap --variant=minbase bookworm from the machine's own apt mirror
#    into a cache folder (once; later runs reuse it), and podman import it
#    under the names the Dockerfile uses (debian:bookworm, debian:bookworm-slim).
# 2. podman build --isolation chroot --pull=never (podman run is not possible
#    here, but build is; its layer cache keeps repeat runs fast).
# 3. Export the image's filesystem, and run its entrypoint under chroot as
#    the image's user, with its environment, on a /data bind mount.
# 4. Walk the event lifecycle over HTTP, stop with SIGTERM (exit 0, "stopped"
#    logged), start again on the same /data and find the state again.
# 5. Report the image size, the size it adds to its base, the idle RSS and
#    the time from start to /readyz 200.
# Ends with "image: N passed, M failed"; exits non-zero if anything failed.
#
# Needs root (podman storage, chroot, mounts); installs podman and debootstrap
# with apt-get when they are missing. Environment:
#   XDG_CACHE_HOME      cache root (default ~/.cache); the base root lives in
#                       $XDG_CACHE_HOME/distribuerad/bookworm-minbase
#   DEBIAN_MIRROR       mirror for debootstrap (default: from /etc/apt)
#   DISTRIBUERAD_IMAGE  tag to build (default localhost/distribuerad:image-test)
#   IMAGE_TEST_KEEP=1   keep the work folder (exported root, logs) for a look
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/image/lib.sh

SUITE=bookworm
CACHE=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/distribuerad
BASE_ROOT=$CACHE/$SUITE-minbase
IMAGE=${DISTRIBUERAD_IMAGE:-localhost/distribuerad:image-test}
PKGS="podman debootstrap curl uidmap fuse-overlayfs slirp4netns netavark"
CHANNEL=imagetest
WORK=""
CID=""

cleanup() {
    local keep=${IMAGE_TEST_KEEP:-}
    if [ -n "$SERVER_PID" ]; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=""
    fi
    if ! unmount_all; then
        echo "image: something under $WORK stayed mounted; not removing it" >&2
        keep=1
    fi
    [ -n "$CID" ] && podman rm -f "$CID" >/dev/null 2>&1
    if [ -n "$WORK" ]; then
        if [ -n "$keep" ]; then echo "image: kept $WORK"; else rm -rf --one-file-system "$WORK"; fi
    fi
    local extra=""
    [ "$skipped" -gt 0 ] && extra=", $skipped skipped"
    echo "image: $passed passed, $failed failed$extra"
    [ "$failed" -eq 0 ]
}
trap 'cleanup; exit $?' EXIT
trap 'fail "interrupted (SIGINT)"; exit 130' INT
trap 'fail "interrupted (SIGTERM)"; exit 143' TERM

# ---- 0. tools ---------------------------------------------------------------

[ "$(id -u)" = 0 ] || die "needs root: podman storage, chroot and mounts (run: sudo make image-test)"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    note "apt-get install$missing"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >/dev/null ||
        die "apt-get install$missing failed"
fi
CHROOT=$(command -v chroot) || die "chroot not found"
WORK=$(mktemp -d /tmp/distribuerad-image.XXXXXX)
ROOT=$WORK/root

# ---- 1. base images ---------------------------------------------------------

mkdir -p "$CACHE"
t=$(date +%s)
make_base_root "$BASE_ROOT" "$SUITE"
import_base "$BASE_ROOT" debian:bookworm debian:bookworm-slim \
    docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim
pass "base images debian:bookworm and debian:bookworm-slim from $BASE_ROOT ($(($(date +%s) - t)) s)"

# ---- 2. build ---------------------------------------------------------------

t=$(date +%s)
note "podman build --isolation chroot --pull=never -t $IMAGE ."
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
version=$(sed -n 's/^#define VERSION "\(.*\)"$/\1/p' src/main.c)
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null)
if podman build --isolation chroot --pull=never --build-arg "REVISION=$rev" \
    ${version:+--build-arg "VERSION=$version"} -t "$IMAGE" . \
    >"$WORK/build.log" 2>&1; then
    pass "podman build ($(($(date +%s) - t)) s)"
    # The image this tag named before is now untagged; its layers below the
    # binary are shared with the new one and stay as the build cache.
    if [ -n "$previous" ] && [ "$previous" != "$(image_field '{{.Id}}')" ]; then
        podman rmi "$previous" >/dev/null 2>&1
    fi
else
    tail -n 40 "$WORK/build.log"
    die "podman build failed"
fi

# ---- 3. the image's configuration --------------------------------------------

IMAGE_USER=$(image_field '{{.Config.User}}')
IMAGE_WORKDIR=$(image_field '{{.Config.WorkingDir}}')
mapfile -t ENTRYPOINT < <(image_field '{{range .Config.Entrypoint}}{{println .}}{{end}}' | sed '/^$/d')
[ -n "$IMAGE_WORKDIR" ] || IMAGE_WORKDIR=/
check "image user is 10001:10001 (not root)" test "$IMAGE_USER" = 10001:10001
check "entrypoint is /usr/local/bin/distribuerad" test "${ENTRYPOINT[*]}" = /usr/local/bin/distribuerad
check "stop signal is SIGTERM" test "$(image_field '{{.Config.StopSignal}}')" = SIGTERM
check "exposes 3333/tcp" grep -q '"3333/tcp"' <<<"$(image_field '{{json .Config.ExposedPorts}}')"
check "declares the /data volume" grep -q '"/data"' <<<"$(image_field '{{json .Config.Volumes}}')"
check "env DISTRIBUERAD_DATA_DIR=/data" grep -qx 'DISTRIBUERAD_DATA_DIR=/data' \
    <<<"$(image_field '{{range .Config.Env}}{{println .}}{{end}}')"
labels=$(image_field '{{json .Config.Labels}}')
for l in title description version revision; do
    check "OCI label org.opencontainers.image.$l" grep -q "\"org.opencontainers.image.$l\"" <<<"$labels"
done

CID=$(podman create "$IMAGE") || die "podman create failed"
mkdir -p "$ROOT"
podman export "$CID" | tar -C "$ROOT" --numeric-owner -xf - || die "podman export failed"
podman rm "$CID" >/dev/null && CID=""

check "no compiler in the image" test ! -e "$ROOT/usr/bin/gcc" -a ! -e "$ROOT/usr/bin/cc"
check "tzdata in the image" test -f "$ROOT/usr/share/zoneinfo/Europe/Stockholm"
check "/data belongs to 10001" test "$(stat -c %u:%g "$ROOT/data")" = 10001:10001
missing_libs=$("$CHROOT" "$ROOT" ldd "${ENTRYPOINT[0]}" 2>&1 | grep 'not found')
check "every shared library resolves${missing_libs:+: $missing_libs}" test -z "$missing_libs"
# libpq is loaded only for -database-url, so ldd does not show it: a
# database that refuses the connection must be what stops this start.
libpq_out=$("$CHROOT" "$ROOT" "${ENTRYPOINT[0]}" -address 127.0.0.1 -port 0 \
    -database-url "postgresql://127.0.0.1:$(free_port)/x" 2>&1)
grep -q 'cannot connect to the database' <<<"$libpq_out" && libpq_out=""
check "libpq loads for -database-url${libpq_out:+: $(tail -n 1 <<<"$libpq_out")}" test -z "$libpq_out"
missing_dq=$("$CHROOT" "$ROOT" ldd /usr/local/bin/dq 2>&1 | grep 'not found')
check "dq is in the image and its libraries resolve${missing_dq:+: $missing_dq}" \
    test -x "$ROOT/usr/local/bin/dq" -a -z "$missing_dq"
check "man pages dq(1) and distribuerad(8) in /usr/local/share/man" \
    test -f "$ROOT/usr/local/share/man/man1/dq.1.gz" -a -f "$ROOT/usr/local/share/man/man8/distribuerad.8.gz"
help=$("$CHROOT" --userspec="$IMAGE_USER" --groups= "$ROOT" "${ENTRYPOINT[0]}" -help 2>&1)
check "-help runs as the image user and lists DISTRIBUERAD_PORT" grep -q DISTRIBUERAD_PORT <<<"$help"
check "OCI version label is the binary's -version" test "distribuerad $(image_field \
    '{{index .Config.Labels "org.opencontainers.image.version"}}')" = \
    "$("$CHROOT" "$ROOT" "${ENTRYPOINT[0]}" -version 2>&1)"
durable=""
grep -q -- '-fsync' <<<"$help" && durable=1

# The volume: a folder of our own, owned by the image's user, bound on /data.
mkdir -p "$WORK/data"
chown "$IMAGE_USER" "$WORK/data"
chmod 0750 "$WORK/data"
prepare_root "$ROOT" "$WORK/data"
check "the root filesystem is read-only" not writable "$ROOT/.write-test"

# ---- 4. first run: the lifecycle --------------------------------------------

PORT=$(free_port) || die "no free port"
t0=$(date +%s%N)
start_server "$WORK/run1.log"
if wait_ready "$t0"; then
    pass "first start: /readyz 200 after $READY_MS ms"
    READY1_MS=$READY_MS
else
    cat "$WORK/run1.log"
    die "the server did not become ready"
fi
cpu0=$(cpu_ticks "$SERVER_PID")
sleep 2
CPU_IDLE_MS=$((($(cpu_ticks "$SERVER_PID") - cpu0) * 1000 / $(getconf CLK_TCK) / 2))
RSS_IDLE=$(rss_kib "$SERVER_PID")
check "runs as uid 10001" grep -Eq '^Uid:\s+10001\s' "/proc/$SERVER_PID/status"
check "runs with gid 10001" grep -Eq '^Gid:\s+10001\s' "/proc/$SERVER_PID/status"

. tests/image/lifecycle.sh
lifecycle_first_run

RSS_BUSY=$(rss_kib "$SERVER_PID")
stop_server
check "SIGTERM: exit status 0 (got $STOP_RC)" test "$STOP_RC" = 0
check "SIGTERM: a \"stopped\" log line" grep -q 'stopped' "$WORK/run1.log"
check "log has a listen line" grep -q "127.0.0.1:$PORT" "$WORK/run1.log"
check "log holds no event data" not grep -q 'payload-' "$WORK/run1.log"

# ---- 5. second run on the same /data -----------------------------------------

# As the Kubernetes manifests run it: JSON logs and, when the binary has
# authentication, a bearer token from the environment.
TOKEN=""
extra_env=(DISTRIBUERAD_LOG_FORMAT=json)
if grep -q -- '-auth-token' <<<"$help"; then
    TOKEN=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
    extra_env+=("DISTRIBUERAD_AUTH_TOKEN=$TOKEN")
fi
PORT=$(free_port) || die "no free port"
t0=$(date +%s%N)
start_server "$WORK/run2.log" "${extra_env[@]}"
if wait_ready "$t0"; then
    pass "restart on the same /data: /readyz 200 after $READY_MS ms"
    READY2_MS=$READY_MS
    check "dq ready (the docker-compose.yml health check) exits 0 inside the image" \
        "$CHROOT" --userspec="$IMAGE_USER" --groups= "$ROOT" /usr/local/bin/dq -s "$URL" ready
else
    cat "$WORK/run2.log"
    die "the server did not become ready again"
fi
if [ -n "$TOKEN" ]; then
    saved=$TOKEN
    TOKEN=""
    req GET /healthz
    expect "with a token set: /healthz needs none (liveness probe)" 200
    req GET /readyz
    expect "with a token set: /readyz needs none (readiness probe)" 200
    req GET "/$CHANNEL/events"
    expect "with a token set: the API answers 401 without it" 401
    TOKEN=$saved
else
    skip "authentication from DISTRIBUERAD_AUTH_TOKEN" "the binary has no -auth-token flag yet"
fi
if [ -n "$durable" ]; then
    lifecycle_after_restart
    check "/data holds the log" test -n "$(ls -A "$WORK/data")"
else
    skip "events still there after restart" \
        "the binary has no -fsync flag yet (durability not merged); the restart check runs once it has"
fi
stop_server
check "second SIGTERM: exit status 0 (got $STOP_RC)" test "$STOP_RC" = 0
check "DISTRIBUERAD_LOG_FORMAT=json: every log line is a JSON object" \
    awk 'NF && !/^\{.*"msg".*\}$/ { bad = 1 } END { exit bad || NR == 0 }' "$WORK/run2.log"
check "log holds no event data" not grep -q 'payload-' "$WORK/run2.log"
[ -n "$TOKEN" ] && check "log holds no token" not grep -qF -- "$TOKEN" "$WORK/run2.log"

# ---- 6. numbers --------------------------------------------------------------

size=$(image_field '{{.Size}}')
base=$(podman image inspect --format '{{.Size}}' "$BASE_REF")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "---- image $IMAGE"
echo "image size:         $(mib "$size") ($size bytes)"
echo "over its base:      $(mib $((size - base))) (base: debootstrap minbase, $(mib "$base"))"
echo "binary:             $(stat -c %s "$ROOT${ENTRYPOINT[0]}") bytes (stripped)"
echo "idle RSS:           ${RSS_IDLE} KiB (after the lifecycle: ${RSS_BUSY} KiB)"
echo "idle CPU:           ${CPU_IDLE_MS} ms per second (over 2 s after start)"
echo "start to ready:     ${READY1_MS} ms empty, ${READY2_MS} ms on restart"
