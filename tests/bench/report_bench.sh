#!/bin/sh
# tests/bench/report_bench.sh - dmarc-report over a full store: fills it
# with MESSAGES counts over DOMAINS policy domains (ROWS distinct rows
# each) through dm_store, then times one dry run that builds every
# report (XML, gzip, mail; rua verified through resolver local-data):
# wall time and peak RSS from /usr/bin/time. Once with the embedded
# journal, once with a private Redis. Prints figures, asserts nothing.
#
# Usage: report_bench.sh BUILDDIR [MESSAGES [DOMAINS [ROWS]]]
# (make bench-report: 1,000,000 messages, 10,000 domains, 20 rows)
set -u
build=$1
msgs=${2:-1000000}
doms=${3:-10000}
rows=${4:-20}
tmp=$(mktemp -d /tmp/report-bench.XXXXXX)
rpid=""
trap '[ -n "$rpid" ] && kill "$rpid" 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM

cat >"$tmp/dns.conf" <<EOD
server:
	module-config: "iterator"
	local-zone: "." refuse
	local-zone: "example." static
	local-data: "example. 300 IN SOA ns.example. h.example. 1 3600 600 86400 300"
EOD
day=$(date -u +%F)
conf() {	# name state [RedisURL]
	{
		echo "StateDir $2"
		echo "DNSConfig $tmp/dns.conf"
		echo "ReportEmail dmarc@receiver.example"
		if [ -n "${3:-}" ]; then echo "RedisURL $3"; fi
	} >"$tmp/$1.conf"
}
run() {	# name
	mkdir -p "$tmp/out-$1"
	/usr/bin/time -f "%e %M" -o "$tmp/time-$1" "$build/report/dmarc-report" \
	    -c "$tmp/$1.conf" --dry-run "$tmp/out-$1" --day "$day" \
	    2>"$tmp/log-$1" || { tail -5 "$tmp/log-$1"; return 1; }
	read -r secs kib <"$tmp/time-$1"
	n=$(ls "$tmp/out-$1" | grep -c '\.xml\.gz$')
	bytes=$(du -sk "$tmp/out-$1" | cut -f1)
	echo "dmarc-report ($1): $n reports in $secs s wall, peak RSS $kib KiB," \
	    "$bytes KiB written"
}

echo "report_bench: $msgs messages, $doms domains, $rows rows per domain;" \
    "$(nproc) CPUs, $(uname -r)"
"$build/tests/bench/report_fill" - "$tmp/jstate" "$msgs" "$doms" "$rows" &&
    conf journal "$tmp/jstate" && run journal

redis-server --port 0 --unixsocket "$tmp/redis.sock" --dir "$tmp" \
    --save '' --appendonly no --daemonize no >"$tmp/redis.log" 2>&1 &
rpid=$!
i=0
while [ ! -S "$tmp/redis.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
"$build/tests/bench/report_fill" "unix://$tmp/redis.sock" "$tmp/rstate" \
    "$msgs" "$doms" "$rows" 2>/dev/null &&
    conf redis "$tmp/rstate" "unix://$tmp/redis.sock" && run redis
