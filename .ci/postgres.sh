# shellcheck shell=bash
# A throwaway PostgreSQL server for chatdock's audit-log tests.
#
#   source .ci/postgres.sh        # install (if missing) + start (if not running); exports CHATDOCK_TEST_POSTGRES_URL
#   bash .ci/postgres.sh          # the same, printing the URL (export it yourself)
#   bash .ci/postgres.sh stop     # stop the server and delete its files
#
# The cluster lives under $CHATDOCK_PG_DIR (default /tmp/chatdock-pg): data in data/, the log in server.log and
# the Unix socket in sock/. It listens on that socket only (no TCP port: listen_addresses=''), on "port"
# $CHATDOCK_PG_PORT (default 55432, which only names the socket file), with trust authentication for local
# connections and fsync off: it is for tests and nothing else. Run as root, the server runs as the `postgres`
# user (initdb refuses root); otherwise as the calling user.
#
# Safe to source: it sets no shell options, registers no traps, never calls `exit` while sourced, and its helper
# functions are removed again afterwards. It returns non-zero (and says why on stderr) when the server cannot be
# started; under a caller's `set -e` that stops the caller, as a missing test database should. When sourced,
# the caller's positional arguments are ignored: it always starts.

_cdpg_dir="${CHATDOCK_PG_DIR:-/tmp/chatdock-pg}"
_cdpg_port="${CHATDOCK_PG_PORT:-55432}"
_cdpg_db="chatdock_test"

_cdpg_say() { printf 'postgres.sh: %s\n' "$*" >&2; }

_cdpg_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then
        printf '%s\n' "$dir"
        return 0
    fi
    if command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

_cdpg_install() {
    if _cdpg_bindir >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        _cdpg_say "PostgreSQL is not installed and this is not root: apt-get install -y postgresql"
        return 1
    fi
    _cdpg_say "installing Debian's postgresql package"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1; }; }; then
        _cdpg_say "apt-get install postgresql failed"
        return 1
    fi
    _cdpg_bindir >/dev/null
}

# Run a PostgreSQL tool as the server's owner.
_cdpg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_cdpg_url() {
    printf 'postgresql:///%s?host=%s&port=%s&user=postgres\n' "$_cdpg_db" "$_cdpg_dir/sock" "$_cdpg_port"
}

_cdpg_ready() {
    local bin="$1"
    "$bin/pg_isready" -q -h "$_cdpg_dir/sock" -p "$_cdpg_port" -U postgres >/dev/null 2>&1
}

_cdpg_start() {
    local bin
    _cdpg_install || return 1
    bin="$(_cdpg_bindir)" || return 1
    if ! _cdpg_ready "$bin"; then
        mkdir -p "$_cdpg_dir/sock" || return 1
        if [ "$(id -u)" = 0 ]; then
            chown postgres: "$_cdpg_dir" "$_cdpg_dir/sock" || return 1
        fi
        chmod 0755 "$_cdpg_dir" || return 1
        if [ ! -s "$_cdpg_dir/data/PG_VERSION" ]; then
            rm -rf "$_cdpg_dir/data"
            if ! _cdpg_as_owner "$bin/initdb" -D "$_cdpg_dir/data" -U postgres -A trust -E UTF8 --no-sync \
                >"$_cdpg_dir/initdb.log" 2>&1; then
                _cdpg_say "initdb failed:"
                cat "$_cdpg_dir/initdb.log" >&2
                return 1
            fi
        fi
        if ! _cdpg_as_owner "$bin/pg_ctl" -D "$_cdpg_dir/data" -l "$_cdpg_dir/server.log" -w -t 60 \
            -o "-p $_cdpg_port -k $_cdpg_dir/sock -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null 2>&1; then
            _cdpg_say "the server did not start; its log:"
            tail -n 30 "$_cdpg_dir/server.log" >&2 2>/dev/null
            return 1
        fi
    fi
    if ! "$bin/psql" -h "$_cdpg_dir/sock" -p "$_cdpg_port" -U postgres -d postgres -tAq \
        -c "SELECT 1 FROM pg_database WHERE datname = '$_cdpg_db'" 2>/dev/null | grep -q 1; then
        if ! "$bin/createdb" -h "$_cdpg_dir/sock" -p "$_cdpg_port" -U postgres "$_cdpg_db" >/dev/null 2>&1; then
            _cdpg_say "createdb $_cdpg_db failed"
            return 1
        fi
    fi
    CHATDOCK_TEST_POSTGRES_URL="$(_cdpg_url)"
    export CHATDOCK_TEST_POSTGRES_URL
    printf '%s\n' "$CHATDOCK_TEST_POSTGRES_URL"
    return 0
}

_cdpg_stop() {
    local bin
    if bin="$(_cdpg_bindir)" && [ -s "$_cdpg_dir/data/PG_VERSION" ]; then
        _cdpg_as_owner "$bin/pg_ctl" -D "$_cdpg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$_cdpg_dir"
    _cdpg_say "stopped; $_cdpg_dir removed"
    return 0
}

_cdpg_cleanup() {
    unset -f _cdpg_say _cdpg_bindir _cdpg_install _cdpg_as_owner _cdpg_url _cdpg_ready _cdpg_start _cdpg_stop
    unset -f _cdpg_cleanup
    unset _cdpg_dir _cdpg_port _cdpg_db
}

if [ "${BASH_SOURCE[0]:-$0}" != "$0" ]; then
    # sourced: start, export, return (never exit the caller's shell)
    # (in an && / || list, so a caller's `set -e` cannot fire inside before the cleanup)
    _cdpg_start && _cdpg_status=0 || _cdpg_status=$?
    _cdpg_cleanup
    eval "unset _cdpg_status; return $_cdpg_status"
else
    case "${1:-start}" in
    start) _cdpg_start ;;
    stop) _cdpg_stop ;;
    url) _cdpg_url ;;
    *)
        _cdpg_say "usage: source .ci/postgres.sh | bash .ci/postgres.sh [start|stop|url]"
        false
        ;;
    esac
fi
