#!/bin/sh
# contrib/test.sh - the project's test command. On Debian 12 as root it
# installs the build and test dependencies that are missing, then builds
# out of tree with -Werror and runs every test (make check). The last line
# it prints is "N passed, N failed", counted over every TAP result.
#
# Usage: contrib/test.sh [extra configure options]
# Environment: BUILD_DIR (default: _build in the source tree).
set -u

src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$src/_build}

DEPS="build-essential autoconf automake libtool pkg-config
libmilter-dev libopendkim-dev libspf2-dev libbsd-dev libhiredis-dev
libunbound-dev libpsl-dev publicsuffix libidn2-dev zlib1g-dev
libjansson-dev libssl-dev openssl python3 python3-dkim
postfix swaks miltertest groff-base mandoc
redis-server redis-tools libxml2-dev libxml2-utils libcurl4-openssl-dev
libmail-dmarc-perl libdbd-sqlite3-perl"

install_deps() {
	missing=""
	for p in $DEPS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "test.sh: missing packages:$missing (install them as root)" >&2
		return 1
	fi
	echo "test.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# Postfix: the tests run private instances; the system one is left
	# unconfigured (no main.cf written, no service started).
	echo "postfix postfix/main_mailer_type select No configuration" |
	    debconf-set-selections
	apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	    $missing >/dev/null
}

summary() {
	# One :test-result: line per TAP result in automake's .trs files.
	passed=0 failed=0
	if [ -d "$build/tests" ]; then
		passed=$(find "$build/tests" -name '*.trs' -exec cat {} + |
		    grep -c '^:test-result: \(PASS\|XFAIL\|SKIP\)')
		failed=$(find "$build/tests" -name '*.trs' -exec cat {} + |
		    grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)')
	fi
	[ "$1" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
	echo "$passed passed, $failed failed"
}

install_deps || { summary 1; exit 1; }
cd "$src" && autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; summary 1; exit 1; }
mkdir -p "$build" && cd "$build" || exit 1
if ! "$src/configure" --enable-werror "$@" >configure.out 2>&1; then
	tail -20 configure.out
	summary 1
	exit 1
fi
if ! make -j"$(nproc)" >make.out 2>&1; then
	grep -E 'error|Error' make.out | head -40
	summary 1
	exit 1
fi
make -j"$(nproc)" check >check.out 2>&1
rc=$?
# make install must work too: into a scratch root, never the system.
if ! make install DESTDIR="$build/destdir" >install.out 2>&1; then
	tail -20 install.out
	rc=1
fi
grep -E '^(FAIL|ERROR|XPASS|SKIP):|^# (TOTAL|PASS|FAIL|SKIP|ERROR)' check.out
if [ $rc -ne 0 ]; then
	for f in $(find tests -name '*.log' ! -name test-suite.log); do
		if grep -q '^not ok\|^Bail out' "$f"; then
			echo "=== $f"
			grep -B2 -A6 '^not ok\|^Bail out' "$f" | head -60
		fi
	done
fi
summary $rc
exit $rc
