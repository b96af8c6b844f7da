#!/bin/sh
# contrib/quickstart.sh - see dmarc-milter at work in ten minutes. On
# Debian 12 as root it installs what the demo needs and is missing
# (apt-get), builds out of tree, and runs the whole pipeline in a private
# sandbox on loopback (contrib/quickstart/demo.py): a private Postfix with
# dmarc-milter as its smtpd milter, the embedded journal as the counters'
# store (a private Redis with --redis), DNS for a few demo domains from
# resolver local-data. It sends six messages, prints what happened to each,
# and builds today's aggregate reports with dmarc-report --dry-run.
#
# Nothing of the system is configured or started: the system's Postfix
# and Redis, if any, are left alone, and no DNS query leaves the machine.
# Everything the demo starts is stopped when it ends, also on Ctrl-C.
#
# Usage: contrib/quickstart.sh [--redis] [--keep] [--no-build]
#                              [--build-dir DIR] [--out DIR]
#   --redis          count into a private redis-server instead of the journal
#   --keep           keep the sandbox directory (configs, queue, state)
#   --no-build       use the programs already built in the build directory
#   --build-dir DIR  default: _build_quickstart in the source tree
#   --out DIR        where the reports, delivered mail and logs are kept
#                    (default: DIR/quickstart in the build directory)
set -u

src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/_build_quickstart
out=""
redis="" keep="" nobuild=""
child="" sandbox=""

usage() {
	echo "usage: contrib/quickstart.sh [--redis] [--keep] [--no-build]" \
	    "[--build-dir DIR] [--out DIR]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--redis) redis=--redis ;;
	--keep) keep=--keep ;;
	--no-build) nobuild=1 ;;
	--build-dir) [ $# -ge 2 ] || usage; build=$2; shift ;;
	--out) [ $# -ge 2 ] || usage; out=$2; shift ;;
	*) usage ;;
	esac
	shift
done
mkdir -p "$build" && build=$(cd "$build" && pwd) || exit 1
out=${out:-$build/quickstart}

# What the build and the demo need (contrib/install-deps.sh has the
# lists); redis-server only with --redis.
DEPS="build demo"
[ -n "$redis" ] && DEPS="$DEPS redis-server"

install_deps() {
	sh "$src/contrib/install-deps.sh" $DEPS
}

build_it() {
	if [ ! -x "$src/configure" ]; then
		echo "quickstart: autoreconf -fi"
		(cd "$src" && autoreconf -fi >/dev/null 2>&1) ||
		    { echo "quickstart: autoreconf failed" >&2; return 1; }
	fi
	cd "$build" || return 1
	if [ ! -f Makefile ]; then
		echo "quickstart: configuring in $build"
		if ! "$src/configure" >configure.out 2>&1; then
			tail -20 configure.out
			return 1
		fi
	fi
	echo "quickstart: building in $build (make -j$(nproc))"
	if ! make -j"$(nproc)" >make.out 2>&1; then
		grep -E 'error|Error' make.out | head -40
		return 1
	fi
}

# Processes of the sandbox: its path in their command line (the milter,
# Redis, Postfix's master) or in their environment (Postfix's daemons
# inherit MAIL_CONFIG). The demo stops them all itself; this is the net
# under it, for a demo that was killed outright.
sandbox_pids() {
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[ "$p" = "$$" ] && continue
		grep -qsF -- "$sandbox" "$d/cmdline" "$d/environ" && echo "$p"
	done
}

cleanup() {
	trap '' INT TERM HUP
	if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
		kill -TERM "$child" 2>/dev/null
		wait "$child"
	fi
	if [ -n "$sandbox" ]; then
		left=$(sandbox_pids)
		if [ -n "$left" ]; then
			echo "quickstart: stopping what is left:" $left >&2
			kill -KILL $left 2>/dev/null
		fi
		[ -n "$keep" ] || rm -rf "$sandbox"
	fi
}

# Ctrl-C reaches the demo too; TERM and HUP are passed on to it. Either
# way it stops its servers, then cleanup runs.
forward() {
	[ -n "$child" ] && kill -TERM "$child" 2>/dev/null
}

if [ "$(id -u)" != 0 ]; then
	echo "quickstart: run me as root: the private Postfix's daemons" \
	    "switch to user postfix" >&2
	exit 1
fi
install_deps || exit 1
if [ -z "$nobuild" ] || [ ! -x "$build/milter/dmarc-milter" ]; then
	build_it || { echo "quickstart: the build failed" >&2; exit 1; }
fi

started=$(date +%s)
sandbox=$(mktemp -d "${TMPDIR:-/tmp}/dmarc-quickstart.XXXXXX") || exit 1
trap cleanup EXIT
trap forward INT TERM HUP
python3 "$src/contrib/quickstart/demo.py" --srcdir "$src" \
    --builddir "$build" --out "$out" --sandbox "$sandbox" $redis $keep &
child=$!
# wait returns early when a trapped signal arrives: wait again until the
# demo has finished its own clean-up.
wait "$child"
rc=$?
while kill -0 "$child" 2>/dev/null; do
	wait "$child"
	rc=$?
done
child=""
if [ "$rc" -eq 0 ]; then
	echo "quickstart: $(($(date +%s) - started)) s after the build; the" \
	    "reports, mail and logs are in $out"
else
	echo "quickstart: stopped (exit status $rc); nothing is left running" >&2
fi
exit $rc
