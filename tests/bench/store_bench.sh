#!/bin/sh
# tests/bench/store_bench.sh - runs store_bench against a private
# redis-server in a temporary directory, stopped by PID at the end.
# Usage: store_bench.sh PATH_TO_store_bench [updates [threads [rows
#        [disk|written]]]]
# STORE_STATE=DIR puts the journal there (a tmpfs, say) instead of
# under the temporary directory.
set -u
bin=$1; shift
tmp=$(mktemp -d /tmp/store_bench.XXXXXX)
redis-server --port 0 --unixsocket "$tmp/redis.sock" --unixsocketperm 700 \
    --dir "$tmp" --save "" --appendonly no --daemonize no >"$tmp/redis.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
i=0
until redis-cli -s "$tmp/redis.sock" ping >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 100 ] && { echo "redis-server did not start"; exit 1; }
	sleep 0.1
done
state=${STORE_STATE:-$tmp/state}
"$bin" "unix://$tmp/redis.sock" "$state" "$@"
