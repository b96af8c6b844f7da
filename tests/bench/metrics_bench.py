#!/usr/bin/env python3
"""tests/bench/metrics_bench.py - what a Prometheus scrape of dmarc-milter
costs: N sequential GET /metrics over loopback against a running milter
(MetricsSocket on a free port), each on a new connection as Prometheus
makes them when keep-alive is off; prints the body's size and lines, and
the latency's median, p99 and maximum. It asserts nothing.

Usage: srcdir=.. builddir=$PWD python3 ../tests/bench/metrics_bench.py [N]
"""

import os
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import evalcorpus as ec  # noqa: E402
import milter_protocol as mp  # noqa: E402
import mta  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    wd = ec.Workdir("dmarc-milter-metrics-bench.")
    port = mta.free_port()
    key = ec.Key.rsa(wd, "rsa")
    dnsconf = mp.build_zone(key).write(wd.file("unbound.conf"))
    mt = mp.Milter(wd, "bench", dnsconf,
                   {"MetricsSocket": "inet:%d@127.0.0.1" % port})
    try:
        if not mt.start():
            print("the milter did not start:", *mt.log_tail(), sep="\n")
            return 1
        url = "http://127.0.0.1:%d/metrics" % port
        body = urllib.request.urlopen(url).read()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            urllib.request.urlopen(url).read()
            times.append(time.perf_counter() - t0)
        times.sort()
        print("scrape: %d bytes, %d lines" % (len(body),
                                              body.count(b"\n")))
        print("%d scrapes: median %.3f ms, p99 %.3f ms, max %.3f ms" % (
            n, times[n // 2] * 1e3, times[int(n * 0.99)] * 1e3,
            times[-1] * 1e3))
    finally:
        mt.kill()
        wd.cleanup(ec.Tap())
    return 0


if __name__ == "__main__":
    sys.exit(main())
