#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL server.
#
#   scripts/with-postgres.sh CMD [ARG...]
#
# Starts a private PostgreSQL (data in a temporary directory, listening on
# 127.0.0.1 only, on a free port, with durability switched off for speed unless
# PG_DURABLE=1, as benchmarks want it),
# creates the database "ledgerguard", exports
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:PORT/ledgerguard
#
# runs CMD, then stops the server and deletes its data whatever happens
# (success, failure, Ctrl-C), and exits with CMD's status.
#
# Binaries: $PG_BINDIR if set, else `pg_config --bindir`, else the newest
# /usr/lib/postgresql/*/bin, else the directory of `initdb` on PATH. When none
# is found and we are root on Debian/Ubuntu, the `postgresql` package is
# installed with apt-get. As root, the server runs as the `postgres` user
# (initdb and postgres refuse to run as root).
set -euo pipefail

me="with-postgres"
say() { printf '%s: %s\n' "$me" "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARG...]" >&2
    exit 2
fi

# --- find the server binaries -------------------------------------------------

has_server() { [ -n "${1:-}" ] && [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ]; }

find_bindir() {
    local dir
    if [ -n "${PG_BINDIR:-}" ]; then
        has_server "$PG_BINDIR" && { echo "$PG_BINDIR"; return 0; }
        say "PG_BINDIR=$PG_BINDIR has no initdb/pg_ctl/postgres; looking elsewhere"
    fi
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        has_server "$dir" && { echo "$dir"; return 0; }
    fi
    # Newest major version first (an unmatched glob stays literal and fails has_server).
    dir="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    has_server "$dir" && { echo "$dir"; return 0; }
    if command -v initdb >/dev/null 2>&1; then
        dir="$(dirname "$(command -v initdb)")"
        has_server "$dir" && { echo "$dir"; return 0; }
    fi
    return 1
}

if ! BINDIR="$(find_bindir)"; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "no PostgreSQL server binaries found; installing the 'postgresql' package with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends postgresql >&2
        BINDIR="$(find_bindir)" || die "installed 'postgresql' but still cannot find initdb/pg_ctl/postgres"
    else
        die "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found. Install PostgreSQL (Debian/Ubuntu: apt-get install postgresql), put its bin directory on PATH, or set PG_BINDIR."
    fi
fi

# --- who runs the server --------------------------------------------------------

if [ "$(id -u)" -eq 0 ]; then
    PG_OS_USER=postgres
    if ! id "$PG_OS_USER" >/dev/null 2>&1; then
        say "creating system user '$PG_OS_USER' to run the server (PostgreSQL refuses to run as root)"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER" ||
            die "cannot create the '$PG_OS_USER' user"
    fi
    if command -v runuser >/dev/null 2>&1; then
        as_pg() { runuser -u "$PG_OS_USER" -- "$@"; }
    else
        as_pg() { su "$PG_OS_USER" -s /bin/bash -c "$(printf '%q ' "$@")"; }
    fi
else
    PG_OS_USER="$(id -un)"
    as_pg() { "$@"; }
fi

# --- temporary directory ----------------------------------------------------------

TMP_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/ledgerguard-pg.XXXXXX")"
STARTED=0
PORT=""

# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ "$STARTED" -eq 1 ]; then
        # The data is thrown away, so an immediate stop is enough.
        if ! (cd "$TMP_ROOT" && as_pg "$BINDIR/pg_ctl" -D "$TMP_ROOT/data" -m immediate -w -t 30 stop) >/dev/null 2>&1; then
            local pid
            pid="$(head -n 1 "$TMP_ROOT/data/postmaster.pid" 2>/dev/null || true)"
            if [ -n "$pid" ]; then
                say "pg_ctl stop failed; killing postmaster $pid"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        say "stopped PostgreSQL on 127.0.0.1:$PORT and removed its data"
    fi
    rm -rf "$TMP_ROOT"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ "$PG_OS_USER" != "$(id -un)" ]; then
    chown "$PG_OS_USER" "$TMP_ROOT"
    if ! as_pg test -w "$TMP_ROOT"; then
        # e.g. TMPDIR under /root: the postgres user cannot reach it.
        rmdir "$TMP_ROOT"
        TMP_ROOT="$(mktemp -d /tmp/ledgerguard-pg.XXXXXX)"
        chown "$PG_OS_USER" "$TMP_ROOT"
        as_pg test -w "$TMP_ROOT" || die "user '$PG_OS_USER' cannot write to $TMP_ROOT"
    fi
fi
chmod 700 "$TMP_ROOT"

# Every server-side command runs from inside the temporary directory, so the
# postgres user never needs to read the caller's working directory.
in_tmp() { (cd "$TMP_ROOT" && as_pg "$@"); }

in_tmp mkdir -m 700 "$TMP_ROOT/socket"
in_tmp "$BINDIR/initdb" -D "$TMP_ROOT/data" -U postgres --auth=trust -E UTF8 --locale=C \
    >"$TMP_ROOT/initdb.log" 2>&1 || {
    cat "$TMP_ROOT/initdb.log" >&2
    die "initdb failed"
}

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    else
        echo $((20000 + RANDOM % 40000))
    fi
}

# --- start -------------------------------------------------------------------------

# pg_stat_statements (the top statements of docs/monitoring.md's snapshots) must be preloaded;
# a server built without it starts without it, and the snapshots note that it is missing.
PRELOAD=""
PKGLIBDIR="$("$BINDIR/pg_config" --pkglibdir 2>/dev/null || echo "$BINDIR/../lib")"
if [ -f "$PKGLIBDIR/pg_stat_statements.so" ]; then
    PRELOAD="-c shared_preload_libraries=pg_stat_statements"
else
    say "pg_stat_statements not found in $PKGLIBDIR; starting without it"
fi

LOG="$TMP_ROOT/postgres.log"
for attempt in 1 2 3; do
    PORT="$(free_port)"
    opts="-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$TMP_ROOT/socket"
    opts="$opts -c max_connections=200"
    if [ "${PG_DURABLE:-0}" != 1 ]; then
        opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    opts="$opts $PRELOAD"
    if in_tmp "$BINDIR/pg_ctl" -D "$TMP_ROOT/data" -l "$LOG" -o "$opts" -w -t 60 start \
        >"$TMP_ROOT/pg_ctl.out" 2>&1; then
        STARTED=1
        break
    fi
    # A failed start can leave a postmaster behind only if it came up after
    # the wait timed out; make sure it is gone before retrying.
    in_tmp "$BINDIR/pg_ctl" -D "$TMP_ROOT/data" -m immediate -w stop >/dev/null 2>&1 || true
    say "PostgreSQL did not start on port $PORT (attempt $attempt of 3). pg_ctl said:"
    sed 's/^/    /' "$TMP_ROOT/pg_ctl.out" >&2 || true
    say "last lines of the server log ($LOG):"
    if [ -s "$LOG" ]; then tail -n 20 "$LOG" | sed 's/^/    /' >&2; else echo "    (empty)" >&2; fi
    # Only a port taken between choosing it and binding it is worth a retry.
    grep -qiE 'could not bind|address already in use|could not create any TCP/IP sockets' "$LOG" 2>/dev/null || break
    mv "$LOG" "$LOG.attempt$attempt"
done
[ "$STARTED" -eq 1 ] || die "could not start PostgreSQL from $BINDIR"

VERSION="$("$BINDIR/postgres" --version 2>/dev/null | sed 's/^postgres (PostgreSQL) //' || true)"
say "started PostgreSQL ${VERSION:-?} ($BINDIR) on 127.0.0.1:$PORT, data in $TMP_ROOT"

# In template1, so that ledgerguard and the test databases made from it have the extension.
if [ -n "$PRELOAD" ] && [ -x "$BINDIR/psql" ]; then
    "$BINDIR/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d template1 \
        -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null
fi

if [ -x "$BINDIR/createdb" ]; then
    "$BINDIR/createdb" -h 127.0.0.1 -p "$PORT" -U postgres ledgerguard
elif [ -x "$BINDIR/psql" ]; then
    "$BINDIR/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c 'CREATE DATABASE ledgerguard'
elif command -v createdb >/dev/null 2>&1; then
    createdb -h 127.0.0.1 -p "$PORT" -U postgres ledgerguard
else
    die "neither createdb nor psql found to create the database"
fi

export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/ledgerguard"

# --- run the command -----------------------------------------------------------------

set +e
"$@"
status=$?
set -e
exit "$status"
