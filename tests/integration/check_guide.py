#!/usr/bin/env python3
"""tests/integration/check_guide.py - the doc test: every command block of
README.md and docs/GUIDE.md is run, and contrib/quickstart.sh with it.

Each fenced block carries a marker, the HTML comment on the line above it:

  <!-- test: run -->         run as written (sh), in a scratch directory,
                             with the built programs first on PATH.
  <!-- test: dest -->        run in a safe form, in a copy of the source
                             tree: absolute paths under /etc, /var, /run,
                             /tmp, /usr/sbin, /usr/bin and /usr/local move
                             into a scratch root, and shell functions stand
                             in for what would change the system: `make
                             install` gets DESTDIR, `make check` is not run
                             (this test is part of it), `systemctl` runs
                             `systemd-analyze verify` on the unit the block
                             installed (and makes its StateDirectory= and
                             RuntimeDirectory=), `postconf` and `postfix`
                             work on the scratch root's main.cf, `make -C
                             /etc/mail` expands sendmail.mc with m4 and
                             stubbed Sendmail macros, `apt-get install`
                             checks that the packages exist, `adduser`,
                             `chown` and `runuser -u` are left out.
  <!-- test: quickstart -->  each line is contrib/quickstart.sh with its
                             options: run with --no-build on this build;
                             its table must show the six demo messages
                             with the expected replies and verdicts, its
                             dry-run reports must exist and validate, and
                             nothing it started may be left running (by
                             the sandbox's path in /proc cmdline and
                             environ); the first one once more,
                             interrupted by SIGINT to its process group
                             (Ctrl-C).
  <!-- test: conf -->        (a conf block) a dmarc-milter.conf fragment:
                             `dmarc-milter -n` accepts it.
  <!-- test: promtool:rules -->   (a YAML block) Prometheus alerting
  <!-- test: promtool:config -->  rules or a prometheus.yml: `promtool
                             check rules` or `check config` accepts it
                             (SKIP without promtool, Debian: prometheus);
                             the guide's rules also pass `promtool test
                             rules` with tests/fixtures/prometheus/.
  <!-- test: deb -->         commands that build and install the Debian
                             package: run for real, by
                             tests/integration/check_deb.py (SKIP here).
  <!-- test: skip:WHY -->    not run, for the reason given.

A ```text block (an output example) needs no marker. A block without a
marker, or an indented code block, fails the test: every command shown
is exercised. Commands run one at a time, each checked for exit status 0.
After a document's dest blocks, the configuration they wrote must pass
`dmarc-milter -n`, and Postfix's smtpd_milters must name its Socket.
The documents' relative links and #anchors must resolve.

TAP. Needs root (a private Postfix, make install as in the docs).
Environment: srcdir, builddir (make check); KEEP_TMP=1 keeps the work
directory.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evalcorpus as ec  # noqa: E402

DOCS = ("README.md", "docs/GUIDE.md")
MODES = ("run", "dest", "quickstart", "conf", "deb", "skip", "promtool")
SYSTEM_PATHS = r"/(?:etc|var|run|tmp)/|/usr/(?:sbin|bin|local)/"
XSD = "tests/fixtures/reports/rfc7489-appendix-c-fixed-nons.xsd"

# The quickstart table: label, reply code, dmarc, disposition, reasons.
EXPECTED = [
    ("aligned DKIM pass", 250, "pass", "none", "-"),
    ("SPF-only pass", 250, "pass", "none", "-"),
    ("spoof of p=reject", 550, "fail", "reject", "-"),
    ("p=quarantine failure", 250, "fail", "quarantine", "-"),
    ("pct-sampled failure", 250, "fail", "quarantine", "sampled_out(pct=0)"),
    ("mailing-list message", 250, "fail", "quarantine",
     "mailing_list(List-Id or List-Post)"),
]
REPORTED = ("bank.example", "shop.example", "news.example")

# The stand-ins of a dest block (POSIX sh). ROOT, NOTES, VERIFY, MCSTUB are
# set by the test; "apt-get" in a block is written apt_get (a sh function
# name has no '-').
PRELUDE = r'''
note() { printf '%s\n' "$*" >> "$NOTES"; }
fail() { echo "doc test: $*" >&2; return 1; }

apt_get() {
	for a in "$@"; do
		case $a in -*|install|update) continue ;; esac
		dpkg-query -W "$a" >/dev/null 2>&1 ||
		    apt-cache show "$a" >/dev/null 2>&1 ||
		    fail "apt-get: no package $a" || return 1
	done
	note "apt-get $*: every package exists; nothing installed"
}

adduser() { note "adduser $*: not run (the system's users)"; }
chown() { note "chown $*: not run"; }
chgrp() { note "chgrp $*: not run"; }
runuser() {
	while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
	[ $# -gt 0 ] || fail "runuser: no -- before the command" || return 1
	shift
	note "runuser: $1 run as root"
	"$@"
}

# install(1) without -o and -g: no such users here.
install() {
	n=$#
	while [ "$n" -gt 0 ]; do
		a=$1; shift; n=$((n - 1))
		case $a in
		-o|-g) shift; n=$((n - 1)); continue ;;
		-o?*|-g?*) continue ;;
		esac
		set -- "$@" "$a"
	done
	command install "$@"
}

make() {
	case " $* " in
	*" -C $ROOT/etc/mail "*) sendmail_cf ;;
	*" check "*) note "make check: not run (this test is part of it)" ;;
	*" install "*) command make "$@" DESTDIR="$ROOT" ;;
	*) command make "$@" ;;
	esac
}

# Debian's "make -C /etc/mail": here the filter lines of sendmail.mc are
# expanded by m4 with stubs of Sendmail's macros, and the filter must come
# once, before the first mailer.
sendmail_cf() {
	command -v m4 >/dev/null ||
	    { note "make -C /etc/mail: no m4, not checked"; return 0; }
	cat "$MCSTUB" "$ROOT/etc/mail/sendmail.mc" | m4 \
	    > "$ROOT/etc/mail/sendmail.cf" || fail "m4 failed" || return 1
	first=$(grep '^[XM]' "$ROOT/etc/mail/sendmail.cf" | head -1)
	nx=$(grep -c '^X' "$ROOT/etc/mail/sendmail.cf")
	case $first in
	"Xdmarc-milter, S="*) [ "$nx" -eq 1 ] || fail "$nx filters" ;;
	*) fail "sendmail.mc: the first of filters and mailers is '$first'" ;;
	esac
}

postconf() { command postconf -c "$ROOT/etc/postfix" "$@"; }
postfix() {
	case $1 in
	reload|start|restart|check) ;;
	*) fail "postfix $1: not emulated"; return 1 ;;
	esac
	command postconf -c "$ROOT/etc/postfix" -n >/dev/null 2>"$ROOT/postconf.err"
	[ ! -s "$ROOT/postconf.err" ] || { cat "$ROOT/postconf.err" >&2; return 1; }
	note "postfix $1: main.cf checked with postconf"
}

unit_verify() {
	command -v systemd-analyze >/dev/null ||
	    { note "no systemd-analyze: $1 not verified"; return 0; }
	rm -rf "$VERIFY" && mkdir -p "$VERIFY"
	for f in "$ROOT"/etc/systemd/system/*; do
		sed "s|^ExecStart=/|ExecStart=$ROOT/|" "$f" > "$VERIFY/${f##*/}"
	done
	out=$(cd "$VERIFY" && MANPATH=$ROOT/usr/share/man SYSTEMD_LOG_COLOR=0 \
	    systemd-analyze verify "./$1" 2>&1)
	[ -z "$out" ] || fail "systemd-analyze verify $1: $out" || return 1
	note "systemctl: $1 verified by systemd-analyze"
}

# What systemd makes when it starts a unit.
unit_dirs() {
	for d in $(sed -n 's/^StateDirectory=//p' "$1"); do
		mkdir -p "$ROOT/var/lib/$d"
	done
	for d in $(sed -n 's/^RuntimeDirectory=//p' "$1"); do
		mkdir -p "$ROOT/run/$d"
	done
}

systemctl() {
	verb=$1; shift
	case $verb in
	daemon-reload) return 0 ;;
	enable|start|restart|reload|stop|disable) ;;
	*) fail "systemctl $verb: not emulated"; return 1 ;;
	esac
	for u in "$@"; do
		case $u in -*) continue ;; *.*) ;; *) u=$u.service ;; esac
		case $u in
		postfix.service|sendmail.service)
			note "systemctl $verb $u: the system's MTA, left alone"
			continue ;;
		esac
		f=$ROOT/etc/systemd/system/$u
		[ -f "$f" ] || fail "systemctl $verb $u: not installed" || return 1
		unit_verify "$u" || return 1
		unit_dirs "$f"
	done
}
'''

MCSTUB = ("divert(-1)\n"
          "define(`INPUT_MAIL_FILTER', `X$1, $2 ')\n"
          "define(`MAILER', `M$1 ')\n"
          "define(`MAILER_DEFINITIONS', `')\n"
          "divert(0)dnl\n")

SENDMAIL_MC = ("divert(-1)dnl\n"
               "dnl a stand-in for Debian's sendmail.mc (check_guide.py)\n"
               "divert(0)dnl\n"
               "MAILER_DEFINITIONS\n"
               "MAILER(`local')dnl\n"
               "MAILER(`smtp')dnl\n")

UNBOUND = ("server:\n\tmodule-config: \"iterator\"\n"
           "\tlocal-zone: \".\" refuse\n")


# ------------------------------------------------------------ documents

class Block:
    """One fenced block: its document, line, info string, marker, text."""

    def __init__(self, doc, line, info, marker, text):
        self.doc, self.line, self.info = doc, line, info
        self.marker, self.text = marker, text
        self.mode = (marker or "").split(":", 1)[0]

    def name(self):
        return "%s:%d (%s)" % (self.doc, self.line, self.marker or "no marker")


MARKER_RX = re.compile(r"^\s*<!--\s*test:\s*(.*?)\s*-->\s*$")
FENCE_RX = re.compile(r"^(\s*)```(\S*)\s*$")


def parse_doc(doc, text):
    """(blocks, problems): the fenced blocks, and indented code blocks or
    unclosed fences found on the way."""
    blocks, probs = [], []
    lines = text.split("\n")
    i, prev, prev_blank = 0, "", True
    while i < len(lines):
        m = FENCE_RX.match(lines[i])
        if m:
            indent, info, start, body = len(m.group(1)), m.group(2), i + 1, []
            i += 1
            while i < len(lines) and not FENCE_RX.match(lines[i]):
                body.append(lines[i][indent:] if lines[i][:indent].strip()
                            == "" else lines[i])
                i += 1
            if i == len(lines):
                probs.append("%s:%d: unclosed ``` block" % (doc, start))
            mk = MARKER_RX.match(prev)
            blocks.append(Block(doc, start, info, mk.group(1) if mk else None,
                                "\n".join(body) + "\n"))
            prev, prev_blank, i = "", False, i + 1
            continue
        line = lines[i]
        if prev_blank and re.match(r"^(    |\t)\S", line):
            probs.append("%s:%d: an indented code block: use a fenced block "
                         "with a test marker" % (doc, i + 1))
        if line.strip():
            prev = line
        prev_blank = not line.strip()
        i += 1
    return blocks, probs


def split_commands(text):
    """The block's top-level commands, each as its lines: a line ending in
    a backslash goes on, a here-document takes its body along."""
    cmds, cur, heredoc = [], [], None
    for line in text.rstrip("\n").split("\n"):
        cur.append(line)
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
                cmds.append(cur)
                cur = []
            continue
        m = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", line)
        if m and not line.rstrip().endswith("\\"):
            heredoc = m.group(1)
            continue
        if line.rstrip().endswith("\\") or not line.strip():
            if not line.strip():
                cur.pop()
            continue
        cmds.append(cur)
        cur = []
    if cur:
        cmds.append(cur)
    return ["\n".join(c) for c in cmds if "".join(c).strip()]


def checked_script(text):
    """The block as a script that stops at the first command that fails,
    naming it (set -e would not stop inside an && list)."""
    out = []
    for c in split_commands(text):
        first = c.split("\n")[0][:100].replace("'", "'\\''")
        out.append(c)
        out.append("rc=$?; [ $rc -eq 0 ] || { echo 'doc test: exit status "
                   "'$rc': %s' >&2; exit $rc; }" % first)
    return "\n".join(out) + "\n"


def slug(title):
    """GitHub's anchor of a heading."""
    t = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return t.replace(" ", "-")


def link_problems(srcdir, doc, text):
    probs = []
    here = os.path.dirname(os.path.join(srcdir, doc))
    anchors = {slug(h) for h in re.findall(r"^#+\s+(.*)$", text, re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, frag = target.partition("#")
        if path and not os.path.exists(os.path.join(here, path)):
            probs.append("%s: link to %s: no such file" % (doc, path))
        if frag and not path and frag not in anchors:
            probs.append("%s: link to #%s: no such heading" % (doc, frag))
    return probs


# ------------------------------------------------------------ running

def tail(text, n=25):
    return text.rstrip("\n").split("\n")[-n:]


def clean_env():
    """The environment without what make check passes down: a command of
    the docs runs as an administrator would run it (a make inherits no
    MAKEFLAGS, configure and the demo see no srcdir)."""
    return {k: v for k, v in os.environ.items() if k not in (
        "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "srcdir",
        "builddir")}


def copy_ignore(top):
    """The source tree without build directories, generated files of an
    in-tree build, or VCS data."""
    def ignore(d, names):
        out = {n for n in names if n.startswith("_build") or n in (
            ".git", "autom4te.cache", "__pycache__", "sendmail-root")}
        if os.path.abspath(d) == top:
            out |= {n for n in names if n in (
                "config.status", "config.log", "config.h", "stamp-h1",
                "Makefile", "libtool")}
        return out
    return ignore


class Doc:
    """The state one document's blocks share: a copy of the source tree
    (dest blocks run at its top), a scratch root, a scratch directory for
    run blocks."""

    def __init__(self, t, name):
        self.t, self.name = t, name
        tag = re.sub(r"\W", "-", name)
        self.root = os.path.join(t.tmp, "root-" + tag)
        self.rundir = os.path.join(t.tmp, "run-" + tag)
        self.notes = os.path.join(t.tmp, "notes-" + tag)
        for d in ("etc/postfix", "etc/mail", "etc/systemd/system", "var/lib",
                  "var/spool/postfix", "run", "tmp", "usr/sbin", "usr/bin"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        os.makedirs(self.rundir, exist_ok=True)
        for f, text in (("etc/postfix/main.cf", ""),
                        ("etc/postfix/master.cf", ""),
                        ("etc/mail/sendmail.mc", SENDMAIL_MC)):
            with open(os.path.join(self.root, f), "w") as fh:
                fh.write(text)

    def rewrite(self, text):
        text = re.sub(r"(^|[\s=:'\"<>(|])(%s)" % SYSTEM_PATHS,
                      lambda m: m.group(1) + self.root + m.group(2), text,
                      flags=re.M)
        return re.sub(r"\bapt-get\b", "apt_get", text)

    def env(self, dest):
        e = clean_env()
        e.update(LC_ALL="C", NOTES=self.notes)
        b = self.t.builddir
        if dest:
            e.update(ROOT=self.root, VERIFY=os.path.join(self.t.tmp, "verify"),
                     MCSTUB=self.t.mcstub)
            e["PATH"] = os.pathsep.join([
                os.path.join(self.root, "usr/sbin"),
                os.path.join(self.root, "usr/bin"),
                "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        else:
            e["PATH"] = os.pathsep.join(
                [os.path.join(b, d) for d in ("tools", "milter", "report")] +
                [e.get("PATH", "/usr/bin:/bin")])
        return e

    def run(self, block, dest):
        body = checked_script(self.rewrite(block.text) if dest else block.text)
        script = (". %s\n" % shlex.quote(self.t.prelude) if dest else "") + body
        path = os.path.join(self.t.tmp, "block.sh")
        with open(path, "w") as f:
            f.write(script)
        if os.path.exists(self.notes):
            os.unlink(self.notes)
        r = subprocess.run(["sh", path], cwd=self.t.copy if dest else
                           self.rundir, env=self.env(dest),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=900)
        notes = open(self.notes).read().split("\n") if \
            os.path.exists(self.notes) else []
        return r.returncode, r.stdout.decode("utf-8", "replace"), \
            [n for n in notes if n]


# ------------------------------------------------------------ checks

def conf_value(path, name):
    """The last setting of an option in a dmarc-milter.conf, or None."""
    val = None
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].lower() == name.lower():
            val = parts[1]
    return val


def postfix_names_socket(sock, milters, root):
    """Does Postfix's milter list name the milter's Socket? inet:PORT@ADDR
    is inet:ADDR:PORT to Postfix; a unix socket under Postfix's queue
    directory is named as seen from its chroot."""
    want = set()
    m = re.match(r"inet:(\d+)@(.+)$", sock or "")
    if m:
        want.add("inet:%s:%s" % (m.group(2), m.group(1)))
    m = re.match(r"(?:unix:|local:)?(/.*)$", sock or "")
    if m:
        path = m.group(1)
        want.add("unix:" + path)
        spool = os.path.join(root, "var/spool/postfix")
        if path.startswith(spool + "/"):
            want.add("unix:" + path[len(spool):])
    return bool(want & set(re.split(r"[\s,]+", milters.strip())))


class Tester:
    def __init__(self, tap, srcdir, builddir, tmp):
        self.tap, self.srcdir, self.builddir, self.tmp = \
            tap, srcdir, builddir, tmp
        self.copy = os.path.join(tmp, "src")
        self.prelude = self.write("prelude.sh", PRELUDE)
        self.mcstub = self.write("mcstub.m4", MCSTUB)
        self.unbound = self.write("unbound.conf", UNBOUND)
        self.milter = os.path.join(builddir, "milter", "dmarc-milter")
        self.quickstarts = 0
        self.interrupted = False    # Ctrl-C is tried once

    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def make_copy(self):
        if not os.path.isdir(self.copy):
            shutil.copytree(self.srcdir, self.copy, symlinks=True,
                            ignore=copy_ignore(self.srcdir))

    def milter_n(self, conf, extra=""):
        """dmarc-milter -n on a file (plus lines): (ok, output)."""
        path = os.path.join(self.tmp, "check-n.conf")
        with open(path, "w") as f:
            f.write(open(conf).read() + "\n" + extra)
        r = subprocess.run([self.milter, "-n", "-c", path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = r.stdout.decode("utf-8", "replace")
        return r.returncode == 0 and "configuration is valid" in out, out

    def conf_block(self, block):
        path = self.write("block.conf", block.text)
        ok, out = self.milter_n(path, "DNSConfig %s\n" % self.unbound)
        self.tap.ok(ok, "%s: dmarc-milter -n accepts it" % block.name(),
                    [out])

    def promtool_block(self, block):
        what = block.marker.split(":", 1)[1].strip() \
            if ":" in block.marker else ""
        promtool = shutil.which("promtool")
        if what not in ("rules", "config"):
            self.tap.ok(False, "%s: promtool:rules or promtool:config" %
                        block.name())
            return
        if promtool is None:
            skip(self.tap, block, "promtool is not installed (Debian "
                 "package prometheus)")
            return
        path = self.write("block-%d.yml" % block.line, block.text)
        r = subprocess.run([promtool, "check", what, path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.tap.ok(r.returncode == 0, "%s: promtool check %s accepts it" %
                    (block.name(), what),
                    [r.stdout.decode("utf-8", "replace")])
        if what == "rules" and block.doc == "docs/GUIDE.md":
            self.promtool_test(promtool, block, path)

    def promtool_test(self, promtool, block, rules):
        """The guide's alerts fire on the series that should raise them,
        and not before (tests/fixtures/prometheus/guide-rules-test.yml)."""
        with open(os.path.join(self.srcdir, "tests", "fixtures",
                               "prometheus", "guide-rules-test.yml")) as f:
            text = f.read().replace("  - RULES\n", "  - %s\n" % rules)
        path = self.write("guide-rules-test.yml", text)
        r = subprocess.run([promtool, "test", "rules", path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.tap.ok(r.returncode == 0, "%s: promtool test rules: each alert "
                    "fires when it should" % block.name(),
                    [r.stdout.decode("utf-8", "replace")])

    def after_dest(self, doc):
        """The configuration the document's commands wrote is valid, and
        Postfix is pointed at its socket."""
        conf = os.path.join(doc.root, "etc", "dmarc-milter.conf")
        if not os.path.exists(conf):
            return
        ok, out = self.milter_n(conf)
        self.tap.ok(ok, "%s: the /etc/dmarc-milter.conf its commands wrote "
                    "passes dmarc-milter -n" % doc.name, [out])
        main_cf = os.path.join(doc.root, "etc", "postfix", "main.cf")
        if not open(main_cf).read().strip() or not shutil.which("postconf"):
            return
        r = subprocess.run(["postconf", "-c", os.path.dirname(main_cf), "-h",
                            "smtpd_milters"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        milters = r.stdout.decode("utf-8", "replace").strip()
        sock = conf_value(conf, "Socket")
        self.tap.ok(postfix_names_socket(sock, milters, doc.root),
                    "%s: smtpd_milters names the milter's Socket" % doc.name,
                    ["Socket %s, smtpd_milters = %s" % (sock, milters)])


# ------------------------------------------------------------ quickstart

def sandbox_pids(sandbox):
    """Processes with the sandbox's path in their command line (pgrep -f)
    or environment (Postfix's daemons inherit MAIL_CONFIG)."""
    pids = set()
    if shutil.which("pgrep"):
        r = subprocess.run(["pgrep", "-f", re.escape(sandbox)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        pids |= {int(p) for p in r.stdout.split()}
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        for f in ("cmdline", "environ"):
            try:
                with open("/proc/%s/%s" % (d, f), "rb") as fh:
                    if sandbox.encode() in fh.read():
                        pids.add(int(d))
            except OSError:
                pass
    return sorted(pids)


def table_rows(out):
    """label -> (code, dmarc, disposition, reasons) from the table."""
    rows = {}
    for line in out.split("\n"):
        f = re.split(r"\s{2,}", line.strip())
        if len(f) == 5 and re.match(r"^\d{3} ", f[1]):
            rows[f[0]] = (int(f[1][:3]), f[2], f[3], f[4])
    return rows


def table_problems(out):
    rows = table_rows(out)
    probs = []
    for label, code, dmarc, disp, reasons in EXPECTED:
        want = (code, dmarc, disp, reasons)
        if rows.get(label) != want:
            probs.append("%s: got %r, want %r" % (label, rows.get(label),
                                                  want))
    if len(rows) != len(EXPECTED):
        probs.append("%d rows, want %d" % (len(rows), len(EXPECTED)))
    return probs


def report_problems(srcdir, outdir):
    probs = []
    rdir = os.path.join(outdir, "reports")
    names = sorted(os.listdir(rdir)) if os.path.isdir(rdir) else []
    for dom in REPORTED:
        mine = [n for n in names if "!%s!" % dom in n]
        gz = [n for n in mine if n.endswith(".xml.gz")]
        if len(gz) != 1 or len([n for n in mine if n.endswith(".eml")]) != 1:
            probs.append("%s: want one .xml.gz and one .eml, have %r" %
                         (dom, mine))
            continue
        r = subprocess.run("zcat %s | xmllint --noout --schema %s -" % (
            shlex.quote(os.path.join(rdir, gz[0])),
            shlex.quote(os.path.join(srcdir, XSD))), shell=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            probs.append("%s: %s" % (gz[0], r.stdout.decode()[-400:]))
    return probs


def start_quickstart(t, argv, outdir, **kw):
    argv = argv + ["--no-build", "--build-dir", t.builddir, "--out", outdir]
    return subprocess.Popen(argv, cwd=t.srcdir, env=clean_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, **kw)


def sandbox_of(out):
    m = re.search(r"^Sandbox: (\S+)", out, re.M)
    return m.group(1) if m else None


def check_left(t, what, sandbox):
    """Nothing of the sandbox runs, and its directory is gone (a moment
    is allowed for the kernel to reap what was just killed)."""
    left = sandbox_pids(sandbox) if sandbox else []
    for _ in range(20):
        if not left:
            break
        time.sleep(0.1)
        left = sandbox_pids(sandbox)
    t.tap.ok(sandbox and not left and not os.path.exists(sandbox),
             "%s: nothing left running (pgrep -f and /proc environ by the "
             "sandbox path), the sandbox removed" % what,
             ["sandbox %s, still running: %r" % (sandbox, [
                 open("/proc/%d/cmdline" % p, "rb").read()[:120]
                 for p in left if os.path.exists("/proc/%d" % p)])])


def quickstart_line(t, block, line, n):
    what = "%s: %s" % (block.doc, line.strip())
    outdir = os.path.join(t.tmp, "qs-%d" % n)
    t0 = time.monotonic()
    p = start_quickstart(t, shlex.split(line), outdir)
    out = p.communicate(timeout=600)[0].decode("utf-8", "replace")
    secs = time.monotonic() - t0
    t.tap.ok(p.returncode == 0 and "install-deps: installing" not in out,
             "%s: exit 0, nothing to install" % what,
             ["exit %s" % p.returncode] + tail(out))
    t.tap.diag("%s: %.1f s (after the build)" % (what, secs))
    t.tap.ok(not table_problems(out), "%s: the table shows the six demo "
             "messages with their replies and verdicts" % what,
             table_problems(out) + tail(out, 40))
    t.tap.ok(not report_problems(t.srcdir, outdir) and "<feedback>" in out,
             "%s: the dry run wrote a report (.xml.gz, valid, and .eml) for "
             "each of %s, one shown" % (what, ", ".join(REPORTED)),
             report_problems(t.srcdir, outdir))
    check_left(t, what, sandbox_of(out))


def quickstart_interrupt(t, block, line):
    """Ctrl-C: SIGINT to the process group once the servers run."""
    what = "%s: %s, Ctrl-C" % (block.doc, line.strip())
    p = start_quickstart(t, shlex.split(line), os.path.join(t.tmp, "qs-int"),
                         start_new_session=True)
    out, deadline = b"", time.monotonic() + 300
    while time.monotonic() < deadline:
        chunk = p.stdout.readline()
        out += chunk
        if not chunk or chunk.startswith(b"Postfix on "):
            break
    os.killpg(p.pid, signal.SIGINT)
    out += p.communicate(timeout=120)[0]
    text = out.decode("utf-8", "replace")
    t.tap.ok(p.returncode == 130, "%s: exit status 130" % what,
             ["exit %s" % p.returncode] + tail(text))
    check_left(t, what, sandbox_of(text))


def quickstart_block(t, block):
    lines = [l for l in block.text.split("\n") if l.strip()]
    if not lines or not all(l.split()[0] == "contrib/quickstart.sh"
                            for l in lines):
        t.tap.ok(False, "%s: a quickstart block holds only "
                 "contrib/quickstart.sh lines" % block.name(), lines)
        return
    for line in lines:
        t.quickstarts += 1
        quickstart_line(t, block, line, t.quickstarts)
    if not t.interrupted:
        t.interrupted = True
        quickstart_interrupt(t, block, lines[0])


# ------------------------------------------------------------ main

def skip(tap, block, why=None):
    """A TAP SKIP line (Tap.ok escapes the '#' of a directive)."""
    if why is None:
        why = block.marker.split(":", 1)[1].strip() \
            if ":" in block.marker else ""
    if not why:
        tap.ok(False, "%s: a skip marker says why: <!-- test: skip:WHY -->"
               % block.name())
        return
    with tap.lock:
        tap.n += 1
        print("ok %d - %s:%d: not run # SKIP %s" % (tap.n, block.doc,
                                                    block.line, why))
        sys.stdout.flush()


def run_block(t, doc, block):
    if block.mode == "skip":
        skip(t.tap, block)
    elif block.mode == "deb":
        skip(t.tap, block, "run by tests/integration/check_deb.py")
    elif block.mode == "quickstart":
        quickstart_block(t, block)
    elif block.mode == "conf":
        t.conf_block(block)
    elif block.mode == "promtool":
        t.promtool_block(block)
    elif block.mode in ("run", "dest"):
        if block.mode == "dest":
            t.make_copy()
        t0 = time.monotonic()
        rc, out, notes = doc.run(block, block.mode == "dest")
        t.tap.ok(rc == 0, "%s: %d command(s), exit 0 (%.0f s)" % (
            block.name(), len(split_commands(block.text)),
            time.monotonic() - t0), ["exit %d" % rc] + tail(out))
        for n in notes:
            t.tap.diag("  " + n)


def check_doc(t, name):
    path = os.path.join(t.srcdir, name)
    text = open(path).read()
    blocks, probs = parse_doc(name, text)
    probs += link_problems(t.srcdir, name, text)
    for b in blocks:
        if b.marker is None and b.info != "text":
            probs.append("%s: a ```%s block without a <!-- test: ... --> "
                         "marker" % (b.name(), b.info))
        elif b.marker is not None and b.mode not in MODES:
            probs.append("%s: unknown marker" % b.name())
    t.tap.ok(not probs, "%s: %d blocks, each marked; links resolve" % (
        name, len(blocks)), probs)
    doc = Doc(t, name)
    for b in blocks:
        if b.marker is not None and b.mode in MODES:
            run_block(t, doc, b)
    t.after_dest(doc)


def deps_lists(srcdir):
    """The packages of contrib/install-deps.sh's build list."""
    r = subprocess.run(["sh", os.path.join(srcdir, "contrib",
                                           "install-deps.sh"),
                        "--list", "build"], stdout=subprocess.PIPE)
    return set(r.stdout.decode().split())


def build_depends(srcdir):
    """The package names of debian/control's Build-Depends."""
    text = open(os.path.join(srcdir, "debian", "control")).read()
    m = re.search(r"^Build-Depends:(.*?)^(?=\S)", text, re.M | re.S)
    field = re.sub(r"#.*", "", m.group(1)) if m else ""
    return {re.split(r"[\s(\[<]", d.strip())[0]
            for d in field.split(",") if d.strip()}


def check_deps(t):
    """One list of what the build needs: every package configure.ac names
    for a missing library is in install-deps.sh's build list (which the
    quickstart installs on a fresh machine) and in debian/control's
    Build-Depends, and the guide's apt-get line is that list; the
    package's version is configure.ac's."""
    build = deps_lists(t.srcdir)
    conf = open(os.path.join(t.srcdir, "configure.ac")).read()
    named = set(re.findall(r"install the Debian package (\S+?)[\s)\]]",
                           conf))
    named |= set(re.findall(r"DM_REQUIRE_PKG\(\[\w+\], \[[^]]+\], "
                            r"\[([^]]+)\]\)", conf))
    named.discard("$3")
    t.tap.ok(named and named <= build, "configure.ac's %d library packages "
             "are all in install-deps.sh's build list" % len(named),
             ["missing: %s" % " ".join(sorted(named - build))])
    bdeps = build_depends(t.srcdir)
    t.tap.ok(named and named <= bdeps, "configure.ac's %d library packages "
             "are all in debian/control's Build-Depends" % len(named),
             ["missing: %s" % " ".join(sorted(named - bdeps))])
    m = re.search(r"AC_INIT\(\[[^]]*\], \[([^]]+)\]", conf)
    log = open(os.path.join(t.srcdir, "debian", "changelog")).readline()
    v = re.match(r"\S+ \(([^)]+)\)", log)
    t.tap.ok(m and v and v.group(1) == m.group(1), "debian/changelog's "
             "version is configure.ac's AC_INIT version", [
                 "AC_INIT %s, changelog %s" % (m and m.group(1),
                                               v and v.group(1))])
    guide = open(os.path.join(t.srcdir, "docs", "GUIDE.md")).read()
    m = re.search(r"```sh\n(apt-get install [^`]*?)\n```", guide)
    line = m.group(1).replace("\\\n", " ") if m else ""
    listed = {w for w in line.split()[2:] if not w.startswith("-")}
    t.tap.ok(listed == build, "docs/GUIDE.md's apt-get line is install-"
             "deps.sh's build list", ["only in the guide: %s" % " ".join(
                 sorted(listed - build)), "only in install-deps.sh: %s" %
                 " ".join(sorted(build - listed))])


def main():
    if os.geteuid() != 0:
        print("1..0 # SKIP the commands of the docs run as root")
        return 0
    srcdir, builddir = ec.dirs()
    tap = ec.Tap()
    if not os.access(os.path.join(builddir, "milter", "dmarc-milter"),
                     os.X_OK):
        tap.bail("dmarc-milter is not built in " + builddir)
    tmp = tempfile.mkdtemp(prefix="check_guide.")
    try:
        t = Tester(tap, srcdir, builddir, tmp)
        check_deps(t)
        for name in DOCS:
            check_doc(t, name)
    finally:
        if os.environ.get("KEEP_TMP"):
            tap.diag("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
