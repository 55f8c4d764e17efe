#!/bin/sh
# Installs the Debian packages Distribuerad needs to build and test.
# As root it runs apt-get; otherwise it prints the exact command to run.
# Usage: scripts/deps.sh [build|test|bench|original]   (default: test)
set -e
what=${1:-test}
pkgs="build-essential pkg-config libh2o-evloop-dev libssl-dev libpq-dev tzdata libcurl4-openssl-dev"
# libjansson-dev: the unit tests and fuzz targets check our JSON parser and
# writer against jansson; the server does not link it.
case "$what" in
  build) ;;
  test) pkgs="$pkgs libjansson-dev libcmocka-dev python3 curl valgrind clang libclang-rt-14-dev openssl prometheus util-linux"
        # the PostgreSQL store's tests; libfaketime moves a server's clock
        pkgs="$pkgs postgresql-15 faketime"
        # tests/crondiff: our cron against robfig/cron's, built offline from Debian's source
        pkgs="$pkgs golang-go golang-github-robfig-cron-dev"
        # the OpenAPI checks, deploy/ checks and the dashboard's browser test
        pkgs="$pkgs python3-jsonschema python3-yaml chromium"
        # the systemd unit and the man pages (tests/blackbox/test_packaging.py)
        pkgs="$pkgs systemd groff-base" ;;
  bench) pkgs="$pkgs libcmocka-dev python3 curl beanstalkd postgresql-15" ;;
  # bench/original.sh: the original Go server, built offline
  original) pkgs="golang-go golang-github-julienschmidt-httprouter-dev golang-github-robfig-cron-dev golang-github-rs-xid-dev" ;;
  *) echo "usage: $0 [build|test|bench|original]" >&2; exit 2 ;;
esac
# npm packages of tests/ui (playwright-core, the OpenAPI meta-schemas), as
# pinned by its package-lock.json; installed again only when that changes.
ui_packages() {
  dir=$(dirname "$0")/../tests/ui
  [ "$(cat "$dir/node_modules/.lock-stamp" 2>/dev/null)" = "$(cksum <"$dir/package-lock.json")" ] && return 0
  echo "deps: npm ci in tests/ui" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  cksum <"$dir/package-lock.json" >"$dir/node_modules/.lock-stamp"
}
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done
# Node.js may come from elsewhere than Debian (its own npm then): only a
# missing node or npm asks for Debian's.
if [ "$what" = test ]; then
  command -v node >/dev/null 2>&1 || missing="$missing nodejs"
  command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
[ -z "$missing" ] && { [ "$what" != test ] || ui_packages; exit; }
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  [ "$what" != test ] || ui_packages
else
  echo "deps: missing packages:$missing" >&2
  echo "deps: run:  sudo apt-get update && sudo apt-get install -y$missing" >&2
  exit 1
fi
