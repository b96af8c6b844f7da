#!/usr/bin/env python3
"""tests/integration/milter_kill.py - every message Postfix accepted or
we rejected is counted exactly once, however often dmarc-milter is killed
(issue 16).

A private Postfix (mta.PrivatePostfix: milter_default_action = tempfail)
in front of dmarc-milter (UserID postfix, DNS from local-data). CLIENTS
threads send MESSAGES distinct messages (each its own Message-ID) through
smtplib with XCLIENT: three in four from an aligned SPF pass of p=none
none.example (250), one in four a spoof of p=reject reject.example (550).
A 4xx or a broken session (the milter is dead, Postfix defers) makes the
client offer the same message again, as a real client retries, until it
gets a final reply. Meanwhile the milter is killed with SIGKILL KILLS
times, at evenly spread points of the stream, and restarted on the same
socket and StateDir.

Then the milter is stopped with SIGTERM and dmarc-report --dry-run
writes today's reports: none.example must count exactly the 250s and
reject.example exactly the 550s: a count lost is a message accepted and
not counted; a count twice is a message whose count became durable while
its reply was lost, retried.

Runs (RUNS, comma-separated): redis (a persistent private redis-server),
embedded (no RedisURL: the journal is the store, folded by dmarc-report),
redis-kill (as redis, and Redis itself is killed with SIGKILL at the
middle kill and restarted on its append-only file two seconds later).

Then the DNS outage case: outage.example (p=reject) publishes an SPF
record whose include is in a refused zone, so with TemporaryErrorAction
auto the milter answers 451; the same message is offered five times, the
DNS comes back (SIGHUP with a DNSConfig where the include resolves) and
the sixth offer is accepted: it is counted once.

Environment: srcdir, builddir (make check); KILL_MESSAGES (default 2000),
KILL_COUNT (default 5), KILL_CLIENTS (default 4), RUNS (default
"redis,embedded"), KEEP_TMP=1. The benchmark run of the issue is
KILL_MESSAGES=10000 KILL_COUNT=20 RUNS=redis,embedded,redis-kill (make
bench-kill); it prints the throughput of each run (KILL_COUNT=0: no kill,
the throughput alone). Prints "1..0 # SKIP ..." when not
root, or when postfix, swaks or redis-server are missing.
"""

import glob
import gzip
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evalcorpus as ec  # noqa: E402
import mta  # noqa: E402

GOOD, BAD = ec.GOOD_IP, ec.BAD_IP
NONE, REJ, SENDER = "none.example", "reject.example", "sender.example"
OUTAGE = "outage.example"
HELO = "mx." + SENDER


def env_int(name, default, least=1):
    try:
        return max(least, int(os.environ.get(name, str(default))))
    except ValueError:
        return default


MESSAGES = env_int("KILL_MESSAGES", 2000)
KILLS = env_int("KILL_COUNT", 5, 0)     # 0: a throughput figure only
CLIENTS = env_int("KILL_CLIENTS", 4)
RUNS = [r for r in os.environ.get("RUNS", "redis,embedded").split(",") if r]


def skip(why):
    print("1..0 # SKIP " + why)
    sys.stdout.flush()
    sys.exit(0)


def build_zone(outage):
    z = ec.Zone(static=("example.",))
    for d, p in ((NONE, "none"), (REJ, "reject"), (OUTAGE, "reject")):
        z.dmarc(d, "v=DMARC1; p=%s; rua=mailto:rua@%s" % (p, d))
        z.a(d)
    z.spf(NONE)
    z.spf(REJ)
    z.spf(SENDER)
    z.a(SENDER)
    z.comment("outage.example's SPF include: refused (the outage) or not")
    z.spf(OUTAGE, "v=spf1 include:spf.dns.example -all")
    if outage:
        z.refuse("dns.example")
    else:
        z.spf("spf.dns.example")
    return z


def message(i, run, frm):
    hdrs = [("From", "Alice <alice@%s>" % frm),
            ("To", "bob@" + mta.TEST_DOMAIN),
            ("Subject", "kill test %s %d" % (run, i)),
            ("Date", "Fri, 15 Feb 2002 16:54:30 -0800"),
            ("Message-ID", "<%s.%d@%s>" % (run, i, SENDER))]
    return ec.build_message(hdrs, b"Hello,\r\n\r\nmessage %d.\r\n" % i)


def plan(i, run):
    """(mail_from, client ip, message bytes, expected final code)."""
    if i % 4 == 0:
        return ("x@" + SENDER, BAD, message(i, run, REJ), 550)
    return ("bounce@" + NONE, GOOD, message(i, run, NONE), 250)


class Stream:
    """The client threads and what they saw."""

    def __init__(self, port, run, n):
        self.port, self.run, self.n = port, run, n
        self.lock = threading.Lock()
        self.next = 0
        self.done = 0
        self.final = {}         # index -> final code
        self.retries = 0
        self.odd = []           # final replies not the planned one

    def take(self):
        with self.lock:
            if self.next >= self.n:
                return None
            self.next += 1
            return self.next - 1

    def session(self, ip):
        while True:
            try:
                return mta.SmtpSession(self.port, ip, HELO, timeout=60)
            except (OSError, smtplib.SMTPException, mta.HarnessError):
                time.sleep(0.05)

    def client(self):
        sessions = {}           # client ip -> its SMTP session
        i = self.take()
        while i is not None:
            mail_from, ip, data, want = plan(i, self.run)
            r = None
            try:
                if ip not in sessions:
                    sessions[ip] = self.session(ip)
                r = sessions[ip].send(mail_from, "bob@" + mta.TEST_DOMAIN,
                                      data)
                code = r.code
            except (OSError, smtplib.SMTPException, mta.HarnessError):
                code = None
            if code is not None and code >= 500 or code == 250:
                with self.lock:
                    self.final[i] = code
                    self.done += 1
                    if code != want:
                        self.odd.append((i, code, r.text if r else ""))
                i = self.take()
                continue
            with self.lock:
                self.retries += 1
            if ip in sessions:
                sessions.pop(ip).close()
            time.sleep(0.02)
        for sess in sessions.values():
            sess.close()

    def start(self):
        self.threads = [threading.Thread(target=self.client, daemon=True)
                        for _ in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def alive(self):
        return any(t.is_alive() for t in self.threads)

    def progress(self):
        with self.lock:
            return self.done


def redis_start(redis):
    """Started, its socket open to the milter (it runs as postfix)."""
    redis.start()
    mta._open_to_others(redis.dir)
    os.chmod(redis.dir, 0o755)
    os.chmod(redis.sock, 0o777)


def kill9(milter):
    """SIGKILL, as a crash: nothing of the milter runs after it."""
    proc = milter.proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    milter.proc = None
    if milter in mta._running:
        mta._running.remove(milter)


def report_counts(tap, wd, name, state, redis, dnsconf):
    """dmarc-report --dry-run for today: messages per policy domain."""
    out = wd.file(name + "-reports")
    os.makedirs(out, exist_ok=True)
    conf = [("StateDir", state), ("DNSConfig", dnsconf),
            ("ReportEmail", "dmarc@receiver.example"),
            ("ReportOrgName", "Kill Test"), ("LogLevel", "info")]
    if redis is not None:
        conf.append(("RedisURL", redis.url))
    path = wd.file(name + "-report.conf",
                   "".join("%s %s\n" % kv for kv in conf))
    rep = os.environ.get("DMARC_REPORT") or os.path.join(
        ec.dirs()[1], "report", "dmarc-report")
    r = subprocess.run([rep, "-c", path, "-v", "--dry-run", out, "--day",
                        time.strftime("%Y-%m-%d", time.gmtime())],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300)
    counts = {}
    for g in glob.glob(os.path.join(out, "*.xml.gz")):
        xml = gzip.decompress(open(g, "rb").read()).decode()
        m = re.search(r"<policy_published>\s*<domain>([^<]+)</domain>", xml)
        n = sum(int(c) for c in re.findall(r"<count>(\d+)</count>", xml))
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + n
    return r.returncode, r.stderr.decode(errors="replace"), counts


def milter_options(dnsconf, redis):
    o = {"DNSConfig": dnsconf, "UserID": "postfix",
         "TemporaryErrorAction": "auto", "LogLevel": "notice"}
    if redis is not None:
        o["RedisURL"] = redis.url
    return o


def run_kills(tap, wd, builddir, dnsconf, run):
    redis = None
    if run.startswith("redis"):
        redis = mta.RedisServer(wd.path, name="redis-" + run, persist=True)
        redis_start(redis)
    milter = mta.Milter(builddir, wd.path, milter_options(dnsconf, redis),
                        name="milter-" + run)
    postfix = mta.PrivatePostfix(wd.path, milter_socket=milter,
                                 name="postfix-" + run)
    milter.start()
    postfix.start()
    st = Stream(postfix.port, run, MESSAGES)
    started = time.monotonic()
    st.start()
    kills = 0
    while kills < KILLS and st.alive():
        if st.progress() < (kills + 1) * MESSAGES // (KILLS + 1):
            time.sleep(0.005)
            continue
        kill9(milter)
        kills += 1
        if run == "redis-kill" and kills == (KILLS + 1) // 2:
            redis.kill()
            time.sleep(2)
            redis_start(redis)
        time.sleep(0.2)
        milter.start()
    for t in st.threads:
        t.join(timeout=1800)
    secs = time.monotonic() - started
    rc_stop = milter.stop()
    postfix.stop()
    accepted = sum(1 for c in st.final.values() if c == 250)
    rejected = sum(1 for c in st.final.values() if c == 550)
    tap.ok(len(st.final) == MESSAGES and not st.odd,
           "%s: all %d messages got their final reply (%d accepted, %d "
           "rejected) after %d kills and %d offers again" % (
               run, MESSAGES, accepted, rejected, kills, st.retries),
           ["finals %d, odd replies %r" % (len(st.final), st.odd[:5])])
    if KILLS > 0:
        tap.ok(kills == KILLS and st.retries > 0, "%s: the milter was "
               "killed %d times mid-stream and clients had to retry" % (
                   run, KILLS), ["kills %d, retries %d" % (kills,
                                                          st.retries)])
    tap.ok(rc_stop == 0, "%s: the last milter stopped cleanly on SIGTERM"
           % run, ["exit %r" % rc_stop, milter.log_text()[-1500:]])
    rc, err, counts = report_counts(tap, wd, run, milter.options[
        "StateDir"], redis, dnsconf)
    want = {NONE: accepted, REJ: rejected}
    got = {d: counts.get(d, 0) for d in want}
    tap.ok(rc == 0 and got == want, "%s: the reports count exactly the "
           "messages Postfix accepted or we rejected, none twice: %r" % (
               run, want), ["dmarc-report exit %d, counts %r" % (rc, counts),
                            err[-2000:]])
    repeats = sum(int(x) for x in re.findall(
        r"(\d+) messages offered again \(fingerprint seen\)", err))
    if redis is None:
        tap.diag("%s: %d retried messages whose count was durable already "
                 "skipped by the fold" % (run, repeats))
    left = glob.glob(os.path.join(milter.options["StateDir"], "journal",
                                  "seg-*"))
    if redis is not None:
        tap.ok(not left, "%s: every journal segment was shipped and "
               "removed" % run, left[:5])
        redis.stop()
    tap.diag("%s: %d messages in %.1f s (%.0f msg/s) with %d kills" % (
        run, MESSAGES, secs, MESSAGES / secs, kills))


def outage_case(tap, wd, builddir, down, up):
    """Five 451s while the DNS fails, then a 250: counted once."""
    milter = mta.Milter(builddir, wd.path, milter_options(down, None),
                        name="milter-outage")
    postfix = mta.PrivatePostfix(wd.path, milter_socket=milter,
                                 name="postfix-outage")
    milter.start()
    postfix.start()
    data = ec.build_message([("From", "carol@" + OUTAGE),
                             ("To", "bob@" + mta.TEST_DOMAIN),
                             ("Subject", "during the outage"),
                             ("Date", "Fri, 15 Feb 2002 16:54:30 -0800"),
                             ("Message-ID", "<outage.1@%s>" % OUTAGE)])
    codes = []
    for attempt in range(6):
        if attempt == 5:
            mark = len(milter.log_lines())
            milter.reload({"DNSConfig": up})
            milter.wait_log(r"reload: .* new settings in use", timeout=10,
                            start=mark)
        r = mta.send(postfix.port, "bounce@" + OUTAGE,
                     "bob@" + mta.TEST_DOMAIN, data, GOOD, HELO)
        codes.append(r.code)
    milter.stop()
    postfix.stop()
    tap.ok(codes == [451] * 5 + [250], "outage: five 451s while the SPF "
           "include is refused, then 250 once it resolves", ["replies %r" %
                                                             codes])
    rc, err, counts = report_counts(tap, wd, "outage", milter.options[
        "StateDir"], None, up)
    tap.ok(rc == 0 and counts.get(OUTAGE) == 1, "outage: the message "
           "offered six times is counted once, at its final disposition",
           ["dmarc-report exit %d, counts %r" % (rc, counts), err[-1500:]])


def main():
    if os.geteuid() != 0:
        skip("a private Postfix needs root")
    why = mta.ensure_tools()
    if why:
        skip(why)
    if mta.which("redis-server") is None and any(
            r.startswith("redis") for r in RUNS):
        skip("redis-server is not installed")
    mta.install_signal_cleanup()
    srcdir, builddir = ec.dirs()
    tap = ec.Tap()
    wd = ec.Workdir("dmarc-milter-kill.")
    try:
        ok, ver = mta.Milter(builddir, wd.path, name="probe").available()
        if not ok:
            tap.bail("dmarc-milter is not usable: " + ver)
        tap.diag(ver)
        down = build_zone(True).write(wd.file("down.conf"))
        up = build_zone(False).write(wd.file("up.conf"))
        os.chmod(down, 0o644)
        os.chmod(up, 0o644)
        for run in RUNS:
            run_kills(tap, wd, builddir, up, run)
        outage_case(tap, wd, builddir, down, up)
    finally:
        mta._stop_all()
        wd.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
