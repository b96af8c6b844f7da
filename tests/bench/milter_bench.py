#!/usr/bin/env python3
"""tests/bench/milter_bench.py - dmarc-milter side by side with the usual
receiving pipeline, Debian's opendkim (verify, writes A-R) chained with
opendmarc (trusts opendkim's A-R, checks SPF itself), under the same load
(issue 7). Prints figures; asserts nothing.

The corpus: a 5 KB DKIM-signed aligned message, an SPF-only pass, a
failing p=reject message, a domain without a DMARC record, and a 100 KB
signed message (signed here with python3-dkim), each a file with its
X-Envelope-* fields for tests/bench/milterload.

DNS: dmarc-milter reads the zone as unbound local-data (DNSConfig).
opendkim and opendmarc get it from an unbound daemon on 127.0.0.1:53
inside a network namespace of their own (unshare -n), with a mount
namespace in which /etc/resolv.conf is our file bind-mounted: nothing of
the system is touched, and the daemons are stopped by their process
group at the end.

Runs, alternating the two sides in each round:
  1. milterload, 20 connections, as fast as answered, per message kind:
     messages/s, EOM p99, milter CPU per message;
  2. milterload at a fixed 1,000 messages/s (5 KB signed): p99;
  3. ours over inet:port@127.0.0.1 against unix;
  4. a private Postfix (tests/integration/mta.py) fed by smtp-source at
     20 sessions: no milter, opendkim+opendmarc, ours.

Usage: milter_bench.py [--milterload PATH] [--rounds N] [--messages N]
    [--theirs-messages N] [--postfix-messages N] [--quick] [--keep]
Needs root (namespaces, Postfix), opendkim, opendmarc, unbound,
redis-server, postfix (smtp-source), python3-dkim.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import evalcorpus as ec  # noqa: E402

ec.need_dkim()
import mta  # noqa: E402

CLIENT = ec.GOOD_IP
AUTHSERV = mta.MX_NAME
RCPT = "<user@%s>" % mta.TEST_DOMAIN
# smtp-source connects from 127.0.0.1: SPF allows it too, and neither
# side ignores it (both get a dummy ignore list).
SPF_OK = "v=spf1 ip4:%s ip4:127.0.0.1 -all" % CLIENT
IGNORED = "192.0.2.255"
PSL = "/usr/share/publicsuffix/public_suffix_list.dat"

LOREM = (b"The quarterly figures are attached below, line by line, so that "
         b"nobody\r\nhas to open a spreadsheet to read them; reply with "
         b"corrections by Friday.\r\n")


# ------------------------------------------------------------------ corpus

def body_of(size):
    out = b"Hello Bob,\r\n\r\n"
    while len(out) < size:
        out += LOREM
    return out + b"-- \r\nAlice\r\n"


def headers(frm, subject, n):
    return [("Received", "from mail.%s (mail.%s [%s]) by relay.%s with "
             "ESMTPS id %05d; Tue, 14 Apr 2026 10:00:00 +0000" % (
                 frm.split("@")[1], frm.split("@")[1], CLIENT,
                 frm.split("@")[1], n)),
            ("From", "Alice Example <%s>" % frm),
            ("To", "Bob <user@%s>" % mta.TEST_DOMAIN),
            ("Subject", subject),
            ("Date", "Tue, 14 Apr 2026 10:00:00 +0000"),
            ("Message-ID", "<%05d.bench@%s>" % (n, frm.split("@")[1])),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=utf-8")]


class Corpus:
    """The zone and one message file per kind (kind -> directory)."""

    KINDS = ("signed5k", "spfonly", "reject", "nodmarc", "signed100k")

    def __init__(self, wd):
        self.wd = wd
        self.key = ec.Key.rsa(wd, "bench")
        self.zone = ec.Zone(static=("example.",))
        z = self.zone
        for d, rec in (("signed.example", "v=DMARC1; p=reject; "
                        "rua=mailto:dmarc@signed.example"),
                       ("spfonly.example", "v=DMARC1; p=quarantine; "
                        "rua=mailto:dmarc@spfonly.example"),
                       ("reject.example", "v=DMARC1; p=reject; "
                        "rua=mailto:dmarc@reject.example")):
            z.dmarc(d, rec)
        for d in ("signed.example", "spfonly.example", "nodmarc.example"):
            z.spf(d, SPF_OK)
            z.a("mail." + d)
        z.spf("reject.example", "v=spf1 ip4:203.0.113.9 -all")
        z.key("s1", "signed.example", self.key)
        self.dirs = {}
        self.files = {}
        self.make("signed5k", "signed.example", 5000, True)
        self.make("spfonly", "spfonly.example", 1500, False)
        self.make("reject", "reject.example", 1500, False)
        self.make("nodmarc", "nodmarc.example", 1500, False)
        self.make("signed100k", "signed.example", 100000, True)
        self.dirs["mix"] = wd.file("corpus/mix/.d")[:-3]
        os.makedirs(self.dirs["mix"], exist_ok=True)
        for k in self.KINDS:
            shutil.copy(self.files[k], os.path.join(self.dirs["mix"], k))

    def make(self, kind, domain, size, sign):
        hdrs = headers("alice@" + domain, "Figures (%s)" % kind, len(
            self.files))
        body = body_of(size - 900)
        msg = ec.build_message(hdrs, body)
        if sign:
            msg = ec.sign(msg, domain, "s1", self.key, include_headers=[
                "From", "To", "Subject", "Date", "Message-ID",
                "MIME-Version", "Content-Type"])
        env = ("X-Envelope-Client: %s [mail.%s]\r\nX-Envelope-Helo: mail.%s"
               "\r\nX-Envelope-From: <bounce@%s>\r\nX-Envelope-To: %s\r\n" %
               (CLIENT, domain, domain, domain, RCPT)).encode()
        d = os.path.dirname(self.wd.file("corpus/%s/msg" % kind))
        self.dirs[kind] = d
        self.files[kind] = self.wd.file("corpus/%s/msg" % kind, env + msg)
        # the bare message, for smtp-source -F (LF lines: it adds CRLF)
        self.wd.file("corpus/%s.eml" % kind, msg.replace(b"\r\n", b"\n"))


# ---------------------------------------------------------- the two sides

class Ours:
    """dmarc-milter with its counters in a private redis-server."""

    name = "dmarc-milter"

    def __init__(self, wd, builddir, dnsconf, kind="unix"):
        self.redis = mta.RedisServer(wd.path, name="redis-" + kind)
        self.milter = mta.Milter(builddir, wd.path, {
            "DNSConfig": dnsconf, "AuthservID": AUTHSERV,
            "IgnoreHosts": IGNORED, "UMask": "000",
            "LogLevel": "warning", "RedisURL": self.redis.url,
        }, socket=kind, name="ours-" + kind)

    def start(self):
        self.redis.start()
        self.milter.start()
        return self

    def sockets(self):
        return [self.milter.spec]

    def postfix_spec(self):
        return self.milter.postfix_spec

    def pids(self):
        return [self.milter.pid()]

    def stop(self):
        self.milter.stop()
        self.redis.stop()


UNBOUND_DAEMON = """server:
\tinterface: 127.0.0.1
\tport: 53
\tdo-daemonize: no
\tchroot: ""
\tusername: ""
\tdirectory: "%(dir)s"
\tpidfile: "%(dir)s/unbound.pid"
\tuse-syslog: no
\tlogfile: ""
\taccess-control: 127.0.0.0/8 allow
\tnum-threads: 1
"""

NETNS_SCRIPT = r"""
set -e
ip link set lo up
mount --bind "$DIR/resolv.conf" /etc/resolv.conf
unbound -d -c "$DIR/unbound.conf" > "$DIR/unbound.log" 2>&1 &
echo $! > "$DIR/unbound.bgpid"
i=0
until python3 -c "$DNSCHECK"; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "unbound did not answer"; exit 1; }
    sleep 0.1
done
opendkim -f -x "$DIR/opendkim.conf" > "$DIR/opendkim.log" 2>&1 &
echo $! > "$DIR/opendkim.bgpid"
opendmarc -f -c "$DIR/opendmarc.conf" > "$DIR/opendmarc.log" 2>&1 &
echo $! > "$DIR/opendmarc.bgpid"
wait
"""


# Exits 0 once 127.0.0.1:53 answers a TXT query with an answer record.
DNSCHECK = r"""
import socket, struct, sys
q = struct.pack(">HHHHHH", 7, 0x100, 1, 0, 0, 0) + b"".join(
    bytes([len(l)]) + l for l in b"_dmarc.signed.example".split(b".")) + \
    b"\0" + struct.pack(">HH", 16, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
try:
    s.sendto(q, ("127.0.0.1", 53))
    r = s.recv(4096)
except OSError:
    sys.exit(1)
sys.exit(0 if r[3] & 15 == 0 and struct.unpack(">H", r[6:8])[0] else 1)
"""


class Theirs:
    """opendkim (verify, A-R) then opendmarc (trusts it), as Debian ships
    them, with DNS from an unbound daemon, in their own namespaces."""

    name = "opendkim+opendmarc"

    def __init__(self, wd, zone):
        self.dir = os.path.join(wd.path, "theirs")
        os.makedirs(self.dir, exist_ok=True)
        mta._open_to_others(self.dir)
        os.chmod(self.dir, 0o755)
        self.proc = None
        self.write(zone)

    def write(self, zone):
        d = self.dir
        text = zone.text()
        # the local-data zone, served on 127.0.0.1:53 in the namespace
        server = text.split("server:", 1)[1].split("\nforward-zone:")[0]
        mta._write(os.path.join(d, "unbound.conf"),
                   UNBOUND_DAEMON % {"dir": d} + server + "\n")
        fwd = ("server:\n\tdo-not-query-localhost: no\n\tmodule-config: "
               "\"iterator\"\nforward-zone:\n\tname: \".\"\n"
               "\tforward-addr: 127.0.0.1@53\n")
        mta._write(os.path.join(d, "client.conf"), fwd)
        mta._write(os.path.join(d, "resolv.conf"), "nameserver 127.0.0.1\n")
        mta._write(os.path.join(d, "ignore"), IGNORED + "\n")
        mta._write(os.path.join(d, "opendkim.conf"), "\n".join([
            "Syslog no", "Mode v", "Background no",
            "Socket local:%s/opendkim.sock" % d, "UMask 000",
            "PidFile %s/opendkim.pid" % d, "AuthservID " + AUTHSERV,
            "InternalHosts %s/ignore" % d, "ExternalIgnoreList %s/ignore" % d,
            "Nameservers 127.0.0.1", ""]))
        lines = ["Syslog false", "Socket local:%s/opendmarc.sock" % d,
                 "UMask 000", "PidFile %s/opendmarc.pid" % d,
                 "AuthservID " + AUTHSERV,
                 "TrustedAuthservIDs " + AUTHSERV,
                 "IgnoreHosts %s/ignore" % d, "SPFSelfValidate true",
                 "RejectFailures true", "HistoryFile %s/history" % d]
        if os.path.exists(PSL):
            lines.append("PublicSuffixList " + PSL)
        mta._write(os.path.join(d, "opendmarc.conf"), "\n".join(lines) +
                   "\n")

    def start(self):
        env = dict(os.environ, DIR=self.dir, DNSCHECK=DNSCHECK)
        log = open(os.path.join(self.dir, "netns.log"), "ab")
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private",
             "sh", "-c", NETNS_SCRIPT], env=env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise mta.HarnessError("the namespace exited: " +
                                       mta._tail(os.path.join(
                                           self.dir, "netns.log")))
            if all(os.path.exists(os.path.join(self.dir, s)) for s in
                   ("opendkim.sock", "opendmarc.sock")):
                return self
            time.sleep(0.05)
        raise mta.HarnessError("opendkim/opendmarc did not listen:\n" +
                               mta._tail(os.path.join(self.dir,
                                                      "opendkim.log")) +
                               mta._tail(os.path.join(self.dir,
                                                      "opendmarc.log")))

    def sockets(self):
        return ["unix:%s/opendkim.sock" % self.dir,
                "unix:%s/opendmarc.sock" % self.dir]

    def postfix_spec(self):
        return ", ".join(self.sockets())

    def pids(self):
        out = []
        for n in ("opendkim", "opendmarc"):
            with open(os.path.join(self.dir, n + ".bgpid")) as f:
                out.append(int(f.read().strip()))
        return out

    def stop(self):
        if self.proc is None:
            return
        mta._killpg(self.proc.pid, signal.SIGTERM)
        if mta._wait_pid(self.proc, 10) is None:
            mta._killpg(self.proc.pid, signal.SIGKILL)
            mta._wait_pid(self.proc, 5)
        mta._killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None
        for s in ("opendkim.sock", "opendmarc.sock"):
            try:
                os.unlink(os.path.join(self.dir, s))
            except OSError:
                pass


# ----------------------------------------------------------------- runs

def milterload(binary, side, corpus_dir, n, conns=20, rate=None, warm=200,
               sockets=None, per_conn=None):
    argv = [binary, "-d", corpus_dir, "-n", str(n), "-c", str(conns),
            "-w", str(warm), "-p", ",".join(str(p) for p in side.pids())]
    if per_conn:
        argv += ["-k", str(per_conn)]
    for s in sockets or side.sockets():
        argv += ["-s", s]
    if rate:
        argv += ["-r", str(rate)]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=600)
    out = r.stdout.decode(errors="replace")
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if r.returncode != 0 or not m:
        raise mta.HarnessError("milterload failed (%d): %s %s" % (
            r.returncode, out[-800:], r.stderr.decode(errors="replace")))
    res = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", m.group(1))}
    res["replies"] = re.search(r"^final replies:(.*)$", out, re.M).group(1)
    return res


def smtp_source(port, eml, n, sessions):
    argv = [mta.which("smtp-source"), "-s", str(sessions), "-m", str(n),
            "-F", eml, "-f", "bounce@signed.example", "-t",
            "user@" + mta.TEST_DOMAIN, "-M", "mail.signed.example",
            "127.0.0.1:%d" % port]
    t0 = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=900)
    secs = time.monotonic() - t0
    if r.returncode != 0:
        raise mta.HarnessError("smtp-source failed (%d): %s" % (
            r.returncode, r.stderr.decode(errors="replace")[-600:]))
    return n / secs


def postfix_run(wd, name, spec, eml, n, sessions):
    """Messages/s through a private Postfix that throws delivered mail
    away (discard), so that the queue and the milters are measured."""
    pf = mta.PrivatePostfix(wd.path, milter_socket=spec, name=name,
                            settings={"virtual_transport": "discard:",
                                      "smtpd_client_connection_count_limit":
                                      "0",
                                      "default_process_limit": "100"})
    pf.start()
    try:
        smtp_source(pf.port, eml, min(200, n), sessions)   # warm-up
        rate = smtp_source(pf.port, eml, n, sessions)
        bad = len(re.findall(r"milter-reject|warning: .*milter",
                             pf.log_text()))
        return rate, bad
    finally:
        pf.stop()


def verdicts(binary, side, corpus):
    """One message of each kind through side, -v: its results and its
    final reply, so that both sides are seen to judge alike."""
    for kind in Corpus.KINDS:
        argv = [binary, "-v", "-n", "1", "-c", "1", "-d", corpus.dirs[kind]]
        for s in side.sockets():
            argv += ["-s", s]
        out = subprocess.run(argv, stdout=subprocess.PIPE,
                             timeout=60).stdout.decode(errors="replace")
        out = re.sub(r"\\x[0-9a-f]{2}", " ", out)
        words = re.findall(r"(?<![\w.])((?:spf|dkim|dmarc)=\w+)", out)
        final = re.search(r"^final replies: (.*)$", out, re.M)
        print("  %-12s %-20s %s -> %s" % (kind, side.name, " ".join(words),
                                          final.group(1) if final else "?"))


class Table:
    """Figures per (row, side), averaged over the rounds."""

    def __init__(self):
        self.cells = {}
        self.order = []

    def add(self, row, side, **figs):
        if row not in self.order:
            self.order.append(row)
        self.cells.setdefault((row, side), []).append(figs)

    def mean(self, row, side, key):
        vals = [f[key] for f in self.cells.get((row, side), []) if key in f]
        return sum(vals) / len(vals) if vals else None


def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


def print_table(t, sides):
    ours, theirs = sides
    print()
    print("| run | side | msg/s | EOM p99 ms | CPU us/msg | ours vs (b) |")
    print("|---|---|---:|---:|---:|---:|")
    for row in t.order:
        for side in (ours, theirs, "inet", "none"):
            if (row, side) not in t.cells:
                continue
            rate = t.mean(row, side, "rate")
            p99 = t.mean(row, side, "p99_us")
            cpu = t.mean(row, side, "cpu_us_per_msg")
            ratio = ""
            if side == ours:
                tc = t.mean(row, theirs, "cpu_us_per_msg")
                tr = t.mean(row, theirs, "rate")
                if tc and cpu:
                    ratio = "CPU 1/%.0f" % (tc / cpu)
                elif tr and rate:
                    ratio = "rate x%.2f" % (rate / tr)
            print("| %s | %s | %s | %s | %s | %s |" % (
                row, side, fmt(rate), fmt(p99 / 1000.0 if p99 is not None
                                          else None, "%.2f"),
                fmt(cpu, "%.1f"), ratio))


def driver_round(a, t, sides, corpus, kinds):
    for kind in kinds:
        for side in sides:
            n = a.messages if isinstance(side, Ours) else a.theirs_messages
            r = milterload(a.milterload, side, corpus.dirs[kind], n)
            t.add(kind + " @20 conns", side.name, **r)
            print("  %-12s %-20s %8.0f msg/s  p99 %6.2f ms  CPU %7.1f us/msg"
                  "  replies:%s" % (kind, side.name, r["rate"],
                                    r["p99_us"] / 1000, r["cpu_us_per_msg"],
                                    r["replies"]), flush=True)
    for side in sides:
        n = 5000 if isinstance(side, Ours) else 1500
        rate = 1000 if isinstance(side, Ours) else 200
        r = milterload(a.milterload, side, corpus.dirs["signed5k"],
                       a.quick and n // 5 or n, rate=rate)
        t.add("signed5k fixed rate %d/s" % rate, side.name, **r)
        print("  fixed %d/s %-20s %8.0f msg/s  p99 %6.2f ms" % (
            rate, side.name, r["rate"], r["p99_us"] / 1000), flush=True)


def inet_round(a, t, wd, builddir, dnsconf, corpus, unix_side):
    inet = Ours(wd, builddir, dnsconf, kind="inet").start()
    try:
        for side, label in ((unix_side, unix_side.name), (inet, "inet")):
            r = milterload(a.milterload, side, corpus.dirs["signed5k"],
                           a.messages)
            t.add("signed5k unix vs inet", label, **r)
            print("  %-5s %8.0f msg/s  p99 %6.2f ms  CPU %6.1f us/msg" % (
                "unix" if side is unix_side else "inet", r["rate"],
                r["p99_us"] / 1000, r["cpu_us_per_msg"]), flush=True)
    finally:
        inet.stop()


def postfix_round(a, t, wd, corpus, sides, rnd):
    eml = wd.file("corpus/signed5k.eml")
    specs = [("none", None)] + [(s.name, s.postfix_spec()) for s in sides]
    for label, spec in specs:
        rate, bad = postfix_run(wd, "postfix-%s-%d" % (
            re.sub(r"\W", "", label), rnd), spec, eml, a.postfix_messages,
            20)
        t.add("Postfix smtp-source 20 sessions", label, rate=rate)
        print("  postfix %-20s %8.0f msg/s%s" % (
            label, rate, "  (%d milter rejects/warnings)" % bad if bad
            else ""), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--milterload", default=os.path.join(
        ec.dirs()[1], "tests", "bench", "milterload"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--messages", type=int, default=20000,
                    help="per run of ours (default 20000)")
    ap.add_argument("--theirs-messages", type=int, default=3000)
    ap.add_argument("--postfix-messages", type=int, default=2000)
    ap.add_argument("--quick", action="store_true",
                    help="5 KB signed only, one round, fewer messages")
    ap.add_argument("--no-postfix", action="store_true")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.messages = 1, 5000
        a.theirs_messages, a.postfix_messages = 600, 600
    if os.geteuid() != 0:
        sys.exit("milter_bench: needs root (namespaces, Postfix)")
    for prog in ("opendkim", "opendmarc", "unbound",
                 "redis-server", "smtp-source", "unshare"):
        if mta.which(prog) is None:
            sys.exit("milter_bench: %s is not installed" % prog)
    if not os.access(a.milterload, os.X_OK):
        sys.exit("milter_bench: %s is not built (make %s)" % (
            a.milterload, "tests/bench/milterload"))
    mta.install_signal_cleanup()
    srcdir, builddir = ec.dirs()
    wd = ec.Workdir("dmarc-milter-bench.")
    mta._open_to_others(wd.path)
    os.chmod(wd.path, 0o755)
    t = Table()
    theirs = None
    ours = None
    try:
        corpus = Corpus(wd)
        dnsconf = corpus.zone.write(wd.file("unbound.conf"))
        os.chmod(dnsconf, 0o644)
        ours = Ours(wd, builddir, dnsconf).start()
        theirs = Theirs(wd, corpus.zone).start()
        sides = (ours, theirs)
        kinds = ["signed5k"] if a.quick else list(Corpus.KINDS) + ["mix"]
        print("verdicts (one message each)")
        for side in sides:
            verdicts(a.milterload, side, corpus)
        for rnd in range(a.rounds):
            print("round %d" % (rnd + 1), flush=True)
            driver_round(a, t, sides, corpus, kinds)
            inet_round(a, t, wd, builddir, dnsconf, corpus, ours)
            if not a.no_postfix:
                postfix_round(a, t, wd, corpus, sides, rnd)
        print_table(t, (ours.name, theirs.name))
        print("\nmachine: %d CPUs, %s" % (os.cpu_count(), " ".join(
            os.uname()[2:3])))
    finally:
        if theirs is not None:
            theirs.stop()
        if ours is not None:
            ours.stop()
        mta._stop_all()
        if a.keep:
            print("kept " + wd.path)
        else:
            shutil.rmtree(wd.path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
