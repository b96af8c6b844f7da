"""tests/integration/milter_sendmail.py - messages through Sendmail's real
milter code to dmarc-milter.

Debian's sendmail-bin conflicts with postfix, so it is never installed:
contrib/get-sendmail.sh fetches its .deb (and sendmail-cf's) and unpacks
them into a private directory. This test builds a sendmail.cf from that
copy's m4 files with an INPUT_MAIL_FILTER pointing at dmarc-milter's unix
socket, runs `sendmail -bD` (the daemon, in the foreground) on a loopback
port with a private queue, and a local mailer that writes each delivered
message to a file. It sends, in one SMTP session:
  - a spoof of a p=reject domain: 550 5.7.1 at the end of DATA, nothing
    delivered;
  - a p=none failure carrying a forged Authentication-Results with our
    authserv-id: 250, delivered with exactly one A-R of ours, above
    every header of the message;
  - a DKIM-signed message of a p=reject domain: 250 and dkim=pass,
    dmarc=pass (the body and headers survive Sendmail's milter protocol
    byte for byte). Skipped when python3-dkim is missing.
and checks that the milter saw the client as 127.0.0.1 with Sendmail's
queue id.

Sendmail looks its own host name up before it reads any config; where
the name has no dot (and /etc/hosts gives none) it asks DNS and then
sleeps a minute. So sendmail runs in private mount and UTS namespaces
(unshare -m -u) where /etc/hosts and /etc/resolv.conf are bind-mounted
from the work directory (a resolver on 127.0.0.1 only) and the host name
is mx.rcpt.example. Nothing of the system is changed; the namespaces go
away with the process. That needs root.

Environment: srcdir and builddir (set by make check); SENDMAIL_ROOT, the
directory contrib/get-sendmail.sh unpacked into (default:
$builddir/tests/sendmail-root, fetched there on first use); DMARC_MILTER
(another binary than $builddir/milter/dmarc-milter); KEEP_TMP=1 keeps the
work directory.
The test prints "1..0 # SKIP reason" when it is not root, unshare or m4
is missing, or Sendmail cannot be fetched.
"""

import glob
import os
import re
import smtplib
import socket
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evalcorpus as ec  # noqa: E402

MX = "mx.rcpt.example"
RCPT = "root@" + MX          # the local mailer checks the password file


def skip(why):
    print("1..0 # SKIP " + why)
    sys.exit(0)


def which(name):
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) + \
            ["/usr/sbin", "/sbin"]:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def sendmail_root(srcdir, builddir):
    """The unpacked Sendmail, fetched on first use; skip when impossible."""
    root = os.environ.get("SENDMAIL_ROOT") or \
        os.path.join(builddir, "tests", "sendmail-root")
    r = subprocess.run(["sh", os.path.join(srcdir, "contrib",
                                           "get-sendmail.sh"), root],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300)
    if r.returncode != 0:
        skip("no Sendmail: " + (r.stderr.decode(errors="replace").strip()
                                or "get-sendmail.sh failed"))
    return os.path.abspath(root)


def libpath(root):
    return ":".join(d for d in sorted(
        glob.glob(os.path.join(root, "usr/lib/*-linux-gnu*")) +
        glob.glob(os.path.join(root, "lib/*-linux-gnu*")))
        if os.path.isdir(d))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, timeout, proc=None):
    """Poll cond() until true; False on timeout or when proc has exited."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(cond())
        time.sleep(0.05)
    return bool(cond())


def connectable_unix(path):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def connectable_tcp(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def tail(path, n=25):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return ["%s:" % path] + lines[-n:]
    except OSError as e:
        return ["%s: %s" % (path, e)]


def stop(proc, timeout=10):
    """SIGTERM the process we started, by its PID; SIGKILL if it stays.
    Returns its exit status; a string when it was not running or had to
    be killed."""
    if proc is None:
        return "never started"
    if proc.poll() is not None:
        return "had already exited with status %d" % proc.returncode
    proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "killed after %d s" % timeout


MC = r"""divert(-1)
# sendmail.mc written by tests/integration/milter_sendmail.py
divert(0)dnl
VERSIONID(`dmarc-milter test')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `{mx}')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confSERVICE_SWITCH_FILE', `{w}/service.switch')dnl
define(`confHOSTS_FILE', `{w}/hosts')dnl
define(`ALIAS_FILE', `{w}/aliases')dnl
define(`STATUS_FILE', `{w}/statistics')dnl
define(`HELP_FILE', `')dnl
define(`QUEUE_DIR', `{w}/mqueue')dnl
define(`confPID_FILE', `{w}/sendmail.pid')dnl
define(`confREFUSE_LA', `999')dnl
define(`confQUEUE_LA', `999')dnl
define(`confDELAY_LA', `0')dnl
define(`confMIN_FREE_BLOCKS', `0')dnl
define(`confDELIVERY_MODE', `background')dnl
define(`confTO_IDENT', `0s')dnl
define(`confLOG_LEVEL', `9')dnl
define(`confMILTER_LOG_LEVEL', `9')dnl
define(`confPRIVACY_FLAGS', `goaway')dnl
dnl The work directory is in /tmp: world-writable, but sticky.
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
FEATURE(`no_default_msa')dnl
DAEMON_OPTIONS(`Port={port}, Addr=127.0.0.1, Name=MTA')dnl
FEATURE(`accept_unresolvable_domains')dnl
FEATURE(`nouucp', `reject')dnl
dnl The local mailer: a script that writes the message to a file, run
dnl as the daemon's user (S), with Return-Path (P).
FEATURE(`local_procmail', `{w}/deliver.sh', `deliver.sh $u', `SPn9')dnl
LOCAL_DOMAIN(`{mx}')dnl
dnl F=T: a milter that cannot be reached tempfails the message (451),
dnl so a broken milter shows as a wrong reply, never as a pass.
INPUT_MAIL_FILTER(`dmarc', `S=unix:{w}/milter.sock, F=T, T=C:5s;S:10s;R:10s;E:30s')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"""

DELIVER = """#!/bin/sh
# The local mailer: stdin is one message for $1.
out={w}/out
umask 077
cat >"$out/.$1.$$" && mv "$out/.$1.$$" "$out/$1.$$.eml"
"""

# Sendmail in its own mount and UTS namespaces (see the docstring); -bi
# builds aliases.db from the private aliases file first.
NS = """set -e
mount --bind "$W/hosts" /etc/hosts
if [ -e /etc/resolv.conf ]; then mount --bind "$W/resolv.conf" /etc/resolv.conf; fi
hostname "$MX"
"$SENDMAIL" -C "$W/sendmail.cf" -bi
exec "$SENDMAIL" -C "$W/sendmail.cf" -bD
"""


def headers_of(raw):
    """[(name, value)] of a message's header, unfolded."""
    head = raw.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    out = []
    for line in head.splitlines():
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
        elif ":" in line:
            n, v = line.split(":", 1)
            out.append((n, v.strip()))
    return out


class Run:
    def __init__(self, tap, w):
        self.tap = tap
        self.w = w
        self.milter = None
        self.sendmail = None

    def start_milter(self, milter, zone):
        w = self.w
        conf = w.file("dmarc-milter.conf",
                      "Socket unix:%s\n" % w.file("milter.sock") +
                      "DNSConfig %s\n" % zone.write(w.file("unbound.conf")) +
                      "AuthservID %s\n" % MX +
                      # Sendmail's client is 127.0.0.1, ignored by default.
                      "IgnoreHosts 10.255.255.255\n" +
                      "StateDir %s\n" % w.file("state") +
                      "LogLevel info\n")
        self.milter_log = w.file("milter.log")
        with open(self.milter_log, "wb") as log:
            self.milter = subprocess.Popen(
                [milter, "-f", "-c", conf], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT)
        up = wait_for(lambda: connectable_unix(w.file("milter.sock")), 15,
                      self.milter)
        self.tap.ok(up, "dmarc-milter listens on its unix socket",
                    tail(self.milter_log))
        return up

    def start_sendmail(self, root, port):
        w = self.w
        self.port = port
        cfdir = os.path.join(root, "usr/share/sendmail/cf")
        os.chmod(w.path, 0o755)     # the local mailer may not be root
        os.makedirs(w.file("mqueue"), mode=0o700)
        os.makedirs(w.file("out"), mode=0o777)
        os.chmod(w.file("out"), 0o777)
        w.file("hosts", "127.0.0.1\tlocalhost %s\n::1\tlocalhost\n" % MX)
        w.file("service.switch", "hosts\tfiles\naliases\tfiles\n")
        w.file("aliases", "postmaster: root\nMAILER-DAEMON: postmaster\n")
        w.file("resolv.conf", "nameserver 127.0.0.1\n"
               "options attempts:1 timeout:1\n")
        w.file("statistics", "")
        deliver = w.file("deliver.sh", DELIVER.replace("{w}", w.path))
        os.chmod(deliver, 0o755)
        mc = MC.replace("{w}", w.path).replace("{mx}", MX) \
            .replace("{port}", str(port))
        w.file("sendmail.mc", mc)
        r = subprocess.run(["m4", "-D_CF_DIR_=%s/" % cfdir,
                            os.path.join(cfdir, "m4", "cf.m4"),
                            w.file("sendmail.mc")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        cf = r.stdout.decode(errors="replace")
        ok = r.returncode == 0 and "ERROR" not in cf and \
            re.search(r"^Xdmarc, S=unix:", cf, re.M) is not None
        self.tap.ok(ok, "m4 builds a sendmail.cf with the Xdmarc filter",
                    [r.stderr.decode(errors="replace")] +
                    [l for l in cf.splitlines() if "ERROR" in l])
        if not ok:
            return False
        w.file("sendmail.cf", cf)
        env = dict(os.environ, W=w.path, MX=MX,
                   SENDMAIL=os.path.join(root,
                                         "usr/libexec/sendmail/sendmail"),
                   LD_LIBRARY_PATH=libpath(root))
        self.sendmail_log = w.file("sendmail.log")
        with open(self.sendmail_log, "wb") as log:
            # unshare execs sh, sh execs sendmail: one PID throughout.
            self.sendmail = subprocess.Popen(
                ["unshare", "-m", "-u", "--propagation", "private",
                 "sh", "-c", NS], env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT)
        up = wait_for(lambda: connectable_tcp(port), 20, self.sendmail)
        self.tap.ok(up, "sendmail -bD listens on 127.0.0.1:%d" % port,
                    tail(self.sendmail_log))
        return up

    def delivered(self):
        out = {}
        for p in glob.glob(os.path.join(self.w.path, "out", "*.eml")):
            with open(p, "rb") as f:
                raw = f.read()
            m = re.search(rb"^Message-ID:\s*<([^>]+)>", raw, re.M | re.I)
            if m:
                out[m.group(1).decode()] = raw
        return out

    def stop(self):
        rc_sm = stop(self.sendmail)
        rc_mi = stop(self.milter)
        return rc_sm, rc_mi


def transaction(smtp, sender, msg):
    """MAIL, RCPT, DATA; the (code, text) of the end of DATA."""
    code, text = smtp.mail(sender)
    if code != 250:
        return code, b"MAIL: " + text
    code, text = smtp.rcpt(RCPT)
    if code not in (250, 251):
        return code, b"RCPT: " + text
    code, text = smtp.docmd("DATA")
    if code != 354:
        return code, b"DATA: " + text
    data = re.sub(rb"(?m)^\.", b"..", msg)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    smtp.send(data + b".\r\n")
    return smtp.getreply()


def message(mid, sender, subject, extra=()):
    return ec.build_message(list(extra) + [
        ("From", sender), ("To", RCPT), ("Subject", subject),
        ("Date", "Mon, 2 Jun 2025 10:00:00 +0000"),
        ("Message-ID", "<%s>" % mid)],
        body="Hello through Sendmail.\r\n.leading dot\r\n")


def want_dkim():
    """True when `import dkim` works, also by running again under
    Debian's python3 (where python3-dkim lives) when the first python3
    on PATH is another one."""
    try:
        import dkim  # noqa: F401
        return True
    except ImportError:
        pass
    debian = "/usr/bin/python3"
    if os.path.exists(debian) and \
            os.path.realpath(sys.executable) != os.path.realpath(debian) \
            and not os.environ.get("MILTER_SENDMAIL_REEXEC"):
        os.environ["MILTER_SENDMAIL_REEXEC"] = "1"
        sys.stdout.flush()
        os.execv(debian, [debian] + sys.argv)
    return False


def main():
    srcdir, builddir = ec.dirs()
    milter = os.environ.get("DMARC_MILTER") or \
        os.path.join(builddir, "milter", "dmarc-milter")
    have_dkim = want_dkim()         # may run this again under /usr/bin
    if os.geteuid() != 0:
        skip("needs root (private mount namespace for Sendmail)")
    for tool in ("unshare", "m4", "mount", "hostname"):
        if which(tool) is None:
            skip("%s is missing" % tool)
    r = subprocess.run(["unshare", "-m", "-u", "true"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        skip("unshare -m -u fails here: " +
             r.stderr.decode(errors="replace").strip())
    root = sendmail_root(srcdir, builddir)

    tap = ec.Tap()
    if not os.access(milter, os.X_OK):
        tap.bail("dmarc-milter not built: %s" % milter)

    w = ec.Workdir("dm-sendmail-")
    run = Run(tap, w)
    t0 = time.monotonic()
    try:
        zone = ec.Zone()
        zone.dmarc("reject.example", "v=DMARC1; p=reject")
        zone.spf("reject.example")
        zone.dmarc("none.example", "v=DMARC1; p=none")
        zone.spf("none.example")
        zone.dmarc("signed.example", "v=DMARC1; p=reject")
        zone.spf("signed.example")
        key = None
        if have_dkim:
            key = ec.Key.rsa(w, "sel1")
            zone.key("sel1", "signed.example", key)
        if run.start_milter(milter, zone) and \
                run.start_sendmail(root, free_port()):
            body(tap, run, key)
    except Exception:
        tap.ok(False, "no unexpected error", [traceback.format_exc()])
    finally:
        rc_sm, rc_mi = run.stop()
        tap.ok(rc_mi == 0, "dmarc-milter exits 0 on SIGTERM",
               ["exit status %r" % rc_mi] + tail(w.file("milter.log")))
        tap.diag("%.1f s" % (time.monotonic() - t0))
        if tap.failed:
            os.environ.setdefault("KEEP_TMP", "1")
        w.cleanup(tap)
    return tap.done()


def body(tap, run, key):
    reject = message("spoof@test", "Boss <boss@reject.example>",
                     "spoof of p=reject")
    none = message("nonefail@test", "Someone <someone@none.example>",
                   "p=none failure",
                   extra=[("Authentication-Results",
                           "%s; dmarc=pass header.from=none.example" % MX)])
    signed = None
    if key is not None:
        signed = ec.sign(message("signed@test", "<news@signed.example>",
                                 "signed by signed.example"),
                         "signed.example", "sel1", key)

    smtp = smtplib.SMTP(timeout=30)
    code, banner = smtp.connect("127.0.0.1", run.port)
    tap.ok(code == 220 and b"Sendmail" in banner,
           "Sendmail greets with 220", [banner])
    smtp.ehlo("client.example")
    replies = {}
    code, text = transaction(smtp, "boss@reject.example", reject)
    replies["spoof@test"] = (code, text)
    tap.ok(code == 550 and text.startswith(b"5.7.1") and
           b"reject.example" in text,
           "spoof of a p=reject domain: 550 5.7.1 at the end of DATA",
           ["reply: %d %s" % (code, text.decode(errors="replace"))] +
           tail(run.milter_log, 5))
    smtp.rset()
    code, text = transaction(smtp, "someone@none.example", none)
    replies["nonefail@test"] = (code, text)
    tap.ok(code == 250, "p=none failure: 250",
           ["reply: %d %s" % (code, text.decode(errors="replace"))])
    qid = None
    m = re.match(rb"2\.0\.0 (\S+) Message accepted", text)
    if m:
        qid = m.group(1).decode()
    if signed is not None:
        smtp.rset()
        code, text = transaction(smtp, "news@signed.example", signed)
        replies["signed@test"] = (code, text)
        tap.ok(code == 250, "DKIM-aligned message of a p=reject domain: 250",
               ["reply: %d %s" % (code, text.decode(errors="replace"))])
    try:
        smtp.quit()
    except smtplib.SMTPException:
        pass

    want = [mid for mid, (code, _) in replies.items() if code == 250]
    wait_for(lambda: all(mid in run.delivered() for mid in want), 20)
    got = run.delivered()
    tap.ok("spoof@test" not in got, "the rejected spoof is not delivered")

    raw = got.get("nonefail@test")
    tap.ok(raw is not None, "p=none failure delivered by the local mailer",
           tail(run.sendmail_log))
    hs = headers_of(raw or b"")
    ours = [(i, v) for i, (n, v) in enumerate(hs)
            if n.lower() == "authentication-results" and
            re.match(re.escape(MX) + r"\s*;", v)]
    tap.ok(len(ours) == 1 and "dmarc=fail" in ours[0][1] and
           "header.from=none.example" in ours[0][1] and
           "p=none" in ours[0][1],
           "p=none failure: one Authentication-Results of ours, dmarc=fail",
           ["%s: %s" % h for h in hs])
    # "At the top": only trace fields this MTA adds may stand above it.
    above = [n for n, _ in hs[:ours[0][0]]] if ours else []
    tap.ok(bool(ours) and all(n.lower() in ("return-path", "received")
                              for n in above),
           "the Authentication-Results header is above the message's own "
           "fields", ["above it: %s" % above])
    tap.ok(not any("dmarc=pass" in v for n, v in hs
                   if n.lower() == "authentication-results"),
           "the forged Authentication-Results with our authserv-id is gone",
           ["%s: %s" % h for h in hs])
    log = open(run.milter_log, "rb").read().decode(errors="replace")
    line = [l for l in log.splitlines() if "from=none.example" in l]
    tap.ok(bool(line) and "ip=127.0.0.1 " in line[0] and
           (qid is None or qid in line[0]),
           "the milter saw Sendmail's client 127.0.0.1 and queue id %s" % qid,
           line or log.splitlines()[-10:])

    if signed is not None:
        raw = got.get("signed@test")
        hs = headers_of(raw or b"")
        ar = [v for n, v in hs if n.lower() == "authentication-results"]
        tap.ok(raw is not None and len(ar) == 1 and
               re.search(r"\bdkim=pass\b[^;]*header\.d=signed\.example",
                         ar[0]) is not None and "dmarc=pass" in ar[0],
               "DKIM-aligned message: dkim=pass and dmarc=pass through "
               "Sendmail", ["%s: %s" % h for h in hs] or ["not delivered"])
    else:
        print("ok %d - DKIM through Sendmail # SKIP python3-dkim missing"
              % (tap.n + 1))
        tap.n += 1


if __name__ == "__main__":
    sys.exit(main())
