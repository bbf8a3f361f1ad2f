#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests and print its URL on stdout.
#
#   tools/start_postgres.sh DIR          start (or reuse) the cluster in DIR; prints postgresql://...
#   tools/start_postgres.sh --stop DIR   stop it (the data stays in DIR; rm -rf DIR to drop it)
#
# Idempotent: a second call with the same DIR prints the same URL (starting the server again if it
# had stopped). Listens on 127.0.0.1 only, on a free port chosen at first start and kept in DIR/port;
# the unix socket lives in DIR too. Local trust authentication: for tests, never for real data.
# Installs Debian's postgresql when no server binaries are found (needs root and apt-get).
# As root the server runs as the "postgres" user (initdb refuses root); otherwise as the caller.
# Everything but the URL goes to stderr, so: export HCC_TEST_POSTGRES_URL="$(tools/start_postgres.sh DIR)"
set -euo pipefail

usage() { echo "usage: $0 [--stop] DIR" >&2; exit 2; }
say() { echo "start_postgres: $*" >&2; }

action=start
if [[ "${1:-}" == "--stop" ]]; then action=stop; shift; fi
[[ $# -eq 1 && -n "$1" ]] || usage
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
data="$dir/data"
log="$dir/server.log"
dbname="${HCC_TEST_POSTGRES_DB:-hcc_test}"

find_bindir() {
  local candidate
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]] && { echo "$candidate"; return 0; }
  done
  return 1
}

bindir="$(find_bindir || true)"
if [[ -z "$bindir" ]]; then
  [[ "$action" == stop ]] && { say "no PostgreSQL installed: nothing to stop"; exit 0; }
  [[ "$(id -u)" == 0 ]] || { say "PostgreSQL is not installed and I am not root: apt-get install postgresql"; exit 1; }
  say "installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bindir="$(find_bindir)" || { say "postgresql installed but no initdb found under /usr/lib/postgresql"; exit 1; }
fi

# run a command as the cluster's owner
if [[ "$(id -u)" == 0 ]]; then
  owner=postgres
  id "$owner" >/dev/null 2>&1 || { say "no 'postgres' user (is Debian's postgresql installed?)"; exit 1; }
  as_owner() { runuser -u "$owner" -- "$@"; }
  chown "$owner": "$dir"
  as_owner test -w "$dir" -a -x "$dir" \
    || { say "user $owner cannot reach $dir (a parent directory is not searchable): use a directory under /tmp"; exit 1; }
else
  owner="$(id -un)"
  as_owner() { "$@"; }
fi

running() { [[ -f "$data/PG_VERSION" ]] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }

if [[ "$action" == stop ]]; then
  if running; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >&2
  else
    say "not running"
  fi
  exit 0
fi

if [[ ! -f "$data/PG_VERSION" ]]; then
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  rm -rf "$data"
  as_owner mkdir -p "$data"
  say "initdb in $data (port $port)"
  as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  cat <<EOF | as_owner tee -a "$data/postgresql.conf" >/dev/null
# tools/start_postgres.sh: a throwaway test cluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  echo "$port" | as_owner tee "$dir/port" >/dev/null
fi
port="$(cat "$dir/port")"

if ! running; then
  as_owner "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start >&2 || { tail -n 30 "$log" >&2; exit 1; }
fi

psql=("$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt)
if [[ "$(as_owner "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$dbname'")" != 1 ]]; then
  as_owner "${psql[@]}" -d postgres -c "CREATE DATABASE \"$dbname\"" >&2
fi

echo "postgresql://postgres@127.0.0.1:$port/$dbname"
