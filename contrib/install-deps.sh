#!/bin/sh
# contrib/install-deps.sh - the project's Debian dependencies, in one
# place, and their installation (as root, with apt-get) where missing;
# used by contrib/test.sh and contrib/quickstart.sh, and checked against
# configure.ac and the guide by the doc test.
#
# Usage: install-deps.sh [--list] WHAT...
#   WHAT: build (what configure needs), demo (what the quickstart runs),
#   deb (what builds and checks the Debian package), test (what make
#   check runs, deb included), bench (what make bench-milter compares
#   against), or a package name.
#   --list: print the packages, one a line, and install nothing.
#
# Postfix is preseeded with "No configuration": the tests and the demo
# run private instances, and the system's Postfix stays unconfigured (no
# main.cf, no service). While apt-get runs, a policy-rc.d keeps the
# packages' services (redis-server's) from starting: nothing is left
# running that the caller did not start itself.
# Exit status 0 when nothing is missing any more.

BUILD="build-essential autoconf automake libtool pkg-config
libopendkim-dev libbsd-dev libhiredis-dev
libunbound-dev libpsl-dev publicsuffix libidn2-dev zlib1g-dev
libjansson-dev libxml2-dev libssl-dev libcurl4-openssl-dev
libmicrohttpd-dev"
DEMO="openssl python3 python3-dkim postfix swaks libxml2-utils"
DEB="debhelper dpkg-dev lintian"
TEST="$DEMO $DEB miltertest groff-base mandoc redis-server redis-tools
redis-sentinel libmail-dmarc-perl libdbd-sqlite3-perl valgrind python3-spf
prometheus"
BENCH="$DEMO redis-server opendkim opendmarc unbound"

list=no
if [ "${1:-}" = "--list" ]; then
	list=yes
	shift
fi
pkgs=""
for w in "$@"; do
	case $w in
	build) pkgs="$pkgs $BUILD" ;;
	demo) pkgs="$pkgs $DEMO" ;;
	deb) pkgs="$pkgs $DEB" ;;
	test) pkgs="$pkgs $TEST" ;;
	bench) pkgs="$pkgs $BENCH" ;;
	*) pkgs="$pkgs $w" ;;
	esac
done
if [ "$list" = yes ]; then
	printf '%s\n' $pkgs | sort -u
	exit 0
fi

missing=""
for p in $(printf '%s\n' $pkgs | sort -u); do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "install-deps: missing packages:$missing (install them as root)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections
rcd=/usr/sbin/policy-rc.d
if [ ! -e "$rcd" ]; then
	trap 'rm -f "$rcd"' EXIT INT TERM
	printf '#!/bin/sh\n# install-deps.sh: no service starts\nexit 101\n' \
	    > "$rcd" && chmod 755 "$rcd"
fi
apt-get update -qq && apt-get install -y -qq --no-install-recommends \
    $missing >/dev/null
