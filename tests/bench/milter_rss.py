#!/usr/bin/env python3
"""tests/bench/milter_rss.py - dmarc-milter's memory over many messages.

Not part of make check: a benchmark that prints figures. It starts
dmarc-milter on a unix socket (test zone and keys as in
tests/integration/milter_protocol.py), then runs ONE miltertest process
whose Lua script loops connect / HELO / MAIL / headers / body / EOM /
disconnect --messages times (so Lua start-up does not dominate), cycling
through a mix of messages: a p=reject spoof (550), an aligned DKIM pass,
a p=quarantine failure, a p=none failure carrying a forged
Authentication-Results, and a DMARC lookup that fails temporarily. Every
--sample messages it reads the milter's VmRSS from /proc/PID/status.

Prints a table (messages, VmRSS KiB, change since the first sample after
warm-up, messages/s over the interval) and the overall rate; exits 1 when
a reply was not the one expected or miltertest failed.

Usage: tests/bench/milter_rss.py [--messages N] [--sample N]
       [--per-conn N] [--keep]
Environment: builddir (default: the source tree's _build if it has the
milter, else the tree), DMARC_MILTER, MILTER_WRAPPER (e.g. valgrind),
MILTERTEST.
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
if not os.environ.get("builddir") and \
        os.path.exists(os.path.join(TOP, "_build", "milter", "dmarc-milter")):
    os.environ["builddir"] = os.path.join(TOP, "_build")
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import evalcorpus as ec  # noqa: E402
import milter_protocol as mp  # noqa: E402

LUA_LOOP = r"""
local msgs = {%(msgs)s}
local total, sample, per_conn = %(total)d, %(sample)d, %(per_conn)d
local sock = %(sock)s
local bad, n = 0, 0

local function must(what, err)
  if err ~= nil then fail(what, err) end
end

print("PROGRESS 0 0")
while n < total do
  local conn = mt.connect(sock, 40, 0.05)
  if conn == nil then fail("connect", sock) end
  must("conninfo", mt.conninfo(conn, "mx.sample.example", "198.51.100.66"))
  must("helo", mt.helo(conn, "mx.sample.example"))
  for k = 1, per_conn do
    if n >= total then break end
    n = n + 1
    local m = msgs[(n - 1) %% #msgs + 1]
    must("macro", mt.macro(conn, SMFIC_MAIL, "i", "B" .. n))
    must("mail", mt.mailfrom(conn, m.from))
    for i, h in ipairs(m.headers) do
      must("header", mt.header(conn, h[1], h[2]))
    end
    must("eoh", mt.eoh(conn))
    for i, c in ipairs(m.body) do
      must("body", mt.bodystring(conn, c))
    end
    must("eom", mt.eom(conn))
    if reply(conn) ~= m.expect then
      bad = bad + 1
      if bad <= 5 then
        emit("UNEXPECTED", n .. " " .. m.name .. " " .. reply(conn))
      end
    end
    if n %% sample == 0 then print("PROGRESS " .. n .. " " .. bad) end
  end
  mt.disconnect(conn)
end
print("DONE " .. n .. " " .. bad)
"""


def vmrss(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def mix(key):
    """(name, Msg, expected reply at EOM) cycled through by the loop."""
    signed = ec.sign(mp.message("alice@reject.example", "Signed"),
                     "reject.example", "s1", key)
    forged = mp.message("alice@none.example", "Forged", extra=[
        ("Authentication-Results", mp.MX + "; dmarc=pass "
         "header.from=none.example")])
    return [
        ("reject", mp.Msg("x", mp.message("alice@reject.example", "Spoof")),
         "y"),
        ("dkim-pass", mp.Msg("x", signed), "a"),
        ("quarantine", mp.Msg("x", mp.message("alice@quarantine.example",
                                              "Spoof")), "a"),
        ("forged-ar", mp.Msg("x", forged), "a"),
        ("temperror", mp.Msg("x", mp.message("alice@tempdmarc.example",
                                             "Temp"),
                             mail_from="<alice@tempdmarc.example>"), "a"),
    ]


def lua_msgs(items):
    out = []
    for name, m, expect in items:
        hdrs = ", ".join("{%s, %s}" % (mp.lua_str(n), mp.lua_str(v))
                         for n, v in m.headers)
        body = ", ".join(mp.lua_str(c) for c in m.body)
        out.append("{name = %s, from = %s, headers = {%s}, body = {%s}, "
                   "expect = %s}" % (mp.lua_str(name),
                                     mp.lua_str(m.mail_from), hdrs, body,
                                     mp.lua_str(expect)))
    return ",\n  ".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--sample", type=int, default=10000)
    ap.add_argument("--per-conn", type=int, default=1,
                    help="messages per milter connection (default 1)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory")
    a = ap.parse_args()
    if mp.miltertest_path() is None:
        sys.exit("miltertest is not installed (Debian package miltertest)")
    wd = ec.Workdir("dmarc-milter-rss.")
    milter = None
    try:
        key = ec.Key.rsa(wd, "rsa")
        dnsconf = mp.build_zone(key).write(wd.file("unbound.conf"))
        milter = mp.Milter(wd, "bench", dnsconf)
        if not milter.start():
            sys.exit("the milter did not start:\n" +
                     "\n".join(milter.log_tail()))
        pid = milter.proc.pid
        script = wd.file("loop.lua", mp.LUA_PRELUDE % {"timeout": 60} +
                         LUA_LOOP % {
                             "msgs": lua_msgs(mix(key)),
                             "total": a.messages, "sample": a.sample,
                             "per_conn": a.per_conn,
                             "sock": mp.lua_str("unix:" + milter.sock)})
        print("dmarc-milter PID %d, %d messages, %d per connection, "
              "sampled every %d" % (pid, a.messages, a.per_conn, a.sample))
        rows = []
        t0 = time.monotonic()
        p = subprocess.Popen([mp.miltertest_path(), "-s", script],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        done = None
        other = []
        for raw in p.stdout:
            line = raw.decode(errors="replace").split()
            if line and line[0] == "PROGRESS":
                rows.append((int(line[1]), vmrss(pid), time.monotonic(),
                             int(line[2])))
            elif line and line[0] == "DONE":
                done = (int(line[1]), int(line[2]))
            elif line:
                other.append(" ".join(line))
        rc = p.wait()
        t1 = time.monotonic()
        err = p.stderr.read().decode(errors="replace").strip()
        status, secs = milter.stop(10)
        print()
        print("%10s %12s %12s %10s" % (
            "messages", "VmRSS KiB", "vs %d" % min(a.sample, a.messages),
            "msg/s"))
        base = None
        for i, (n, rss, t, bad) in enumerate(rows):
            if n == min(a.sample, a.messages):
                base = rss
            rate = ""
            if i > 0 and t > rows[i - 1][2]:
                rate = "%.0f" % ((n - rows[i - 1][0]) / (t - rows[i - 1][2]))
            print("%10d %12s %12s %10s" % (
                n, rss, "" if base is None or rss is None else
                "%+d" % (rss - base), rate))
        total = done[0] if done else (rows[-1][0] if rows else 0)
        print()
        print("%d messages in %.1f s: %.0f messages/s (one miltertest "
              "process, one connection per %d message(s))" %
              (total, t1 - t0, total / (t1 - t0) if t1 > t0 else 0,
               a.per_conn))
        print("milter: SIGTERM -> exit status %s after %.1f s; "
              "log lines: %d" % (status, secs, len(milter.text())))
        bad = done[1] if done else None
        if rc != 0 or done is None or bad:
            print("miltertest exit status %s, unexpected replies %s" %
                  (rc, bad))
            for line in other[:10]:
                print("  " + line)
            if err:
                print("  stderr: " + err[-1000:])
            return 1
        return 0
    finally:
        if milter is not None:
            milter.kill()
        if a.keep:
            print("kept " + wd.path)
        else:
            wd.cleanup(ec.Tap())


if __name__ == "__main__":
    sys.exit(main())
