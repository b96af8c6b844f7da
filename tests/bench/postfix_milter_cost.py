#!/usr/bin/env python3
"""tests/bench/postfix_milter_cost.py - what being a milter at all costs
Postfix, against what our evaluation adds (issue 7). Prints figures;
asserts nothing.

A private Postfix fed by smtp-source (20 sessions, one message each, the
5 KB signed message of milter_bench.py's corpus) runs four ways, in
rounds: no milter; the null mode of our protocol server
(milter/dmarc-milter-null: the same negotiation, one A-R inserted and
accept at the end, no evaluation); dmarc-milter evaluating everything;
dmarc-milter with IgnoreHosts 127.0.0.0/8, which evaluates nothing but
still reads each header for forged A-R fields of its id and accepts at
the end of it (what a skipped message costs). For the milters, their
CPU over the run (from /proc/PID/stat, warm-up included) per message.

Usage: postfix_milter_cost.py [--messages 8000] [--rounds 2]
Needs root (Postfix), postfix (smtp-source), redis-server, python3-dkim.
"""

import argparse
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import evalcorpus as ec  # noqa: E402
import milter_bench as mb  # noqa: E402
import mta  # noqa: E402

WARM = 200      # postfix_run's warm-up messages


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=8000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("postfix_milter_cost: needs root (Postfix)")
    mta.install_signal_cleanup()
    builddir = ec.dirs()[1]
    wd = ec.Workdir("dmarc-milter-pfcost.")
    mta._open_to_others(wd.path)
    os.chmod(wd.path, 0o755)
    try:
        corpus = mb.Corpus(wd)
        dnsconf = corpus.zone.write(wd.file("unbound.conf"))
        os.chmod(dnsconf, 0o644)
        ours = mb.Ours(wd, builddir, dnsconf).start()
        accepting = mta.Milter(builddir, wd.path, {
            "DNSConfig": dnsconf, "AuthservID": mb.AUTHSERV,
            "IgnoreHosts": "127.0.0.0/8", "UMask": "000",
            "LogLevel": "warning"}, socket="unix", name="accepting")
        accepting.start()
        null = mta.Milter(builddir, wd.path, {
            "DNSConfig": dnsconf, "AuthservID": mb.AUTHSERV,
            "UMask": "000", "LogLevel": "warning"}, socket="unix",
            name="null")
        null.binary = os.path.join(builddir, "milter", "dmarc-milter-null")
        null.start()
        eml = wd.file("corpus/signed5k.eml")
        sides = (("no milter", None), ("null mode", null),
                 ("dmarc-milter", ours.milter),
                 ("IgnoreHosts (skipped)", accepting))
        for rnd in range(a.rounds):
            for n, (label, m) in enumerate(sides):
                c0 = cpu_seconds(m.pid()) if m else 0.0
                rate, bad = mb.postfix_run(
                    wd, "pf-%d-%d" % (n, rnd), m.postfix_spec if m else None,
                    eml, a.messages, 20)
                cpu = ("  milter CPU %.0f us/msg" % ((cpu_seconds(m.pid()) -
                       c0) * 1e6 / (a.messages + WARM)) if m else "")
                print("round %d  %-22s %7.0f msg/s%s%s" % (
                    rnd + 1, label, rate, cpu,
                    "  (%d milter warnings)" % bad if bad else ""),
                    flush=True)
    finally:
        mta._stop_all()
        shutil.rmtree(wd.path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
