#!/bin/sh
# Checks that each folder of src/ includes only the folders below it
# (docs/HACKING.md, "Layers"): prints each include that breaks the rule
# and exits 1 if there is one.
#   base   nothing of ours          core   base time
#   time   base                     store  base time json core
#   json   base                     http   base time json, and store/store.h
#   cli    base json
cd "$(dirname "$0")/.." || exit 2
allowed() {
    case "$1" in
    base) echo "" ;;
    time|json) echo "base" ;;
    core) echo "base time" ;;
    store) echo "base time json core" ;;
    http) echo "base time json store/store.h" ;;
    cli) echo "base json" ;;
    *) echo "base time json core store http cli" ;;
    esac
}
bad=0
for f in src/*/*.[ch]; do
    dir=$(basename "$(dirname "$f")")
    ok=$(allowed "$dir")
    for inc in $(sed -nE 's/^#include "([a-z]+\/[a-z_0-9]+\.h)".*/\1/p' "$f"); do
        top=${inc%%/*}
        pass=0
        for a in $ok; do
            [ "$a" = "$top" ] || [ "$a" = "$inc" ] && pass=1
        done
        if [ $pass = 0 ]; then
            echo "layers: $f includes $inc ($dir/ may include: ${ok:-nothing of ours})"
            bad=1
        fi
    done
done
exit $bad
