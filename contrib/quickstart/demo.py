#!/usr/bin/env python3
"""contrib/quickstart/demo.py - the sandbox that contrib/quickstart.sh
runs: dmarc-milter behind a private Postfix, on loopback, with the DNS of
a few demo domains served from resolver local-data.

Everything lives in the sandbox directory (given, or made here): a
private Postfix (tests/integration/mta.py: its own config, queue and data
directories, smtpd on 127.0.0.1:<free port>, no chroot, delivery into a
maildir, nothing relayed), dmarc-milter on a unix socket as UserID
postfix with the embedded journal as its store (or, with --redis, a
private redis-server on a unix socket, no TCP), and an unbound.conf of
local-data that the milter's resolver loads (DNSConfig): no query leaves
the machine. No file outside the sandbox and the output directory is
written; the system's Postfix, Redis and resolver are not touched.

The demo sends six messages with swaks, each from its own client address
(XCLIENT), prints a table of what happened to them, stops the milter
(SIGTERM closes its journal segment), runs dmarc-report --dry-run for
today and pretty-prints one report. The reports, the delivered mail and
the logs are copied to the output directory. Every server is stopped by
its PID at exit, also on SIGINT/SIGTERM/SIGHUP.

Usage: demo.py --srcdir DIR --builddir DIR --out DIR [--sandbox DIR]
               [--redis] [--keep]
"""

import argparse
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def parse_args():
    p = argparse.ArgumentParser(description="dmarc-milter sandbox demo")
    p.add_argument("--srcdir", required=True)
    p.add_argument("--builddir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sandbox")
    p.add_argument("--redis", action="store_true")
    p.add_argument("--keep", action="store_true")
    return p.parse_args()


ARGS = parse_args()
sys.path.insert(0, os.path.join(os.path.abspath(ARGS.srcdir), "tests",
                                "integration"))
import evalcorpus as ec  # noqa: E402

ec.need_dkim()
import mta  # noqa: E402

RCPT_DOMAIN = mta.TEST_DOMAIN           # the sandbox's own mail domain
AUTHSERV = mta.MX_NAME                  # our authserv-id

# The demo's senders: (address SPF authorizes, HELO name).
BANK_MX = ("192.0.2.10", "mx.bank.example")
ESP = ("203.0.113.25", "out.esp.example")
SHOP_MX = ("192.0.2.20", "mail.shop.example")
LISTS = ("198.51.100.7", "lists.example")
SPOOFER = ("203.0.113.66", "unknown.spoofer.example")

RECORDS = {
    "bank.example": "v=DMARC1; p=reject; rua=mailto:dmarc@bank.example",
    "shop.example": "v=DMARC1; p=quarantine; rua=mailto:dmarc@shop.example",
    "news.example": "v=DMARC1; p=reject; pct=0; "
                    "rua=mailto:dmarc@news.example",
}
SPF = {
    "bank.example": BANK_MX[0], "esp.example": ESP[0],
    "shop.example": SHOP_MX[0], "news.example": "192.0.2.30",
    "lists.example": LISTS[0],
}


def say(text=""):
    print(text)
    sys.stdout.flush()


# ------------------------------------------------------------ signals

STOPPING = False


def on_signal(signum, frame):
    """The first signal ends the demo through SystemExit, so the finally
    clauses and atexit stop the servers; later ones must not cut that
    clean-up short. (A handler that returns, not SIG_IGN: Python raises
    OSError for a signal that arrived before it was ignored.)"""
    global STOPPING
    if STOPPING:
        return
    STOPPING = True
    raise SystemExit(128 + signum)


class Uninterrupted:
    """Signals held back while a server is being stopped: mta.py forgets
    a server before it waits for it, so SystemExit raised in that wait
    would leave it running. They are delivered when the stop is over."""

    SIGS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}

    def __enter__(self):
        signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGS)

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGS)


def install_signals():
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)


# ------------------------------------------------------------ DNS

def build_zone(key):
    z = ec.Zone(static=("example.",))
    for dom, rec in sorted(RECORDS.items()):
        z.dmarc(dom, rec)
    for dom, ip in sorted(SPF.items()):
        z.spf(dom, "v=spf1 ip4:%s -all" % ip)
        z.a(dom, ip)
    z.key("s1", "bank.example", key)
    z.a(RCPT_DOMAIN)
    return z


# ------------------------------------------------------------ messages

def message(frm, subject, body):
    hdrs = [
        ("From", frm), ("To", "you@" + RCPT_DOMAIN), ("Subject", subject),
        ("Date", time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                               time.gmtime())),
        ("Message-ID", "<%s.%d@%s>" % (subject.split()[0].lower(),
                                       os.getpid(), frm.split("@")[1]))]
    return ec.build_message(hdrs, body.encode())


def list_message(key):
    """Alice's DKIM-signed post as a mailing list resends it: subject tag
    and footer added (the signature breaks), List-Id added, the list's
    own envelope sender (SPF passes, but for lists.example)."""
    m = ec.sign(message("Alice <alice@bank.example>", "Meeting notes",
                        "Notes attached.\r\n"), "bank.example", "s1", key)
    m = m.replace(b"Subject: Meeting notes", b"Subject: [users] Meeting "
                  b"notes")
    m = m.replace(b"\r\n\r\nNotes", b"\r\nList-Id: <users.lists.example>"
                  b"\r\nList-Post: <mailto:users@lists.example>\r\n\r\nNotes")
    return m + b"--\r\nusers mailing list\r\n"


class Demo:
    """One demo message: label, the client, envelope, message bytes."""

    def __init__(self, key, label, client, mail_from, data):
        self.key, self.label = key, label
        self.ip, self.helo = client
        self.mail_from, self.data = mail_from, data
        self.rcpt = "%s@%s" % (key, RCPT_DOMAIN)
        self.reply = self.log = self.ar = None


def demo_set(key):
    signed = ec.sign(message("Alice <alice@bank.example>", "Statement",
                             "Your statement is ready.\r\n"),
                     "bank.example", "s1", key)
    return [
        Demo("dkim", "aligned DKIM pass", ESP, "bounce@esp.example", signed),
        Demo("spf", "SPF-only pass", SHOP_MX, "orders@shop.example",
             message("orders@shop.example", "Order 1234", "Shipped.\r\n")),
        Demo("spoof", "spoof of p=reject", SPOOFER, "ceo@bank.example",
             message("CEO <ceo@bank.example>", "Urgent wire transfer",
                     "Please pay today.\r\n")),
        Demo("quar", "p=quarantine failure", SPOOFER, "orders@shop.example",
             message("orders@shop.example", "Invoice", "Pay here.\r\n")),
        Demo("pct", "pct-sampled failure", SPOOFER, "editor@news.example",
             message("editor@news.example", "Weekly news", "News.\r\n")),
        Demo("list", "mailing-list message", LISTS,
             "users-bounces@lists.example", list_message(key)),
    ]


# ------------------------------------------------------------ servers

class SandboxRedis(mta.RedisServer):
    """The private Redis, run as user postfix (the milter's UserID here)
    so that the milter may use its socket, which Redis makes 0700."""

    def command(self):
        return ["setpriv", "--reuid=postfix", "--regid=postfix",
                "--init-groups"] + super().command()


def start_redis(sandbox):
    r = SandboxRedis(sandbox)
    pw = mta.pwd.getpwnam("postfix")
    os.chown(r.dir, pw.pw_uid, pw.pw_gid)
    mta._open_to_others(r.dir)
    return r.start()


def start_servers(sandbox, dnsconf, redis):
    """dmarc-milter, then the Postfix that uses it."""
    opts = {
        "DNSConfig": dnsconf, "UserID": "postfix",
        "ReportEmail": "dmarc-reports@" + RCPT_DOMAIN,
        "ReportOrgName": "dmarc-milter quickstart",
        "RedisURL": redis.url if redis else None,
    }
    milter = mta.Milter(ARGS.builddir, sandbox, opts)
    ok, why = milter.available()
    if not ok:
        raise mta.HarnessError(why)
    milter.start()
    # As contrib/postfix-main.cf: mail flows on while the milter is down.
    postfix = mta.PrivatePostfix(sandbox, milter_socket=milter, settings={
        "milter_default_action": "accept"})
    postfix.start()
    return milter, postfix


# ------------------------------------------------------------ sending

LOG_RX = re.compile(r"ip=(?P<ip>\S+) from=(?P<from>\S+) "
                    r"policy_domain=(?P<pd>\S+) spf=(?P<spf>\S+) "
                    r"dkim=(?P<dkim>\S+) dmarc=(?P<dmarc>\S+) "
                    r"disposition=(?P<disp>\S+) action=(?P<action>\S+) "
                    r"reasons=(?P<reasons>.*)$")


def send_one(d, milter, postfix):
    """Send, then take the milter's log line for it: messages go one at a
    time, so the first verdict line after the send is this message's."""
    start = len(milter.log_lines())
    d.reply = mta.send(postfix.port, d.mail_from, d.rcpt, d.data, d.ip,
                       d.helo)
    line = milter.wait_log(LOG_RX.pattern, timeout=10, start=start)
    d.log = LOG_RX.search(line).groupdict() if line else None


def our_ar(data):
    """Our Authentication-Results field, unfolded, or None."""
    for name, value in mta.parse_headers(data):
        if name.lower() == "authentication-results" and \
                value.split(";")[0].strip().lower() == AUTHSERV:
            return " ".join(value.split())
    return None


def collect_delivered(demos, postfix):
    for d in demos:
        if d.reply.code != 250:
            continue
        try:
            data = postfix.wait_delivered(d.rcpt, timeout=20)[0]
        except mta.HarnessError:
            continue
        d.ar = our_ar(data)
        d.quarantined = b"\nX-DMARC-Quarantine: yes" in data


# ------------------------------------------------------------ output

def short_reply(r):
    if r.code is None:
        return "no answer (%s)" % r.text[:40]
    text = re.sub(r"^(\d\.\d\.\d) Ok: queued as (\S+)", r"\1 queued as \2",
                  " ".join(r.text.split()))
    text = "%d %s" % (r.code, text)
    return text if len(text) <= 64 else text[:63] + "~"


def print_table(demos):
    rows = [("message", "SMTP reply", "dmarc", "disposition", "reasons")]
    for d in demos:
        lg = d.log or {}
        rows.append((d.label, short_reply(d.reply), lg.get("dmarc", "?"),
                     lg.get("disp", "?"), lg.get("reasons", "?")))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        say("  ".join(c.ljust(w[j]) for j, c in enumerate(r[:4])) +
            "  " + r[4])
        if i == 0:
            say("  ".join("-" * x for x in w) + "  " + "-" * 7)


def explain(demos, milter):
    say()
    say("dmarc-milter's log line for each (LogLevel info, %s):" %
        os.path.join(ARGS.out, "logs", "milter.log"))
    for l in milter.log_lines():
        if LOG_RX.search(l):
            say("  " + l)
    lst = [d for d in demos if d.key == "list"][0]
    if lst.ar:
        say()
        say("The Authentication-Results field it added to the mailing-list "
            "message:")
        say("  Authentication-Results: " + lst.ar)


# ------------------------------------------------------------ reports

def run_report(milter):
    """dmarc-report --dry-run for today into OUT/reports. It runs as root
    here, not as the milter's user as an installed one should: the build
    directory may be one the postfix user cannot enter, and the sandbox's
    state is thrown away."""
    outdir = os.path.join(ARGS.out, "reports")
    os.makedirs(outdir)
    argv = [os.path.join(ARGS.builddir, "report", "dmarc-report"), "-c",
            milter.conf, "--dry-run", outdir, "--day",
            time.strftime("%Y-%m-%d", time.gmtime()), "-v"]
    say("$ " + " ".join(argv))
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    for l in r.stdout.decode("utf-8", "replace").splitlines():
        say("  " + l)
    if r.returncode != 0:
        raise mta.HarnessError("dmarc-report exited with %d" % r.returncode)
    return outdir


def show_report(outdir):
    files = sorted(os.listdir(outdir))
    gz = [f for f in files if f.endswith(".xml.gz")]
    if not gz:
        raise mta.HarnessError("dmarc-report wrote no report in " + outdir)
    pick = ([f for f in gz if "!bank.example!" in f] or gz)[0]
    say()
    say("The report for %s, pretty-printed (zcat | xmllint --format -):" %
        pick.split("!")[1])
    xml = gzip.decompress(open(os.path.join(outdir, pick), "rb").read())
    r = subprocess.run(["xmllint", "--format", "-"], input=xml,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    say((r.stdout if r.returncode == 0 else xml).decode("utf-8", "replace"))
    say("Reports (dry run: nothing was sent) in %s:" % outdir)
    for f in files:
        say("  " + f)
    say("  .xml.gz: the report as attached; .eml: the whole report mail")


def save_outputs(milter, postfix):
    """The delivered mail and the logs, kept after the sandbox goes."""
    mail = os.path.join(ARGS.out, "mail")
    shutil.copytree(postfix.maildir, mail, dirs_exist_ok=True)
    logs = os.path.join(ARGS.out, "logs")
    os.makedirs(logs, exist_ok=True)
    for src, name in ((milter.logfile, "milter.log"),
                      (postfix.logfile, "postfix.log"),
                      (milter.conf, "dmarc-milter.conf")):
        if os.path.exists(src):
            shutil.copy(src, os.path.join(logs, name))


# ------------------------------------------------------------ main

class KeyDir:
    """What ec.Key asks of a work directory: its file() method."""

    file = ec.Workdir.file

    def __init__(self, path):
        self.path = path


def prepare_out():
    os.makedirs(ARGS.out, exist_ok=True)
    for sub in ("reports", "mail", "logs"):
        shutil.rmtree(os.path.join(ARGS.out, sub), ignore_errors=True)


def run(sandbox):
    key = ec.Key.rsa(KeyDir(sandbox), "bank")
    dnsconf = build_zone(key).write(os.path.join(sandbox, "unbound.conf"))
    os.chmod(dnsconf, 0o644)
    redis = start_redis(sandbox) if ARGS.redis else None
    milter, postfix = start_servers(sandbox, dnsconf, redis)
    say("Postfix on 127.0.0.1:%d, dmarc-milter on %s, store: %s" % (
        postfix.port, milter.spec, redis.url if redis else
        "the embedded journal (StateDir %s)" % milter.options["StateDir"]))
    demos = demo_set(key)
    for d in demos:
        send_one(d, milter, postfix)
    collect_delivered(demos, postfix)
    say()
    print_table(demos)
    explain(demos, milter)
    with Uninterrupted():
        postfix.stop()
    say()
    say("Stopping dmarc-milter: on SIGTERM %s." % (
        "its writer sends the last counts to Redis" if redis else
        "it closes its journal segment, and dmarc-report reads only closed "
        "ones"))
    with Uninterrupted():
        rc = milter.stop()
    save_outputs(milter, postfix)
    if rc != 0:
        raise mta.HarnessError("dmarc-milter exited with %s" % rc)
    show_report(run_report(milter))
    if redis:
        with Uninterrupted():
            redis.stop()
    return demos


def main():
    install_signals()
    os.environ.pop("JOURNAL_STREAM", None)  # the milter's log to its file
    ARGS.builddir = os.path.abspath(ARGS.builddir)
    ARGS.out = os.path.abspath(ARGS.out)
    sandbox = ARGS.sandbox or tempfile.mkdtemp(prefix="dmarc-quickstart.")
    prepare_out()
    say("Sandbox: %s" % sandbox)
    t0 = time.monotonic()
    rc = 0
    try:
        run(sandbox)
    except (mta.HarnessError, OSError, subprocess.SubprocessError) as e:
        say("quickstart: %s" % e)
        rc = 1
    finally:
        with Uninterrupted():
            mta._stop_all()
        if ARGS.keep:
            say("Sandbox kept: %s" % sandbox)
        elif not ARGS.sandbox:
            shutil.rmtree(sandbox, ignore_errors=True)
    say()
    say("Delivered mail: %s; logs: %s" % (os.path.join(ARGS.out, "mail"),
                                          os.path.join(ARGS.out, "logs")))
    say("Demo %s in %.1f s; everything it started is stopped." % (
        "done" if rc == 0 else "FAILED", time.monotonic() - t0))
    return rc


if __name__ == "__main__":
    sys.exit(main())
