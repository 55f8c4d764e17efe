#!/bin/sh
# pgctl.sh -- a throwaway PostgreSQL 15 for the tests.
#
#   tests/pg/pgctl.sh start [DIR]   make a cluster in DIR (default: a new temp
#                                   dir), start it, print DIR on stdout
#   tests/pg/pgctl.sh url DIR       print the libpq URL of the cluster in DIR
#   tests/pg/pgctl.sh stop DIR      stop it (fast, then immediate, then
#                                   SIGKILL) and remove DIR
#   tests/pg/pgctl.sh restart DIR [MODE]  pg_ctl restart (-m MODE, default fast)
#
# The server listens on a Unix socket in DIR/sock only (no TCP), trusts local
# connections (except the role pw_user, which needs a password), and keeps
# its data in DIR/data with fsync off (a crash of the database process is
# still survivable; one of the whole machine is not, and tests do not need
# that). As root (CI runs as root) it runs as the user
# `postgres` through runuser, since PostgreSQL refuses to run as root; DIR is
# then owned by that user. The binaries come from Debian's postgresql-15
# (PGBIN overrides /usr/lib/postgresql/15/bin).
set -eu
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}

as_owner() { # runs "$@" as the cluster's owner
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

die() { echo "pgctl: $*" >&2; exit 1; }

need_dir() { [ -n "$dir" ] && [ -d "$dir" ] || die "no cluster directory given (or it does not exist): '$dir'"; }

start() {
    [ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb not found: install postgresql-15 (scripts/deps.sh test)"
    if [ -z "$dir" ]; then
        dir=$(mktemp -d "${TMPDIR:-/tmp}/distribuerad-pg-XXXXXX")
    fi
    mkdir -p "$dir/sock"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root needs the user postgres (from postgresql-15)"
        chown -R postgres: "$dir"
        chmod 755 "$dir"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
            >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
        # Everyone is trusted on the socket except the role pw_user, which
        # needs its password: the tests of a wrong password use it.
        printf 'local all pw_user scram-sha-256\nlocal all all trust\n' >"$dir/hba"
        as_owner cp "$dir/hba" "$dir/data/pg_hba.conf"
    fi
    # listen_addresses='' : the Unix socket only. Small buffers: several test
    # clusters may run at once on a small machine.
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
        "-c listen_addresses='' -c unix_socket_directories='$dir/sock' -c fsync=off \
         -c full_page_writes=off -c synchronous_commit=on -c shared_buffers=32MB \
         -c max_connections=300 -c max_locks_per_transaction=256" >/dev/null ||
        { cat "$dir/server.log" >&2; die "pg_ctl start failed"; }
    echo "$dir"
}

url() {
    need_dir
    echo "postgresql:///postgres?host=$dir/sock&user=postgres"
}

stop() {
    need_dir
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$dir/data" -w -t 20 stop -m fast >/dev/null 2>&1 ||
            as_owner "$PGBIN/pg_ctl" -D "$dir/data" -w -t 10 stop -m immediate >/dev/null 2>&1 || true
        if [ -f "$dir/data/postmaster.pid" ]; then
            pid=$(head -n 1 "$dir/data/postmaster.pid")
            [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
}

restart() {
    need_dir
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -w -t 60 restart -m "${1:-fast}" >/dev/null
}

case "$cmd" in
start) start ;;
url) url ;;
stop) stop ;;
restart) restart "${3:-fast}" ;;
*) echo "usage: $0 start [DIR] | url DIR | stop DIR | restart DIR [fast|immediate]" >&2; exit 2 ;;
esac
