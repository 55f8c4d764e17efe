#!/usr/bin/env bash
# bench/original.sh SRC [OUT] -- builds the original Go Distribuerad from a
# checkout of it at SRC into OUT (default bench/out/original), offline: Go
# and the three libraries it uses come from Debian (scripts/deps.sh
# original), pointed at by a go.mod written into a copy of SRC, so nothing
# is downloaded and SRC is not touched. Then the seed scenario runs on it
# too, in the same run as ours:
#
#   BENCH_OTHER='bench/out/original -address 127.0.0.1 -port {port}' make bench
#
# The original's libraries pinned older versions (xid 1.2.1) than
# Debian's (1.4.0); its own code is built as it is.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 SRC [OUT]" >&2; exit 2; }
SRC=$1
OUT=${2:-$(cd "$(dirname "$0")" && pwd)/out/original}
[ -f "$SRC/main.go" ] || { echo "original.sh: $SRC has no main.go: not a checkout of the original" >&2; exit 1; }
"$(dirname "$0")/../scripts/deps.sh" original
GO=/usr/share/gocode/src/github.com
W=$(mktemp -d /tmp/distribuerad-original.XXXXXX)
trap 'rm -rf "$W"' EXIT
cp -r "$SRC"/. "$W/"
rm -f "$W/go.sum"
cat >"$W/go.mod" <<EOF
module distribuerad

go 1.15

require (
	github.com/julienschmidt/httprouter v1.3.0
	github.com/robfig/cron/v3 v3.0.1
	github.com/rs/xid v1.2.1
)

replace github.com/julienschmidt/httprouter => $GO/julienschmidt/httprouter
replace github.com/robfig/cron/v3 => $GO/robfig/cron
replace github.com/rs/xid => $GO/rs/xid
EOF
mkdir -p "$(dirname "$OUT")"
(cd "$W" && GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off GOCACHE="$W/.cache" go build -o "$OUT" .)
echo "original.sh: built $OUT"
