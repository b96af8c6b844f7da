#!/bin/sh
# contrib/install-deps.sh - installs the Debian packages named as
# arguments that are missing (as root, with apt-get); shared by
# contrib/test.sh and contrib/quickstart.sh. Postfix is preseeded with
# "No configuration": the tests and the demo run private instances, and
# the system's Postfix stays unconfigured (no main.cf, no service).
# Exit status 0 when nothing is missing any more.
missing=""
for p in "$@"; do
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
apt-get update -qq && apt-get install -y -qq --no-install-recommends \
    $missing >/dev/null
