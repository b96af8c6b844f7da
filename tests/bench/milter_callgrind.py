#!/usr/bin/env python3
"""tests/bench/milter_callgrind.py - where dmarc-milter's CPU goes per
message, in instructions: repeatable on a noisy machine, where seconds
are not (issue 7). Prints figures; asserts nothing.

dmarc-milter runs under valgrind --tool=callgrind with instrumentation off;
milterload warms it up (caches filled, threads started), then instrumentation
is switched on with callgrind_control for exactly N messages of one kind
of the milter_bench.py corpus, and off again. So the profile is N
messages in the steady state, start-up and warm-up excluded. Printed:
instructions per message, the share of each library (self cost, summed
by object), and the functions with the most self cost.

Usage: milter_callgrind.py [--kind signed5k] [--messages 2000]
    [--conns 4] [--per-conn K] [--top 25] [--keep]
Kinds: those of milter_bench.py (signed5k spfonly reject nodmarc
signed100k). Needs valgrind, redis-server, python3-dkim; the build's
tests/bench/milterload (make tests/bench/milterload).
"""

import argparse
import collections
import glob
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import evalcorpus as ec  # noqa: E402
import milter_bench as mb  # noqa: E402
import mta  # noqa: E402


def callgrind_control(*args):
    r = subprocess.run(["callgrind_control"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    if r.returncode != 0 or b"OK" not in r.stdout:
        raise mta.HarnessError("callgrind_control %s: %s" % (
            " ".join(args), r.stdout.decode(errors="replace")))


def annotate(path):
    """(total Ir, [(self Ir, function, object)]) of one callgrind file."""
    r = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300, check=True)
    out = r.stdout.decode(errors="replace")
    total = int(re.search(r"^\s*([\d,]+)\s+(?:\(\S+\)\s+)?PROGRAM TOTALS",
                          out, re.M).group(1).replace(",", ""))
    rows = []
    for m in re.finditer(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S[^\[\n]*?)"
                         r"(?: \[([^\]\n]+)\])?\s*$", out, re.M):
        if "PROGRAM TOTALS" in m.group(2):
            continue
        rows.append((int(m.group(1).replace(",", "")), m.group(2),
                     os.path.basename(m.group(3) or "?")))
    return total, rows


def profile(a, builddir, wd, corpus, dnsconf):
    out = wd.file("callgrind.out")
    os.environ["MILTER_WRAPPER"] = (
        "valgrind --tool=callgrind --instr-atstart=no "
        "--callgrind-out-file=%s.%%p" % out)
    ours = mb.Ours(wd, builddir, dnsconf).start()
    try:
        pid = ours.pids()[0]
        mb.milterload(a.milterload, ours, corpus.dirs[a.kind], a.warm,
                      conns=a.conns, warm=0)
        callgrind_control("-i", "on", str(pid))
        res = mb.milterload(a.milterload, ours, corpus.dirs[a.kind],
                            a.messages, conns=a.conns, warm=0,
                            per_conn=a.per_conn)
        callgrind_control("-i", "off", str(pid))
    finally:
        ours.stop()
        del os.environ["MILTER_WRAPPER"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not glob.glob(out + ".*"):
        time.sleep(0.2)
    return glob.glob(out + ".*")[0], res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--milterload", default=os.path.join(
        ec.dirs()[1], "tests", "bench", "milterload"))
    ap.add_argument("--kind", default="signed5k",
                    choices=list(mb.Corpus.KINDS))
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--warm", type=int, default=300)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--per-conn", type=int, default=None,
                    help="messages per milter connection (default: all "
                    "on persistent ones; 1: a new connection for each, as "
                    "Postfix opens one per SMTP session)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    for prog in ("valgrind", "callgrind_control", "callgrind_annotate",
                 "redis-server"):
        if mta.which(prog) is None:
            sys.exit("milter_callgrind: %s is not installed" % prog)
    if not os.access(a.milterload, os.X_OK):
        sys.exit("milter_callgrind: %s is not built" % a.milterload)
    mta.install_signal_cleanup()
    builddir = ec.dirs()[1]
    wd = ec.Workdir("dmarc-milter-callgrind.")
    try:
        corpus = mb.Corpus(wd)
        dnsconf = corpus.zone.write(wd.file("unbound.conf"))
        path, res = profile(a, builddir, wd, corpus, dnsconf)
        total, rows = annotate(path)
        n = a.messages
        print("kind %s: %d messages over %d connections (replies:%s)" % (
            a.kind, n, a.conns, res["replies"]))
        print("instructions per message: %.0f (total %d)" % (total / n,
                                                             total))
        by_obj = collections.Counter()
        for ir, _, obj in rows:
            by_obj[obj] += ir
        print("\nself cost by object        Ir/msg   share")
        for obj, ir in by_obj.most_common(12):
            print("  %-24s %8.0f  %5.1f %%" % (obj[:24], ir / n,
                                               100.0 * ir / total))
        print("\nfunctions by self cost     Ir/msg   share")
        for ir, fn, obj in sorted(rows, reverse=True)[:a.top]:
            print("  %8.0f  %5.1f %%  %s [%s]" % (ir / n, 100.0 * ir / total,
                                                  fn[:60], obj))
        if a.keep:
            kept = os.path.join("/tmp", os.path.basename(path))
            shutil.copy(path, kept)
            print("\ncallgrind file: " + kept)
    finally:
        mta._stop_all()
        shutil.rmtree(wd.path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
