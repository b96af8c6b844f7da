#!/usr/bin/env python3
"""tests/integration/milter_postfix.py - dmarc-milter end to end behind a
real Postfix.

A private Postfix (tests/integration/mta.py: its own config, queue and
data directories, smtpd on a loopback port, delivery by virtual(8) into a
maildir of the work directory, no chroot, no DNS, nothing relayed) runs
with smtpd_milters = dmarc-milter, milter_default_action = tempfail (a
broken milter shows up as a failure) and milter_protocol = 6. The milter
serves the test zones (made here with keys made here) through DNSConfig
and runs as UserID postfix, as an installed one would.

Every message is sent with swaks, setting the client address and HELO
with XCLIENT. The milter keeps its default IgnoreHosts (127.0.0.0/8 ::1):
Postfix's own connection comes from 127.0.0.1, and the milter must judge
the XCLIENT address instead (Postfix re-runs the milter connect step after
XCLIENT), which the spoof cases prove; a client that XCLIENT makes
127.0.0.1 is the ignored host.

Cases: an aligned DKIM pass; an SPF-only aligned pass; a spoof of a
p=reject domain (550 5.7.1 naming the domain), also with a forged
Authentication-Results claiming pass; a p=quarantine failure (250, the
quarantine header and dmarc=fail); an SPF temperror for a p=reject domain
(451 with TemporaryErrorAction auto); a DMARC lookup answered REFUSED, so
the policy is unknown (250 and dmarc=temperror); forged A-R fields with
our authserv-id (removed; ours is the first field of the message, under
only what virtual(8) prepends: Return-Path, X-Original-To, Delivered-To;
an A-R of another authserv-id stays); two From fields, one of a failing
p=reject domain (550); an ignored client (delivered with no A-R of ours),
also with forged A-R fields of our authserv-id (removed all the same).
Every delivered message must carry exactly one A-R of ours, the first
field, with spf=, dkim= (header.d=, header.s=), dmarc= (p= sp= dis=)
header.from= policy.dmarc=.

All of it over a unix socket, then over an inet socket. Over the unix
socket, SIGHUP reloads a changed config (TemporaryErrorAction tempfail
turns the REFUSED case into 451) and refuses a broken one (the old
settings stay). Then, in one SMTP session per socket (smtplib, XCLIENT
once), 200 DKIM-signed messages: the mean time per message is printed as
"# unix: X ms/msg, inet: Y ms/msg"; the only timing assertion is that
inet is not slower by 40 ms or more per message (the Nagle/delayed-ACK
stall that TCP milters commonly suffer adds 40-80 ms).

Environment: srcdir, builddir (make check); DMARC_MILTER; MILTER_WRAPPER
(e.g. "valgrind -q --error-exitcode=9"); BENCH_MESSAGES (default 200);
KEEP_TMP=1 keeps the work directory.
Prints "1..0 # SKIP ..." when not root, or when postfix or swaks are
missing and cannot be installed with apt-get.
"""

import os
import re
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evalcorpus as ec  # noqa: E402

ec.need_dkim()
import mta  # noqa: E402

GOOD, BAD = ec.GOOD_IP, ec.BAD_IP
OURS = mta.MX_NAME                    # our authserv-id
REJ, QUAR, NONE = "reject.example", "quar.example", "none.example"
SENDER = "sender.example"             # an envelope domain never aligned
TEMPDMARC = "tempdmarc.example"       # _dmarc answers REFUSED
SPFTEMP = "spftemp." + REJ            # SPF include answers REFUSED
HELO = "mx." + SENDER
try:
    BENCH = max(1, int(os.environ.get("BENCH_MESSAGES", "200")))
except ValueError:
    BENCH = 200


def skip(why):
    print("1..0 # SKIP " + why)
    sys.stdout.flush()
    sys.exit(0)


# ------------------------------------------------------------------ zone

def build_zone(keys):
    z = ec.Zone(static=("example.",))
    k = keys["rsa"]
    z.comment("p=reject, the domain spoofed and the one signed")
    z.dmarc(REJ, "v=DMARC1; p=reject")
    z.spf(REJ)
    z.a(REJ)
    z.key("s1", REJ, k)
    z.comment("SPF temperror under the p=reject domain: the include is "
              "in a refused zone")
    z.spf(SPFTEMP, "v=spf1 include:spf.refused.example -all")
    z.a(SPFTEMP)
    z.refuse("refused.example")
    z.comment("p=quarantine and p=none")
    z.dmarc(QUAR, "v=DMARC1; p=quarantine")
    z.spf(QUAR)
    z.a(QUAR)
    z.dmarc(NONE, "v=DMARC1; p=none")
    z.spf(NONE)
    z.a(NONE)
    z.comment("the envelope domain of spoofs: SPF fails from BAD")
    z.spf(SENDER)
    z.a(SENDER)
    z.comment("the DMARC lookup itself fails (REFUSED, like SERVFAIL)")
    z.spf(TEMPDMARC)
    z.a(TEMPDMARC)
    z.refuse("_dmarc." + TEMPDMARC)
    return z


# ------------------------------------------------------------- messages

def message(froms, keys, sign=None, extra=(), subject="Quarterly figures",
            tag=""):
    hdrs = list(extra)
    hdrs += [("From", f) for f in froms]
    hdrs += [("To", "bob@" + mta.TEST_DOMAIN),
             ("Subject", subject),
             ("Date", "Fri, 15 Feb 2002 16:54:30 -0800"),
             ("Message-ID", "<%s.%d@sender.example>" % (
                 tag or "m",
                 zlib.crc32(repr((froms, subject, tag)).encode())))]
    m = ec.build_message(hdrs, b"Hello,\r\n\r\nthe figures are attached."
                               b"\r\n\r\n-- \r\nAlice\r\n")
    if sign:
        m = ec.sign(m, sign[0], sign[1], keys["rsa"])
    return m


class Case:
    """code: the SMTP reply code expected at the end of DATA; reply:
    regexes the reply text must match; ar: regexes our A-R must match
    (None: delivered with no A-R of ours); more: extra checks on the
    delivered message, fn(headers) -> list of problems."""

    def __init__(self, key, name, froms, code, ip=BAD, mail_from=None,
                 sign=None, extra=(), reply=(), ar=(), more=None):
        self.key, self.name, self.froms, self.code = key, name, froms, code
        self.ip, self.sign, self.extra = ip, sign, extra
        self.mail_from = mail_from or "bounce@" + SENDER
        self.reply, self.ar, self.more = reply, ar, more


FORGED = [
    ("Authentication-Results", "%s; spf=pass smtp.mailfrom=%s;\r\n\t"
     "dkim=pass header.d=%s; dmarc=pass header.from=%s" % (
         OURS, NONE, NONE, NONE)),
    ("Authentication-Results", "%s 1; dmarc=pass header.from=%s" % (
        OURS.upper(), NONE)),
    ("Authentication-Results", "relay.other.example; dmarc=pass "
     "header.from=%s" % NONE),
]


def foreign_kept(fields):
    theirs = [v for n, v in fields if n.lower() == "authentication-results"
              and authserv_id(v).lower() == "relay.other.example"]
    return [] if len(theirs) == 1 else \
        ["the A-R of relay.other.example: found %d, expected 1 (kept)" %
         len(theirs)]


def quarantined(fields):
    q = [v for n, v in fields if n.lower() == "x-dmarc-quarantine"]
    return [] if q == ["yes"] else \
        ["X-DMARC-Quarantine fields: %r, expected ['yes']" % q]


def not_quarantined(fields):
    q = [v for n, v in fields if n.lower() == "x-dmarc-quarantine"]
    return ["unexpected X-DMARC-Quarantine: %r" % q] if q else []


def cases():
    return [
        Case("dkimpass", "aligned DKIM pass (p=reject domain, SPF fails)",
             ["alice@" + REJ], 250, sign=(REJ, "s1"),
             ar=[r"\bspf=fail smtp\.mailfrom=sender\.example\b",
                 r"\bdkim=pass header\.d=reject\.example header\.s=s1\b",
                 r"\bdmarc=pass \(p=reject sp=reject dis=none\) "
                 r"header\.from=reject\.example policy\.dmarc=reject\b"],
             more=not_quarantined),
        Case("spfpass", "SPF-only aligned pass from the good IP",
             ["alice@" + REJ], 250, ip=GOOD, mail_from="alice@" + REJ,
             ar=[r"\bspf=pass smtp\.mailfrom=reject\.example\b",
                 r"\bdkim=none\b",
                 r"\bdmarc=pass \(p=reject sp=reject dis=none\) "
                 r"header\.from=reject\.example policy\.dmarc=reject\b"],
             more=not_quarantined),
        Case("spoof", "spoof of a p=reject domain from a bad IP: 550",
             ["ceo@" + REJ], 550,
             reply=[r"^5\.7\.1\b", r"\breject\.example\b"]),
        Case("spoofforged", "spoof of a p=reject domain with a forged A-R "
             "claiming pass: still 550", ["ceo@" + REJ], 550,
             extra=[("Authentication-Results", "%s; spf=pass smtp.mailfrom="
                     "%s; dmarc=pass header.from=%s" % (OURS, REJ, REJ))],
             reply=[r"^5\.7\.1\b", r"\breject\.example\b"]),
        Case("quarantine", "p=quarantine failure: 250, quarantine header",
             ["news@" + QUAR], 250,
             ar=[r"\bspf=fail smtp\.mailfrom=sender\.example\b",
                 r"\bdkim=none\b",
                 r"\bdmarc=fail \(p=quarantine sp=quarantine "
                 r"dis=quarantine\) header\.from=quar\.example "
                 r"policy\.dmarc=quarantine\b"],
             more=quarantined),
        Case("spftemp", "SPF temperror for a p=reject domain: 451 "
             "(TemporaryErrorAction auto)", ["alice@" + REJ], 451,
             ip=GOOD, mail_from="bounce@" + SPFTEMP,
             reply=[r"^4\.7\.1\b", r"\breject\.example\b"]),
        Case("tempdmarc", "DMARC lookup REFUSED, policy unknown: 250 with "
             "dmarc=temperror (auto)", ["alice@" + TEMPDMARC], 250,
             ip=GOOD, mail_from="alice@" + TEMPDMARC,
             ar=[r"\bspf=pass smtp\.mailfrom=tempdmarc\.example\b",
                 r"\bdmarc=temperror\b[^;]*header\.from=tempdmarc\.example"],
             more=not_quarantined),
        Case("forged", "forged A-R fields with our authserv-id removed, "
             "another's kept", ["alice@" + NONE], 250, extra=FORGED,
             ar=[r"\bspf=fail smtp\.mailfrom=sender\.example\b",
                 r"\bdmarc=fail \(p=none sp=none dis=none\) "
                 r"header\.from=none\.example policy\.dmarc=none\b"],
             more=foreign_kept),
        Case("twofrom", "two From fields, one of a failing p=reject "
             "domain: 550", ["alice@" + NONE, "ceo@" + REJ], 550, ip=GOOD,
             mail_from="alice@" + NONE,
             reply=[r"^5\.7\.1\b", r"\breject\.example\b"]),
        Case("bighdr", "spoof of a p=reject domain behind a 90 KB header "
             "field (below Postfix's header_size_limit, above libmilter's "
             "64 KB default command size): still 550",
             ["ceo@" + REJ], 550,
             extra=[("X-Filler", "\r\n\t".join(["x" * 70] * 1250))],
             reply=[r"^5\.7\.1\b", r"\breject\.example\b"]),
        Case("ignored", "client 127.0.0.1 (IgnoreHosts, via XCLIENT): "
             "delivered without our A-R", ["ceo@" + REJ], 250,
             ip="127.0.0.1", ar=None),
        Case("ignoredforged", "client 127.0.0.1 (IgnoreHosts) with forged "
             "A-R fields of our authserv-id: delivered with them removed, "
             "another's kept, none of ours added", ["ceo@" + REJ], 250,
             ip="127.0.0.1", ar=None, extra=FORGED, more=foreign_kept),
    ]


# ------------------------------------------------------------- checking

def authserv_id(value):
    """The authserv-id of an A-R value (comments before it skipped)."""
    v = value or ""
    while True:
        v = v.lstrip()
        if not v.startswith("("):
            break
        depth, i = 0, 0
        for i, c in enumerate(v):
            depth += c == "("
            depth -= c == ")"
            if depth == 0:
                break
        v = v[i + 1:]
    m = re.match(r"([^\s;()]+)", v)
    return m.group(1) if m else ""


def check_delivered(data, case):
    """Problems with a delivered message, as a list of strings."""
    fields = mta.parse_headers(data)
    ours = [v for n, v in fields if n.lower() == "authentication-results"
            and authserv_id(v).lower() == OURS]
    body = [f for f in fields if f[0].lower() not in mta.TRACE_BY_DELIVERY]
    probs = []
    if case.ar is None:
        if ours:
            probs.append("expected no A-R of ours, found %d: %s" %
                         (len(ours), ours[0]))
    else:
        if len(ours) != 1:
            probs.append("A-R fields of %s: %d, expected exactly 1" %
                         (OURS, len(ours)))
        if not body or body[0][0].lower() != "authentication-results" or \
                authserv_id(body[0][1]).lower() != OURS:
            probs.append("the first field (under %s) is %s, expected our "
                         "A-R" % ("/".join(mta.TRACE_BY_DELIVERY),
                                  body[0][0] if body else "nothing"))
        ar = body[0][1] if body and body[0][0].lower() == \
            "authentication-results" else (ours[0] if ours else "")
        if not re.match(r"^%s\s*;" % re.escape(OURS), ar):
            probs.append("A-R does not start with '%s;'" % OURS)
        generic = [r"\bspf=\w+", r"\bdkim=\w+", r"\bdmarc=\w+",
                   r"\bheader\.from=[\w.-]+"]
        if case.sign:
            generic += [r"\bdkim=\w+ [^;]*header\.d=[\w.-]+",
                        r"\bdkim=\w+ [^;]*header\.s=[\w.-]+"]
        for rx in generic + list(case.ar):
            if not re.search(rx, ar):
                probs.append("our A-R does not match /%s/" % rx)
        if probs:
            probs.append("our A-R: " + ar)
    if case.more:
        probs += case.more(fields)
    if probs:
        head, _ = mta.split_message(data)
        probs.append("delivered header:\n" + head.decode("utf-8", "replace"))
    return probs


class Phase:
    """One Postfix and one milter on one kind of socket."""

    def __init__(self, tap, kind, wd, builddir, dnsconf, keys):
        self.tap, self.kind, self.keys = tap, kind, keys
        self.milter = mta.Milter(builddir, wd.path, {
            "DNSConfig": dnsconf,
            "UserID": "postfix",
            "TemporaryErrorAction": "auto",
            "QuarantineAction": "header",
            "QuarantineHeader": "X-DMARC-Quarantine: yes",
        }, socket=kind, name="milter-" + kind)
        self.postfix = mta.PrivatePostfix(wd.path, milter_socket=self.milter,
                                          name="postfix-" + kind)

    def label(self, text):
        return "%s: %s" % (self.kind, text)

    def start(self):
        self.milter.start()
        self.postfix.start()

    def rcpt(self, key):
        return "%s-%s@%s" % (self.kind, key, mta.TEST_DOMAIN)

    def send(self, case, key=None):
        msg = message(case.froms, self.keys, case.sign, case.extra,
                      tag=key or case.key)
        return mta.send(self.postfix.port, case.mail_from,
                        self.rcpt(key or case.key), msg, case.ip, HELO)

    def judge_reply(self, case, r, name):
        diag = []
        if r.code != case.code:
            diag.append("got %s %s (at %s), expected %d" % (
                r.code, r.text, r.stage, case.code))
        elif r.stage != "data":
            diag.append("the reply came at %s, expected at the end of DATA"
                        % r.stage)
        else:
            for rx in case.reply:
                if not re.search(rx, r.text):
                    diag.append("reply %r does not match /%s/" % (r.text, rx))
        if diag:
            diag += ["swaks transcript (tail):"] + \
                r.transcript.strip().split("\n")[-14:]
            diag += ["milter log (tail):"] + self.milter.log_lines()[-5:]
            diag += ["postfix log (tail):", self.postfix.log_tail(6)]
        self.tap.ok(not diag, self.label(name + ": SMTP %d" % case.code),
                    diag)
        return not diag

    def run_cases(self):
        table = cases()
        replies = {}
        for c in table:
            try:
                replies[c.key] = self.send(c)
            except Exception as e:  # noqa: BLE001 - a finding, not a crash
                replies[c.key] = mta.Reply(None, "harness error: %r" % e,
                                           "send")
            self.judge_reply(c, replies[c.key], c.name)
        for c in table:
            if c.code != 250 or replies[c.key].code != 250:
                continue
            try:
                data = self.postfix.wait_delivered(self.rcpt(c.key))[0]
                probs = check_delivered(data, c)
            except mta.HarnessError as e:
                probs = [str(e)]
            self.tap.ok(not probs, self.label(c.name + ": delivered, A-R "
                                              "checked"), probs)
        # Nothing refused may have been delivered (checked once all the
        # accepted mail sent after it has arrived).
        leaked = [c.key for c in table if c.code != 250 and
                  self.postfix.messages_for(self.rcpt(c.key))]
        self.tap.ok(not leaked, self.label("no refused message was "
                                           "delivered"),
                    ["delivered although refused: %s" % ", ".join(leaked)])
        lines = self.milter.log_lines()
        want = [r"\b%s\b" % re.escape(BAD), r"=%s\b" % re.escape(REJ),
                r"\breject\b"]
        self.tap.ok(any(all(re.search(rx, l) for rx in want)
                        for l in lines),
                    self.label("the milter logged the spoof with the XCLIENT "
                               "address, not Postfix's 127.0.0.1"),
                    ["no log line matches all of %s" % want] + lines[-8:])

    def run_reload(self):
        """SIGHUP with a changed config, then with a broken one."""
        c = [x for x in cases() if x.key == "tempdmarc"][0]
        c451 = Case(c.key, c.name, c.froms, 451, ip=c.ip,
                    mail_from=c.mail_from,
                    reply=[r"^4\.7\.1\b", r"\btempdmarc\.example\b"])
        n = len(self.milter.log_lines())
        self.milter.reload({"TemporaryErrorAction": "tempfail"})
        line = self.milter.wait_log(r"(?i)^(?!.*refused).*\breload",
                                    start=n)
        self.tap.ok(line is not None, self.label("SIGHUP: the new config "
                                                 "is read"),
                    self.milter.log_lines()[n:][-6:] or ["(no log line)"])
        self.judge_reply(c451, self.send(c451, "reload1"),
                         "after SIGHUP, TemporaryErrorAction tempfail: "
                         "the REFUSED case is 451")
        n = len(self.milter.log_lines())
        self.milter.reload({"TemporaryErrorAction": "sometimes"})
        line = self.milter.wait_log(r"(?i)reload.*refused|refused.*reload",
                                    start=n)
        self.tap.ok(line is not None and self.milter.running(),
                    self.label("SIGHUP with a broken config: refused with "
                               "a log line, still running"),
                    self.milter.log_lines()[n:][-6:] or ["(no log line)"])
        self.judge_reply(c451, self.send(c451, "reload2"),
                         "after the refused reload the old settings stay "
                         "(still 451)")
        self.milter.write_conf({"TemporaryErrorAction": "auto"})

    def bench(self, count):
        """Mean ms per message over one SMTP session of count messages,
        or None."""
        msg = message(["alice@" + REJ], self.keys, sign=(REJ, "s1"),
                      tag="bench")
        rcpt = self.rcpt("bench")
        bad = []
        try:
            s = mta.SmtpSession(self.postfix.port, GOOD, HELO)
            t0 = time.monotonic()
            for i in range(count):
                r = s.send("alice@" + REJ, rcpt, msg)
                if r.code != 250:
                    bad.append("message %d: %r" % (i, r))
                    if len(bad) > 5:
                        break
            elapsed = time.monotonic() - t0
            s.close()
        except Exception as e:  # noqa: BLE001
            self.tap.ok(False, self.label("%d messages in one SMTP session"
                                          % count), ["harness error: %r" % e])
            return None
        self.tap.ok(not bad, self.label("%d messages in one SMTP session: "
                                        "all 250" % count), bad)
        try:
            got = self.postfix.wait_delivered(rcpt, timeout=60, count=count)
            probs = check_delivered(got[-1], Case(
                "bench", "bench", ["alice@" + REJ], 250, sign=(REJ, "s1"),
                ar=[r"\bdkim=pass header\.d=reject\.example header\.s=s1\b",
                    r"\bdmarc=pass\b"]))
        except mta.HarnessError as e:
            probs = [str(e)]
        self.tap.ok(not probs, self.label("all %d delivered, each with our "
                                          "A-R (the last checked)" % count),
                    probs)
        return elapsed * 1000.0 / count

    def stop(self):
        self.postfix.stop()
        rc = self.milter.stop()
        log = self.milter.log_text()
        self.tap.ok(rc == 0 and not self.milter.killed,
                    self.label("SIGTERM: the milter drains and exits 0"),
                    ["exit status %s%s" % (rc, " (needed SIGKILL)" if
                                           self.milter.killed else "")] +
                    self.milter.log_lines()[-8:])
        m = re.search(r"(ERROR: \w+Sanitizer|runtime error:|LeakSanitizer|"
                      r"==\d+== (Invalid|Conditional|Use of uninit|Syscall "
                      r"param|Mismatched|\d+ bytes in \d+ blocks are "
                      r"definitely lost))", log)
        self.tap.ok(m is None, self.label("no sanitizer or valgrind report "
                                          "in the milter's log"),
                    [m.group(0) if m else ""])
        pf = [l for l in self.postfix.log_text().splitlines()
              if re.search(r"warning: .*milter|milter-reject: .*451 4\.7\.1 "
                           r"Service unavailable", l)]
        self.tap.ok(not pf, self.label("Postfix logged no milter protocol "
                                       "warning"), pf[:8])


def main():
    if os.geteuid() != 0:
        skip("a private Postfix needs root")
    why = mta.ensure_tools()
    if why:
        skip(why)
    mta.install_signal_cleanup()
    srcdir, builddir = ec.dirs()
    tap = ec.Tap()
    wd = ec.Workdir("dmarc-milter-postfix.")
    started = time.monotonic()
    figures = {}
    try:
        ok, ver = mta.Milter(builddir, wd.path, name="probe").available()
        if not ok:
            tap.bail("dmarc-milter is not usable: " + ver)
        tap.diag(ver)
        keys = {"rsa": ec.Key.rsa(wd, "rsa")}
        zone = build_zone(keys)
        dnsconf = zone.write(wd.file("unbound.conf"))
        os.chmod(dnsconf, 0o644)
        for kind in ("unix", "inet"):
            ph = Phase(tap, kind, wd, builddir, dnsconf, keys)
            try:
                ph.start()
            except mta.HarnessError as e:
                tap.ok(False, "%s: Postfix and dmarc-milter start" % kind,
                       [str(e)])
                ph.postfix.stop()
                ph.milter.stop()
                continue
            try:
                ph.run_cases()
                if kind == "unix":
                    ph.run_reload()
                figures[kind] = ph.bench(BENCH)
            finally:
                ph.stop()
        u, i = figures.get("unix"), figures.get("inet")
        if u is not None and i is not None:
            tap.diag("unix: %.2f ms/msg, inet: %.2f ms/msg" % (u, i))
            tap.ok(i < u + 40.0, "inet is not slower than unix by 40 ms or "
                   "more per message (no Nagle/delayed-ACK stall)",
                   ["unix %.2f ms/msg, inet %.2f ms/msg over %d messages "
                    "in one session" % (u, i, BENCH)])
        else:
            tap.ok(False, "both timing figures measured",
                   ["unix: %r, inet: %r" % (u, i)])
        tap.diag("%.1f s in all" % (time.monotonic() - started))
    finally:
        mta._stop_all()
        wd.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
