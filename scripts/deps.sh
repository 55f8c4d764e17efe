#!/bin/sh
# Installs the Debian packages Distribuerad needs to build and test.
# As root it runs apt-get; otherwise it prints the exact command to run.
# Usage: scripts/deps.sh [build|test|bench]   (default: test)
set -e
what=${1:-test}
pkgs="build-essential pkg-config libh2o-evloop-dev libssl-dev libpq-dev tzdata"
# libjansson-dev: the unit tests and fuzz targets check our JSON parser and
# writer against jansson; the server does not link it.
case "$what" in
  build) ;;
  test) pkgs="$pkgs libjansson-dev libcmocka-dev python3 curl valgrind clang libclang-rt-14-dev openssl prometheus util-linux postgresql-15 faketime" ;;
  bench) pkgs="$pkgs libcmocka-dev python3 curl beanstalkd" ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "deps: missing packages:$missing" >&2
  echo "deps: run:  sudo apt-get update && sudo apt-get install -y$missing" >&2
  exit 1
fi
