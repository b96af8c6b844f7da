#!/usr/bin/env python3
"""tests/integration/milter_server.py - dmarc-milter's own protocol
server (milter/server.c, dispatch.c) against an MTA spoken byte by byte
(the milter protocol, version 6, on a unix socket), for what miltertest
and a real MTA do not do:

- a whole message written one byte per write, and a whole message (every
  command up to the end of the message) in one write: the same replies;
- a 1 MB body (17 chunks of up to 64 KB): evaluated;
- 1,000 connections open at once, each negotiated: a message on the
  first and on the last still evaluated; the milter's RSS with them open
  is printed (a figure, not a check);
- an MTA that disconnects mid-message (after the header, and inside a
  packet): other connections unaffected, and a SIGTERM afterwards stops
  at once (the message was ended, nothing is left in flight);
- garbage bytes, a packet length over the limit, a command out of order
  (RCPT before MAIL): a log line naming the connection and what was
  wrong, that connection closed, another one unaffected;
- MaxConnections 3: the fourth connection gets a temporary failure at
  connect, with a log line;
- Socket inet6:PORT@::1: a message over IPv6;
- IdleTimeout and CommandTimeout: a silent connection and one that sent
  half a packet are closed, with a log line each;
- slow DNS: the DMARC lookups of slow.example go to a server that never
  answers (DNSTimeout 3); while four connections wait on them, the end of
  message of twenty messages on another connection is answered in well
  under a second each;
- SIGTERM on an idle milter: exit within 2 s (libmilter's listener took
  ~5 s), the time printed.

Environment: srcdir, builddir (make check); MILTER_WRAPPER (valgrind);
KEEP_TMP=1.
"""

import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evalcorpus as ec  # noqa: E402
import mta  # noqa: E402
from milter_negotiate import MtaConn  # noqa: E402

SLOW = 6 if mta.valgrind_wrapper() else 1


def pkt(cmd, data=b""):
    return struct.pack("!I", len(data) + 1) + cmd + data


def message(frm="alice@reject.example", body=b"Hello.\r\n", qid=b"Q1"):
    """Every command of one connection up to the end of its message,
    with the replies the MTA waits for (no SMFIP_NR_* negotiated)."""
    return [
        (pkt(b"O", struct.pack("!III", 6, 0x31, 0x100)), 1),
        (pkt(b"C", b"client.example\x004\x00\x19192.0.2.99\x00"), 1),
        (pkt(b"H", b"client.example\x00"), 1),
        (pkt(b"D", b"Mi\x00" + qid + b"\x00"), 0),
        (pkt(b"M", b"<a@sample.example>\x00"), 1),
        (pkt(b"R", b"<b@rcpt.example>\x00"), 1),
        (pkt(b"T"), 1),
        (pkt(b"L", b"From\x00 " + frm.encode() + b"\x00"), 1),
        (pkt(b"L", b"Subject\x00 test\x00"), 1),
        (pkt(b"N"), 1),
    ] + [(pkt(b"B", body[i:i + 65535]), 1)
         for i in range(0, len(body), 65535)]


def read_replies(conn, n, timeout=10):
    out = []
    for _ in range(n):
        r = conn.recv(timeout * SLOW)
        if r is None:
            break
        out.append(r[0])
    return out


def run_message(conn, steps, mode="normal"):
    """Sends steps (by mode), then EOM; (replies, final)."""
    data = b"".join(p for p, _ in steps)
    want = sum(n for _, n in steps)
    if mode == "bytes":
        for i in range(len(data)):
            conn.s.sendall(data[i:i + 1])
            if i % 7 == 0:
                time.sleep(0.0005)
        got = read_replies(conn, want)
    elif mode == "one":
        conn.s.sendall(data + pkt(b"E"))
        got = read_replies(conn, want)
        final, mods = final_of_sent(conn)
        return got, final, mods
    else:
        got = []
        for p, n in steps:
            conn.s.sendall(p)
            got += read_replies(conn, n)
    conn.send(b"E")
    final, mods = final_of_sent(conn)
    return got, final, mods


def final_of_sent(conn):
    mods = []
    while True:
        r = conn.recv(15 * SLOW)
        if r is None:
            return None, mods
        mods.append(r)
        if r[0] in (b"a", b"c", b"r", b"t", b"y", b"d"):
            return r[0], mods


def replycode(mods):
    return [m[1] for m in mods if m[0] == b"y"]


def build_zone(wd, slow_port):
    z = ec.Zone(static=("example.",))
    z.spf("sample.example")
    z.dmarc("reject.example", "v=DMARC1; p=reject")
    text = z.text().replace(
        "\tlocal-zone: \"example.\" static",
        "\tlocal-zone: \"example.\" static\n"
        "\tlocal-zone: \"slow.example.\" transparent")
    text += ("\nforward-zone:\n\tname: \"slow.example.\"\n"
             "\tforward-addr: 127.0.0.1@%d\n" % slow_port)
    return wd.file("unbound.conf", text)


def is_550(final, mods):
    return final == b"y" and any(r.startswith(b"550 5.7.1")
                                 for r in replycode(mods))


def case_framing(tap, m):
    for mode, what in (("bytes", "one byte per write"),
                       ("one", "every command in one write")):
        c = MtaConn(m.sock_path)
        steps = message(qid=b"FRAME" + mode.encode())
        got, final, mods = run_message(c, steps, mode)
        want = sum(n for _, n in steps)
        tap.ok(got == [b"O"] + [b"c"] * (want - 1) and is_550(final, mods),
               "%s: %d continues, then 550 5.7.1 at the end" % (what, want),
               ["replies %r, final %r, modifications %r" % (got, final,
                                                            mods)])
        c.close()


def case_big_body(tap, m):
    body = (b"x" * 998 + b"\r\n") * 1049
    c = MtaConn(m.sock_path)
    got, final, mods = run_message(c, message(body=body, qid=b"BIG"))
    ins = [r for r in mods if r[0] == b"i"]
    tap.ok(is_550(final, mods) and len(ins) == 1 and
           got == [b"O"] + [b"c"] * (8 + 17),
           "a %d-byte body in 64 KB chunks: every chunk answered, A-R "
           "inserted, 550" % len(body),
           ["%d replies, final %r, modifications %r" % (len(got), final,
                                                        mods[:4])])
    c.close()


def rss_kb(pid):
    """Resident set size from /proc/PID/statm (its second field, pages)."""
    try:
        with open("/proc/%d/statm" % pid) as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") \
                // 1024
    except (OSError, ValueError, IndexError):
        return None


def case_thousand(tap, m, pid):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    before = rss_kb(pid)
    conns, bad = [], 0
    try:
        for i in range(1000):
            c = MtaConn(m.sock_path)
            c.send(b"O", struct.pack("!III", 6, 0x31, 0x100))
            conns.append(c)
        for c in conns:
            r = c.recv(10 * SLOW)
            bad += r is None or r[0] != b"O"
        time.sleep(0.2)
        after = rss_kb(pid)
        tap.diag("RSS with 1000 idle connections: %s KB (%s KB before, "
                 "%.1f KB a connection)" % (
                     after, before, ((after or 0) - (before or 0)) / 1000.0))
        tap.ok(bad == 0, "1000 connections open at once, each negotiated",
               ["%d did not negotiate" % bad])
        finals = []
        for k, c in ((1, conns[0]), (1000, conns[-1])):
            steps = message(qid=b"K%d" % k)[1:]
            got, final, mods = run_message(c, steps)
            finals.append(is_550(final, mods))
        tap.ok(all(finals), "with 1000 open: a message on the first and "
               "on the last evaluated (550)", ["%r" % finals])
    finally:
        for c in conns:
            c.close()


def case_disconnect(tap, m):
    c = MtaConn(m.sock_path)
    steps = message(qid=b"CUT1")
    for p, n in steps:
        c.s.sendall(p)
        read_replies(c, n)
    c.close()           # after the header, before the end
    c = MtaConn(m.sock_path)
    data = b"".join(p for p, _ in steps)
    c.s.sendall(data[:len(data) - 3])   # inside the last packet
    time.sleep(0.1)
    c.close()
    c = MtaConn(m.sock_path)
    got, final, mods = run_message(c, message(qid=b"AFTER"))
    tap.ok(is_550(final, mods), "an MTA gone mid-message (after the "
           "header; inside a packet): the next connection is evaluated",
           ["final %r %r" % (final, mods)])
    c.close()


def closed(conn, timeout=5):
    """True once the milter closed it (replies before that are read)."""
    conn.s.settimeout(timeout * SLOW)
    try:
        while conn.s.recv(4096) != b"":
            pass
        return True
    except socket.timeout:
        return False
    except OSError:
        return True


def case_hostile(tap, m):
    cases = [
        ("garbage bytes", b"\x00\x00\x00\x05Zxxxx" + os.urandom(64),
         "unknown command"),
        ("a packet length over the 1 MB limit",
         struct.pack("!I", 0x7fffffff) + b"B", "longer than the limit"),
        ("a packet of length 0", b"\x00\x00\x00\x00", "length 0"),
        ("RCPT before MAIL", pkt(b"O", struct.pack("!III", 6, 0x31, 0x100))
         + pkt(b"C", b"h\x004\x00\x19192.0.2.1\x00")
         + pkt(b"R", b"<b@rcpt.example>\x00"), "out of order"),
        ("a connect cut inside its address",
         pkt(b"O", struct.pack("!III", 6, 0x31, 0x100)) +
         pkt(b"C", b"h\x004\x00\x19" + b"192.0"), "malformed connect"),
    ]
    for name, data, why in cases:
        start = len(m.log_lines())
        bystander = MtaConn(m.sock_path)
        bystander.send(b"O", struct.pack("!III", 6, 0x31, 0x100))
        c = MtaConn(m.sock_path)
        c.s.sendall(data)
        gone = closed(c)
        line = m.wait_log(r"connection \d+ \(unix\): closing the "
                          r"connection: .*" + why, 5 * SLOW, start)
        br = bystander.recv(5 * SLOW)
        steps = message(qid=b"BY")[1:]
        got, final, mods = run_message(bystander, steps)
        tap.ok(gone and line is not None and br is not None and
               is_550(final, mods),
               "%s: connection closed, logged naming the connection and "
               "'%s'; another connection unaffected" % (name, why),
               ["closed %s; log line %r; bystander %r %r" % (
                   gone, line, final, mods)] + m.log_lines()[-5:])
        c.close()
        bystander.close()


def case_maxconn(tap, wd, dnsconf):
    m = mta.Milter(ec.dirs()[1], wd, {"DNSConfig": dnsconf,
                                      "MaxConnections": "3"}, name="max")
    m.start()
    try:
        held = [MtaConn(m.sock_path) for _ in range(3)]
        for c in held:
            c.send(b"O", struct.pack("!III", 6, 0x31, 0x100))
            c.recv(5 * SLOW)
        time.sleep(0.1)
        c4 = MtaConn(m.sock_path)
        c4.send(b"O", struct.pack("!III", 6, 0x31, 0x100))
        neg = c4.recv(5 * SLOW)
        c4.send(b"C", b"h\x004\x00\x19192.0.2.1\x00")
        r = c4.recv(5 * SLOW)
        line = m.wait_log(r"MaxConnections \(3\) reached", 5 * SLOW)
        tap.ok(neg is not None and neg[0] == b"O" and r is not None and
               r[0] == b"t" and line is not None,
               "MaxConnections 3: a fourth connection negotiates, gets a "
               "temporary failure at connect and a log line",
               ["negotiation %r, connect reply %r, log %r" % (neg, r,
                                                              line)])
        for c in held + [c4]:
            c.close()
    finally:
        rc = m.stop(30)
    tap.ok(rc == 0, "MaxConnections milter: exit status 0",
           [mta._tail(m.logfile, 10)])


def case_timeouts(tap, wd, dnsconf):
    """IdleTimeout 2 closes a silent negotiated connection; CommandTimeout
    1 one that sent half a packet."""
    m = mta.Milter(ec.dirs()[1], wd, {"DNSConfig": dnsconf,
                                      "IdleTimeout": "2",
                                      "CommandTimeout": "1"}, name="tmo")
    m.start()
    try:
        idle = MtaConn(m.sock_path)
        idle.send(b"O", struct.pack("!III", 6, 0x31, 0x100))
        idle.recv(5 * SLOW)
        half = MtaConn(m.sock_path)
        half.s.sendall(pkt(b"O", struct.pack("!III", 6, 0x31, 0x100))[:7])
        t0 = time.monotonic()
        half_gone = closed(half, 5)
        t_half = time.monotonic() - t0
        idle_gone = closed(idle, 5)
        t_idle = time.monotonic() - t0
        tap.ok(half_gone and idle_gone and t_half < t_idle and
               m.wait_log(r"closing the connection after \d+ s: a command "
                          r"unfinished", 5) and
               m.wait_log(r"closing the connection after \d+ s: idle", 5),
               "CommandTimeout 1 closes half a packet (%.1f s), IdleTimeout "
               "2 a silent connection (%.1f s), each with a log line" %
               (t_half, t_idle), ["closed %s %s" % (half_gone, idle_gone),
                                  mta._tail(m.logfile, 6)])
        idle.close()
        half.close()
    finally:
        rc = m.stop(30)
    tap.ok(rc == 0, "timeouts milter: exit status 0",
           [mta._tail(m.logfile, 10)])


class Inet6Conn(MtaConn):
    """MtaConn over TCP to [::1]:port."""

    def __init__(self, port):
        self.s = socket.create_connection(("::1", port), timeout=5)


def case_inet6(tap, wd, dnsconf):
    """Socket inet6:PORT@::1: a message over IPv6 TCP, and the log names
    the peer ::1 (here through a bad command after it)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.bind(("::1", 0))
    port = s.getsockname()[1]
    s.close()
    m = mta.Milter(ec.dirs()[1], wd, {"DNSConfig": dnsconf}, name="v6")
    m.options["Socket"] = "inet6:%d@::1" % port
    m.write_conf()
    try:
        # mta.Milter.start() probes unix and IPv4 sockets only
        with open(m.logfile, "ab") as log:
            m.proc = subprocess.Popen(m.command(),
                                      stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=log, start_new_session=True)
        mta._running.append(m)
        up = m.wait_log(r"listening on inet6:", 20 * SLOW)
        c = Inet6Conn(port)
        got, final, mods = run_message(c, message(qid=b"V6"))
        c.s.sendall(pkt(b"R", b"<x@y.example>\x00"))
        line = m.wait_log(r"connection \d+ \(::1\): closing", 5 * SLOW)
        c.close()
        tap.ok(up and is_550(final, mods) and line is not None,
               "Socket inet6:PORT@::1: a message over IPv6 evaluated (550), "
               "log lines name the peer ::1",
               ["listening %r, final %r, log %r" % (up, final, line),
                mta._tail(m.logfile, 6)])
    finally:
        rc = m.stop(30)
    tap.ok(rc == 0, "inet6 milter: exit status 0", [mta._tail(m.logfile,
                                                              10)])


def case_slow_dns(tap, m):
    slow_done = []

    def slow(i):
        c = MtaConn(m.sock_path)
        t0 = time.monotonic()
        run_message(c, message(frm="alice@d%d.slow.example" % i,
                               qid=b"SLOW%d" % i))
        slow_done.append(time.monotonic() - t0)
        c.close()

    threads = [threading.Thread(target=slow, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    c = MtaConn(m.sock_path)
    steps = message(qid=b"FAST")
    lat, ok = [], True
    for p, n in steps:
        c.s.sendall(p)
        read_replies(c, n)
    for i in range(20):
        if i:
            for p, n in steps[3:]:
                c.s.sendall(p)
                read_replies(c, n)
        t0 = time.monotonic()
        c.send(b"E")
        final, mods = final_of_sent(c)
        lat.append(time.monotonic() - t0)
        ok = ok and is_550(final, mods)
    c.close()
    for t in threads:
        t.join(30 * SLOW)
    lat.sort()
    tap.diag("slow DNS: 4 messages waiting %s s; the other connection's "
             "20 ends of message: median %.1f ms, max %.1f ms" % (
                 ", ".join("%.1f" % s for s in sorted(slow_done)),
                 lat[len(lat) // 2] * 1000, lat[-1] * 1000))
    tap.ok(ok and len(slow_done) == 4 and min(slow_done) >= 2.5 and
           lat[-1] < 1.0 * SLOW,
           "while 4 connections wait on DNS (DNSTimeout 3 s), 20 messages "
           "on another are answered (550) in under a second each",
           ["slow %r, fast %r, all 550 %s" % (slow_done, lat, ok)])


def case_stop(tap, m):
    t0 = time.monotonic()
    rc = m.stop(30)
    secs = time.monotonic() - t0
    tap.diag("SIGTERM on an idle milter: exited after %.2f s" % secs)
    tap.ok(rc == 0 and secs < 2 * SLOW and "stopped" in m.log_text(),
           "SIGTERM on an idle milter: exit status 0 within %d s" %
           (2 * SLOW), ["exit status %s after %.2f s" % (rc, secs),
                        mta._tail(m.logfile, 10)])


def main():
    tap = ec.Tap()
    mta.install_signal_cleanup()
    wd = ec.Workdir("dmarc-milter-server.")
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))   # reads nothing, answers nothing
    try:
        dnsconf = build_zone(wd, silent.getsockname()[1])
        m = mta.Milter(ec.dirs()[1], wd, {"DNSConfig": dnsconf,
                                          "DNSTimeout": "3"}, name="srv")
        m.start()
        case_framing(tap, m)
        case_big_body(tap, m)
        case_thousand(tap, m, m.pid())
        case_disconnect(tap, m)
        case_hostile(tap, m)
        case_slow_dns(tap, m)
        case_stop(tap, m)
        case_maxconn(tap, wd, dnsconf)
        case_timeouts(tap, wd, dnsconf)
        case_inet6(tap, wd, dnsconf)
    finally:
        silent.close()
        mta._stop_all()
        wd.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
