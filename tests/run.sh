#!/bin/sh
# Runs the layering check (scripts/check-layers.sh), the unit tests (cmocka
# binaries in $B/tests), then the black-box suite against the server binary
# three times (memory store; the memory store with its log and -fsync
# always: "blackbox-log"; then PostgreSQL, two replicas on one throwaway
# cluster: "blackbox-pg") and the dashboard's browser test (tests/ui), and
# prints one closing line:
#   N passed, M failed
# Usage: tests/run.sh [--unit-only|--blackbox-only|--valgrind] BUILD_DIR BINARY
# DISTRIBUERAD_URL=http://host:port points the black-box suite at a running
# server instead of starting one per test.
mode=all
case "$1" in --unit-only|--blackbox-only|--valgrind) mode=${1#--}; shift ;; esac
B=$1
BIN=$2
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count() { # adds the counts of a "... N passed, M failed" line in $log
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
    f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-1}))
}

if [ "$mode" != blackbox-only ]; then
    # The layering of src/ (docs/HACKING.md) counts as one test.
    if scripts/check-layers.sh >"$log" 2>&1; then
        echo "layers: 1 passed, 0 failed"
        passed=$((passed + 1))
    else
        cat "$log"
        echo "layers: 0 passed, 1 failed"
        failed=$((failed + 1))
    fi
    for t in "$B"/tests/test_*; do
        [ -x "$t" ] || continue
        case "$t" in *.d|*.o) continue ;; esac
        if [ "$mode" = valgrind ]; then
            valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
                --error-exitcode=99 "$t" >"$log" 2>&1
        else
            "$t" >"$log" 2>&1
        fi
        rc=$?
        p=$(sed -nE 's/^\[  PASSED  \] ([0-9]+) test.*/\1/p' "$log" | tail -n 1)
        f=$(sed -nE 's/^\[  FAILED  \] ([0-9]+) test.*/\1/p' "$log" | tail -n 1)
        p=${p:-0}
        f=${f:-0}
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
        if [ "$f" -ne 0 ]; then cat "$log"; fi
        echo "unit $(basename "$t"): $p passed, $f failed"
        passed=$((passed + p))
        failed=$((failed + f))
    done
fi

# Cron against robfig/cron v3 (needs Go; not under valgrind, where the Go
# reference program would be slow and is no code of ours).
if [ "$mode" = all ] || [ "$mode" = unit-only ]; then
    python3 tests/crondiff/run.py "$B" >"$log" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ]; then cat "$log"; else grep '^crondiff:' "$log"; fi
    count
fi

if [ "$mode" = all ] || [ "$mode" = blackbox-only ] || [ "$mode" = valgrind ]; then
    extra=""
    [ "$mode" = valgrind ] && extra="--valgrind"
    python3 tests/blackbox/run.py --bin "$BIN" $extra 2>&1 | tee "$log"
    count
fi

# The same suite on the memory store with its log and -fsync always, where
# every answer waits for an fsync, then on the PostgreSQL store. Neither
# with DISTRIBUERAD_URL (one running server) nor under valgrind (for time;
# there the log is covered by test_durability and the classes that bring
# a data directory of their own).
if { [ "$mode" = all ] || [ "$mode" = blackbox-only ]; } && [ -z "$DISTRIBUERAD_URL" ]; then
    python3 tests/blackbox/run.py --bin "$BIN" --store log 2>&1 | tee "$log"
    count
    python3 tests/blackbox/run.py --bin "$BIN" --store pg 2>&1 | tee "$log"
    count
fi

if [ "$mode" = all ] || [ "$mode" = blackbox-only ]; then
    node tests/ui/dashboard.test.mjs "$BIN" 2>&1 | tee "$log"
    count
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
