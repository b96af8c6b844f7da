#!/usr/bin/env python3
"""tests/integration/milter_counters.py - dmarc-milter's aggregate-report
counters (issue 4) against a real redis-server, driven by miltertest.

Every Redis here is a private redis-server on a unix socket in the work
directory (no TCP port at all), started and stopped by PID
(mta.RedisServer); it is read back with a small RESP client
(mta.RedisClient). Every milter is `dmarc-milter -f -c CONF` on a unix
socket of its own (mta.Milter), with DNS from an unbound.conf of
local-data: reject.example (p=reject), two.example (p=none) and
change.example publish a rua, norua.example does not. Mail is sent by
miltertest running a generated Lua loop (many messages in one process,
one line per message with its reply, timestamped here as it arrives).

Cases (issue 4, section 4):
  1. exact counts and row texts for a known mix: p=reject spoofs, DKIM-
     aligned passes, a domain without rua (not stored), a From with two
     authors (one count in each domain's report); the Redis key layout
     of include/dm_redis.h (index, groups, meta, TTL, writers).
  2. kill -9 of Redis in the middle of 10,000 messages (two concurrent
     miltertest loops), restarted on the same socket ~3 s later: every
     reply right, and the sum of counts exactly 10,000 once the journal
     is replayed; a milter restarted on the same StateDir adds nothing.
  3. Redis down when the milter starts, started 3 s later: exact counts.
  4. Redis stalled with DEBUG SLEEP 2 (RedisTimeout 500) twice while mail
     flows: no message takes over 1 s, and the counts are exact.
  5. a torn journal tail: counts kept in the embedded journal (no
     RedisURL), half a record appended to the newest segment, then a
     milter with a RedisURL on the same StateDir replays it: exact
     counts, the torn record logged as skipped, no segment left.
  6. two milter processes on one Redis: the sum is exact, P{dom}:writers
     names two writers, each at its own last sequence number.
  7. a policy change mid-period (p=reject -> p=quarantine, SIGHUP with a
     new DNSConfig): two groups with the right counts and policies.

Environment: srcdir and builddir (set by make check); DMARC_MILTER,
MILTER_WRAPPER (see mta.py); MILTERTEST; KEEP_TMP=1 keeps the work
directory. Prints "1..0 # SKIP ..." when redis-server or miltertest is
missing (Debian packages redis-server and miltertest).
"""

import os
import re
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evalcorpus as ec  # noqa: E402

ec.need_dkim()
import milter_protocol as mp  # noqa: E402
import mta  # noqa: E402

BAD, GOOD = ec.BAD_IP, ec.GOOD_IP       # SPF: GOOD passes, BAD fails
THIRD = "203.0.113.5"                   # fails SPF too, its own rows
SAMPLE = "sample.example"               # envelope domain, no DMARC
PREFIX = "dmarc:"
DAY = 86400
REDIS_TTL = 604800                      # RedisTTL's default
WRAPPER = bool(os.environ.get("MILTER_WRAPPER"))
SLOW = 6 if WRAPPER else 1


# ------------------------------------------------------------------ DNS

RECORDS = {
    "reject.example": "v=DMARC1; p=reject; rua=mailto:r@reject.example",
    "two.example": "v=DMARC1; p=none; rua=mailto:r@two.example",
    "norua.example": "v=DMARC1; p=reject",
}


def change_record(p):
    return "v=DMARC1; p=%s; rua=mailto:r@change.example" % p


def build_zone(key, change="reject"):
    z = ec.Zone(static=("example.",))
    z.comment("the envelope domain: SPF, no DMARC record")
    z.spf(SAMPLE)
    z.a("mx." + SAMPLE)
    recs = dict(RECORDS)
    recs["change.example"] = change_record(change)
    for d, rec in sorted(recs.items()):
        z.dmarc(d, rec)
        z.spf(d)
        z.key("s1", d, key)
    return z


# ------------------------------------------------------------- messages

class Tpl:
    """A message the loop sends: client IP, envelope, the header fields
    and body chunks as miltertest sends them, and the reply expected at
    the end of the message (a accept, y reply code 550)."""

    def __init__(self, name, ip, raw, expect,
                 mail_from="<bounce@%s>" % SAMPLE):
        self.name, self.ip, self.expect = name, ip, expect
        self.msg = mp.Msg("x", raw, mail_from=mail_from)

    def lua(self):
        hdrs = ", ".join("{%s, %s}" % (mp.lua_str(n), mp.lua_str(v))
                         for n, v in self.msg.headers)
        body = ", ".join(mp.lua_str(c) for c in self.msg.body)
        return ("{name = %s, ip = %s, from = %s, headers = {%s}, "
                "body = {%s}, expect = %s}" % (
                    mp.lua_str(self.name), mp.lua_str(self.ip),
                    mp.lua_str(self.msg.mail_from), hdrs, body,
                    mp.lua_str(self.expect)))


def templates(key):
    signed = ec.sign(mp.message("alice@reject.example", "Signed"),
                     "reject.example", "s1", key)
    return {
        "spoof": Tpl("spoof", BAD, mp.message("alice@reject.example",
                                              "Spoof"), "y"),
        "pass": Tpl("pass", GOOD, signed, "a"),
        "norua": Tpl("norua", BAD, mp.message("alice@norua.example",
                                              "No rua"), "y"),
        "two": Tpl("two", THIRD, mp.message(
            "alice@reject.example, carol@two.example", "Two authors"), "y"),
        "none": Tpl("none", BAD, mp.message("alice@two.example",
                                            "p=none spoof"), "a"),
        "change-r": Tpl("change-r", BAD, mp.message("alice@change.example",
                                                    "Change"), "y"),
        "change-q": Tpl("change-q", BAD, mp.message("alice@change.example",
                                                    "Change"), "a"),
    }


LOOP_LUA = r"""
-- written by tests/integration/milter_counters.py
local msgs = {%(msgs)s}
local order = {%(order)s}
local total, per_conn, tag = %(total)d, %(per_conn)d, %(tag)s
local nonce = %(nonce)s
local sock = %(sock)s
local bad, n, in_conn = 0, 0, 0
local conn, cur_ip = nil, nil

local function must(what, err)
  if err ~= nil then fail(what, err) end
end

while n < total do
  local m = msgs[order[n %% #order + 1]]
  if conn ~= nil and (m.ip ~= cur_ip or in_conn >= per_conn) then
    mt.disconnect(conn)
    conn = nil
  end
  if conn == nil then
    conn = mt.connect(sock, 40, 0.05)
    if conn == nil then fail("connect", sock) end
    must("conninfo", mt.conninfo(conn, "mx.sample.example", m.ip))
    must("helo", mt.helo(conn, "mx.sample.example"))
    cur_ip, in_conn = m.ip, 0
  end
  n = n + 1
  in_conn = in_conn + 1
  must("macro", mt.macro(conn, SMFIC_MAIL, "i", tag .. n))
  must("mail", mt.mailfrom(conn, m.from))
  must("rcpt", mt.rcptto(conn, "<bob@mx.rcpt.example>"))
  for i, h in ipairs(m.headers) do
    must("header", mt.header(conn, h[1], h[2]))
  end
  -- each message its own (issue 16: a message offered again, same
  -- fields and body, is counted once)
  must("header", mt.header(conn, "X-Loop-Seq", nonce .. "." .. n))
  must("eoh", mt.eoh(conn))
  for i, c in ipairs(m.body) do
    must("body", mt.bodystring(conn, c))
  end
  must("eom", mt.eom(conn))
  local r = reply(conn)
  if r ~= m.expect then bad = bad + 1 end
  print("M " .. n .. " " .. m.name .. " " .. r)
end
if conn ~= nil then mt.disconnect(conn) end
print("DONE " .. n .. " " .. bad)
"""


class Loop:
    """One miltertest process sending `total` messages to one milter:
    the templates in `order` (names), cycled; a new connection when the
    client IP changes or after per_conn messages. Each message's line is
    timestamped as it arrives (the latency figures)."""

    def __init__(self, directory, name, sock, tpls, order, total,
                 per_conn=10):
        self.name, self.total = name, total
        self.names = sorted({o for o in order})
        index = {n: i + 1 for i, n in enumerate(self.names)}
        self.expect = {n: tpls[n].expect for n in self.names}
        self.script = os.path.join(directory, "%s.lua" % name)
        with open(self.script, "w") as f:
            f.write(mp.LUA_PRELUDE % {"timeout": 20 * SLOW} + LOOP_LUA % {
                "msgs": ",\n  ".join(tpls[n].lua() for n in self.names),
                "order": ", ".join(str(index[o]) for o in order),
                "total": total, "per_conn": per_conn,
                "tag": mp.lua_str(name), "sock": mp.lua_str("unix:" + sock),
                "nonce": mp.lua_str(os.urandom(8).hex())})
        self.proc = None
        self.lock = threading.Lock()
        self.times = []         # arrival time of each message's line
        self.wrong = []         # (n, template, reply) not as expected
        self.done = None        # (n, bad) from the DONE line
        self.other = []
        self.rc = None
        self.err = ""

    def start(self):
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [mp.miltertest_path(), "-s", self.script],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        LOOPS.append(self)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        return self

    def _read(self):
        for raw in self.proc.stdout:
            t = time.monotonic()
            f = raw.decode(errors="replace").split()
            with self.lock:
                if len(f) == 4 and f[0] == "M":
                    self.times.append(t)
                    if f[3] != self.expect.get(f[2]):
                        self.wrong.append((int(f[1]), f[2], f[3]))
                elif len(f) == 3 and f[0] == "DONE":
                    self.done = (int(f[1]), int(f[2]))
                elif f:
                    self.other.append(" ".join(f))

    def count(self):
        with self.lock:
            return len(self.times)

    def wait(self, timeout=120):
        try:
            self.rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.kill()
            self.rc = "timeout after %d s" % (timeout * SLOW)
        self.thread.join(10)
        self.err = self.proc.stderr.read().decode(errors="replace").strip()
        return self

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def good(self):
        return self.rc == 0 and self.done == (self.total, 0) and \
            not self.wrong and len(self.times) == self.total

    def describe(self):
        return ["loop %s: exit %s, DONE %r, %d message lines of %d" % (
            self.name, self.rc, self.done, len(self.times), self.total),
            "unexpected replies (n, message, reply): %r" % self.wrong[:5]] + \
            ["miltertest: " + l for l in self.other[:5]] + \
            (["stderr: " + self.err[-800:]] if self.err else [])

    def gaps(self):
        """(end time, seconds) of each message after the first: the time
        from the previous message's reply to this one's."""
        t = self.times
        return [(t[i], t[i] - t[i - 1]) for i in range(1, len(t))]


LOOPS = []


def run_loops(loops, timeout=120):
    for lp in loops:
        lp.start()
    for lp in loops:
        lp.wait(timeout)
    return loops


def wait_count(loops, n, timeout):
    """Poll until the loops together finished n messages (or ended)."""
    end = time.monotonic() + timeout * SLOW
    while time.monotonic() < end:
        if sum(lp.count() for lp in loops) >= n or \
                all(lp.proc.poll() is not None for lp in loops):
            break
        time.sleep(0.01)
    return sum(lp.count() for lp in loops)


# ---------------------------------------------------------------- Redis

def unesc(v):
    return re.sub(r"%([0-9A-Fa-f]{2})",
                  lambda m: chr(int(m.group(1), 16)), v)


def fields(text):
    """A row or policy text (include/dm_row.h) as key -> raw value."""
    out = {}
    for part in text.split(";"):
        if part:
            k, _, v = part.partition("=")
            out[k] = v
    return out


def fnv1a64(text):
    h = 0xcbf29ce484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return "%016x" % h


def pairs(flat):
    return list(zip(flat[0::2], flat[1::2]))


def total(redis, prefix=PREFIX):
    """The sum of every row count under prefix, found by key name (not
    through the index); None while Redis does not answer."""
    try:
        with redis.client(5) as c:
            n = 0
            for k in c.call("KEYS", prefix + "*:rows:*"):
                n += sum(int(v) for v in c.call("HVALS", k))
            return n
    except (OSError, mta.RedisError):
        return None


def wait_total(redis, expected, timeout=30, stable=2.0):
    """Poll the sum until it has equalled `expected` for `stable` seconds
    (more is not waited for: a later double count would show), or it has
    not changed for 2*stable seconds, or timeout. (sum, seconds)."""
    t0 = time.monotonic()
    last, since = None, t0
    while True:
        now = time.monotonic()
        v = total(redis)
        if v != last:
            last, since = v, now
        quiet = now - since
        if (v == expected and quiet >= stable) or \
                (v is not None and quiet >= 2 * stable) or \
                now - t0 > timeout * SLOW:
            return v, now - t0
        time.sleep(0.1)


def expire_at(c, key):
    """When key expires (UTC seconds; -1 never, -2 no key). EXPIRETIME
    is Redis 7; before it, from TTL (to the second)."""
    try:
        return c.call("EXPIRETIME", key)
    except mta.RedisError:
        t = c.call("TTL", key)
        return int(time.time()) + t if t >= 0 else t


def snapshot(redis, prefix=PREFIX):
    """Everything under prefix: {"domains": set, "keys": [...], "dom":
    {domain: {"groups": {G: {"score", "rows", "meta", "ttl"}},
    "writers": {...}}}}."""
    with redis.client() as c:
        snap = {"domains": set(c.call("SMEMBERS", prefix + "domains")),
                "keys": sorted(c.call("KEYS", prefix + "*")), "dom": {}}
        for d in snap["domains"]:
            base = "%s{%s}:" % (prefix, d)
            groups = {}
            for g, score in pairs(c.call("ZRANGE", base + "groups", 0, -1,
                                         "WITHSCORES")):
                groups[g] = {
                    "score": int(float(score)),
                    "rows": {k: int(v) for k, v in pairs(
                        c.call("HGETALL", base + "rows:" + g))},
                    "meta": dict(pairs(c.call("HGETALL",
                                              base + "meta:" + g))),
                    "ttl": (expire_at(c, base + "rows:" + g),
                            expire_at(c, base + "meta:" + g))}
            snap["dom"][d] = {
                "groups": groups,
                "writers": dict(pairs(c.call("HGETALL", base + "writers")))}
    return snap


def by_policy(snap, domain):
    """{policy text: {row: count}} over the domain's groups (a period
    boundary crossed during the test splits a group in two)."""
    out = {}
    for g in snap["dom"].get(domain, {}).get("groups", {}).values():
        rows = out.setdefault(g["meta"].get("policy"), {})
        for r, n in g["rows"].items():
            rows[r] = rows.get(r, 0) + n
    return out


def dump(snap, limit=30):
    lines = ["Redis: domains %s" % sorted(snap["domains"])]
    for d, v in sorted(snap["dom"].items()):
        for g, gv in sorted(v["groups"].items()):
            lines.append("  %s group %s score %d meta %r ttl %r" % (
                d, g, gv["score"], gv["meta"], gv["ttl"]))
            for r, n in sorted(gv["rows"].items()):
                lines.append("    %6d  %s" % (n, r))
        lines.append("  %s writers %r" % (d, v["writers"]))
    lines.append("keys: %r" % snap["keys"][:limit])
    return lines[:limit * 3]


# ---------------------------------------------------------------- milter

class Ctx:
    def __init__(self, tap, wd, key, dnsconf, tpls):
        self.tap, self.wd, self.key = tap, wd, key
        self.dnsconf, self.tpls = dnsconf, tpls

    def dir(self, name):
        p = os.path.join(self.wd.path, name)
        os.makedirs(p, exist_ok=True)
        return p

    def milter(self, name, state, redis=None, **opts):
        o = {"DNSConfig": self.dnsconf, "StateDir": state,
             "RedisURL": redis.url if redis is not None else None}
        o.update(opts)
        return mta.Milter(ec.dirs()[1], self.wd, o, name=name)

    def loop(self, milter, name, order, total, per_conn=10):
        return Loop(milter.dir, name, milter.sock_path, self.tpls, order,
                    total, per_conn)


def log_lines(milter, pattern, n=8):
    rx = re.compile(pattern)
    return [l for l in milter.log_lines() if rx.search(l)][:n]


def counter_log(milter, n=12):
    """The milter's log lines about the counters (for diagnostics)."""
    return ["milter %s log (counters, Redis, journal):" % milter.dir] + \
        ["  " + l for l in log_lines(
            milter, r"counter|[Rr]edis|journal|count lost", n)]


def stop_ok(ctx, milter, what):
    rc = milter.stop(30 * SLOW)
    ctx.tap.ok(rc == 0, "%s: SIGTERM, exit status 0" % what,
               ["exit status %r (killed: %s)" % (rc, milter.killed),
                mta._tail(milter.logfile, 15)])


def journal_files(state):
    d = os.path.join(state, "journal")
    try:
        return sorted(os.path.join(d, n) for n in os.listdir(d))
    except OSError:
        return []


def journal_records(state):
    """Records (lines) in every segment file of StateDir/journal."""
    n = 0
    for p in journal_files(state):
        if os.path.basename(p).startswith("seg-"):
            with open(p, "rb") as f:
                n += f.read().count(b"\n")
    return n


# ----------------------------------------------------------------- cases

def case_exact(ctx):
    """1. A known mix; every row and the key layout."""
    tap = ctx.tap
    redis = mta.RedisServer(ctx.wd, "redis1").start()
    m = ctx.milter("exact", ctx.dir("state1"), redis)
    m.start()
    order = ["spoof"] * 7 + ["pass"] * 5 + ["norua"] * 3 + ["two"] * 2
    lp = run_loops([ctx.loop(m, "X", order, len(order), per_conn=4)])[0]
    tap.ok(lp.good(), "exact: 17 messages (7 spoofs, 5 DKIM passes, 3 "
           "without rua, 2 with two authors) got their replies",
           lp.describe() + counter_log(m))
    t_now = int(time.time())
    got, secs = wait_total(redis, 16)
    tap.ok(got == 16, "exact: 16 counts in Redis (14 reject.example, 2 "
           "two.example; norua.example none)",
           ["sum %r after %.1f s" % (got, secs)] + counter_log(m))
    snap = snapshot(redis)
    tap.ok(snap["domains"] == {"reject.example", "two.example"} and
           not [k for k in snap["keys"] if "norua" in k],
           "exact: %sdomains lists reject.example and two.example; no key "
           "for norua.example (no rua: not stored)" % PREFIX, dump(snap))

    want = {
        ("reject.example", BAD): dict(n=7, disp="reject", dkim="fail",
                                      spf="fail", ad="",
                                      **{"as": "sample.example/mfrom/fail"}),
        ("reject.example", GOOD): dict(n=5, disp="none", dkim="pass",
                                       spf="fail",
                                       ad="reject.example/s1/pass",
                                       **{"as":
                                          "sample.example/mfrom/pass"}),
        ("reject.example", THIRD): dict(n=2, disp="reject", dkim="fail",
                                        spf="fail"),
        ("two.example", THIRD): dict(n=2, disp="none", dkim="fail",
                                     spf="fail"),
    }
    for dom in ("reject.example", "two.example"):
        pol = by_policy(snap, dom)
        rows = {}
        bad = []
        for p, rs in pol.items():
            for r, n in rs.items():
                f = fields(r)
                if (dom, f.get("ip")) in rows:
                    bad.append("two rows for ip %s" % f.get("ip"))
                rows[(dom, f.get("ip"))] = (f, n, r)
        exp = {k: v for k, v in want.items() if k[0] == dom}
        if set(rows) != set(exp):
            bad.append("rows for %s, expected %s" % (
                sorted(rows), sorted(exp)))
        for k, e in exp.items():
            if k not in rows:
                continue
            f, n, r = rows[k]
            if n != e["n"]:
                bad.append("%s: count %d, expected %d" % (r, n, e["n"]))
            for fk, fv in e.items():
                if fk != "n" and f.get(fk) != fv:
                    bad.append("%s: %s=%r, expected %r" % (r, fk,
                                                           f.get(fk), fv))
            for fk, fv in (("hf", dom), ("ef", SAMPLE), ("r", "")):
                if f.get(fk) != fv:
                    bad.append("%s: %s=%r, expected %r" % (r, fk,
                                                           f.get(fk), fv))
            if "et" in f:
                bad.append("%s: et= without ReportEnvelopeTo" % r)
        policies = [fields(p or "") for p in pol]
        want_p = {"reject.example": "reject", "two.example": "none"}[dom]
        if len(policies) != 1 or policies[0].get("p") != want_p or \
                unesc(policies[0].get("rua", "")) != \
                "mailto:r@%s" % dom or policies[0].get("pct") != "100":
            bad.append("policy texts %r: expected one with p=%s, pct=100, "
                       "rua=mailto:r@%s" % (list(pol), want_p, dom))
        tap.ok(not bad, "exact: %s rows: counts and ip/hf/ef/disp/dkim/"
               "spf/ad/as/r as evaluated, one policy text (p=%s, rua)" %
               (dom, want_p), bad + dump(snap))

    bad = []
    for dom, v in sorted(snap["dom"].items()):
        for g, gv in v["groups"].items():
            meta = gv["meta"]
            try:
                b, e = int(meta["begin"]), int(meta["end"])
            except (KeyError, ValueError):
                bad.append("%s %s: meta %r" % (dom, g, meta))
                continue
            if b % DAY or e - b != DAY or not b <= t_now < e + 60:
                bad.append("%s %s: period [%d, %d) is not the UTC day of "
                           "%d" % (dom, g, b, e, t_now))
            if g != "%d:%s" % (b, fnv1a64(meta.get("policy", ""))):
                bad.append("%s: group %s is not <begin>:<FNV-1a 64 of the "
                           "policy text> (%d:%s)" % (
                               dom, g, b, fnv1a64(meta.get("policy", ""))))
            if gv["score"] != e:
                bad.append("%s %s: score %d in groups, end %d" % (
                    dom, g, gv["score"], e))
            if not all(abs(t - e - REDIS_TTL) <= 2 for t in gv["ttl"]):
                bad.append("%s %s: rows/meta expire at %r, expected end + "
                           "RedisTTL = %d" % (dom, g, gv["ttl"],
                                              e + REDIS_TTL))
        if len(v["writers"]) != 1 or \
                not all(int(s) > 0 for s in v["writers"].values()):
            bad.append("%s: writers %r, expected one writer" % (
                dom, v["writers"]))
    tap.ok(not bad, "exact: groups named <begin>:<policy id>, scored by "
           "their end, UTC-day periods, rows and meta expire RedisTTL "
           "after the period, one writer", bad + dump(snap))
    stop_ok(ctx, m, "exact")
    redis.stop()


def case_kill9(ctx):
    """2. kill -9 of Redis in the middle of 10,000 messages."""
    tap = ctx.tap
    redis = mta.RedisServer(ctx.wd, "redis2", persist=True).start()
    state = ctx.dir("state2")
    m = ctx.milter("kill9", state, redis, RedisTimeout="500")
    m.start()
    order = ["spoof"] * 4 + ["pass"] * 3 + ["none"] * 3
    loops = [ctx.loop(m, "A", order, 5000), ctx.loop(m, "B", order, 5000)]
    for lp in loops:
        lp.start()
    n_kill = wait_count(loops, 2000, 60)
    redis.kill()
    t_kill = time.monotonic()
    # Redis stays dead for 3 s (the scenario, not a synchronisation).
    time.sleep(3.0)
    n_restart = sum(lp.count() for lp in loops)
    redis.start()
    t_up = time.monotonic()
    for lp in loops:
        lp.wait(120)
    n_end = sum(lp.count() for lp in loops)
    tap.diag("kill9: %d messages before kill -9, %d while Redis was down "
             "(%.1f s), %d after it was back" % (
                 n_kill, n_restart - n_kill, t_up - t_kill,
                 n_end - n_restart))
    tap.ok(all(lp.good() for lp in loops),
           "kill9: 10,000 messages in two concurrent loops across kill -9 "
           "and restart of Redis: every reply as expected",
           sum((lp.describe() for lp in loops), []) + counter_log(m))
    worst = max((g for lp in loops for _, g in lp.gaps()), default=0)
    tap.diag("kill9: slowest message %.3f s" % worst)
    spooled = log_lines(m, r"counters: Redis unavailable")
    tap.ok(n_restart - n_kill > 0 and bool(spooled),
           "kill9: mail flowed while Redis was dead and the milter said it "
           "kept the counts in its journal",
           ["messages while down: %d" % (n_restart - n_kill)] +
           counter_log(m))
    got, secs = wait_total(redis, 10000)
    tap.ok(got == 10000, "kill9: after the replay the counts add up to "
           "exactly 10,000 (got %r after %.1f s)" % (got, secs),
           ["journal records left: %d in %r" % (
               journal_records(state), journal_files(state))] +
           counter_log(m) + dump(snapshot(redis)))
    stop_ok(ctx, m, "kill9")
    # The same StateDir again: whatever is left must not count twice.
    m2 = ctx.milter("kill9b", state, redis, RedisTimeout="500")
    m2.start()
    replayed = m2.wait_log(r"journal replayed|counting into Redis", 10)
    got2, secs = wait_total(redis, 10000, stable=2.0)
    tap.ok(got2 == 10000, "kill9: a new milter on the same StateDir adds "
           "nothing (sum %r)" % got2,
           ["replay line: %r" % replayed] + counter_log(m2))
    stop_ok(ctx, m2, "kill9 (second milter)")
    redis.stop()


def case_down_at_start(ctx):
    """3. Redis down when the milter starts."""
    tap = ctx.tap
    redis = mta.RedisServer(ctx.wd, "redis3")
    m = ctx.milter("down", ctx.dir("state3"), redis)
    try:
        m.start()
    except mta.HarnessError as e:
        tap.ok(False, "down: the milter starts while its Redis is down",
               [str(e)])
        return
    t0 = time.monotonic()
    tap.ok(True, "down: the milter starts while its Redis is down")
    order = ["spoof"] * 2 + ["pass"] * 2 + ["none"]
    lp1 = run_loops([ctx.loop(m, "C", order, 1000)])[0]
    # Redis comes up 3 s after the milter (the scenario).
    time.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))
    redis.start()
    lp2 = run_loops([ctx.loop(m, "D", order, 1000)])[0]
    tap.ok(lp1.good() and lp2.good(), "down: 1,000 messages before Redis "
           "is there and 1,000 after: every reply as expected",
           lp1.describe() + lp2.describe() + counter_log(m))
    got, secs = wait_total(redis, 2000)
    tap.ok(got == 2000, "down: the counts add up to exactly 2,000 (got %r "
           "after %.1f s)" % (got, secs), counter_log(m))
    stop_ok(ctx, m, "down")
    redis.stop()


def case_slow(ctx):
    """4. Redis stalled by DEBUG SLEEP 2 while mail flows."""
    tap = ctx.tap
    redis = mta.RedisServer(ctx.wd, "redis4", debug=True).start()
    # A queue of 16: while the writer waits on Redis the queue may fill;
    # either way the writer falls back to the journal every count is in.
    m = ctx.milter("slow", ctx.dir("state4"), redis, RedisTimeout="500",
                   CounterQueueSize="16")
    m.start()
    order = ["spoof"] * 5 + ["pass"] * 5
    lp = ctx.loop(m, "E", order, 8000)
    sleeps = []             # (start, end) of each DEBUG SLEEP
    errors = []

    def stall():
        t = time.monotonic()
        try:
            with redis.client(15) as c:
                r = c.call("DEBUG", "SLEEP", "2")
        except (OSError, mta.RedisError) as e:
            r = e
        sleeps.append((t, time.monotonic()))
        if r != "OK":
            errors.append("DEBUG SLEEP 2: %r" % (r,))

    lp.start()
    for at in (1000, None):
        if at is None:
            # The second one after mail flowed again for a while.
            at = lp.count() + 800
        wait_count([lp], at, 60)
        th = threading.Thread(target=stall)
        th.start()
        th.join(30)
    lp.wait(120)
    gaps = lp.gaps()

    def during(t):
        return any(s <= t <= e for s, e in sleeps)
    inside = [g for t, g in gaps if during(t)]
    outside = [g for t, g in gaps if not during(t)]

    def fig(v):
        if not v:
            return "none"
        v = sorted(v)
        return "n=%d median %.2f ms, p99 %.2f ms, max %.1f ms" % (
            len(v), 1000 * statistics.median(v),
            1000 * v[min(len(v) - 1, int(len(v) * 0.99))], 1000 * v[-1])
    tap.diag("slow: per-message time while Redis slept: " + fig(inside))
    tap.diag("slow: per-message time otherwise:        " + fig(outside))
    worst = max((g for _, g in gaps), default=0)
    bound = 1.0 * SLOW
    tap.ok(lp.good() and not errors and len(sleeps) == 2,
           "slow: 8,000 messages with two DEBUG SLEEP 2 of Redis "
           "(RedisTimeout 500): every reply as expected",
           lp.describe() + errors + counter_log(m))
    tap.ok(len(inside) > 0 and worst < bound,
           "slow: %d messages finished while Redis slept; none took %g s "
           "(slowest %.3f s)" % (len(inside), bound, worst),
           ["sleeps at %r (loop started %.2f)" % (sleeps, lp.t0)] +
           counter_log(m))
    got, secs = wait_total(redis, 8000)
    tap.ok(got == 8000, "slow: the counts add up to exactly 8,000 (got %r "
           "after %.1f s)" % (got, secs), counter_log(m))
    # Since issue 16 every count is in the journal first; a stalled Redis
    # sends the writer back to replaying it, through a full queue or a
    # RedisTimeout, whichever comes first at this machine's rate.
    tap.ok(any("queue full" in l or "keeping counts in" in l
               for l in m.log_lines()),
           "slow: the stalled Redis sent the counts to the journal (queue "
           "full or RedisTimeout)", counter_log(m))
    stop_ok(ctx, m, "slow")
    redis.stop()


def case_torn(ctx):
    """5. A torn journal tail, replayed into Redis."""
    tap = ctx.tap
    state = ctx.dir("state5")
    n = 600
    m = ctx.milter("torn", state)
    m.start()
    order = ["spoof"] * 3 + ["pass"] * 2 + ["none"]
    lp = run_loops([ctx.loop(m, "F", order, n)])[0]
    tap.ok(lp.good(), "torn: %d messages into a milter without RedisURL "
           "(the embedded journal): every reply as expected" % n,
           lp.describe() + counter_log(m))
    stop_ok(ctx, m, "torn (embedded)")
    files = journal_files(state)
    recs = journal_records(state)
    tap.ok(recs == n, "torn: StateDir/journal holds %d records after "
           "SIGTERM (got %d)" % (n, recs), ["files: %r" % files])
    segs = [p for p in files if os.path.basename(p).startswith("seg-") and
            os.path.getsize(p) > 0]
    torn = None
    if segs:
        torn = segs[-1]
        with open(torn, "rb") as f:
            last = f.read().rstrip(b"\n").split(b"\n")[-1]
        with open(torn, "ab") as f:
            f.write(last[:len(last) // 2])
        tap.diag("torn: appended %d of %d bytes of its last record to %s" %
                 (len(last) // 2, len(last), os.path.basename(torn)))
    redis = mta.RedisServer(ctx.wd, "redis5").start()
    m2 = ctx.milter("torn2", state, redis)
    m2.start()
    got, secs = wait_total(redis, n)
    tap.ok(torn is not None and got == n,
           "torn: a milter with RedisURL on the same StateDir replays the "
           "old segments: exactly %d counts (got %r after %.1f s)" % (
               n, got, secs), counter_log(m2))
    skipped = log_lines(m2, r"journal .*skip")
    tap.ok(bool(skipped) and any(os.path.basename(torn or "-") in l
                                 for l in skipped),
           "torn: the torn record is logged as skipped, naming its file",
           ["log lines: %r" % skipped] + counter_log(m2))
    left = [p for p in journal_files(state)
            if os.path.basename(p).endswith(".log")]
    tap.ok(not left, "torn: the replayed segments are removed",
           ["left: %r" % left])
    stop_ok(ctx, m2, "torn (Redis)")
    redis.stop()


def case_two(ctx):
    """6. Two milter processes, one Redis."""
    tap = ctx.tap
    redis = mta.RedisServer(ctx.wd, "redis6").start()
    ma = ctx.milter("twoA", ctx.dir("state6a"), redis)
    mb = ctx.milter("twoB", ctx.dir("state6b"), redis,
                    ReportEnvelopeTo="yes")
    ma.start()
    mb.start()
    each = 2000
    order = ["spoof"] * 3 + ["pass"] * 2
    loops = run_loops([ctx.loop(ma, "G", order, each),
                       ctx.loop(mb, "H", order, each)])
    tap.ok(all(lp.good() for lp in loops), "two: %d messages to each of "
           "two milters at once: every reply as expected" % each,
           sum((lp.describe() for lp in loops), []))
    got, secs = wait_total(redis, 2 * each)
    tap.ok(got == 2 * each, "two: the counts add up to exactly %d (got %r "
           "after %.1f s)" % (2 * each, got, secs),
           counter_log(ma) + counter_log(mb))
    snap = snapshot(redis)
    w = snap["dom"].get("reject.example", {}).get("writers", {})
    tap.ok(len(w) == 2 and sorted(int(v) for v in w.values()) ==
           [each, each], "two: {reject.example}:writers names two writers, "
           "each at sequence %d" % each, ["writers: %r" % w])
    with_et = without = 0
    for rows in by_policy(snap, "reject.example").values():
        for r, n in rows.items():
            f = fields(r)
            if f.get("et") == "mx.rcpt.example":
                with_et += n
            elif "et" not in f:
                without += n
    tap.ok(with_et == each and without == each,
           "two: ReportEnvelopeTo yes on one milter: %d counts carry "
           "et=mx.rcpt.example, %d none" % (with_et, without), dump(snap))
    stop_ok(ctx, ma, "two (A)")
    stop_ok(ctx, mb, "two (B)")
    redis.stop()


def case_policy(ctx):
    """7. A policy change mid-period makes a second group."""
    tap = ctx.tap
    redis = mta.RedisServer(ctx.wd, "redis7").start()
    m = ctx.milter("policy", ctx.dir("state7"), redis)
    m.start()
    lp1 = run_loops([ctx.loop(m, "P", ["change-r"], 300)])[0]
    dns_q = build_zone(ctx.key, change="quarantine").write(
        os.path.join(ctx.wd.path, "unbound-quarantine.conf"))
    before = len(m.log_lines())
    m.reload({"DNSConfig": dns_q})
    line = m.wait_log(r"reload: .*new settings in use", 20 * SLOW,
                      start=before)
    lp2 = run_loops([ctx.loop(m, "Q", ["change-q"], 200)])[0]
    tap.ok(lp1.good() and lp2.good() and line is not None,
           "policy: 300 messages under p=reject (550), SIGHUP with the "
           "record at p=quarantine, 200 more (accepted, quarantined)",
           lp1.describe() + lp2.describe() + ["reload line: %r" % line] +
           mta._tail(m.logfile, 10).splitlines())
    got, secs = wait_total(redis, 500)
    snap = snapshot(redis)
    pol = by_policy(snap, "change.example")
    counts = {fields(p or "").get("p"): sum(r.values())
              for p, r in pol.items()}
    groups = snap["dom"].get("change.example", {}).get("groups", {})
    # One period: two groups. A period boundary crossed during the test
    # may split either policy's counts over two periods.
    begins = {g["meta"].get("begin") for g in groups.values()}
    tap.ok(got == 500 and counts == {"reject": 300, "quarantine": 200} and
           (len(groups) == 2 or len(begins) > 1),
           "policy: two groups for change.example: 300 counts under "
           "p=reject, 200 under p=quarantine",
           ["sum %r; per policy p=: %r; groups %r" % (got, counts,
                                                      sorted(groups))] +
           dump(snap))
    stop_ok(ctx, m, "policy")
    redis.stop()


# ------------------------------------------------------------------ main

CASES = [case_exact, case_kill9, case_down_at_start, case_slow, case_torn,
         case_two, case_policy]


def stop_loops():
    for lp in LOOPS:
        lp.kill()
    del LOOPS[:]
    mta._stop_all()


def run_cases(tap, ctx, cases, env):
    """Each case_NAME(ctx) in turn (only those named in $env, comma-
    separated, if set); an exception is one failed check; every loop
    and server is stopped after each case."""
    only = [c for c in os.environ.get(env, "").split(",") if c]
    for case in cases:
        if only and case.__name__[5:] not in only:
            continue
        t = time.monotonic()
        try:
            case(ctx)
        except Exception as e:  # noqa: BLE001 - a harness failure
            import traceback
            tap.ok(False, "%s: harness error" % case.__name__,
                   [repr(e), traceback.format_exc()])
        finally:
            stop_loops()
        tap.diag("%s: %.1f s" % (case.__name__, time.monotonic() - t))


def main(cases=None, env="COUNTER_CASES", prefix="dmarc-milter-counters.",
         tools=()):
    """Run cases (CASES by default) with the DNS zone and templates
    here; also the main of redis_sentinel.py (tools: more programs it
    needs, skipped without)."""
    missing = [p for p, ok in (
        ("redis-server", mta.which("redis-server")),
        ("miltertest", mp.miltertest_path())) +
        tuple((t, mta.which(t)) for t in tools) if not ok]
    if missing:
        print("1..0 # SKIP %s not installed (Debian packages %s)" % (
            " and ".join(missing), " ".join(missing)))
        return 0
    mta.install_signal_cleanup()
    tap = ec.Tap()
    milter = os.environ.get("DMARC_MILTER") or \
        os.path.join(ec.dirs()[1], "milter", "dmarc-milter")
    if not os.access(milter, os.X_OK):
        tap.bail("dmarc-milter not built: %s" % milter)
    wd = ec.Workdir(prefix)
    t0 = time.monotonic()
    try:
        key = ec.Key.rsa(wd, "rsa")
        dnsconf = build_zone(key).write(wd.file("unbound.conf"))
        ctx = Ctx(tap, wd, key, dnsconf, templates(key))
        run_cases(tap, ctx, cases or CASES, env)
    finally:
        for lp in LOOPS:
            lp.kill()
        mta._stop_all()
        tap.diag("total %.1f s" % (time.monotonic() - t0))
        wd.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
