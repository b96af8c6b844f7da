#!/usr/bin/env python3
"""tests/integration/milter_metrics.py - dmarc-milter's /metrics (issue 17
section 2): a running milter with MetricsSocket on a free loopback port,
a known mix of messages sent through miltertest (milter_protocol.py's
Milter, Conn and Msg), then a scrape over HTTP whose figures are checked
exactly.

The mix: a p=reject spoof (fail, reject, reject), a p=quarantine spoof
(fail, quarantine, quarantine), a p=none spoof (fail, none, accept), a
DKIM-signed message of reject.example from the SPF-passing address (pass,
none, accept), a p=reject spoof with a List-Id (the mailing_list
override) and a message from an IgnoreHosts address (not evaluated).
Then: the evaluation-time histogram counts the five evaluated messages,
the DNS lookups by outcome add up to the lookup histogram's count, a
SIGHUP raises the configuration's generation and a broken file counts a
failed reload; any other path is 404, a POST is 405; `promtool check
metrics` (Debian package prometheus) accepts the scrape. A MetricsSocket
without an address, of another kind, or with a host name refuses to
start, and dmarc-milter -n says so.

Environment: as milter_protocol.py. Prints "1..0 # SKIP ..." when
miltertest is missing.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evalcorpus as ec  # noqa: E402

ec.need_dkim()
import milter_protocol as mp  # noqa: E402
import mta  # noqa: E402

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')


def parse(text):
    """{(name, ((label, value), ...)): float} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if m is None:
            raise ValueError("not a sample line: %r" % line)
        labels = tuple(sorted(re.findall(r'([a-zA-Z_]+)="([^"]*)"',
                                         m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def get(port, path, method="GET"):
    """(status, content type, body) of one request to the milter."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=10 * mp.SLOW) as r:
            return r.status, r.headers.get("Content-Type"), \
                r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def total(m, name, **want):
    """The sum of name's samples whose labels include want."""
    return sum(v for (n, labels), v in m.items() if n == name and
               all((k, w) in labels for k, w in want.items()))


def msg(result, disp, action):
    return ("dmarc_milter_messages_total", result, disp, action)


# The figures the mix must give, exactly; every other messages_total
# combination is 0.
EXPECT = {
    msg("fail", "reject", "reject"): 1,
    msg("fail", "quarantine", "quarantine"): 2,
    msg("fail", "none", "accept"): 1,
    msg("pass", "none", "accept"): 1,
}
EXPECT_ONE = [
    ("dmarc_milter_overrides_total", {"reason": "mailing_list"}, 1),
    ("dmarc_milter_overrides_total", {}, 1),
    ("dmarc_milter_spf_results_total", {"result": "fail"}, 4),
    ("dmarc_milter_spf_results_total", {"result": "pass"}, 1),
    ("dmarc_milter_spf_results_total", {}, 5),
    ("dmarc_milter_dkim_results_total", {"result": "pass"}, 1),
    ("dmarc_milter_dkim_results_total", {"result": "none"}, 4),
    ("dmarc_milter_dkim_results_total", {}, 5),
    ("dmarc_milter_messages_skipped_total", {}, 1),
    ("dmarc_milter_internal_errors_total", {}, 0),
    ("dmarc_milter_eom_seconds_count", {}, 5),
    ("dmarc_milter_eom_seconds_bucket", {"le": "+Inf"}, 5),
    ("dmarc_milter_config_generation", {}, 1),
    ("dmarc_milter_config_reloads_total", {}, 0),
    ("dmarc_milter_store_written_total", {"to": "redis"}, 0),
]


def check_values(tap, m):
    for key, want in EXPECT.items():
        name, r, d, a = key
        got = total(m, name, result=r, disposition=d, action=a)
        tap.ok(got == want, "messages result=%s disposition=%s action=%s: "
               "%d" % (r, d, a, want), ["got %s" % got])
    rest = total(m, "dmarc_milter_messages_total") - sum(EXPECT.values())
    tap.ok(rest == 0, "no other messages_total figure",
           ["other figures sum to %s" % rest])
    for name, labels, want in EXPECT_ONE:
        got = total(m, name, **labels)
        tap.ok(got == want, "%s%s = %d" % (name, labels or "", want),
               ["got %s" % got])
    ndns = total(m, "dmarc_milter_dns_lookups_total")
    hdns = total(m, "dmarc_milter_dns_lookup_seconds_count")
    tap.ok(ndns > 0 and ndns == hdns, "DNS lookups by outcome add up to "
           "the lookup histogram's count", ["%s by outcome, %s timed" %
                                            (ndns, hdns)])
    tap.ok(total(m, "dmarc_milter_dns_lookups_total", outcome="ok") > 0,
           "DNS lookups answered are counted as ok")
    ver = mp.package_version()
    tap.ok(total(m, "dmarc_milter_build_info", version=ver) == 1,
           "build_info names version %s" % ver)


def check_promtool(tap, text):
    promtool = shutil.which("promtool")
    if promtool is None:
        with tap.lock:
            tap.n += 1
            print("ok %d - promtool check metrics # SKIP promtool is not "
                  "installed (Debian package prometheus)" % tap.n)
        return
    p = subprocess.run([promtool, "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=60)
    tap.ok(p.returncode == 0 and not p.stdout.strip() and
           not p.stderr.strip(), "promtool check metrics accepts the scrape",
           ["exit %s" % p.returncode, p.stdout, p.stderr])


def mix(key):
    signed = ec.sign(mp.message("alice@reject.example", "Signed"),
                     "reject.example", "s1", key)
    listed = mp.message("alice@reject.example", "List post",
                        extra=[("List-Id", "<figures.lists.example>")])
    return [
        mp.Conn([mp.Msg("XREJ", mp.message("alice@reject.example", "S")),
                 mp.Msg("XQUAR", mp.message("alice@quarantine.example",
                                            "S")),
                 mp.Msg("XNONE", mp.message("alice@none.example", "S")),
                 mp.Msg("XLIST", listed)]),
        mp.Conn([mp.Msg("XPASS", signed)], ip=mp.GOOD),
        mp.Conn([mp.Msg("XIGN", mp.message("alice@reject.example", "I"))],
                ip=mp.IGNORED_IP),
    ]


def check_reloads(tap, mt, port):
    """A good SIGHUP, then a broken file: generation 2, one of each."""
    n = mt.count(lambda l: "reload" in l.lower())
    os.kill(mt.proc.pid, signal.SIGHUP)
    mp.wait_for(lambda: mt.count(lambda l: "reload" in l.lower()) > n,
                10 * mp.SLOW)
    good = mt.conf_text({})
    with open(mt.conf, "a") as f:
        f.write("NoSuchOption 1\n")
    n = mt.count(lambda l: "reload" in l.lower())
    os.kill(mt.proc.pid, signal.SIGHUP)
    mp.wait_for(lambda: mt.count(lambda l: "reload" in l.lower()) > n,
                10 * mp.SLOW)
    mt.write_conf({}, raw=good)
    m = parse(get(port, "/metrics")[2])
    for name, labels, want in [
            ("dmarc_milter_config_generation", {}, 2),
            ("dmarc_milter_config_reloads_total", {"outcome": "ok"}, 1),
            ("dmarc_milter_config_reloads_total", {"outcome": "failed"}, 1)]:
        got = total(m, name, **labels)
        tap.ok(got == want, "after a reload and a broken one: %s%s = %d" %
               (name, labels, want), ["got %s" % got] + mt.log_tail(10))


def run(tap, wd, key):
    zone = mp.build_zone(key)
    dnsconf = zone.write(wd.file("unbound.conf"))
    port = mta.free_port()
    mt = mp.Milter(wd, "metrics", dnsconf,
                   {"MetricsSocket": "inet:%d@127.0.0.1" % port})
    try:
        if not tap.ok(mt.start(), "starts with MetricsSocket inet:%d@"
                      "127.0.0.1" % port, mt.log_tail()):
            return
        out = mt.run(mix(key))
        logs = {q: mt.msg_log(q) for q in ("XREJ", "XQUAR", "XNONE",
                                           "XLIST", "XPASS")}
        tap.ok(all(logs.values()) and mt.wait_log(
            lambda l: "XIGN" in l, 5 * mp.SLOW) is not None,
            "every message logged", out.describe() + mt.log_tail())
        status, ctype, text = get(port, "/metrics")
        tap.ok(status == 200 and ctype.startswith("text/plain; "
                                                  "version=0.0.4"),
               "GET /metrics: 200, the text format's content type",
               ["%s %s" % (status, ctype)])
        m = parse(text)
        check_values(tap, m)
        check_promtool(tap, text)
        status = get(port, "/")[0], get(port, "/metrics/x")[0]
        tap.ok(status == (404, 404), "any other path: 404",
               ["got %s" % (status,)])
        status = get(port, "/metrics", "POST")[0]
        tap.ok(status == 405, "POST /metrics: 405", ["got %s" % status])
        check_reloads(tap, mt, port)
        rc, _ = mt.stop()
        tap.ok(rc == 0, "stops cleanly with the metrics thread",
               ["exit %s" % rc] + mt.log_tail())
    finally:
        mt.kill()
    check_bad_specs(tap, wd, dnsconf)


def check_bad_specs(tap, wd, dnsconf):
    """A MetricsSocket without an address (it would bind every one), or
    not inet: the milter does not start, and says why."""
    for i, spec in enumerate(("inet:%d" % mta.free_port(),
                              "unix:/tmp/metrics.sock",
                              "inet:%d@mx.example" % mta.free_port())):
        mt = mp.Milter(wd, "bad%d" % i, dnsconf, {"MetricsSocket": spec})
        try:
            started = mt.start()
            rc = mt.proc.wait(10 * mp.SLOW) if not started else None
            said = mt.wait_log(lambda l: "MetricsSocket" in l, 1)
            tap.ok(not started and rc == 1 and said is not None,
                   "MetricsSocket %s: refused at start-up, exit 1, with "
                   "a log line" % spec, ["started %s, exit %s" %
                                         (started, rc)] + mt.log_tail(5))
        finally:
            mt.kill()
        r = subprocess.run([mp.milter_path(), "-n", "-c", mt.conf],
                           capture_output=True, text=True, timeout=30)
        tap.ok(r.returncode == 1 and "MetricsSocket" in r.stderr,
               "MetricsSocket %s: dmarc-milter -n refuses it" % spec,
               ["exit %d" % r.returncode, r.stdout, r.stderr])


def main():
    tap = ec.Tap()
    if mp.miltertest_path() is None:
        print("1..0 # SKIP miltertest is not installed (Debian package "
              "miltertest)")
        return 0
    if not os.access(mp.milter_path(), os.X_OK):
        tap.bail("dmarc-milter not built: %s" % mp.milter_path())
    wd = ec.Workdir("dmarc-milter-metrics.")
    try:
        run(tap, wd, ec.Key.rsa(wd, "rsa"))
    finally:
        wd.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
