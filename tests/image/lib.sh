# tests/image/lib.sh -- helpers for tests/image/run.sh (sourced, bash).
#
# Three groups: finding the Debian mirror and making the base image; running
# the image's entrypoint under chroot; speaking HTTP to it and counting checks.
# Every mount and process made here is recorded so that cleanup() undoes it on
# any exit.

passed=0
failed=0
skipped=0
MOUNTS=()        # mount points, most recent last; cleanup unmounts in reverse
SERVER_PID=""    # the running server, if any

# ---- counting ---------------------------------------------------------------

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+ -- $2}"; }
skip() { skipped=$((skipped + 1)); echo "SKIP $1${2:+ -- $2}"; }
# check NAME COMMAND...: passes when the command succeeds.
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }
not() { ! "$@"; }
writable() { touch "$1" 2>/dev/null && rm -f "$1"; }
note() { echo "---- $*"; }
die() { echo "image: $*" >&2; fail "setup" "$*"; exit 1; }

# ---- the Debian mirror and the base image -----------------------------------

# debian_mirror SUITE: prints the first archive URI that the machine's apt
# sources use for SUITE (one-line .list files and deb822 .sources files), so
# the repository names no host. DEBIAN_MIRROR overrides.
debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local f
    {
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -r "$f" ] || continue
            awk -v s="$1" '$1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == s) print $i
            }' "$f"
        done
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -r "$f" ] || continue
            awk -v s="$1" 'BEGIN { RS = ""; FS = "\n" } {
                types = ""; uris = ""; suites = ""; enabled = "yes"
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^#/) continue
                    v = $i; sub(/^[^:]*:[ \t]*/, "", v)
                    if ($i ~ /^Types:/) types = " " v " "
                    else if ($i ~ /^URIs:/) uris = v
                    else if ($i ~ /^Suites:/) suites = " " v " "
                    else if ($i ~ /^Enabled:/) enabled = v
                }
                if (enabled != "no" && types ~ / deb / && suites ~ (" " s " ")) {
                    split(uris, u, /[ \t]+/); print u[1]
                }
            }' "$f"
        done
    } | head -n 1
}

# Paths that Debian's slim images keep dpkg from installing; written into the
# minbase root so that packages installed on it are slimmed the same way.
SLIM_DPKG_EXCLUDES='path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias'

# make_base_root DIR SUITE: debootstraps SUITE minbase into DIR once; a
# finished DIR (with .stamp) is reused. An interrupted run leaves DIR.tmp,
# which the next run removes and starts again.
make_base_root() {
    local dir=$1 suite=$2 mirror
    [ -f "$dir/.stamp" ] && return 0
    mirror=$(debian_mirror "$suite")
    [ -n "$mirror" ] || die "no apt source for $suite in /etc/apt; set DEBIAN_MIRROR"
    note "debootstrap --variant=minbase $suite from $mirror (once; cached in $dir)"
    rm -rf --one-file-system "$dir.tmp"
    mkdir -p "$dir.tmp"
    debootstrap --variant=minbase "$suite" "$dir.tmp" "$mirror" >"$dir.log" 2>&1 ||
        { tail -n 20 "$dir.log" >&2; die "debootstrap failed (log: $dir.log)"; }
    printf '%s\n' "$SLIM_DPKG_EXCLUDES" >"$dir.tmp/etc/dpkg/dpkg.cfg.d/slim"
    date -u +%Y%m%d%H%M%S >"$dir.tmp/.stamp"
    mv "$dir.tmp" "$dir"
}

# import_base DIR NAME...: imports the root in DIR (without apt's caches and
# the docs a slim image drops) as localhost/distribuerad-base:<stamp>, once
# per stamp so the build cache stays valid, and tags it with every NAME.
import_base() {
    local dir=$1; shift
    local ref old
    ref="localhost/distribuerad-base:$(cat "$dir/.stamp")"
    if ! podman image exists "$ref"; then
        # Bases of earlier debootstraps go, unless a build still uses them.
        for old in $(podman images --format '{{.Repository}}:{{.Tag}}' localhost/distribuerad-base); do
            podman rmi "$old" >/dev/null 2>&1
        done
        note "podman import $dir as $ref"
        tar -C "$dir" --numeric-owner --exclude=./.stamp \
            --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/lib/apt/lists/*' \
            --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' \
            --exclude='./usr/share/info/*' --exclude='./usr/share/locale/*' -cf - . |
            podman import --quiet --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
                - "$ref" >/dev/null || die "podman import failed"
    fi
    podman tag "$ref" "$@" || die "podman tag failed"
    BASE_REF=$ref
}

# ---- mounts and the chroot --------------------------------------------------

mount_rec() { # mount_rec MOUNT-ARGS... TARGET: mount and remember TARGET
    mount "$@" && MOUNTS+=("${!#}")
}

unmount_all() { # returns non-zero if something stayed mounted
    local i ok=0
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || ok=1
    done
    MOUNTS=()
    return $ok
}

# prepare_root ROOT DATA: what the Kubernetes manifests give the process:
# a read-only root filesystem (readOnlyRootFilesystem: true, and no writable
# /tmp), /proc, the usual /dev nodes, and the volume DATA on /data.
prepare_root() {
    local root=$1 data=$2 n
    mkdir -p "$root/dev" "$root/proc" "$root/data"
    for n in null zero full random urandom; do
        [ -e "$root/dev/$n" ] || : >"$root/dev/$n"
    done
    mount_rec --bind "$root" "$root" || die "cannot bind $root"
    mount -o remount,bind,ro "$root" || die "cannot make $root read-only"
    mount_rec -t proc proc "$root/proc" || die "cannot mount /proc in $root"
    for n in null zero full random urandom; do
        mount_rec --bind "/dev/$n" "$root/dev/$n" || die "cannot bind /dev/$n"
    done
    mount_rec --bind "$data" "$root/data" || die "cannot bind $data on /data"
}

# image_field FORMAT: one field of the built image's config, via podman's
# Go template.
image_field() { podman image inspect --format "$1" "$IMAGE"; }

# start_server LOG [ENV=VALUE...]: starts the image's entrypoint in $ROOT as
# the image's user with the image's environment (plus the extra ones) and
# working directory, listening on 127.0.0.1:$PORT. Sets SERVER_PID and URL.
start_server() {
    local log=$1; shift
    local -a env
    mapfile -t env < <(image_field '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
    # Under chroot, coreutils' chroot resolves a numeric user:group itself.
    env -i "${env[@]}" "$@" "$CHROOT" --userspec="$IMAGE_USER" --groups= "$ROOT" \
        /bin/sh -c 'cd "$0" && exec "$@"' "$IMAGE_WORKDIR" "${ENTRYPOINT[@]}" \
        -address 127.0.0.1 -port "$PORT" >"$log" 2>&1 &
    SERVER_PID=$!
    URL="http://127.0.0.1:$PORT"
}

# wait_ready: polls /readyz every 10 ms for up to 15 s; sets READY_MS to the
# time from start_server to the first 200. Fails if the process exits first.
wait_ready() {
    local t0=$1 i code
    for ((i = 0; i < 1500; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$URL/readyz" || true)
        if [ "$code" = 200 ]; then
            READY_MS=$((($(date +%s%N) - t0) / 1000000))
            return 0
        fi
        sleep 0.01
    done
    return 1
}

# stop_server: SIGTERM, then wait up to 10 s; sets STOP_RC (124 when it had to
# be killed) and clears SERVER_PID.
stop_server() {
    local i
    STOP_RC=124
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    else
        wait "$SERVER_PID"
        STOP_RC=$?
    fi
    SERVER_PID=""
}

# rss_kib PID: resident set size in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# cpu_ticks PID: user + system CPU time used so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    local p i
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# ---- HTTP -------------------------------------------------------------------

# req METHOD PATH [JSON]: sets CODE, BODY and HEADERS. Sends TOKEN, when
# set, as a bearer token.
req() {
    local -a data=()
    [ $# -ge 3 ] && data=(-H 'Content-Type: application/json' --data-binary "$3")
    [ -n "${TOKEN:-}" ] && data+=(-H "Authorization: Bearer $TOKEN")
    CODE=$(curl -s -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' --max-time 10 \
        -X "$1" "${data[@]}" "$URL$2") || CODE=000
    BODY=$(cat "$WORK/body" 2>/dev/null)
    HEADERS=$(tr -d '\r' <"$WORK/headers" 2>/dev/null)
}

# expect NAME STATUS [ERE...]: passes when the last response had STATUS and
# its body matches every ERE.
expect() {
    local name=$1 want=$2 re
    shift 2
    if [ "$CODE" != "$want" ]; then
        fail "$name" "status $CODE, want $want; body: ${BODY:0:300}"
        return 1
    fi
    for re in "$@"; do
        if ! printf '%s' "$BODY" | grep -Eq -- "$re"; then
            fail "$name" "body does not match /$re/: ${BODY:0:300}"
            return 1
        fi
    done
    pass "$name"
}

# body_lacks TEXT: true when the last body does not contain TEXT.
body_lacks() { ! grep -qF -- "$1" <<<"$BODY"; }

# json_str KEY: the first string value of KEY in the last body.
json_str() { printf '%s' "$BODY" | grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; }
# json_num KEY: the first number value of KEY in the last body.
json_num() { printf '%s' "$BODY" | grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2; }
