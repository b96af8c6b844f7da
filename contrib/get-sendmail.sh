#!/bin/sh
# contrib/get-sendmail.sh - fetch Debian's Sendmail and unpack it into a
# private directory, for tests/integration/milter_sendmail.py.
#
# Debian's sendmail-bin conflicts with postfix, which the other tests
# need, so it is never installed: its .deb (and sendmail-cf's, for the
# m4 files that build a sendmail.cf) is fetched with `apt-get download`
# and unpacked with `dpkg -x`. The shared libraries the binary needs and
# that are not on the system (libwrap0 on a bare Debian 12) are fetched
# and unpacked beside it; the test runs sendmail with LD_LIBRARY_PATH.
# Nothing outside DIR is written but apt's own download cache.
#
# Usage: contrib/get-sendmail.sh DIR
# Prints the path of the sendmail binary and exits 0 when it is there
# with all its libraries (already, or now); exits 1 with one line on
# stderr saying why not. The test runs it with LD_LIBRARY_PATH set to
# DIR's lib/<multiarch> directories.
set -u

die() { echo "get-sendmail.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: get-sendmail.sh DIR" >&2; exit 2; }
dir=$(mkdir -p "$1" && cd "$1" && pwd) || die "cannot create $1"
sm=$dir/usr/libexec/sendmail/sendmail

# The multiarch library directories of DIR, as LD_LIBRARY_PATH.
libpath() {
	p=""
	for d in "$dir"/usr/lib/*-linux-gnu* "$dir"/lib/*-linux-gnu*; do
		[ -d "$d" ] && p="${p:+$p:}$d"
	done
	echo "$p"
}

# Every library of the binary is found. (Running it is no test: before
# it reads any config, sendmail looks its host name up in DNS.)
runs() {
	[ -x "$sm" ] && [ ! -g "$sm" ] || return 1
	[ -f "$dir/usr/share/sendmail/cf/m4/cf.m4" ] || return 1
	LD_LIBRARY_PATH=$(libpath) ldd "$sm" >/dev/null 2>&1 || return 1
	! LD_LIBRARY_PATH=$(libpath) ldd "$sm" 2>/dev/null | grep -q 'not found'
}

runs && { echo "$sm"; exit 0; }

command -v apt-get >/dev/null || die "no apt-get: not a Debian system"
command -v dpkg >/dev/null || die "no dpkg"
mkdir -p "$dir/debs" || die "cannot create $dir/debs"
cd "$dir/debs" || die "cannot enter $dir/debs"

fetch() {
	# apt-get download as root warns that _apt cannot write here; the
	# download itself works. A missing package list is fetched once.
	apt-get download "$@" >fetch.log 2>&1 && return 0
	[ "$(id -u)" = 0 ] || return 1
	apt-get update -qq >>fetch.log 2>&1 &&
	    apt-get download "$@" >>fetch.log 2>&1
}

fetch sendmail-bin sendmail-cf ||
    die "apt-get download sendmail-bin sendmail-cf failed: $(tail -1 fetch.log)"
for f in sendmail-bin_*.deb sendmail-cf_*.deb; do
	dpkg -x "$f" "$dir" || die "dpkg -x $f failed"
done
[ -x "$sm" ] || die "no $sm in sendmail-bin"
# The binary is setgid mail: the loader would ignore LD_LIBRARY_PATH
# (secure mode), and this private copy needs no group anyway.
chmod g-s "$sm" || die "chmod g-s $sm failed"

# The libraries ldd cannot find, each through the package that ships it.
missing=$(LD_LIBRARY_PATH=$(libpath) ldd "$sm" 2>/dev/null |
    awk '/not found/ { print $1 }')
for lib in $missing; do
	case $lib in
	libwrap.so.*) pkg=libwrap0 ;;
	liblockfile.so.*) pkg=liblockfile1 ;;
	libdb-5.3.so) pkg=libdb5.3 ;;
	libldap-2.5.so.*|liblber-2.5.so.*) pkg=libldap-2.5-0 ;;
	libnsl.so.*) pkg=libnsl2 ;;
	libsasl2.so.*) pkg=libsasl2-2 ;;
	libssl.so.*|libcrypto.so.*) pkg=libssl3 ;;
	libtirpc.so.*) pkg=libtirpc3 ;;
	*) die "sendmail needs $lib, which this script does not know" ;;
	esac
	fetch "$pkg" || die "apt-get download $pkg failed: $(tail -1 fetch.log)"
	for f in "$pkg"_*.deb; do
		dpkg -x "$f" "$dir" || die "dpkg -x $f failed"
	done
done

runs || die "$sm does not run: $(LD_LIBRARY_PATH=$(libpath) ldd "$sm" 2>&1 |
    grep 'not found' | head -1)"
echo "$sm"
