#!/usr/bin/env python3
"""tests/integration/report_e2e.py - dmarc-report (issue 5) end to end:
real dmarc-milter instances count real mail (miltertest), dmarc-report
reports it, and the reports are checked by xmllint against the schemas,
imported by the real consumer Mail::DMARC, and delivered by a private
Postfix.

The mail: one mix of messages (mc.templates plus a domain per rua case)
sent once into a milter without RedisURL (the embedded journal) and once
into a milter with a private Redis. The journal's segments are kept as a
pristine copy, so each case starts from the same counts.

Domains (DNS from resolver local-data, no network):
  reject.example, two.example  internal rua
  ext.example       rua at rcpt.example, which authorizes it
                    (ext.example._report._dmarc.rcpt.example)
  unauth.example    rua at other.example (not authorized: skipped) and
                    two internal ones (both get it, in their order)
  size.example      rua limited to 100 bytes: the error report goes
  noreport.example  in NoReportDomains: dropped, nothing sent

Cases:
  dry       --dry-run: .xml.gz + .eml per report, valid against the RFC
            7489 schema, imported by Mail::DMARC with the same counts;
            --format rfc9990 valid against its schema; nothing claimed
            (a second dry run writes the same reports)
  send      a capturing sendmail: recipients per rua case, exact counts,
            error report for size.example, none for noreport.example;
            a second run sends nothing (journal and Redis)
  kill      dmarc-report killed (SIGKILL) at each step, then run again:
            every count arrives once; only a kill after the MTA took the
            mail resends it, with the same report id and Message-ID
            (journal and Redis)
  retry     sendmail fails: exit 1, retried only after the backoff, then
            sent with the same report id; data past its retention is
            given up with a log line
  outage    sendmail failing run after run suppresses no destination
            and drops no report; a suppressed destination delays its
            report, with its counts kept
  late      a count journaled after its period was reported goes in a
            second report with an id of its own
  expired   a Redis group whose counts expired: dropped, not "sent"
  dnsfail   a third-party rua whose DNS check keeps failing delays the
            report three attempts, then the verified rua gets it
  postfix   delivery through a private Postfix, by its sendmail and by
            SMTPRelay to its smtpd
  metrics   --metrics-file: a failing run (every report retried, never a
            success), then a good one (sent and bytes exactly what the
            MTA got, the success time set), then an idle one (nothing
            sent, the success time moved on); promtool check metrics
            accepts the file; no temporary file is left

Environment: srcdir, builddir (make check); KEEP_TMP=1 keeps the work
directory; REPORT_CASES=dry,send,... runs a subset.
"""

import email
import email.policy
import glob
import gzip
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evalcorpus as ec  # noqa: E402

ec.need_dkim()
import milter_counters as mc  # noqa: E402
import milter_protocol as mp  # noqa: E402
import mta  # noqa: E402

BAD = ec.BAD_IP
NEW_DOMAINS = {
    "ext.example": "v=DMARC1; p=none; rua=mailto:dmarc@rcpt.example",
    "unauth.example": "v=DMARC1; p=none; rua=mailto:x@other.example,"
                      "mailto:r@unauth.example,mailto:r2@unauth.example",
    "size.example": "v=DMARC1; p=none; rua=mailto:r@size.example!100",
    "noreport.example": "v=DMARC1; p=none; rua=mailto:r@noreport.example",
}
# template -> the policy domains it is counted under
COUNTED = {
    "spoof": ["reject.example"], "pass": ["reject.example"],
    "two": ["reject.example", "two.example"], "none": ["two.example"],
    "ext": ["ext.example"], "unauth": ["unauth.example"],
    "size": ["size.example"], "noreport": ["noreport.example"],
}
ORDER = ["spoof"] * 3 + ["pass"] * 2 + ["two", "none", "ext", "ext",
                                        "unauth", "size", "noreport"]
TOTAL = len(ORDER) * 10
RCPTS = {
    "reject.example": ["r@reject.example"], "two.example": ["r@two.example"],
    "ext.example": ["dmarc@rcpt.example"],
    "unauth.example": ["r@unauth.example", "r2@unauth.example"],
    "size.example": ["r@size.example"],
}
SUBMITTER = "receiver.test"
XSD7489 = "rfc7489-appendix-c-fixed-nons.xsd"
XSD9990 = "dmarc-2.0-draft32.xsd"


def expected_counts():
    per = {}
    for i in range(TOTAL):
        for d in COUNTED[ORDER[i % len(ORDER)]]:
            per[d] = per.get(d, 0) + 1
    return per


def build_zone(key):
    z = mc.build_zone(key)
    for d, rec in sorted(NEW_DOMAINS.items()):
        z.dmarc(d, rec)
        z.spf(d)
    z.txt("ext.example._report._dmarc.rcpt.example", "v=DMARC1")
    z.a("rcpt.example")
    # case_dnsfail: a third-party check that always fails (REFUSED)
    z.dmarc("tf.example", "v=DMARC1; p=none; rua=mailto:x@slow.example,"
            "mailto:r@tf.example")
    z.refuse("tf.example._report._dmarc.slow.example")
    return z


def templates(key):
    t = mc.templates(key)
    for d in NEW_DOMAINS:
        name = d.split(".")[0]
        t[name] = mc.Tpl(name, BAD, mp.message("alice@" + d, name), "a")
    return t


def report_path():
    return os.environ.get("DMARC_REPORT") or \
        os.path.join(ec.dirs()[1], "report", "dmarc-report")


def xsd(name):
    return os.path.join(ec.dirs()[0], "tests", "fixtures", "reports", name)


# ------------------------------------------------------------ the reports

class Mail:
    """One report mail: its envelope (when captured), headers, XML."""

    def __init__(self, data, rcpts=None, sender=None):
        self.raw = data
        self.rcpts, self.sender = rcpts, sender
        self.msg = email.message_from_bytes(data, policy=email.policy.compat32)
        self.subject = " ".join((self.msg["Subject"] or "").split())
        self.message_id = self.msg["Message-ID"]
        self.to = [a.strip() for a in (self.msg["To"] or "").split(",")]
        self.xml = None
        self.error_report = False
        for part in self.msg.walk():
            ctype = part.get_content_type()
            if ctype == "application/gzip":
                self.xml = gzip.decompress(part.get_payload(decode=True))
            elif ctype == "text/plain" and b"Report-Size:" in \
                    (part.get_payload(decode=True) or b""):
                self.error_report = True
        m = re.search(r"Report Domain: (\S+) Submitter: (\S+) "
                      r"Report-ID: <([^>]+)>", self.subject)
        self.domain, self.report_id = (m.group(1), m.group(3)) if m else \
            (None, None)

    def counts(self):
        """(domain in policy_published, sum of counts, records)."""
        root = ET.fromstring(self.xml)
        ns = {"d": root.tag[1:].split("}")[0]} if root.tag[0] == "{" else {}
        p = "d:" if ns else ""
        dom = root.find("%spolicy_published/%sdomain" % (p, p), ns).text
        cs = [int(c.text) for c in root.findall(
            "%srecord/%srow/%scount" % (p, p, p), ns)]
        return dom, sum(cs), len(cs)


def capture_script(path, outdir, fail=False):
    body = ("#!/bin/sh\n"
            "# a sendmail that keeps what it is given\n"
            "n=$(date +%%s%%N)-$$\n"
            "printf '%%s\\n' \"$@\" > %s/$n.argv\n"
            "cat > %s/$n.eml\n" % (outdir, outdir))
    if fail:
        body = "#!/bin/sh\ncat >/dev/null\necho 'queue full' >&2\nexit 75\n"
    with open(path, "w") as f:
        f.write(body)
    os.chmod(path, 0o755)
    return path


def captured(outdir):
    """Every mail the capturing sendmail got, oldest first."""
    mails = []
    for argv in sorted(glob.glob(os.path.join(outdir, "*.argv"))):
        args = open(argv).read().split("\n")[:-1]
        with open(argv[:-5] + ".eml", "rb") as f:
            data = f.read()
        rc = args[args.index("--") + 1:] if "--" in args else []
        sender = args[args.index("-f") + 1] if "-f" in args else None
        mails.append(Mail(data, rc, sender))
    return mails


def dry_mails(d):
    return [Mail(open(p, "rb").read())
            for p in sorted(glob.glob(os.path.join(d, "*.eml")))]


def sums(mails):
    """domain -> messages over the (non-error) reports, each report id
    counted once (a resend of the same id is a copy)."""
    per, seen = {}, set()
    for m in mails:
        if m.xml is None or m.report_id in seen:
            continue
        seen.add(m.report_id)
        dom, n, _ = m.counts()
        per[dom] = per.get(dom, 0) + n
    return per


def xmllint(path_or_bytes, schema):
    if isinstance(path_or_bytes, bytes):
        r = subprocess.run(["xmllint", "--noout", "--schema", schema, "-"],
                           input=path_or_bytes, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    else:
        r = subprocess.run(["xmllint", "--noout", "--schema", schema,
                            path_or_bytes], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    return r.returncode == 0, r.stderr.decode(errors="replace")[-600:]


MAIL_DMARC_PL = r"""
use strict; use warnings;
use Mail::DMARC::Report::Receive;
my $r = Mail::DMARC::Report::Receive->new;
for my $f (@ARGV) {
    my $t = eval { $r->from_file($f) };
    print "IMPORTED ", (defined $t ? $t : "undef"), " $f\n";
    print STDERR "ERROR $f: $@\n" if !defined $t;
}
"""


def mail_dmarc_import(wd, files):
    """Import with Mail::DMARC into a fresh SQLite file; returns
    (domain -> count sum, report uuids, output)."""
    db = os.path.join(wd, "mail-dmarc.sqlite")
    if os.path.exists(db):
        os.unlink(db)
    ini = os.path.join(wd, "mail-dmarc.ini")
    with open(ini, "w") as f:
        f.write("[organization]\ndomain = importer.test\norg_name = Test\n"
                "email = noreply@importer.test\n[report_store]\n"
                "backend = SQL\ndsn = dbi:SQLite:dbname=%s\nuser =\npass =\n"
                "[dns]\ntimeout = 5\npublic_suffix_list = "
                "/usr/share/publicsuffix/public_suffix_list.dat\n" % db)
    pl = os.path.join(wd, "import.pl")
    with open(pl, "w") as f:
        f.write(MAIL_DMARC_PL)
    env = dict(os.environ, MAIL_DMARC_CONFIG_FILE=ini)
    r = subprocess.run(["perl", pl] + files, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=120)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(
        errors="replace")
    per, ids = {}, set()
    if os.path.exists(db):
        c = sqlite3.connect(db)
        for dom, n in c.execute(
                "SELECT d.domain, SUM(rr.count) FROM report_record rr "
                "JOIN report r ON r.id = rr.report_id "
                "JOIN domain d ON d.id = r.from_domain_id GROUP BY d.domain"):
            per[dom] = n
        ids = {u for (u,) in c.execute("SELECT uuid FROM report")}
        c.close()
    return per, ids, out


# ------------------------------------------------------------ the harness

class Ctx(mc.Ctx):
    def __init__(self, tap, wd, key, dnsconf, tpls):
        super().__init__(tap, wd, key, dnsconf, tpls)
        self.pristine = None        # journal segments after the fill
        self.redis = None
        self.n = 0

    def fill_journal(self):
        """The mix into a milter without Redis; its segments kept."""
        state = self.dir("fill-state")
        m = self.milter("fill", state)
        m.start()
        lp = mc.run_loops([self.loop(m, "R", ORDER, TOTAL)])[0]
        self.tap.ok(lp.good(), "fill: %d messages into a milter without "
                    "RedisURL: every reply as expected" % TOTAL,
                    lp.describe())
        mc.stop_ok(self, m, "fill")
        self.pristine = self.dir("pristine")
        for p in mc.journal_files(state):
            shutil.copy(p, self.pristine)

    def state(self, name):
        """A StateDir holding a copy of the pristine journal."""
        s = self.dir(name)
        j = os.path.join(s, "journal")
        os.makedirs(j, exist_ok=True)
        for p in glob.glob(os.path.join(self.pristine, "*")):
            shutil.copy(p, j)
        return s

    def fill_redis(self, name):
        """A fresh Redis holding the pristine counts (replayed by a milter
        with RedisURL from a copy of the journal: the real path)."""
        redis = mta.RedisServer(self.wd, "redis-" + name).start()
        m = self.milter("replay-" + name, self.state("rstate-" + name), redis)
        m.start()
        got, secs = mc.wait_total(redis, sum(expected_counts().values()))
        m.stop(30)
        return redis, got

    def conf(self, name, state, redis=None, **opts):
        o = {"StateDir": state, "DNSConfig": self.dnsconf,
             "ReportEmail": "dmarc@" + SUBMITTER,
             "ReportOrgName": "Receiver Test",
             "NoReportDomains": "noreport.example",
             "LogLevel": "info"}
        if redis is not None:
            o["RedisURL"] = redis.url
        o.update(opts)
        path = os.path.join(self.dir("conf"), name + ".conf")
        with open(path, "w") as f:
            f.write("".join("%s %s\n" % (k, v) for k, v in o.items()
                            if v is not None))
        return path

    def report(self, conf, *args, env=None, timeout=120):
        e = dict(os.environ)
        e.update(env or {})
        r = subprocess.run([report_path(), "-c", conf, "-v"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=e, timeout=timeout)
        return r.returncode, r.stderr.decode(errors="replace")


def today():
    return time.strftime("%Y-%m-%d", time.gmtime())


# ----------------------------------------------------------------- cases

def case_dry(ctx):
    tap = ctx.tap
    exp = expected_counts()
    state = ctx.state("dry")
    out = ctx.dir("dry-out")
    conf = ctx.conf("dry", state)
    rc, err = ctx.report(conf, "--dry-run", out, "--day", today())
    mails = dry_mails(out)
    doms = sorted(m.domain for m in mails)
    want = sorted(RCPTS)
    tap.ok(rc == 0 and doms == want, "dry: one .eml per reporting domain "
           "(%s), noreport.example left out, exit 0" % ", ".join(want),
           ["exit %d, got %r" % (rc, doms), err[-1500:]])
    gz = sorted(glob.glob(os.path.join(out, "*.xml.gz")))
    tap.ok(len(gz) == len(want) and all(
        os.path.basename(g).startswith(SUBMITTER + "!") for g in gz),
        "dry: the .xml.gz beside each .eml, named submitter!domain!begin!"
        "end!id.xml.gz", ["files: %r" % os.listdir(out)])
    bad = []
    for g in gz:
        ok, why = xmllint(gzip.decompress(open(g, "rb").read()),
                          xsd(XSD7489))
        if not ok:
            bad.append((g, why))
    tap.ok(gz and not bad, "dry: every report validates against the RFC "
           "7489 schema (xmllint)", bad[:3])
    got = sums([m for m in mails if not m.error_report])
    want_counts = {d: exp[d] for d in RCPTS if d != "size.example"}
    tap.ok(got == want_counts, "dry: the reports' counts are the messages "
           "sent: %r" % want_counts, ["got %r" % got])
    err_mails = [m for m in mails if m.error_report]
    tap.ok(len(err_mails) == 1 and err_mails[0].domain == "size.example" and
           b"Report-Size:" in err_mails[0].raw,
           "dry: size.example (rua limit 100 bytes) gets the RFC 7489 7.2.2 "
           "error report instead", ["error reports: %r" % [
               m.domain for m in err_mails]])
    files = [os.path.join(out, f) for f in sorted(os.listdir(out))
             if f.endswith(".eml")]
    files = [f for f in files if not Mail(open(f, "rb").read()).error_report]
    per, ids, log = mail_dmarc_import(ctx.dir("md"), files)
    tap.ok(per == want_counts and len(ids) == len(files),
           "dry: Mail::DMARC (Report::Receive from_file, SQLite store) "
           "imports every report, its counts equal ours",
           ["Mail::DMARC: %r, ids %r" % (per, ids), log[-1500:]])
    rc2, err2 = ctx.report(conf, "--dry-run", ctx.dir("dry-out2"), "--day",
                           today())
    again = sorted(os.listdir(ctx.dir("dry-out2")))
    tap.ok(rc2 == 0 and again == sorted(os.listdir(out)),
           "dry: nothing was claimed or marked: a second dry run writes the "
           "same reports", [err2[-800:]])
    st = glob.glob(os.path.join(state, "reports", "groups", "*", "*.st"))
    tap.ok(not st, "dry: no report state left behind", ["%r" % st])
    out9 = ctx.dir("dry-9990")
    rc3, err3 = ctx.report(conf, "--dry-run", out9, "--day", today(),
                           "--format", "rfc9990")
    bad = []
    gz9 = sorted(glob.glob(os.path.join(out9, "*.xml.gz")))
    for g in gz9:
        data = gzip.decompress(open(g, "rb").read())
        ok, why = xmllint(data, xsd(XSD9990))
        if not ok or b"urn:ietf:params:xml:ns:dmarc-2.0" not in data:
            bad.append((g, why))
    tap.ok(rc3 == 0 and len(gz9) == len(want) and not bad,
           "dry: --format rfc9990 reports validate against the RFC 9990 "
           "schema, in its namespace", [err3[-800:]] + bad[:3])


def check_sent(ctx, what, mails, log, rc):
    tap = ctx.tap
    exp = expected_counts()
    doms = sorted(m.domain for m in mails)
    tap.ok(rc == 0 and doms == sorted(RCPTS), "%s: one mail per reporting "
           "domain, exit 0" % what, ["exit %d, got %r" % (rc, doms),
                                     log[-1500:]])
    wrong = [(m.domain, m.rcpts) for m in mails
             if m.rcpts != RCPTS.get(m.domain)]
    tap.ok(not wrong, "%s: envelope recipients: internal rua, the "
           "authorized third party (rcpt.example), not the unauthorized "
           "one (other.example); two in their published order" % what,
           ["wrong: %r" % wrong])
    wrong = [(m.domain, m.to) for m in mails if m.to != RCPTS.get(m.domain)]
    tap.ok(not wrong, "%s: the To: header names the same addresses, in the "
           "same order" % what, ["wrong: %r" % wrong])
    bad = []
    for m in mails:
        ok, why = (True, "") if m.xml is None else \
            xmllint(m.xml, xsd(XSD7489))
        if not ok:
            bad.append((m.domain, why))
    tap.ok(mails and not bad, "%s: every report sent validates against the "
           "RFC 7489 schema (xmllint)" % what, bad[:3])
    files = []
    md = ctx.dir("md-" + re.sub(r"\W+", "-", what))
    for i, m in enumerate(mails):
        if m.xml is not None:
            files.append(os.path.join(md, "%d.eml" % i))
            with open(files[-1], "wb") as f:
                f.write(m.raw)
    per, ids, mlog = mail_dmarc_import(md, files)
    tap.ok(per == sums(mails) and len(ids) == len(files),
           "%s: Mail::DMARC imports every report sent, its counts equal "
           "ours" % what, ["Mail::DMARC: %r, ids %r" % (per, ids),
                           mlog[-1200:]])
    tap.ok("other.example" in log and "skipped" in log,
           "%s: the unauthorized destination is logged as skipped" % what,
           [log[-1500:]])
    tap.ok(all(m.sender == "dmarc@" + SUBMITTER for m in mails),
           "%s: sendmail -f ReportEmail" % what,
           ["senders %r" % [m.sender for m in mails]])
    want = {d: exp[d] for d in RCPTS if d != "size.example"}
    got = sums(mails)
    tap.ok(got == want, "%s: counts exact: %r" % (what, want),
           ["got %r" % got])
    tap.ok(re.search(r"run: 5 reports sent, 0 to be retried, 0 failed, "
                     r"0 skipped .*, 1 dropped", log) is not None,
           "%s: the summary line: 5 sent, 1 dropped (NoReportDomains)" % what,
           [log[-800:]])


def case_send(ctx):
    tap = ctx.tap
    for backend in ("journal", "redis"):
        out = ctx.dir("send-%s-out" % backend)
        sm = capture_script(os.path.join(ctx.dir("bin"), "sm-" + backend),
                            out)
        if backend == "redis":
            redis, got = ctx.fill_redis("send")
            state = ctx.dir("send-redis-state")
        else:
            redis, state = None, ctx.state("send-journal")
        conf = ctx.conf("send-" + backend, state, redis, SendmailPath=sm)
        rc, log = ctx.report(conf, "--day", today())
        mails = captured(out)
        check_sent(ctx, "send (%s)" % backend, mails, log, rc)
        rc2, log2 = ctx.report(conf, "--day", today())
        tap.ok(rc2 == 0 and len(captured(out)) == len(mails),
               "send (%s): a second run sends nothing" % backend,
               ["exit %d, %d mails now" % (rc2, len(captured(out))),
                log2[-800:]])
        if backend == "journal":
            left = glob.glob(os.path.join(state, "reports", "groups", "*",
                                          "*"))
            tap.ok(not left, "send (journal): the sent groups' files are "
                   "gone", ["%r" % left[:5]])
        else:
            with mta.RedisClient(redis.sock) as c:
                keys = c.call("KEYS", "*:rows:*")
            tap.ok(not keys, "send (redis): the sent groups' rows are "
                   "deleted", ["%r" % keys[:5]])
            redis.stop()


KILL_STEPS = {
    "journal": ["fold-group", "claimed", "built", "sent", "done-marked"],
    "redis": ["claimed", "built", "sent"],
}


def case_kill(ctx):
    tap = ctx.tap
    exp = expected_counts()
    want = {d: exp[d] for d in RCPTS if d != "size.example"}
    for backend, steps in sorted(KILL_STEPS.items()):
        for step in steps:
            what = "kill (%s) at %s" % (backend, step)
            out = ctx.dir("kill-%s-%s" % (backend, step))
            sm = capture_script(os.path.join(ctx.dir("bin"), "k-%s-%s" % (
                backend, step)), out)
            redis = None
            if backend == "redis":
                redis, _ = ctx.fill_redis("k" + step)
                state = ctx.dir("kstate-" + step)
            else:
                state = ctx.state("kill-" + step)
            conf = ctx.conf("k-%s-%s" % (backend, step), state, redis,
                            SendmailPath=sm, RedisTimeout=2000)
            rc1, log1 = ctx.report(conf, "--day", today(),
                                   env={"DMARC_REPORT_KILL_AT": step})
            # the lease of a killed Redis run must expire first
            if redis is not None:
                with mta.RedisClient(redis.sock) as c:
                    for k in c.call("KEYS", "*:claim:*"):
                        c.call("DEL", k)
            rc2, log2 = ctx.report(conf, "--day", today())
            mails = captured(out)
            by_id = {}
            for m in mails:
                by_id.setdefault(m.report_id, []).append(m)
            dup = {i: len(v) for i, v in by_id.items() if len(v) > 1}
            same = all(len({(m.message_id, m.raw.split(b"\r\n\r\n", 1)[-1])
                            for m in v}) == 1 for v in by_id.values())
            per_dom = {}
            for m in mails:
                per_dom.setdefault(m.domain, set()).add(m.report_id)
            one_id = all(len(v) == 1 for v in per_dom.values())
            tap.ok(rc1 == -9 and rc2 == 0 and sums(mails) == want and one_id,
                   "%s: killed, then a run: every count delivered once, one "
                   "report id per domain" % what,
                   ["first exit %r, second %r" % (rc1, rc2),
                    "counts %r" % sums(mails), "ids per domain %r" % per_dom,
                    log1[-600:], log2[-900:]])
            if step == "sent":
                tap.ok(len(dup) == 1 and same,
                       "%s: the one report the MTA had taken goes again, "
                       "same report id, Message-ID and body" % what,
                       ["copies %r, identical %r" % (dup, same)])
            else:
                tap.ok(not dup, "%s: no report sent twice" % what,
                       ["copies %r" % dup])
            if redis is not None:
                redis.stop()


def journal_record(domain, begin, end, seq, policy, row, writer="t:1:1"):
    def esc(s):
        return "".join("%%%02X" % ord(c) if c in "% " or ord(c) < 0x20 or
                       ord(c) == 0x7f else c for c in s)
    p = " ".join(esc(x) for x in (writer, str(seq), domain, str(begin),
                                  str(end), "1", policy, row)).encode()
    return b"%08x %d %s\n" % (zlib.crc32(p), len(p), p)


def case_retry(ctx):
    tap = ctx.tap
    state = ctx.state("retry")
    out = ctx.dir("retry-out")
    bad_sm = capture_script(os.path.join(ctx.dir("bin"), "sm-fail"), out,
                            fail=True)
    good_sm = capture_script(os.path.join(ctx.dir("bin"), "sm-retry"), out)
    conf = ctx.conf("retry", state, SendmailPath=bad_sm,
                    NoReportDomains=None)
    rc, log = ctx.report(conf, "--day", today(), "--domain", "ext.example")
    st = glob.glob(os.path.join(state, "reports", "groups", "ext.example",
                                "*.st"))
    fields = open(st[0]).read().split() if st else []
    tap.ok(rc == 1 and "exited with status 75" in log and len(fields) == 4
           and fields[1] == "1" and int(fields[2]) > time.time() + 3000,
           "retry: sendmail fails: exit 1, the group stays with 1 try and "
           "its next attempt an hour away", ["exit %d" % rc, "state %r" %
                                             fields, log[-800:]])
    conf2 = ctx.conf("retry2", state, SendmailPath=good_sm)
    rc2, log2 = ctx.report(conf2, "--day", today(), "--domain", "ext.example")
    tap.ok(rc2 == 0 and not captured(out) and "1 skipped" in log2,
           "retry: a run within the backoff leaves it alone",
           ["exit %d" % rc2, log2[-600:]])
    reset_backoff(state, "ext.example")
    rc3, log3 = ctx.report(conf2, "--day", today(), "--domain",
                           "ext.example")
    mails = captured(out)
    tap.ok(rc3 == 0 and len(mails) == 1 and fields and
           mails[0].report_id == fields[0],
           "retry: after the backoff it is sent, with the report id fixed "
           "at its first attempt", ["exit %d, ids %r, state id %r" % (
               rc3, [m.report_id for m in mails], fields[:1]), log3[-600:]])
    # a period that ended 8 days ago (RedisTTL 7 days): given up
    old = ctx.dir("retry-old")
    os.makedirs(os.path.join(old, "journal"), exist_ok=True)
    day = (int(time.time()) // 86400 - 9) * 86400
    pol = ("p=none;sp=none;np=none;pct=100;t=n;adkim=r;aspf=r;fo=0;psd=u;"
           "rua=mailto%3Ar@ext.example;ruf=;dm=treewalk;")
    row = ("ip=192.0.2.9;hf=ext.example;ef=ext.example;disp=none;r=;ad=;"
           "dkim=fail;spf=fail;as=ext.example/mfrom/fail;")
    with open(os.path.join(old, "journal", "seg-1-1-1.log"), "wb") as f:
        f.write(journal_record("ext.example", day, day + 86400, 1, pol, row))
    conf3 = ctx.conf("retry-old", old, SendmailPath=bad_sm)
    rc4, log4 = ctx.report(conf3)
    left = glob.glob(os.path.join(old, "reports", "groups", "*", "*.g"))
    tap.ok(rc4 == 1 and "given up" in log4 and not left,
           "retry: a report whose data's retention ends before the next "
           "attempt is given up, with a log line, and its data dropped",
           ["exit %d, left %r" % (rc4, left), log4[-800:]])


def reset_backoff(state, domain):
    """Make a failed group due again at once (its .st next = 0)."""
    for st in glob.glob(os.path.join(state, "reports", "groups", domain,
                                     "*.st")):
        f = open(st).read().split()
        with open(st, "w") as o:
            o.write("%s %s 0 0\n" % (f[0], f[1]))


def case_outage(ctx):
    """The local MTA down for longer than the suppression threshold must
    neither suppress a destination nor drop a report; a destination that
    is suppressed delays its report, never drops it."""
    tap = ctx.tap
    exp = expected_counts()
    state = ctx.state("outage")
    out = ctx.dir("outage-out")
    bad_sm = capture_script(os.path.join(ctx.dir("bin"), "sm-down"), out,
                            fail=True)
    good_sm = capture_script(os.path.join(ctx.dir("bin"), "sm-up"), out)
    conf = ctx.conf("outage", state, SendmailPath=bad_sm)
    rcs = []
    for _ in range(7):
        rc, log = ctx.report(conf, "--day", today(), "--domain",
                             "ext.example")
        rcs.append(rc)
        reset_backoff(state, "ext.example")
    dests = os.path.join(state, "reports", "destinations")
    table = open(dests).read() if os.path.exists(dests) else ""
    tap.ok(rcs == [1] * 7 and "rcpt.example" not in table,
           "outage: sendmail failing 7 times in a row: every run exits 1, "
           "and the destination is not counted as failing (the MTA is)",
           ["exits %r" % rcs, "destinations: %r" % table, log[-600:]])
    rc, log = ctx.report(ctx.conf("outage-up", state, SendmailPath=good_sm),
                         "--day", today(), "--domain", "ext.example")
    mails = captured(out)
    tap.ok(rc == 0 and [m.rcpts for m in mails] == [["dmarc@rcpt.example"]]
           and sums(mails) == {"ext.example": exp["ext.example"]},
           "outage: once sendmail works, the report goes with every count",
           ["exit %d, %r" % (rc, [(m.rcpts, m.domain) for m in mails]),
            log[-800:]])
    # a destination suppressed (it kept refusing): the report waits
    state2 = ctx.state("suppressed")
    os.makedirs(os.path.join(state2, "reports"), exist_ok=True)
    with open(os.path.join(state2, "reports", "destinations"), "w") as f:
        f.write("dmarc@rcpt.example 5 %d\n" % (time.time() + 3600))
    out2 = ctx.dir("suppressed-out")
    conf2 = ctx.conf("suppressed", state2, SendmailPath=capture_script(
        os.path.join(ctx.dir("bin"), "sm-sup"), out2))
    rc, log = ctx.report(conf2, "--day", today(), "--domain", "ext.example")
    left = glob.glob(os.path.join(state2, "reports", "groups", "ext.example",
                                  "*.g"))
    tap.ok(rc == 1 and not captured(out2) and left and
           "left out for now" in log,
           "outage: every destination suppressed: nothing sent, exit 1, "
           "the counts kept for a later run",
           ["exit %d, group files %r" % (rc, left), log[-800:]])


def journal_records(state):
    """(writer, seq, domain, begin, end, n, policy, row) of every record
    in a StateDir's journal segments, unescaped."""
    out = []
    for seg in sorted(glob.glob(os.path.join(state, "journal", "seg-*"))):
        for line in open(seg, "rb").read().split(b"\n"):
            parts = line.split(b" ", 2)
            if len(parts) == 3:
                out.append([urllib.parse.unquote(f) for f in
                            parts[2].decode().split(" ")])
    return out


def case_late(ctx):
    """A count that reaches the journal after its period was reported
    goes out in a report of its own, with its own report id: neither lost
    nor counted twice."""
    tap = ctx.tap
    state = ctx.state("late")
    recs = [r for r in journal_records(state) if r[2] == "ext.example"]
    out = ctx.dir("late-out")
    conf = ctx.conf("late", state, SendmailPath=capture_script(
        os.path.join(ctx.dir("bin"), "sm-late"), out))
    rc1, log1 = ctx.report(conf, "--day", today(), "--domain", "ext.example")
    r = recs[0] if recs else ["", "", "ext.example", "0", "0", "1", "", ""]
    with open(os.path.join(state, "journal", "seg-9-9-9.log"), "wb") as f:
        f.write(journal_record(r[2], int(r[3]), int(r[4]), 1, r[6],
                               r[7], writer="late:1:1"))
    rc2, log2 = ctx.report(conf, "--day", today(), "--domain", "ext.example")
    mails = captured(out)
    ids = [m.report_id for m in mails]
    counts = [m.counts()[1] for m in mails]
    exp = expected_counts()["ext.example"]
    tap.ok(recs and rc1 == 0 and rc2 == 0 and len(mails) == 2 and
           len(set(ids)) == 2 and counts == [exp, 1],
           "late: a count journaled after its period's report went out makes "
           "a second report, its own id, holding that count alone",
           ["exits %d %d, ids %r, counts %r (want [%d, 1])" % (
               rc1, rc2, ids, counts, exp), log2[-800:]])


def case_expired(ctx):
    """A group whose counts Redis expired (RedisTTL) while its index entry
    stayed: nothing to send, said so, and not counted as sent."""
    tap = ctx.tap
    redis, _ = ctx.fill_redis("expired")
    with mta.RedisClient(redis.sock) as c:
        gone = [k for k in c.call("KEYS", "*{ext.example}:*")
                if ":rows:" in k or ":meta:" in k]
        for k in gone:
            c.call("DEL", k)
    out = ctx.dir("expired-out")
    conf = ctx.conf("expired", ctx.dir("expired-state"), redis,
                    SendmailPath=capture_script(os.path.join(
                        ctx.dir("bin"), "sm-expired"), out))
    rc, log = ctx.report(conf, "--day", today(), "--domain", "ext.example")
    tap.ok(gone and rc == 0 and not captured(out) and
           "counts are gone" in log and
           re.search(r"run: 0 reports sent, .* 1 dropped", log) is not None,
           "expired: a group whose counts expired sends nothing and is "
           "dropped with a log line, not counted as sent",
           ["deleted %r, exit %d" % (gone, rc), log[-800:]])
    redis.stop()


def case_dnsfail(ctx):
    """A third-party rua whose check keeps failing (DNS) holds the report
    back a few attempts, then no longer: the verified rua gets it."""
    tap = ctx.tap
    state = ctx.dir("dnsfail")
    os.makedirs(os.path.join(state, "journal"), exist_ok=True)
    day = int(time.time()) // 86400 * 86400
    pol = ("p=none;sp=none;np=none;pct=100;t=n;adkim=r;aspf=r;fo=0;psd=u;"
           "rua=mailto%3Ax@slow.example,mailto%3Ar@tf.example;ruf=;"
           "dm=treewalk;")
    row = ("ip=192.0.2.9;hf=tf.example;ef=tf.example;disp=none;r=;ad=;"
           "dkim=fail;spf=fail;as=tf.example/mfrom/fail;")
    with open(os.path.join(state, "journal", "seg-1-1-1.log"), "wb") as f:
        f.write(journal_record("tf.example", day, day + 86400, 1, pol, row))
    out = ctx.dir("dnsfail-out")
    conf = ctx.conf("dnsfail", state, SendmailPath=capture_script(
        os.path.join(ctx.dir("bin"), "sm-dnsfail"), out))
    runs = []
    for _ in range(3):
        rc, log = ctx.report(conf, "--day", today())
        runs.append((rc, len(captured(out))))
        reset_backoff(state, "tf.example")
    mails = captured(out)
    tap.ok(runs == [(1, 0), (1, 0), (0, 1)] and
           [m.rcpts for m in mails] == [["r@tf.example"]] and
           "could not be verified (DNS) in 3 attempts" in log,
           "dnsfail: x@slow.example cannot be verified (REFUSED): two runs "
           "retry, the third sends to r@tf.example alone",
           ["(exit, mails) per run %r" % runs,
            "rcpts %r" % [m.rcpts for m in mails], log[-800:]])


def sendmail_wrapper(path, pf):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n# Postfix's sendmail, for the private instance\n"
                "MAIL_CONFIG=%s exec /usr/sbin/sendmail \"$@\"\n" % pf.etc)
    os.chmod(path, 0o755)
    return path


def case_postfix(ctx):
    tap = ctx.tap
    if not mta.which("postfix"):
        tap.ok(True, "postfix: # SKIP postfix not installed")
        return
    doms = " ".join(sorted({r.split("@")[1] for v in RCPTS.values()
                            for r in v}))
    pf = mta.PrivatePostfix(ctx.wd, settings={
        "virtual_mailbox_domains": doms}).start()
    n = 0
    for how in ("sendmail", "SMTPRelay"):
        state = ctx.state("pf-" + how)
        opts = {"SendmailPath": sendmail_wrapper(os.path.join(
            ctx.dir("bin"), "pf-sendmail"), pf)} if how == "sendmail" else {
            "SMTPRelay": "127.0.0.1:%d" % pf.port, "SMTPRelayTLS": "none"}
        conf = ctx.conf("pf-" + how, state, **opts)
        rc, log = ctx.report(conf, "--day", today())
        per_run = sum(len(v) for v in RCPTS.values())  # a copy each
        n += per_run
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(pf.delivered()) < n:
            time.sleep(0.2)
        mails = [Mail(d) for _, d in pf.delivered()]
        tap.ok(rc == 0 and len(mails) == n,
               "postfix (%s): the private Postfix delivered the %d report "
               "mails, to %d mailboxes" % (how, len(RCPTS), per_run),
               ["exit %d, delivered %d of %d" % (rc, len(mails), n),
                log[-1000:], pf.log_tail(20)])
        exp = expected_counts()
        want = {d: exp[d] for d in RCPTS if d != "size.example"}
        got = sums(mails[-per_run:]) if len(mails) >= per_run else {}
        tap.ok(got == want, "postfix (%s): the delivered reports' counts "
               "are exact" % how, ["got %r" % got])
    pf.stop()


def prom_file(path):
    """{name or name{labels}: int} of a metrics file."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = int(v)
    return out


def rep(what):
    return 'dmarc_report_reports{outcome="%s"}' % what


def metrics_run(ctx, conf, prom, want, name):
    """One run; the file's report figures are exactly want."""
    rc, log = ctx.report(conf, "--day", today(), "--metrics-file", prom)
    m = prom_file(prom) if os.path.exists(prom) else {}
    bad = ["%s: %s, want %s" % (k, m.get(k), v) for k, v in want.items()
           if m.get(k) != v]
    ctx.tap.ok(not bad and not os.path.exists(prom + ".tmp"),
               "metrics: %s" % name, bad + ["exit %d" % rc, log[-600:]])
    return rc, m


def case_metrics(ctx):
    state = ctx.state("metrics")
    out = ctx.dir("metrics-out")
    bad_sm = capture_script(os.path.join(ctx.dir("bin"), "sm-mfail"), out,
                            fail=True)
    good_sm = capture_script(os.path.join(ctx.dir("bin"), "sm-metrics"), out)
    prom = os.path.join(ctx.dir("textfile"), "dmarc_report.prom")
    conf = ctx.conf("metrics-fail", state, SendmailPath=bad_sm)
    n = len(glob.glob(os.path.join(state, "journal", "*")))
    rc, m = metrics_run(ctx, conf, prom, {
        rep("sent"): 0, rep("failed"): 0, "dmarc_report_bytes": 0,
        "dmarc_report_last_success_timestamp_seconds": 0}, "a failing run: "
        "nothing sent, never a success")
    tries = m.get(rep("retried"), 0)
    ctx.tap.ok(rc == 1 and tries > 0 and tries == m.get(rep("built")) and
               m.get("dmarc_report_last_run_timestamp_seconds", 0) > 0,
               "metrics: every report built was retried, the run's time "
               "set", ["exit %d, %r (journal had %d files)" % (rc, m, n)])
    for d in os.listdir(os.path.join(state, "reports", "groups")):
        reset_backoff(state, d)
    conf = ctx.conf("metrics-good", state, SendmailPath=good_sm)
    t0 = int(time.time())
    rc, m = metrics_run(ctx, conf, prom, {rep("retried"): 0,
                                          rep("failed"): 0},
                        "a good run: nothing retried or failed")
    mails = captured(out)
    size = sum(len(x.raw) for x in mails)
    ok = m.get(rep("sent")) == len(mails) == m.get(rep("built")) and \
        m.get("dmarc_report_bytes") == size and rc == 0 and \
        m.get("dmarc_report_last_success_timestamp_seconds", 0) >= t0
    ctx.tap.ok(ok and mails, "metrics: sent and built are the %d mails the "
               "MTA got, bytes their %d bytes, the success time now" %
               (len(mails), size), ["exit %d, %r" % (rc, m)])
    time.sleep(1.1)
    rc, m2 = metrics_run(ctx, conf, prom, {rep("sent"): 0, rep("built"): 0,
                                           "dmarc_report_bytes": 0},
                         "an idle run: nothing built or sent")
    ctx.tap.ok(rc == 0 and m2.get("dmarc_report_last_success_timestamp_"
                                  "seconds", 0) > m.get(
        "dmarc_report_last_success_timestamp_seconds", 0),
        "metrics: an idle run is a success too", ["%r" % m2])
    promtool = mta.which("promtool")
    if promtool is None:
        with ctx.tap.lock:
            ctx.tap.n += 1
            print("ok %d - metrics: promtool check metrics # SKIP promtool "
                  "is not installed (Debian package prometheus)" %
                  ctx.tap.n)
        return
    with open(prom) as f:
        p = subprocess.run([promtool, "check", "metrics"], stdin=f,
                           capture_output=True, text=True, timeout=60)
    ctx.tap.ok(p.returncode == 0 and not (p.stdout + p.stderr).strip(),
               "metrics: promtool check metrics accepts the file",
               ["exit %d" % p.returncode, p.stdout, p.stderr])


CASES = [case_dry, case_send, case_kill, case_retry, case_outage,
         case_late, case_expired, case_dnsfail, case_postfix, case_metrics]


def main():
    missing = [p for p, ok in (
        ("redis-server", mta.which("redis-server")),
        ("miltertest", mp.miltertest_path()),
        ("xmllint", mta.which("xmllint"))) if not ok]
    r = subprocess.run(["perl", "-MMail::DMARC::Report::Receive", "-MDBD::"
                        "SQLite", "-e1"], stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        missing.append("libmail-dmarc-perl")
    if missing:
        print("1..0 # SKIP %s not installed" % " ".join(missing))
        return 0
    mta.install_signal_cleanup()
    tap = ec.Tap()
    if not os.access(report_path(), os.X_OK):
        tap.bail("dmarc-report not built: %s" % report_path())
    wd = ec.Workdir("dmarc-report-e2e.")
    try:
        key = ec.Key.rsa(wd, "rsa")
        dnsconf = build_zone(key).write(wd.file("unbound.conf"))
        ctx = Ctx(tap, wd, key, dnsconf, templates(key))
        ctx.fill_journal()
        mc.run_cases(tap, ctx, CASES, "REPORT_CASES")
    finally:
        mta._stop_all()
        wd.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
