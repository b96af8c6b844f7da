#!/usr/bin/env python3
"""tests/integration/milter_negotiate.py - what each connection negotiated
stays that connection's: two MTA connections on one unix socket, the
first (A) offering none of the no-reply steps (SMFIP_NR_*), the second
(B) offering all, and only A offering SMFIP_HDR_LEADSPC. A must still
get a reply for helo, rcpt, data, header, eoh and body after B
negotiated, and B none; the Authentication-Results field inserted at the
end has the leading space A asked for, and B's has none. (With the negotiation kept
per process, B's options made the milter answer A's steps with
SMFIS_NOREPLY; libmilter then sends nothing, and A's MTA waits for a
reply until its timeout; libmilter fakes the no-reply steps for an MTA
that lacks them, so that part held anyway. The leading-space flag, kept
per process too, did not: B's negotiation took A's leading space.)

The MTA side is spoken here byte by byte (the milter protocol, version 6),
since miltertest offers one fixed set of steps per run.

Environment: srcdir, builddir (make check); KEEP_TMP=1.
"""

import os
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evalcorpus as ec  # noqa: E402
import mta  # noqa: E402

SMFIP_NR = {"helo": 0x2000, "rcpt": 0x8000, "data": 0x10000,
            "header": 0x80, "eoh": 0x40000, "body": 0x80000}
ALL_NR = sum(SMFIP_NR.values())
# End of headers keeps its reply: a message not evaluated is accepted there.
TAKEN_NR = ALL_NR & ~SMFIP_NR["eoh"]
SMFIP_HDR_LEADSPC = 0x100000


class MtaConn:
    """One MTA connection to the milter's unix socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(5)
        self.s.connect(path)

    def send(self, cmd, data=b""):
        self.s.sendall(struct.pack("!I", len(data) + 1) + cmd + data)

    def recv(self, timeout=5):
        """One reply (cmd, data), or None if none comes in timeout."""
        self.s.settimeout(timeout)
        try:
            head = self._exact(4)
        except socket.timeout:
            return None
        n = struct.unpack("!I", head)[0]
        body = self._exact(n)
        return body[:1], body[1:]

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                raise EOFError("milter closed the connection")
            out += chunk
        return out

    def optneg(self, protocol):
        # version 6, every action, the offered steps
        self.send(b"O", struct.pack("!III", 6, 0x1ff, protocol))
        cmd, data = self.recv()
        return struct.unpack("!III", data[:12])[2] if cmd == b"O" else None

    def close(self):
        self.s.close()


STEPS = [
    ("connect", b"C", b"client.example\x004\x00\x19192.0.2.1\x00", None),
    ("helo", b"H", b"client.example\x00", "helo"),
    ("mail", b"M", b"<a@sample.example>\x00", None),
    ("rcpt", b"R", b"<b@rcpt.example>\x00", "rcpt"),
    ("data", b"T", b"", "data"),
    ("header", b"L", b"From\x00 alice@nodmarc.example\x00", "header"),
    ("eoh", b"N", b"", "eoh"),
    ("body", b"B", b"Hello.\r\n", "body"),
]


def walk(conn, noreply):
    """Every step up to the body; returns (step, expected, got) for each
    whose reply (or silence) was not what the negotiation said."""
    wrong = []
    for name, cmd, data, nr in STEPS:
        conn.send(cmd, data)
        silent = nr is not None and (noreply & SMFIP_NR[nr]) != 0
        got = conn.recv(0.3 if silent else 5)
        if silent and got is not None:
            wrong.append((name, "no reply", got))
        elif not silent and (got is None or got[0] != b"c"):
            wrong.append((name, "continue", got))
    return wrong


def eom(conn):
    """End of message: the modifications, then the final reply."""
    conn.send(b"E")
    replies = []
    while True:
        r = conn.recv(10)
        if r is None:
            return replies, None
        replies.append(r)
        if r[0] in (b"a", b"c", b"r", b"t", b"y", b"d"):
            return replies, r[0]


def main():
    tap = ec.Tap()
    mta.install_signal_cleanup()
    wd = ec.Workdir("dmarc-milter-negotiate.")
    try:
        z = ec.Zone(static=("example.",))
        z.spf("sample.example")
        m = mta.Milter(ec.dirs()[1], wd, {
            "DNSConfig": z.write(wd.file("unbound.conf"))}, name="neg")
        m.start()
        a = MtaConn(m.sock_path)
        pa = a.optneg(SMFIP_HDR_LEADSPC)
        tap.ok(pa is not None and pa & ALL_NR == 0,
               "A offers no no-reply step and gets none",
               ["A negotiated %r" % pa])
        b = MtaConn(m.sock_path)
        pb = b.optneg(ALL_NR)
        tap.ok(pb is not None and pb & ALL_NR == TAKEN_NR,
               "B offers every no-reply step and the milter takes them "
               "but end of headers (unix socket)", ["B negotiated %r" % pb])
        wa = walk(a, pa or 0)
        tap.ok(not wa, "A, negotiated first, still gets a reply for helo, "
               "rcpt, data, header, eoh and body after B negotiated",
               ["steps answered wrongly: %r" % wa])
        wb = walk(b, pb or 0)
        tap.ok(not wb, "B gets no reply for those steps, one for eoh", [
            "steps answered wrongly: %r" % wb])
        for name, conn, lead in (("A", a, True), ("B", b, False)):
            replies, final = eom(conn)
            ins = [r[1][4:].split(b"\0") for r in replies if r[0] == b"i"]
            tap.ok(final in (b"a", b"c") and len(ins) == 1 and
                   ins[0][0] == b"Authentication-Results" and
                   ins[0][1].startswith(b" ") == lead,
                   "%s: end of message: our Authentication-Results inserted "
                   "%s a leading space (SMFIP_HDR_LEADSPC %s), then accepted"
                   % (name, "with" if lead else "without",
                      "offered" if lead else "not offered"),
                   ["replies %r" % replies])
            conn.send(b"Q")
            conn.close()
        rc = m.stop(30)
        tap.ok(rc == 0, "SIGTERM, exit status 0", [mta._tail(m.logfile, 10)])
    finally:
        mta._stop_all()
        wd.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
