#!/usr/bin/env python3
"""tests/integration/redis_sentinel.py - the counters behind Redis
Sentinel (issue 17, section 3) with real servers: Debian's redis-server
(a master and a replica) and redis-sentinel (three sentinels), each on a
free loopback port and a unix socket in the work directory, stopped by
PID (mta.RedisServer).

The milter's RedisURL is redis-sentinel://s1,s2,s3/NAME. Mail flows
through miltertest loops (milter_counters.Loop) while the master is
killed with SIGKILL (two replicas), or demoted by SENTINEL FAILOVER (one
replica); the sentinels promote a replica. Checked: every
reply as expected (0 tempfails: the journal takes the counts meanwhile),
the milter logged that it followed the master to the new address, the
counts in the new master add up to exactly the messages sent, and
dmarc-report, also given the sentinels, sends reports from the new
master that count every message once.

Environment: as milter_counters.py; SENTINEL_MESSAGES (default 3000)
sets the number of messages (10,000 for the issue's figure).
Prints "1..0 # SKIP ..." when redis-server, redis-sentinel or miltertest
is missing (Debian packages redis-server, redis-sentinel, miltertest).
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import milter_counters as mc  # noqa: E402  (needs dkim: skips without)
import report_e2e as re2e  # noqa: E402

ec, mp, mta = mc.ec, mc.mp, mc.mta
NAME = "dmarcmaster"
MESSAGES = int(os.environ.get("SENTINEL_MESSAGES", "3000"))


class Sentinel(mta.RedisServer):
    """redis-sentinel with a generated sentinel.conf (which it rewrites:
    hence a file of its own) watching the master on mport."""

    def __init__(self, workdir, name, port, mport):
        super().__init__(workdir, name, port=port)
        self.binary = mta.which("redis-sentinel")
        self.conf = os.path.join(self.dir, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\nunixsocket %s\n"
                    "unixsocketperm 700\ndir %s\nlogfile %s\n"
                    "daemonize no\n"
                    "sentinel monitor %s 127.0.0.1 %d 2\n"
                    "sentinel down-after-milliseconds %s 1000\n"
                    "sentinel failover-timeout %s 5000\n"
                    "sentinel parallel-syncs %s 1\n" % (
                        port, self.sock, self.dir, self.logfile, NAME,
                        mport, NAME, NAME, NAME))

    def command(self):
        return [self.binary, self.conf]


def master_of(sentinel):
    try:
        a = sentinel.call("SENTINEL", "get-master-addr-by-name", NAME)
        return int(a[1]) if a else None
    except (OSError, mta.RedisError):
        return None


def synced_replicas(server):
    """How many replicas the server has online (INFO replication)."""
    try:
        info = server.call("INFO", "replication")
    except (OSError, mta.RedisError):
        return 0
    return info.count("state=online")


def wait_for(pred, timeout):
    end = time.monotonic() + timeout * mc.SLOW
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return pred()


def start_servers(wd, tag, n):
    """Master, n replicas (in sync), three sentinels that see them."""
    mport = mta.free_port()
    fast = ["--repl-diskless-sync-delay", "0"]
    master = mta.RedisServer(wd, tag + "-master", port=mport,
                             extra=fast).start()
    replicas = [mta.RedisServer(
        wd, "%s-replica%d" % (tag, i), port=mta.free_port(), extra=fast + [
            "--replicaof", "127.0.0.1", str(mport)]).start()
        for i in range(n)]
    sentinels = [Sentinel(wd, "%s-sentinel%d" % (tag, i), mta.free_port(),
                          mport).start() for i in range(3)]
    synced = wait_for(lambda: all("master_link_status:up" in
                                  r.call("INFO", "replication")
                                  for r in replicas), 30)
    seen = wait_for(lambda: all(
        int(dict(zip(*[iter(s.call("SENTINEL", "master", NAME))] * 2))
            .get("num-other-sentinels", 0)) == 2 and
        len(s.call("SENTINEL", "replicas", NAME)) == n
        for s in sentinels), 30)
    return master, replicas, sentinels, bool(synced and seen)


def failover(ctx, tag, how, n, act):
    """MESSAGES through a milter on the sentinels (n replicas) while
    act(master, sentinels) makes them fail over a quarter of the way
    in."""
    tap = ctx.tap
    master, replicas, sentinels, ready = start_servers(ctx.wd, tag, n)
    tap.ok(ready, "%s: master, replica in sync, three sentinels "
           "that know each other and the replica" % tag,
           [s.log_tail(5) for s in sentinels])
    url = "redis-sentinel://%s/%s" % (",".join(
        "127.0.0.1:%d" % s.port for s in sentinels), NAME)
    state = ctx.dir(tag + "-state")
    m = mta.Milter(ec.dirs()[1], ctx.wd, {
        "DNSConfig": ctx.dnsconf, "StateDir": state, "RedisURL": url,
        "RedisTimeout": "500"}, name=tag)
    m.start()
    order = ["spoof"] * 4 + ["pass"] * 3 + ["none"] * 3
    half = MESSAGES // 2
    loops = [ctx.loop(m, "A", order, half),
             ctx.loop(m, "B", order, MESSAGES - half)]
    for lp in loops:
        lp.start()
    n_kill = mc.wait_count(loops, MESSAGES // 4, 60)
    act(master, sentinels)
    t_kill = time.monotonic()
    moved = wait_for(lambda: master_of(sentinels[0]) in
                     [r.port for r in replicas], 30)
    replica = [r for r in replicas if r.port == master_of(sentinels[0])] \
        or replicas[:1]
    replica = replica[0]
    t_moved = time.monotonic()
    n_moved = sum(lp.count() for lp in loops)
    for lp in loops:
        lp.wait(180)
    tap.diag("%s: %d messages before %s, %d during the failover (%.1f s), "
             "%d after" % (tag, n_kill, how, n_moved - n_kill,
                           t_moved - t_kill, MESSAGES - n_moved))
    tap.ok(moved, "%s: the sentinels promoted the replica (port %d)" % (
           tag, replica.port), [s.log_tail(8) for s in sentinels])
    tap.ok(all(lp.good() for lp in loops),
           "%s: %d messages across %s, every reply as expected (0 "
           "tempfails)" % (tag, MESSAGES, how),
           sum((lp.describe() for lp in loops), []) + mc.counter_log(m))
    followed = m.wait_log(r"master %s is at 127\.0\.0\.1:%d" % (
        NAME, replica.port), 30)
    tap.ok(bool(followed), tag + ": the milter asked the sentinels and "
           "followed the master to the new address", mc.counter_log(m))
    # The counts wait in the journal until the new master has a replica
    # in sync (WAIT): with one replica, until the sentinels have turned
    # the old master into its replica.
    synced = wait_for(lambda: synced_replicas(replica), 60)
    tap.diag("%s: the new master has %d replica(s) in sync" % (tag,
                                                              synced))
    got, secs = mc.wait_total(replica, MESSAGES, timeout=60)
    tap.ok(got == MESSAGES, "%s: the new master counts exactly %d (got %r "
           "after %.1f s)" % (tag, MESSAGES, got, secs),
           ["journal records left: %d" % mc.journal_records(state)] +
           mc.counter_log(m, 20))
    role = replica.call("ROLE")
    tap.ok(role and role[0] == "master", tag + ": the promoted replica "
           "says ROLE master", [repr(role)])
    mc.stop_ok(ctx, m, tag)
    want = {}
    for lp in loops:
        for i in range(lp.total):
            d = "two.example" if order[i % len(order)] == "none" else \
                "reject.example"
            want[d] = want.get(d, 0) + 1
    check_report(ctx, tag, url, replica, want)
    for s in sentinels + replicas + [master]:
        s.stop()


def case_sigkill(ctx):
    """SIGKILL of the master; two replicas, so that the new master has
    one to WAIT for (with one, the counts would wait in the journal
    until the old master is back as its replica)."""
    failover(ctx, "sigkill", "SIGKILL of the master", 2,
             lambda master, sentinels: master.kill())


def case_demoted(ctx):
    """SENTINEL FAILOVER: the old master stays up and becomes a replica
    under the milter's connection (READONLY, or the sentinels' CLIENT
    KILL): the milter must find the new master, and what the old one
    took while it had lost its replica (and still said ROLE master) must
    not count as written: it is thrown away at the resync."""
    failover(ctx, "demoted", "SENTINEL FAILOVER", 1,
             lambda master, sentinels: sentinels[1].call(
                 "SENTINEL", "FAILOVER", NAME))


def check_report(ctx, tag, url, master, want):
    """dmarc-report through the sentinels: the reports it sends count
    every message once, and it deletes what it sent in the new master."""
    tap = ctx.tap
    rctx = re2e.Ctx(tap, ctx.wd, ctx.key, ctx.dnsconf, ctx.tpls)
    out = ctx.dir(tag + "-report-out")
    sm = re2e.capture_script(os.path.join(ctx.dir("bin"), "sm-" + tag), out)
    conf = rctx.conf(tag, ctx.dir(tag + "-report-state"), None,
                     RedisURL=url, SendmailPath=sm)
    rc, log = rctx.report(conf, "--day", re2e.today())
    got = re2e.sums(re2e.captured(out))
    tap.ok(rc == 0 and got == want, tag + ": dmarc-report (RedisURL "
           "redis-sentinel://) sends reports counting every message "
           "once: %r" % want, ["exit %d, report counts %r" % (rc, got),
                               log[-1500:]])
    left = master.call("KEYS", "*:rows:*")
    tap.ok(not left, tag + ": the reported rows are deleted in the new "
           "master", ["%r" % left[:5]])


if __name__ == "__main__":
    sys.exit(mc.main([case_sigkill, case_demoted], "SENTINEL_CASES",
                     "dmarc-milter-sentinel.", ("redis-sentinel",)))
