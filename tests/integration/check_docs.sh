#!/bin/sh
# tests/integration/check_docs.sh - keeps the documentation and contrib/
# files of dmarc-milter complete and true to the code.
#
# The option table of lib/config.c (name, type, default, bounds, values)
# is the truth. For every option it checks that dmarc-milter.conf(5)
# documents it (heading, Type: and Default: lines that match the table)
# and that contrib/dmarc-milter.conf lists it once, with its type and
# default; that neither documents an option the table does not have; that
# dmarc-check (and dmarc-milter -n, when built) accepts the sample as
# shipped and with every option line uncommented, so each documented
# default is a value the parser takes; that the man pages format without
# warnings; that the Postfix, Sendmail and systemd files parse and agree
# with the default socket.
#
# POSIX sh, TAP. Environment: srcdir, builddir (absolute; automake sets
# them), else the tree this script is in. Needs: awk, sed, grep. Uses when
# present, else SKIPs: groff (Debian: groff-base) or mandoc, postconf
# (postfix), m4, systemd-analyze (systemd).

LC_ALL=C	# sort and comm must agree on the order
export LC_ALL
here=$(cd "$(dirname "$0")" && pwd)
srcdir=${srcdir:-$(cd "$here/../.." && pwd)}
builddir=${builddir:-$srcdir}

config_c=$srcdir/lib/config.c
config_h=$srcdir/include/dm_config.h
conf5=$srcdir/man/dmarc-milter.conf.5
sample=$srcdir/contrib/dmarc-milter.conf
check=$builddir/tools/dmarc-check
milter=$builddir/milter/dmarc-milter
tab=$(printf '\t')

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_docs.XXXXXX") || {
	echo "Bail out! mktemp failed"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

n=0
# printf, not echo: dash's echo would read the backslashes of roff text.
ok() {
	n=$((n + 1))
	printf 'ok %d - %s\n' "$n" "$1"
}
notok() {
	n=$((n + 1))
	printf 'not ok %d - %s\n' "$n" "$1"
	shift
	for line in "$@"; do
		printf '# %s\n' "$line"
	done
}
skip() {
	n=$((n + 1))
	printf 'ok %d - %s # SKIP %s\n' "$n" "$1" "$2"
}
# Diagnostics from a file, as TAP comments.
diag_file() {
	sed 's/^/# /' "$1" | head -20
}
have() {
	command -v "$1" >/dev/null 2>&1
}

for f in "$config_c" "$config_h" "$conf5" "$sample"; do
	if [ ! -r "$f" ]; then
		echo "Bail out! cannot read $f"
		exit 1
	fi
done

# --- the option table ------------------------------------------------------
# One line per option: name, type, default kind (lit, none, ident),
# default, min, max, allowed values ("a, b, c"); "-" for an empty field
# (tab-separated fields may not be empty for read).
awk '
function unq(s) { sub(/^[ \t]*"/, "", s); sub(/"[ \t]*$/, "", s); return s }
function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
function octal(s) { sub(/^0+/, "", s); return s == "" ? "0" : s }
{ all = all " " $0 }
/cfg_table\[DM_OPT_COUNT\] = \{/ { on = 1; next }
on && /^};/ { on = 0 }
on { buf = buf " " $0 }
END {
	s = all
	while (match(s, /static const char \*const [A-Za-z_0-9]+\[\] = \{[^}]*\}/)) {
		e = substr(s, RSTART, RLENGTH)
		s = substr(s, RSTART + RLENGTH)
		arr = e
		sub(/^static const char \*const /, "", arr)
		sub(/\[.*/, "", arr)
		v = ""
		while (match(e, /"[^"]*"/)) {
			v = v (v == "" ? "" : ", ") substr(e, RSTART + 1, RLENGTH - 2)
			e = substr(e, RSTART + RLENGTH)
		}
		vals[arr] = v
	}
	s = buf
	while (match(s, /\{[ \t]*DM_OPT_[A-Z_]+[ \t]*,[ \t]*"[^"]*"[ \t]*,[ \t]*CFG_[A-Z]+[ \t]*,[ \t]*(NULL|"[^"]*"|[A-Za-z_][A-Za-z0-9_]*)[ \t]*,[ \t]*[-0-9A-Za-z_]+[ \t]*,[ \t]*[-0-9A-Za-z_]+[ \t]*,[ \t]*[A-Za-z_][A-Za-z0-9_]*/)) {
		e = substr(s, RSTART, RLENGTH)
		s = substr(s, RSTART + RLENGTH)
		sub(/^\{/, "", e)
		nf = split(e, f, ",")
		# A default string may hold commas: the fields around it are fixed.
		name = unq(f[2]); type = trim(f[3]); sub(/^CFG_/, "", type)
		names = trim(f[nf]); max = trim(f[nf - 1]); min = trim(f[nf - 2])
		def = f[4]
		for (i = 5; i <= nf - 3; i++)
			def = def "," f[i]
		def = trim(def)
		if (def == "NULL") { kind = "none"; def = "-" }
		else if (def ~ /^"/) { kind = "lit"; def = unq(def) }
		else kind = "ident"
		if (type == "OCTAL") { min = octal(min); max = octal(max) }
		v = (names in vals) ? vals[names] : "-"
		print name "\t" type "\t" kind "\t" def "\t" min "\t" max "\t" v
	}
}' "$config_c" >"$tmp/table"

nopts=$(wc -l <"$tmp/table")
nenum=$(grep -c '^[[:space:]]*DM_OPT_[A-Z_]*\( = 0\)\{0,1\},' "$config_h")
if [ "$nopts" -gt 0 ] && [ "$nopts" -eq "$nenum" ]; then
	ok "lib/config.c: the table's $nopts options parsed (dm_config.h declares $nenum)"
else
	notok "lib/config.c: the table's options parsed" \
	    "parsed $nopts entries, dm_config.h declares $nenum options" \
	    "the table format changed: adjust the awk program of this test"
fi
cut -f1 "$tmp/table" | sort >"$tmp/table-names"

# Expected texts for one option (after: IFS=tab read name type kind def
# min max vals <table line>).
man_type() {
	case $type in
	STR) echo "string|list" ;;
	INT) echo "integer, $min to $max." ;;
	OCTAL) echo "octal, $min to $max." ;;
	BOOL) echo "boolean." ;;
	ENUM) echo "enumeration: $vals." ;;
	*) echo "?" ;;
	esac
}
sample_type() {
	case $type in
	STR) echo "string|list" ;;
	INT) echo "integer, $min to $max" ;;
	OCTAL) echo "octal, $min to $max" ;;
	BOOL) echo "yes/no" ;;
	ENUM) echo "$vals" ;;
	*) echo "?" ;;
	esac
}
# roff source of a literal value: '-' is written '\-'.
roff_escape() {
	printf '%s' "$1" | sed 's/-/\\-/g'
}

# --- dmarc-milter.conf(5) ----------------------------------------------------
# One line per option heading (".TP" then ".BI Name ...") in the OPTIONS
# section: name, its "Type:" line, its "Default:" line.
awk '
function flush() {
	if (cur != "")
		print cur "\t" (typ == "" ? "-" : typ) "\t" (dfl == "" ? "-" : dfl)
	cur = ""; typ = ""; dfl = ""
}
/^\.SH / { flush(); in_opts = ($0 ~ /^\.SH OPTIONS/); prev = $0; next }
!in_opts { next }
/^\.SS / { flush(); prev = $0; next }
/^\.BI [A-Za-z][A-Za-z0-9]*([ \t]|$)/ && prev == ".TP" { flush(); cur = $2 }
cur != "" && /^Type: / && typ == "" { typ = $0 }
cur != "" && /^Default: / && dfl == "" { dfl = $0 }
{ prev = $0 }
END { flush() }' "$conf5" >"$tmp/man-opts"

while IFS=$tab read -r name type kind def min max vals; do
	line=$(awk -F"$tab" -v n="$name" '$1 == n' "$tmp/man-opts")
	count=$(awk -F"$tab" -v n="$name" '$1 == n' "$tmp/man-opts" | wc -l)
	if [ "$count" -eq 0 ]; then
		notok "dmarc-milter.conf.5 documents $name" \
		    "no \".TP\" + \".BI $name ...\" heading under OPTIONS"
		continue
	fi
	why=""
	[ "$count" -gt 1 ] && why="heading appears $count times"
	mtype=$(printf '%s\n' "$line" | head -1 | cut -f2)
	mdef=$(printf '%s\n' "$line" | head -1 | cut -f3)
	want=$(man_type)
	case $type in
	STR) [ "$mtype" = "Type: string." ] || [ "$mtype" = "Type: list." ] ||
	    why="$why${why:+; }type line '$mtype', want 'Type: string.' or 'Type: list.'" ;;
	*) [ "$mtype" = "Type: $want" ] ||
	    why="$why${why:+; }type line '$mtype', want 'Type: $want'" ;;
	esac
	case $kind in
	lit)
		wdef="Default: \\fB$(roff_escape "$def")\\fR"
		case $mdef in
		"$wdef."*|"$wdef "*) ;;
		*) why="$why${why:+; }default line '$mdef', want '$wdef.'" ;;
		esac ;;
	none)
		case $mdef in
		"Default: none"*) ;;
		*) why="$why${why:+; }default line '$mdef', want 'Default: none...' (no default in the table)" ;;
		esac ;;
	ident)
		# Set at build time (configure): only its presence is checked.
		[ "$mdef" != "-" ] || why="$why${why:+; }no Default: line" ;;
	esac
	if [ -z "$why" ]; then
		ok "dmarc-milter.conf.5 documents $name with its type and default"
	else
		notok "dmarc-milter.conf.5 documents $name with its type and default" "$why"
	fi
done <"$tmp/table"

cut -f1 "$tmp/man-opts" | sort -u >"$tmp/man-names"
stale=$(comm -13 "$tmp/table-names" "$tmp/man-names" | tr '\n' ' ')
if [ -z "$stale" ]; then
	ok "dmarc-milter.conf.5 documents no option the table lacks"
else
	notok "dmarc-milter.conf.5 documents no option the table lacks" \
	    "documented but not in lib/config.c: $stale"
fi

# --- contrib/dmarc-milter.conf -------------------------------------------------
# One line per option line ("Name value" or "#Name value"): name, the
# type in its "# Name (type):" comment, its "# Default:" comment, value.
awk '
function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
/^[ \t]*$/ { hname = ""; htype = ""; dfl = ""; next }
/^# [A-Za-z][A-Za-z0-9]* \([^)]*\):/ {
	hname = $2
	htype = $0
	sub(/^[^(]*\(/, "", htype)
	sub(/\):.*/, "", htype)
	next
}
/^# Default: / { dfl = trim(substr($0, 12)); next }
/^#?[A-Za-z][A-Za-z0-9]*([ \t]|$)/ {
	line = $0
	sub(/^#/, "", line)
	name = line
	sub(/[ \t].*/, "", name)
	val = line
	sub(/^[A-Za-z0-9]+/, "", val)
	val = trim(val)
	print name "\t" (hname == name ? htype : "-") "\t" (dfl == "" ? "-" : dfl) "\t" (val == "" ? "-" : val)
}' "$sample" >"$tmp/sample-opts"

while IFS=$tab read -r name type kind def min max vals; do
	count=$(awk -F"$tab" -v n="$name" '$1 == n' "$tmp/sample-opts" | wc -l)
	if [ "$count" -eq 0 ]; then
		notok "contrib/dmarc-milter.conf lists $name" \
		    "no \"#$name value\" or \"$name value\" line"
		continue
	fi
	line=$(awk -F"$tab" -v n="$name" '$1 == n' "$tmp/sample-opts" | head -1)
	stype=$(printf '%s\n' "$line" | cut -f2)
	sdef=$(printf '%s\n' "$line" | cut -f3)
	sval=$(printf '%s\n' "$line" | cut -f4)
	why=""
	[ "$count" -gt 1 ] && why="listed $count times"
	want=$(sample_type)
	case $type in
	STR) [ "$stype" = "string" ] || [ "$stype" = "list" ] ||
	    why="$why${why:+; }comment '# $name ($stype):', want (string) or (list)" ;;
	*) [ "$stype" = "$want" ] ||
	    why="$why${why:+; }comment '# $name ($stype):', want '# $name ($want):'" ;;
	esac
	case $kind in
	lit)
		case $sdef in
		"$def"|"$def "*) ;;
		*) why="$why${why:+; }'# Default: $sdef', want '# Default: $def'" ;;
		esac
		[ "$sval" = "$def" ] ||
		    why="$why${why:+; }line value '$sval' is not the default '$def'" ;;
	none)
		case $sdef in
		none*) ;;
		*) why="$why${why:+; }'# Default: $sdef', want '# Default: none...'" ;;
		esac ;;
	ident)
		[ "$sdef" != "-" ] || why="$why${why:+; }no '# Default:' comment" ;;
	esac
	if [ -z "$why" ]; then
		ok "contrib/dmarc-milter.conf lists $name with its doc and default"
	else
		notok "contrib/dmarc-milter.conf lists $name with its doc and default" "$why"
	fi
done <"$tmp/table"

cut -f1 "$tmp/sample-opts" | sort -u >"$tmp/sample-names"
stale=$(comm -13 "$tmp/table-names" "$tmp/sample-names" | tr '\n' ' ')
if [ -z "$stale" ]; then
	ok "contrib/dmarc-milter.conf lists no option the table lacks"
else
	notok "contrib/dmarc-milter.conf lists no option the table lacks" \
	    "listed but not in lib/config.c: $stale"
fi

# --- the sample is accepted as shipped and fully uncommented -------------------
cat >"$tmp/unbound.conf" <<'EOF'
# check_docs.sh: one DMARC and one SPF record, nothing from outside.
server:
	verbosity: 0
	module-config: "iterator"
	local-zone: "." refuse
	local-zone: "example." static
	local-data: 'example.com. IN TXT "v=spf1 ip4:192.0.2.1 -all"'
	local-data: '_dmarc.example.com. IN TXT "v=DMARC1; p=reject"'
EOF
printf 'From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: docs test\r\nMessage-ID: <docs@example.com>\r\n\r\nHello.\r\n' \
    >"$tmp/msg.eml"
# Every "#Name value" line uncommented: each default and example in force.
sed 's/^#\([A-Za-z]\)/\1/' "$sample" >"$tmp/sample-full.conf"
cp "$sample" "$tmp/sample.conf"
printf 'NoSuchOption yes\n' | cat "$sample" - >"$tmp/sample-bad.conf"

# run_check CONF: dmarc-check on the trivial message; out, err, rc.
run_check() {
	"$check" -c "$1" --ip 192.0.2.1 --mail-from alice@example.com \
	    --dns-config "$tmp/unbound.conf" "$tmp/msg.eml" \
	    >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

if [ ! -x "$check" ]; then
	skip "dmarc-check accepts contrib/dmarc-milter.conf" "$check not built"
	skip "dmarc-check accepts contrib/dmarc-milter.conf fully uncommented" "$check not built"
	skip "dmarc-check refuses an unknown option (the check can fail)" "$check not built"
else
	run_check "$tmp/sample.conf"
	if [ "$rc" -eq 0 ] && grep -q '^Authentication-Results: ' "$tmp/out" &&
	    grep -q 'dmarc=pass' "$tmp/out"; then
		ok "dmarc-check accepts contrib/dmarc-milter.conf"
	else
		notok "dmarc-check accepts contrib/dmarc-milter.conf" \
		    "exit status $rc, want 0 and an A-R header with dmarc=pass"
		diag_file "$tmp/err"
		diag_file "$tmp/out"
	fi

	# The A-R must carry the sample's AuthservID: proof the file was read.
	authserv=$(sed -n 's/^AuthservID[ \t]\{1,\}\([^ \t#]*\).*/\1/p' \
	    "$tmp/sample-full.conf" | tail -1)
	run_check "$tmp/sample-full.conf"
	if [ "$rc" -eq 0 ] && [ -n "$authserv" ] &&
	    grep -q "^Authentication-Results: $authserv;" "$tmp/out" &&
	    grep -q 'dmarc=pass' "$tmp/out"; then
		ok "dmarc-check accepts contrib/dmarc-milter.conf fully uncommented"
	else
		notok "dmarc-check accepts contrib/dmarc-milter.conf fully uncommented" \
		    "exit status $rc, want 0 and 'Authentication-Results: $authserv;' with dmarc=pass"
		diag_file "$tmp/err"
		diag_file "$tmp/out"
	fi

	run_check "$tmp/sample-bad.conf"
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ] &&
	    grep -q "sample-bad.conf:[0-9]*: unknown option 'NoSuchOption'" "$tmp/err"; then
		ok "dmarc-check refuses an unknown option (the check can fail)"
	else
		notok "dmarc-check refuses an unknown option (the check can fail)" \
		    "exit status $rc with $lines lines on stderr, want 2 and one line naming file:line"
		diag_file "$tmp/err"
	fi
fi

# dmarc-milter -n also checks what dmarc-check does not (SyslogFacility).
# The sample's DNSConfig names a file of the target system: the last
# setting wins, so one more line points it at the test's.
if [ ! -x "$milter" ]; then
	skip "dmarc-milter -n accepts contrib/dmarc-milter.conf" "$milter not built"
	skip "dmarc-milter -n accepts contrib/dmarc-milter.conf fully uncommented" "$milter not built"
else
	for variant in sample sample-full; do
		printf 'DNSConfig %s\n' "$tmp/unbound.conf" |
		    cat "$tmp/$variant.conf" - >"$tmp/$variant-n.conf"
		"$milter" -n -c "$tmp/$variant-n.conf" >"$tmp/out" 2>"$tmp/err"
		rc=$?
		what="dmarc-milter -n accepts contrib/dmarc-milter.conf"
		[ "$variant" = sample-full ] && what="$what fully uncommented"
		if [ "$rc" -eq 0 ] && grep -q 'configuration is valid' "$tmp/out"; then
			ok "$what"
		else
			notok "$what" "exit status $rc, want 0"
			diag_file "$tmp/err"
		fi
	done
fi

# --- man pages format without warnings -------------------------------------------
for page in man/dmarc-milter.8 man/dmarc-milter.conf.5 man/dmarc-check.1 \
    man/dmarc-report.8; do
	f=$srcdir/$page
	if [ ! -r "$f" ]; then
		notok "$page exists" "cannot read $f"
		continue
	fi
	if have groff; then
		groff -man -ww -z "$f" >"$tmp/lint" 2>&1
		rc=$?
		if [ "$rc" -eq 0 ] && [ ! -s "$tmp/lint" ]; then
			ok "$page: groff -man -ww -z reports nothing"
		else
			notok "$page: groff -man -ww -z reports nothing" "exit status $rc"
			diag_file "$tmp/lint"
		fi
	else
		skip "$page: groff -man -ww -z reports nothing" \
		    "no groff (Debian package groff-base)"
	fi
	if have mandoc; then
		mandoc -Tlint -Wwarning "$f" >"$tmp/lint" 2>&1
		rc=$?
		if [ "$rc" -eq 0 ] && [ ! -s "$tmp/lint" ]; then
			ok "$page: mandoc -Tlint reports nothing"
		else
			notok "$page: mandoc -Tlint reports nothing" "exit status $rc"
			diag_file "$tmp/lint"
		fi
	else
		skip "$page: mandoc -Tlint reports nothing" "no mandoc (Debian package mandoc)"
	fi
done

# --- contrib: Postfix, Sendmail, systemd ----------------------------------------
socket=$(awk -F"$tab" '$1 == "Socket" { print $4 }' "$tmp/table")
rundir=$(printf '%s\n' "$socket" | sed -n 's|^unix:/run/\([^/]*\)/.*|\1|p')

pf=$srcdir/contrib/postfix-main.cf
if have postconf; then
	mkdir "$tmp/postfix"
	cp "$pf" "$tmp/postfix/main.cf"
	: >"$tmp/postfix/master.cf"
	# postconf warns about parameters Postfix does not know.
	postconf -c "$tmp/postfix" -n >"$tmp/out" 2>"$tmp/err"
	rc=$?
	why=""
	[ "$rc" -eq 0 ] || why="postconf exit status $rc"
	[ -s "$tmp/err" ] && why="$why${why:+; }postconf warns"
	grep -qx "smtpd_milters = $socket" "$tmp/out" ||
	    why="$why${why:+; }smtpd_milters is not $socket (the Socket default)"
	for p in non_smtpd_milters milter_default_action milter_protocol; do
		grep -q "^$p = " "$tmp/out" || why="$why${why:+; }no $p"
	done
	grep -qx 'milter_default_action = accept' "$tmp/out" ||
	    why="$why${why:+; }milter_default_action is not accept"
	grep -qx 'milter_protocol = 6' "$tmp/out" ||
	    why="$why${why:+; }milter_protocol is not 6"
	if [ -z "$why" ]; then
		ok "contrib/postfix-main.cf: postconf takes it, the milter on $socket"
	else
		notok "contrib/postfix-main.cf: postconf takes it, the milter on $socket" "$why"
		diag_file "$tmp/err"
	fi
else
	skip "contrib/postfix-main.cf: postconf takes it" "no postconf (Debian package postfix)"
fi

mc=$srcdir/contrib/sendmail.mc
if have m4; then
	# INPUT_MAIL_FILTER as a stub that shows its expansion: checks the
	# quoting and dnl of the file without Sendmail's cf tree.
	{
		printf "define(\`INPUT_MAIL_FILTER', \`X\$1, \$2')dnl\n"
		cat "$mc"
	} | m4 >"$tmp/out" 2>"$tmp/err"
	rc=$?
	xline="Xdmarc-milter, S=$socket, T="
	if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] &&
	    [ "$(grep -c . "$tmp/out")" -eq 1 ] &&
	    grep -q "^$xline" "$tmp/out"; then
		ok "contrib/sendmail.mc: m4 expands one filter on $socket"
	else
		notok "contrib/sendmail.mc: m4 expands one filter on $socket" \
		    "exit status $rc, want exactly one line starting '$xline'"
		diag_file "$tmp/err"
		diag_file "$tmp/out"
	fi
else
	skip "contrib/sendmail.mc: m4 expands it" "no m4 (Debian package m4)"
fi

unit=$srcdir/contrib/dmarc-milter.service
why=""
grep -qx 'Type=simple' "$unit" || why="no Type=simple"
grep -q '^ExecStart=[^ ]*/dmarc-milter -f -c /etc/dmarc-milter.conf$' "$unit" ||
    why="$why${why:+; }ExecStart is not 'dmarc-milter -f -c /etc/dmarc-milter.conf'"
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit" ||
    why="$why${why:+; }ExecReload is not kill -HUP \$MAINPID"
if [ -z "$rundir" ] || ! grep -qx "RuntimeDirectory=$rundir" "$unit"; then
	why="$why${why:+; }RuntimeDirectory does not hold the default Socket $socket"
fi
if [ -z "$why" ]; then
	ok "contrib/dmarc-milter.service runs dmarc-milter -f with /run/$rundir for the socket"
else
	notok "contrib/dmarc-milter.service runs dmarc-milter -f with /run/$rundir for the socket" "$why"
fi

# systemd-analyze verify: any output is a failure (it warns about bad
# lines on stderr but still exits 0). ExecStart= must exist and
# Documentation= resolve: the built programs and this tree's man pages
# stand in for installed ones.
verify_unit() {	# unit-file program
	name=$(basename "$1")
	prog=$2
	[ -x "$prog" ] || prog=/bin/true
	sed "s|^ExecStart=[^ ]*|ExecStart=$prog|" "$1" >"$tmp/unit/$name"
	(cd "$tmp/unit" && MANPATH=$tmp/man SYSTEMD_LOG_COLOR=0 \
	    systemd-analyze verify "./$name") >"$tmp/out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && [ ! -s "$tmp/out" ]; then
		ok "contrib/$name: systemd-analyze verify reports nothing"
	else
		notok "contrib/$name: systemd-analyze verify reports nothing" \
		    "exit status $rc"
		diag_file "$tmp/out"
	fi
}

if have systemd-analyze; then
	mkdir -p "$tmp/unit" "$tmp/man/man1" "$tmp/man/man5" "$tmp/man/man8"
	cp "$srcdir/man/dmarc-milter.8" "$srcdir/man/dmarc-report.8" \
	    "$tmp/man/man8/"
	cp "$srcdir/man/dmarc-milter.conf.5" "$tmp/man/man5/"
	cp "$srcdir/man/dmarc-check.1" "$tmp/man/man1/"
	verify_unit "$srcdir/contrib/dmarc-milter.service" "$milter"
	verify_unit "$srcdir/contrib/dmarc-report.service" \
	    "$builddir/report/dmarc-report"
	verify_unit "$srcdir/contrib/dmarc-report.timer" ""
else
	skip "contrib/*.service: systemd-analyze verify" \
	    "no systemd-analyze (Debian package systemd)"
fi

echo "1..$n"
