#!/bin/sh
# Builds the libFuzzer targets with ASan and UBSan and runs each for a while.
#
#   fuzz/run.sh [target ...]        default: request request_wal duration rfc3339 cron json jparse
#   FUZZ_SECONDS=60                 seconds per target
#   FUZZ_BUILD_ONLY=1               build, run nothing
#   FUZZ_FLAGS="-jobs=2"            more libFuzzer flags for every target
#   FUZZ_LEAKS=0                    no leak checks (to look past a known leak)
#   CC=clang                        a clang with libFuzzer (libclang-rt-*-dev)
#
# src/ is compiled with the fuzzer's coverage and sanitizer flags into
# build-fuzz/ (main.c aside) and
# archived, so each target links only what it uses. Each target runs on its
# seeds (fuzz/corpus/<target>, read-only) plus a work corpus that persists
# in build-fuzz/corpus/<target>, with fuzz/<target>.dict when there is one.
# A crash, leak, timeout or out-of-memory input is copied to
# fuzz/crashes/<target>-<kind>-<hash>; reproduce it with
#   build-fuzz/fuzz_<target> fuzz/crashes/<file>
# (for request, FUZZ_REQUEST_RENEW=1 makes every input start from an empty
# core, which is what a lone reproducer needs).
# Ends with "fuzz: N passed, M failed" and exits non-zero if any failed.
cd "$(dirname "$0")/.." || exit 2
CC=${CC:-clang}
B=build-fuzz
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${*:-request request_wal duration rfc3339 cron json jparse}
PKGS="libh2o-evloop jansson libpq"

CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -O1 -fno-omit-frame-pointer -Isrc"
CFLAGS="$CFLAGS -fno-sanitize-recover=all -DH2O_USE_LIBUV=0 $(pkg-config --cflags $PKGS)"
SAN_OBJ="-fsanitize=fuzzer-no-link,address,undefined"
SAN_BIN="-fsanitize=fuzzer,address,undefined"
LIBS="$(pkg-config --libs $PKGS) -lssl -lcrypto -lpthread -lm"

max_len() {
    case "$1" in
    request*|jparse) echo 8192 ;; json) echo 4096 ;; cron) echo 160 ;; *) echo 64 ;;
    esac
}

# request_wal is request with the log on: same seeds, same dictionary.
seeds_of() {
    case "$1" in request_wal) echo request ;; *) echo "$1" ;; esac
}

die() { echo "fuzz: $*" >&2; exit 2; }

# ---- build ----

command -v "$CC" >/dev/null || die "$CC not found; apt-get install clang libclang-rt-14-dev"
rm -rf "$B/obj"
mkdir -p "$B/obj" "$B/tmp"
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}\n' >"$B/tmp/probe.c"
"$CC" $SAN_BIN -o "$B/tmp/probe" "$B/tmp/probe.c" 2>"$B/tmp/probe.log" ||
    die "$CC cannot link -fsanitize=fuzzer ($(head -n 1 "$B/tmp/probe.log")); apt-get install libclang-rt-14-dev"

for src in src/base/*.c src/time/*.c src/json/*.c src/core/*.c src/store/*.c src/http/*.c; do
    obj="$B/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')"
    echo "$src $obj"
done | {
    # Compile in parallel, one job per CPU.
    xargs -P "$(nproc)" -L 1 sh -c "$CC $CFLAGS $SAN_OBJ -c -o \"\$1\" \"\$0\"" || exit 1
} || die "compiling src/ failed"
rm -f "$B/libdistribuerad.a"
ar rcs "$B/libdistribuerad.a" "$B"/obj/*.o || die "ar failed"
for t in $TARGETS; do
    [ -f "fuzz/fuzz_$t.c" ] || die "no target fuzz/fuzz_$t.c"
    "$CC" $CFLAGS $SAN_BIN -o "$B/fuzz_$t" "fuzz/fuzz_$t.c" "$B/libdistribuerad.a" $LIBS ||
        die "building fuzz_$t failed"
done
echo "fuzz: built $(echo $TARGETS | wc -w) targets in $B/"
[ -n "$FUZZ_BUILD_ONLY" ] && exit 0

# ---- run ----

if [ "$FUZZ_LEAKS" = 0 ]; then
    FUZZ_FLAGS="$FUZZ_FLAGS -detect_leaks=0"
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi

passed=0
failed=0
total=0
summary=""
for t in $TARGETS; do
    work="$B/corpus/$t"
    art="$B/artifacts/$t"
    log="$B/fuzz_$t.log"
    rm -rf "$art"
    seeds="fuzz/corpus/$(seeds_of "$t")"
    mkdir -p "$work" "$art" "$seeds"
    dict=""
    [ -f "fuzz/$(seeds_of "$t").dict" ] && dict="-dict=fuzz/$(seeds_of "$t").dict"
    echo "fuzz: $t for ${SECONDS_EACH}s (log: $log)"
    "$B/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" -timeout=30 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" $dict $FUZZ_FLAGS \
        "$work" "$seeds" >"$log" 2>&1
    rc=$?
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -nE 's/^#([0-9]+)[[:space:]].*/\1/p' "$log" | tail -n 1)
    execs=${execs:-0}
    total=$((total + execs))
    found=""
    for f in "$art"/*; do
        [ -f "$f" ] || continue
        mkdir -p fuzz/crashes
        cp "$f" "fuzz/crashes/$t-$(basename "$f")"
        found="$found fuzz/crashes/$t-$(basename "$f")"
    done
    if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
        passed=$((passed + 1))
        echo "fuzz: $t: ok, $execs executions"
    else
        failed=$((failed + 1))
        grep -a -m 1 -E '^==[0-9]+==ERROR|^SUMMARY|^fuzz_|assertion failed|runtime error' "$log" | sed 's/^/  /'
        echo "fuzz: $t: FAILED (exit $rc) after $execs executions;${found:- no input saved,} see $log"
    fi
    summary="$summary $t=$execs"
done
echo "fuzz: executions:$summary total=$total"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
