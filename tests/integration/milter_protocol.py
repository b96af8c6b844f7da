#!/usr/bin/env python3
"""tests/integration/milter_protocol.py - dmarc-milter at the milter
protocol level, driven by miltertest (Debian package miltertest, Lua).

Every Lua script is generated here, into the work directory, from a
description of connections and messages; it prints one line per fact
(the reply to each protocol step, the header fields the milter inserted
or added, the result of each mt.eom_check) and this file judges them.
The milter runs as `dmarc-milter -f -c CONF` on a unix socket in the work
directory, with its DNS served from an unbound.conf of local-data
(evalcorpus.Zone) and DKIM keys made here; its one log line per message
(stderr under -f) is checked too.

Covered: reject (550 5.7.1 and the text naming the domain), quarantine by
header, by hold (smfi_quarantine) and both, p=none, an aligned DKIM pass
(relaxed and simple canonicalization, headers folded as an MTA sends them,
the body in odd chunks) and a tampered body, forged Authentication-Results
with our authserv-id deleted by index while a foreign one stays, a second
From field and a second mailbox, the mailing-list step-down, IgnoreHosts
(list, file, default), authenticated clients (ignored, and evaluated with
IgnoreAuthenticatedClients no), temporary DNS errors under each
TemporaryErrorAction, Mode monitor, -n with a bad and a good config, -V,
SIGHUP reloads under traffic (good, unchanged and broken configs), SIGTERM
with a message in flight, and a clean exit of every instance.

Environment: srcdir and builddir (set by make check); DMARC_MILTER
(another binary than $builddir/milter/dmarc-milter); MILTER_WRAPPER (a
command prefix, e.g. "valgrind -q --error-exitcode=9 --leak-check=full
--errors-for-leak-kinds=definite"); MILTERTEST (default: miltertest on
PATH); KEEP_TMP=1 keeps the work directory.
Prints "1..0 # SKIP ..." when miltertest is not installed.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evalcorpus as ec  # noqa: E402
import mta  # noqa: E402

ec.need_dkim()
import dkim  # noqa: E402

MX = "mx.rcpt.example"
GOOD, BAD = ec.GOOD_IP, ec.BAD_IP
SAMPLE = "sample.example"
IGNORED_IP = "10.255.255.255"
WRAPPER = shlex.split(os.environ.get("MILTER_WRAPPER", ""))
# Start-up and replies are much slower under valgrind.
SLOW = 6 if WRAPPER else 1
REPLY_SMFIR = {"c": "continue", "a": "accept", "r": "reject",
               "t": "tempfail", "y": "replycode", "d": "discard"}


def milter_path():
    return os.environ.get("DMARC_MILTER") or \
        os.path.join(ec.dirs()[1], "milter", "dmarc-milter")


def miltertest_path():
    return os.environ.get("MILTERTEST") or shutil.which("miltertest") or \
        ("/usr/bin/miltertest" if os.access("/usr/bin/miltertest", os.X_OK)
         else None)


def package_version():
    """PACKAGE_VERSION from the build's config.h (what -V must print)."""
    try:
        with open(os.path.join(ec.dirs()[1], "config.h")) as f:
            m = re.search(r'#define PACKAGE_VERSION "([^"]*)"', f.read())
        return m.group(1) if m else None
    except OSError:
        return None


def wait_for(cond, timeout):
    """Poll cond() until it is true or timeout seconds pass."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.02)


# ------------------------------------------------------------------- Lua

def lua_str(s):
    """A Lua string literal of any bytes (decimal escapes)."""
    b = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s
    out = []
    for c in b:
        if c in (0x22, 0x5c) or c < 0x20 or c > 0x7e:
            out.append("\\%03d" % c)
        else:
            out.append(chr(c))
    return '"' + "".join(out) + '"'


LUA_PRELUDE = r"""
-- written by tests/integration/milter_protocol.py
io.stdout:setvbuf("line")
local unpack = unpack or table.unpack
mt.set_timeout(%(timeout)d)

local function esc(s)
  return (string.gsub(tostring(s), "[%%c\\]", function(c)
    return string.format("\\x%%02x", string.byte(c)) end))
end

function emit(k, v)
  print(k .. " " .. esc(v))
end

function fail(what, err)
  emit("ERROR", what .. ": " .. tostring(err))
  os.exit(3)
end

function reply(conn)
  local r = mt.getreply(conn)
  if r == nil or r == 0 then return "-" end
  return string.char(r)
end

-- One protocol step; true when the milter answered continue.
function step(conn, name, err)
  if err ~= nil then fail(name, err) end
  local r = reply(conn)
  emit("REPLY " .. name, r)
  return r == "c"
end

function exists(path)
  local f = io.open(path, "r")
  if f == nil then return false end
  f:close()
  return true
end

function waitfile(path)
  for i = 1, 6000 do
    if exists(path) then return end
    mt.sleep(0.01)
  end
  fail("waitfile", path)
end

function touch(path)
  local f = io.open(path, "w")
  f:close()
end

function open(sock, ip, host, helo)
  local conn = mt.connect(sock, 40, 0.05)
  if conn == nil then fail("connect", sock) end
  emit("CONN", ip)
  if not step(conn, "connect", mt.conninfo(conn, host, ip)) then
    return conn, false
  end
  return conn, step(conn, "helo", mt.helo(conn, helo))
end

-- m: qid, from, macros, headers {{name, value}}, body {chunks}, watch
-- {header names}, checks {{name, function}}, pause_after_eoh, go
function message(conn, m)
  emit("MSG", m.qid)
  -- macros get no reply of their own
  local err = mt.macro(conn, SMFIC_MAIL, unpack(m.macros))
  if err ~= nil then fail("macro", err) end
  if not step(conn, "mail", mt.mailfrom(conn, m.from)) then
    emit("END", m.qid)
    return
  end
  for i, h in ipairs(m.headers) do
    if not step(conn, "header", mt.header(conn, h[1], h[2])) then
      emit("END", m.qid)
      return
    end
  end
  if not step(conn, "eoh", mt.eoh(conn)) then
    emit("END", m.qid)
    return
  end
  if m.pause ~= nil then
    touch(m.pause)
    waitfile(m.go)
  end
  for i, c in ipairs(m.body) do
    if not step(conn, "body", mt.bodystring(conn, c)) then
      emit("END", m.qid)
      return
    end
  end
  err = mt.eom(conn)
  if err ~= nil then fail("eom", err) end
  emit("EOM", reply(conn))
  for i, name in ipairs(m.watch) do
    for n = 0, 9 do
      local v = mt.getheader(conn, name, n)
      if v == nil then break end
      emit("HDR " .. name, v)
    end
  end
  for i, c in ipairs(m.checks) do
    emit("CHECK " .. c[1], c[2](conn))
  end
  emit("END", m.qid)
end
"""


class Msg:
    """One message: a raw RFC 5322 message (CRLF) split into the header
    fields and body chunks an MTA would send, plus the envelope."""

    def __init__(self, qid, raw, mail_from="<bounce@%s>" % SAMPLE,
                 auth=None, chunk=None, lf_folding=True,
                 watch=("Authentication-Results", "X-DMARC-Quarantine"),
                 checks=(), pause=None, go=None):
        self.qid = qid
        self.raw = raw
        self.mail_from = mail_from
        self.auth = auth
        self.watch = watch
        self.checks = list(checks)
        self.pause, self.go = pause, go
        head, _, body = raw.partition(b"\r\n\r\n")
        self.headers = []
        for line in head.split(b"\r\n"):
            if line[:1] in (b" ", b"\t") and self.headers:
                # Folding as an MTA hands it over: bare LF.
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + (b"\n" if lf_folding
                                            else b"\r\n") + line)
            else:
                n, _, v = line.partition(b":")
                # miltertest's values are an MTA's without
                # SMFIP_HDR_LEADSPC: it puts the one leading space back
                # itself when the milter negotiates it (as ours does).
                if v[:1] == b" ":
                    v = v[1:]
                self.headers.append((n, v))
        size = chunk or 65535
        self.body = [body[i:i + size] for i in range(0, len(body), size)]

    def lua(self):
        macros = ['"i"', lua_str(self.qid)]
        if self.auth:
            macros += ['"{auth_authen}"', lua_str(self.auth)]
        hdrs = ", ".join("{%s, %s}" % (lua_str(n), lua_str(v))
                         for n, v in self.headers)
        body = ", ".join(lua_str(c) for c in self.body)
        checks = ", ".join('{%s, function(c) return %s end}' %
                           (lua_str(n), code) for n, code in self.checks)
        pause = ""
        if self.pause:
            pause = ", pause = %s, go = %s" % (lua_str(self.pause),
                                                lua_str(self.go))
        return ("message(conn, {qid = %s, from = %s, macros = {%s}, "
                "headers = {%s}, body = {%s}, watch = {%s}, "
                "checks = {%s}%s})" % (
                    lua_str(self.qid), lua_str(self.mail_from),
                    ", ".join(macros), hdrs, body,
                    ", ".join(lua_str(w) for w in self.watch), checks,
                    pause))


class Conn:
    def __init__(self, msgs, ip=BAD, host="mx.sample.example",
                 helo="mx.sample.example"):
        self.msgs, self.ip, self.host, self.helo = msgs, ip, host, helo

    def lua(self, sock):
        out = ["do",
               "  local conn, ok = open(%s, %s, %s, %s)" % (
                   lua_str("unix:" + sock), lua_str(self.ip),
                   lua_str(self.host), lua_str(self.helo)),
               "  if ok then"]
        out += ["    " + m.lua() for m in self.msgs]
        out += ["  end", "  mt.disconnect(conn)", "end"]
        return "\n".join(out)


def lua_script(sock, conns):
    return LUA_PRELUDE % {"timeout": 20 * SLOW} + "\n" + \
        "\n".join(c.lua(sock) for c in conns) + "\n"


def unescape(s):
    return re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)),
                  s)


class Outcome:
    """What one miltertest run printed, per connection and message."""

    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err
        self.conns = []     # [{"ip":..., "replies": {step: r}}]
        self.msgs = {}      # qid -> {"replies", "eom", "hdr", "checks"}
        self.errors = []
        cur = None
        for line in out.splitlines():
            key, _, val = line.partition(" ")
            if key == "REPLY":
                step, _, r = val.partition(" ")
                target = cur if cur is not None else \
                    (self.conns[-1] if self.conns else {"replies": {}})
                target["replies"].setdefault(step, []).append(r)
            elif key == "CONN":
                self.conns.append({"ip": val, "replies": {}})
                cur = None
            elif key == "MSG":
                cur = self.msgs[val] = {"replies": {}, "eom": None,
                                        "hdr": {}, "checks": {},
                                        "end": False}
            elif key == "EOM" and cur is not None:
                cur["eom"] = val
            elif key == "HDR" and cur is not None:
                name, _, v = val.partition(" ")
                cur["hdr"].setdefault(name, []).append(unescape(v))
            elif key == "CHECK" and cur is not None:
                name, _, v = val.partition(" ")
                cur["checks"][name] = v == "true"
            elif key == "END" and cur is not None:
                cur["end"] = True
                cur = None
            elif key == "ERROR":
                self.errors.append(unescape(val))

    def describe(self):
        return ["miltertest exit status %s" % self.rc,
                "stdout: " + (self.out.strip()[-3000:] or "(empty)"),
                "stderr: " + (self.err.strip()[-1500:] or "(empty)")]


def run_lua(path, text, timeout=60):
    with open(path, "w") as f:
        f.write(text)
    try:
        r = subprocess.run([miltertest_path(), "-s", path],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout * SLOW)
        return Outcome(r.returncode, r.stdout.decode(errors="replace"),
                       r.stderr.decode(errors="replace"))
    except subprocess.TimeoutExpired as e:
        return Outcome("timeout", (e.stdout or b"").decode(errors="replace"),
                       (e.stderr or b"").decode(errors="replace"))


# ---------------------------------------------------------------- milter

def parse_log(line):
    """The per-message line ("QID: ip=... action=... reasons=...") as a
    dict; reasons= is the rest of the line."""
    m = re.match(r"^dmarc-milter: (\S+): (ip=.*)$", line)
    if not m:
        return None
    head, _, reasons = m.group(2).partition(" reasons=")
    d = dict(re.findall(r"(\w+)=(\S*)", head))
    d["qid"] = m.group(1)
    d["reasons"] = reasons
    return d


class Milter:
    """One dmarc-milter process with its own directory, config and log."""

    def __init__(self, wd, name, dnsconf, opts=None):
        self.name = name
        self.dir = os.path.join(wd.path, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "sock")
        self.pidfile = os.path.join(self.dir, "pid")
        self.conf = os.path.join(self.dir, "dmarc-milter.conf")
        self.dnsconf = dnsconf
        self.proc = None
        self.lines = []         # (monotonic time, text)
        self.cond = threading.Condition()
        self.nlua = 0
        self.write_conf(opts or {})

    def conf_text(self, opts):
        base = {"Socket": "unix:" + self.sock, "PidFile": self.pidfile,
                "AuthservID": MX, "DNSConfig": self.dnsconf,
                "IgnoreHosts": IGNORED_IP,
                "StateDir": os.path.join(os.path.dirname(self.pidfile),
                                         "state")}
        base.update(opts)
        return "".join("%s %s\n" % (k, v) for k, v in base.items()
                       if v is not None)

    def write_conf(self, opts, raw=None):
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write(raw if raw is not None else self.conf_text(opts))
        os.replace(tmp, self.conf)

    def _reader(self):
        # Also to a file, for KEEP_TMP=1 (valgrind reports are long).
        with open(os.path.join(self.dir, "milter.log"), "ab") as keep:
            for raw in self.proc.stderr:
                keep.write(raw)
                with self.cond:
                    self.lines.append((time.monotonic(), raw.decode(
                        errors="replace").rstrip("\n")))
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def start(self):
        """True once the milter listens; else False (see log())."""
        argv = mta.valgrind_wrapper() + [milter_path(), "-f", "-c",
                                         self.conf]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()
        return self.wait_log(lambda l: "listening on" in l, 20 * SLOW) \
            is not None and os.path.exists(self.sock)

    def wait_log(self, pred, timeout, since=0):
        """Index of the first log line from `since` on that matches."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(since, len(self.lines)):
                    if pred(self.lines[i][1]):
                        return i
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and
                                 not self.thread.is_alive()):
                    return None
                self.cond.wait(min(left, 0.2))

    def count(self, pred):
        with self.cond:
            return sum(1 for _, l in self.lines if pred(l))

    def text(self):
        with self.cond:
            return [l for _, l in self.lines]

    def msg_log(self, qid, timeout=5):
        """The per-message line of qid, as a dict (None when absent)."""
        i = self.wait_log(lambda l: l.startswith("dmarc-milter: %s: ip=" %
                                                 qid), timeout * SLOW)
        if i is None:
            return None
        return parse_log(self.lines[i][1])

    def log_tail(self, n=30):
        return ["milter log (%s):" % self.name] + self.text()[-n:]

    def run(self, conns, timeout=60):
        self.nlua += 1
        path = os.path.join(self.dir, "t%02d.lua" % self.nlua)
        return run_lua(path, lua_script(self.sock, conns), timeout)

    def stop(self, timeout=10):
        """SIGTERM by PID, SIGKILL after timeout. (status, seconds)."""
        if self.proc is None:
            return "never started", 0
        if self.proc.poll() is not None:
            return "had exited with %s" % self.proc.returncode, 0
        t0 = time.monotonic()
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            rc = "killed after %d s" % (timeout * SLOW)
        self.thread.join(5)
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# ------------------------------------------------------------------ zone

def build_zone(key):
    z = ec.Zone(static=("example.",))
    z.comment("the envelope domain of spoofed mail: no DMARC record")
    z.spf(SAMPLE)
    z.a("mx." + SAMPLE)
    for d, rec in (("reject.example", "v=DMARC1; p=reject"),
                   ("quarantine.example", "v=DMARC1; p=quarantine"),
                   ("none.example", "v=DMARC1; p=none")):
        z.dmarc(d, rec)
        z.spf(d)
        z.key("s1", d, key)
    z.comment("SPF temperror on an aligned domain of p=reject")
    z.spf("spftemp.reject.example",
          "v=spf1 include:spf.refused.example -all")
    z.refuse("refused.example")
    z.comment("issue 12: an attacker's domain whose _dmarc lookup fails")
    z.spf("evil2.example")
    z.refuse("_dmarc.evil2.example")
    z.comment("the DMARC lookup itself fails (REFUSED, like SERVFAIL)")
    z.spf("tempdmarc.example")
    z.refuse("_dmarc.tempdmarc.example")
    return z


def message(frm, subject="Quarterly figures", extra=(), body=None,
            froms=None):
    hdrs = [("From", f) for f in (froms or [frm])]
    hdrs += [("To", "bob@" + MX), ("Subject", subject),
             ("Date", "Tue, 14 Apr 2026 10:00:00 +0000"),
             ("Message-ID", "<%08x.%s@sender.example>" %
              (zlib.crc32(repr((subject, froms or [frm])).encode()),
               subject.split()[0].lower()))]
    hdrs += list(extra)
    return ec.build_message(hdrs, body or
                            b"Hello Bob,\r\n\r\nthe figures.\r\n\r\n"
                            b"-- \r\nAlice\r\n")


# ---------------------------------------------------------------- checks

class Results:
    """TAP lines collected by one group (groups run in parallel; their
    lines are printed in a fixed order)."""

    def __init__(self, title):
        self.title = title
        self.items = []

    def ok(self, cond, name, diag=()):
        self.items.append((bool(cond), "%s: %s" % (self.title, name),
                           list(diag)))
        return cond


def flat(v):
    return re.sub(r"\s+", " ", v or "")


def check_msg(res, milter, out, qid, name, eom=None, reply=None, ar=(),
              log=None, checks=None, quarantine=None, mail=None):
    """One TAP line for one message: every expectation given is checked
    and every difference listed."""
    diag = []
    m = out.msgs.get(qid)
    if out.rc != 0 or out.errors:
        diag.append("miltertest failed: %s" % "; ".join(out.errors))
    if m is None:
        diag.append("no output for message %s" % qid)
        res.ok(False, name, diag + out.describe() + milter.log_tail())
        return False
    if not m["end"]:
        diag.append("message %s did not finish" % qid)
    if mail is not None and m["replies"].get("mail") != [mail]:
        diag.append("reply to MAIL: got %s expected %s" %
                    (m["replies"].get("mail"), mail))
    if eom is not None and m["eom"] != eom:
        diag.append("reply at end of message: got %s (%s) expected %s (%s)"
                    % (m["eom"], REPLY_SMFIR.get(m["eom"]), eom,
                       REPLY_SMFIR.get(eom)))
    for cname, want in (checks or {}).items():
        got = m["checks"].get(cname)
        if got is not want:
            diag.append("eom_check %s: got %s expected %s" %
                        (cname, got, want))
    if reply is not None and m["checks"].get("reply") is not True:
        diag.append("SMTP reply is not %r" % (reply,))
    ars = m["hdr"].get("Authentication-Results", [])
    if ar:
        if len(ars) != 1:
            diag.append("got %d Authentication-Results fields, expected 1:"
                        " %r" % (len(ars), ars))
        v = flat(ars[0]) if ars else ""
        for rx in ar:
            if not re.search(rx, v):
                diag.append("A-R %r does not match /%s/" % (v, rx))
    qh = m["hdr"].get(quarantine[0], []) if quarantine else None
    if quarantine is not None:
        want = quarantine[1]
        got = [x.strip() for x in qh]
        if want is None and got:
            diag.append("%s added, expected none: %r" % (quarantine[0], got))
        elif want is not None and got != [want]:
            diag.append("%s: got %r expected [%r]" % (quarantine[0], got,
                                                      want))
    if log is not None:
        got = milter.msg_log(qid)
        if got is None:
            diag.append("no log line for %s" % qid)
        else:
            for k, v in log.items():
                g = got.get(k)
                if g is None or not re.fullmatch(v, g):
                    diag.append("log %s=%r, expected /%s/" % (k, g, v))
    if diag:
        diag += out.describe() + milter.log_tail(12)
    return res.ok(not diag, name, diag)


def c_delete(idx):
    return ("del%d" % idx, 'mt.eom_check(c, MT_HDRDELETE, '
            '"Authentication-Results", %d)' % idx)


def check_skipped(res, milter, out, ip, qid, reason, name):
    """A message the milter must not evaluate, with no forged A-R of
    ours: MAIL continued (its header is read: a forged field of our
    authserv-id must go even from mail we do not judge), accepted at the
    end of the header, so its body never crosses the socket; its log line
    says action=accept and the reason; no header edits. (Accept at MAIL
    FROM, as before issue 12, let forged fields through.)"""
    diag = []
    m = out.msgs.get(qid)
    if out.rc != 0 or out.errors:
        diag.append("miltertest failed: %s" % "; ".join(out.errors))
    if m is None:
        diag.append("no output for message %s" % qid)
    else:
        if m["replies"].get("mail") != ["c"] or \
                m["replies"].get("eoh") != ["a"]:
            diag.append("replies %r: expected continue at MAIL, accept at "
                        "the end of the header" % m["replies"])
        if m["eom"] is not None or m["hdr"] or "body" in m["replies"]:
            diag.append("got to the body or the end of the message: %r"
                        % m)
        log = milter.msg_log(qid)
        if log is None:
            diag.append("no log line for %s" % qid)
        elif log.get("action") != "accept" or reason not in \
                log.get("reasons", "") or "dmarc" in log or \
                log.get("ip") != ip:
            diag.append("log line %r: expected ip=%s action=accept, "
                        "reasons naming %s, no dmarc result" %
                        (log, ip, reason))
    if diag:
        diag += out.describe() + milter.log_tail(12)
    return res.ok(not diag, "%s: accepted at the end of the header "
                  "without evaluation" % name, diag)


def check_skipped_forged(res, milter, out, qid, name):
    """A message not evaluated that carries forged A-R fields of our
    authserv-id (the 2nd and 3rd A-R): they are deleted at the end of the
    message and nothing of ours is added; another's A-R stays."""
    want = {"del1": False, "del2": True, "del3": True, "del4": False,
            "ins": False, "add": False}
    return check_msg(res, milter, out, qid, name, eom="a", checks=want)


C_SKIP_FORGED = [c_delete(1), c_delete(2), c_delete(3), c_delete(4),
                 ("ins", "mt.eom_check(c, MT_HDRINSERT)"),
                 ("add", "mt.eom_check(c, MT_HDRADD)")]


def c_reply(code, xcode, text):
    return ("reply", "mt.eom_check(c, MT_SMTPREPLY, %s, %s, %s)" %
            (lua_str(code), lua_str(xcode), lua_str(text)))


C_AR_TOP = ("ar_top", 'mt.eom_check(c, MT_HDRINSERT, '
            '"Authentication-Results", '
            'mt.getheader(c, "Authentication-Results", 0), 0)')
C_QUAR = ("quarantine", "mt.eom_check(c, MT_QUARANTINE)")
C_CHANGE = ("change", "mt.eom_check(c, MT_HDRCHANGE)")




def reject_text(domain):
    return "Message rejected by the DMARC policy of " + domain


def temp_text(domain):
    return "DMARC policy of %s could not be checked, try again later" % \
        domain


def stop_check(res, milter):
    rc, secs = milter.stop(10)
    stopped = milter.count(lambda l: l == "dmarc-milter: stopped")
    res.ok(rc == 0 and secs < 10 * SLOW and stopped and
           not os.path.exists(milter.sock),
           "SIGTERM: exit status 0 within %d s, \"stopped\" logged, socket "
           "removed" % (10 * SLOW),
           ["exit status %s after %.1f s; stopped logged: %s; socket left: "
            "%s" % (rc, secs, bool(stopped), os.path.exists(milter.sock))] +
           milter.log_tail())


def start_check(res, milter):
    if milter.start():
        return True
    res.ok(False, "starts and listens on %s" % milter.sock,
           milter.log_tail() + ["exit status %s" % milter.proc.poll()])
    return False


# ---------------------------------------------------------------- groups

def group_main(wd, dnsconf, key):
    """Default options: the dispositions, DKIM, forged A-R, From fields,
    mailing lists, IgnoreHosts, authentication, temporary errors."""
    res = Results("default config")
    mt = Milter(wd, "main", dnsconf)
    try:
        if not start_check(res, mt):
            return res
        main_cases(res, mt, key)
        drain_case(res, mt)
    finally:
        mt.kill()
    return res


W_Q = ("X-DMARC-Quarantine", None)


def forged_skip(subject):
    """A message with a foreign A-R, then two of our authserv-id (one in
    another case) claiming pass, for a client we do not evaluate."""
    return message("alice@reject.example", subject, extra=[
        ("Authentication-Results", "other.example; spf=pass "
         "smtp.mailfrom=reject.example"),
        ("Authentication-Results", MX + "; dmarc=pass "
         "header.from=reject.example"),
        ("Authentication-Results", "MX.Rcpt.Example;\r\n\tdkim=pass "
         "header.d=reject.example")])


def main_cases(res, mt, key):
    signed = ec.sign(message("alice@reject.example", "Signed relaxed"),
                     "reject.example", "s1", key)
    simple = ec.sign(message("alice@reject.example", "Signed simple"),
                     "reject.example", "s1", key,
                     canon=(b"simple", b"simple"))
    tampered = ec.sign(message("alice@reject.example", "Signed tampered"),
                       "reject.example", "s1", key) + \
        b"P.S. wire the money.\r\n"
    forged_none = message("alice@none.example", "Forged none", extra=[
        ("Authentication-Results", "other.example; spf=pass "
         "smtp.mailfrom=none.example"),
        ("Authentication-Results", MX + "; dmarc=pass "
         "header.from=none.example"),
        ("Authentication-Results", "MX.Rcpt.Example;\r\n\tdkim=pass "
         "header.d=none.example")])
    forged_reject = message("alice@reject.example", "Forged reject", extra=[
        ("Received-SPF", "pass (" + MX + ": domain of reject.example "
         "designates 198.51.100.66 as permitted sender)"),
        ("Authentication-Results", MX + "; spf=pass "
         "smtp.mailfrom=reject.example; dkim=pass header.d=reject.example;"
         " dmarc=pass header.from=reject.example")])
    conns = [
        Conn([Msg("MREJ", message("alice@reject.example", "Spoof"),
                  checks=[c_reply("550", "5.7.1",
                                  reject_text("reject.example")), C_AR_TOP]),
              Msg("MQUAR", message("alice@quarantine.example", "Spoof"),
                  checks=[C_QUAR]),
              Msg("MNONE", message("alice@none.example", "Spoof"),
                  checks=[C_QUAR, C_AR_TOP])]),
        Conn([Msg("MDKIMR", signed, checks=[C_AR_TOP]),
              Msg("MDKIMS", simple, chunk=5),
              Msg("MDKIMX", tampered,
                  checks=[c_reply("550", "5.7.1",
                                  reject_text("reject.example"))])]),
        Conn([Msg("MFORGED1", forged_none,
                  checks=[c_delete(1), c_delete(2), c_delete(3),
                          c_delete(4),
                          ("change_empty", 'mt.eom_check(c, MT_HDRCHANGE, '
                           '"Authentication-Results", "")')]),
              Msg("MFORGED2", forged_reject,
                  checks=[c_delete(1),
                          c_reply("550", "5.7.1",
                                  reject_text("reject.example"))]),
              Msg("MFORGED3", message("alice@none.example", "Clean"),
                  checks=[C_CHANGE])]),
        Conn([Msg("MFROM2", message(None, "Two fields", froms=[
            "alice@none.example", "mallory@reject.example"]),
                  checks=[c_reply("550", "5.7.1",
                                  reject_text("reject.example"))]),
              Msg("MFROMBOX", message(
                  "alice@none.example, mallory@reject.example", "Two boxes"),
                  checks=[c_reply("550", "5.7.1",
                                  reject_text("reject.example"))]),
              Msg("MLIST", message("alice@reject.example", "List post",
                                   extra=[("List-Id",
                                           "<figures.lists.example>")]),
                  checks=[C_QUAR])]),
        Conn([Msg("MIGN", message("alice@reject.example", "Ignored")),
              Msg("MIGNF", forged_skip("Ignored forged"),
                  checks=C_SKIP_FORGED)],
             ip=IGNORED_IP),
        Conn([Msg("MIGN2", message("alice@reject.example", "Neighbour"),
                  checks=[c_reply("550", "5.7.1",
                                  reject_text("reject.example"))])],
             ip="10.255.255.254"),
        Conn([Msg("MAUTH", message("alice@reject.example", "Submission"),
                  auth="alice"),
              Msg("MAUTHF", forged_skip("Submission forged"), auth="alice",
                  checks=C_SKIP_FORGED),
              Msg("MAUTH2", message("alice@reject.example", "Not authed"),
                  checks=[c_reply("550", "5.7.1",
                                  reject_text("reject.example"))])]),
        Conn([Msg("MTEMPD", message("alice@tempdmarc.example", "Temp"),
                  mail_from="<alice@tempdmarc.example>"),
              Msg("MTEMPS", message("alice@reject.example", "Temp SPF"),
                  mail_from="<bounce@spftemp.reject.example>",
                  checks=[c_reply("451", "4.7.1",
                                  temp_text("reject.example"))])],
             ip=GOOD),
    ]
    out = mt.run(conns)
    spoof_log = {"ip": re.escape(BAD), "spf": "fail", "dkim": "none",
                 "dmarc": "fail"}

    check_msg(res, mt, out, "MREJ", "p=reject failure: 550 5.7.1 naming the "
              "domain, A-R inserted at the top", eom="y",
              reply=True, checks={"ar_top": True},
              ar=[r"^ ?mx\.rcpt\.example; spf=fail smtp\.mailfrom="
                  r"sample\.example;", r"\bdkim=none\b",
                  r"\bdmarc=fail \(p=reject sp=reject dis=reject\) "
                  r"header\.from=reject\.example\b",
                  r"\bpolicy\.dmarc=reject\b"],
              log=dict(spoof_log, **{"from": r"reject\.example",
                                     "policy_domain": r"reject\.example",
                                     "disposition": "reject",
                                     "action": "reject", "reasons": "-"}))
    check_msg(res, mt, out, "MQUAR", "p=quarantine failure, QuarantineAction "
              "header: accept, X-DMARC-Quarantine added, no hold", eom="a",
              checks={"quarantine": False},
              quarantine=("X-DMARC-Quarantine", "yes"),
              ar=[r"\bdmarc=fail \(p=quarantine sp=quarantine "
                  r"dis=quarantine\)"],
              log=dict(spoof_log, disposition="quarantine",
                       action="quarantine"))
    check_msg(res, mt, out, "MNONE", "p=none failure: accept, A-R with "
              "dmarc=fail, nothing else", eom="a",
              checks={"quarantine": False,
                      "ar_top": True}, quarantine=W_Q,
              ar=[r"\bdmarc=fail \(p=none sp=none dis=none\) "
                  r"header\.from=none\.example"],
              log=dict(spoof_log, disposition="none", action="accept"))
    dkim_ar = [r"\bspf=fail smtp\.mailfrom=sample\.example\b",
               r"\bdkim=pass\b[^;]*\bheader\.d=reject\.example\b",
               r"\bdkim=pass\b[^;]*\bheader\.s=s1\b",
               r"\bdmarc=pass \(p=reject sp=reject dis=none\) "
               r"header\.from=reject\.example"]
    check_msg(res, mt, out, "MDKIMR", "aligned DKIM pass (relaxed/relaxed): "
              "accept, A-R with dkim=pass and dmarc=pass", eom="a",
              checks={"ar_top": True}, ar=dkim_ar,
              quarantine=W_Q,
              log={"dkim": r"pass:reject\.example", "dmarc": "pass",
                   "action": "accept", "spf": "fail"})
    check_msg(res, mt, out, "MDKIMS", "aligned DKIM pass (simple/simple, "
              "folded header fields, body in 5-byte chunks): accept, "
              "dkim=pass", eom="a",
              ar=dkim_ar, log={"dkim": r"pass:reject\.example",
                               "dmarc": "pass"})
    check_msg(res, mt, out, "MDKIMX", "signed message with a tampered body: "
              "dkim=fail, 550 5.7.1", eom="y", reply=True,
              ar=[r"\bdkim=fail\b[^;]*header\.d=reject\.example",
                  r"\bdmarc=fail\b"],
              log={"dkim": r"fail:reject\.example", "dmarc": "fail",
                   "action": "reject"})
    check_msg(res, mt, out, "MFORGED1", "forged A-R with our authserv-id "
              "(2nd, 3rd field, any case) deleted by index, the one of "
              "other.example (1st) kept", eom="a",
              checks={"del1": False, "del2": True, "del3": True,
                      "del4": False,
                      "change_empty": True},
              ar=[r"^ ?mx\.rcpt\.example;", r"\bdmarc=fail\b"],
              log={"dmarc": "fail", "action": "accept"})
    check_msg(res, mt, out, "MFORGED2", "forged A-R dmarc=pass and "
              "Received-SPF pass change nothing: deleted, and still 550",
              eom="y", reply=True, checks={"del1": True},
              ar=[r"\bspf=fail\b", r"\bdkim=none\b", r"\bdmarc=fail\b"],
              log={"spf": "fail", "dmarc": "fail", "action": "reject"})
    check_msg(res, mt, out, "MFORGED3", "next message on the connection "
              "without forged fields: no header changed", eom="a",
              checks={"change": False}, ar=[r"\bdmarc=fail\b"])
    check_msg(res, mt, out, "MFROM2", "second From field of a failing "
              "p=reject domain: 550 5.7.1 naming it", eom="y", reply=True,
              ar=[r"\bdmarc=fail\b[^;]*header\.from=reject\.example"],
              log={"from": r"reject\.example", "action": "reject"})
    check_msg(res, mt, out, "MFROMBOX", "second mailbox of a failing "
              "p=reject domain in one From field: 550 5.7.1", eom="y",
              reply=True, log={"from": r"reject\.example",
                               "action": "reject"})
    check_msg(res, mt, out, "MLIST", "p=reject failure with List-Id: "
              "quarantined by header (reason mailing_list)", eom="a",
              checks={"quarantine": False},
              quarantine=("X-DMARC-Quarantine", "yes"),
              log={"disposition": "quarantine", "action": "quarantine",
                   "reasons": r".*mailing_list.*"})
    # The connections above ran in order: MIGN2's log line is the
    # barrier after which a line for the ignored host would be there.
    check_msg(res, mt, out, "MIGN2", "neighbour of an ignored host "
              "(10.255.255.254) is evaluated: 550", eom="y", reply=True,
              log={"ip": r"10\.255\.255\.254"})
    check_skipped(res, mt, out, IGNORED_IP, "MIGN", "IgnoreHosts",
                  "client in IgnoreHosts (10.255.255.255)")
    check_msg(res, mt, out, "MAUTH2", "same connection, next message not "
              "authenticated: evaluated, 550", eom="y", reply=True,
              log={"action": "reject"})
    check_skipped(res, mt, out, BAD, "MAUTH", "IgnoreAuthenticatedClients",
                  "authenticated client ({auth_authen} at MAIL)")
    check_skipped_forged(res, mt, out, "MIGNF", "client in IgnoreHosts, "
                         "forged A-R dmarc=pass of our authserv-id: "
                         "deleted, the foreign one kept, none added")
    check_skipped_forged(res, mt, out, "MAUTHF", "authenticated client, "
                         "forged A-R of our authserv-id: deleted, none "
                         "added")
    check_msg(res, mt, out, "MTEMPD", "DMARC lookup REFUSED, "
              "TemporaryErrorAction auto, policy unknown: accept with "
              "dmarc=temperror", eom="a",
              ar=[r"\bdmarc=temperror\b[^;]*header\.from="
                  r"tempdmarc\.example"],
              log={"dmarc": "temperror", "action": "accept",
                   "spf": "pass"})
    check_msg(res, mt, out, "MTEMPS", "SPF temperror under p=reject, "
              "TemporaryErrorAction auto, policy known: 451 4.7.1",
              eom="y", reply=True, ar=[r"\bspf=temperror\b",
                                       r"\bdmarc=temperror\b"],
              log={"spf": "temperror", "dmarc": "temperror",
                   "action": "tempfail",
                   "policy_domain": r"reject\.example"})


def group_spoof(wd, dnsconf):
    """Issue 12 through the milter: malformed and deceptive From fields,
    trusted A-R read only from its own properties and topmost field,
    and the attacker's failing DNS for an unaligned identifier."""
    res = Results("spoof")
    mt = Milter(wd, "spoof", dnsconf,
                {"TrustedAuthservIDs": "relay.example"})
    try:
        if start_check(res, mt):
            spoof_cases(res, mt)
    finally:
        mt.kill()
    return res


def spoof_cases(res, mt):
    rej = c_reply("550", "5.7.1", reject_text("reject.example"))
    bad_from = c_reply("550", "5.7.1", "From header field is malformed")
    relay_top = ("Authentication-Results", " relay.example; spf=none "
                 "smtp.mailfrom=<>")
    relay_low = ("Authentication-Results", " relay.example; spf=pass "
                 "smtp.mailfrom=ceo@reject.example")
    quoted = ("Authentication-Results", ' relay.example; spf=pass '
              'smtp.mailfrom="ceo@reject.example"@' + SAMPLE)
    table = [
        ("MMAL1", message("CEO <ceo@reject.example> x", "Malformed"),
         "<bounce@%s>" % SAMPLE, rej, "word after the angle address: the "
         "shown domain is evaluated, 550"),
        ("MMAL2", message("CEO <ceo@reject.example> x, a@none.example",
                          "Malformed pass"), "<bounce@none.example>", rej,
         "malformed field beside a passing author: 550, not dmarc=pass"),
        ("MMAL3", message("CEO <ceo@reject.example", "Unclosed"),
         "<bounce@%s>" % SAMPLE, rej, "unclosed angle address: 550"),
        ("MDEC1", message("ceo@reject.example..", "Empty label"),
         "<bounce@%s>" % SAMPLE, bad_from, "empty label in the shown "
         "domain: 550 'From header field is malformed'"),
        ("MDEC2", message("ceo@reject.example\u200e", "LRM"),
         "<bounce@%s>" % SAMPLE, bad_from, "U+200E after the shown domain: "
         "550 'From header field is malformed'"),
        ("MARQ", message("ceo@reject.example", "Quoted", extra=[quoted]),
         "<bounce@%s>" % SAMPLE, rej, "trusted A-R with a quoted local "
         "part: the SPF domain is the real one, 550"),
        ("MARL", message("ceo@reject.example", "Lower A-R", extra=[
            relay_top, relay_low]), "<bounce@%s>" % SAMPLE, rej,
         "topmost trusted A-R unreadable: the lower, forged one is not "
         "read, 550"),
        ("MDNS", message("ceo@reject.example", "Attacker DNS"),
         "<attacker@evil2.example>", rej, "SPF pass for a domain whose "
         "_dmarc is REFUSED: fail and 550, not 451"),
    ]
    conns = [Conn([Msg(q, raw, mail_from=mf, checks=[chk])], ip=GOOD)
             for q, raw, mf, chk, _ in table]
    out = mt.run(conns)
    for q, _, _, _, name in table:
        log = {"action": "reject"}
        if q.startswith("MDEC"):
            log["reasons"] = r"local_policy\((empty label|invisible).*"
        check_msg(res, mt, out, q, name, eom="y", reply=True, log=log)


def group_startfiles(wd, dnsconf):
    """Issue 12 §6: as root, PidFile and StateDir are never opened or
    chowned through a link that UserID could have planted: the milter
    refuses to start, and what the link points to is left as it was."""
    res = Results("start-up files")
    if os.geteuid() != 0:
        res.ok(True, "# SKIP not root: the attack needs root's start-up")
        return res
    base = os.path.join(wd.path, "startfiles")
    os.makedirs(base, exist_ok=True)
    victim = os.path.join(base, "shadow")
    vdir = os.path.join(base, "etc")
    for path, make in ((victim, "file"), (vdir, "dir")):
        if make == "file":
            with open(victim, "w") as f:
                f.write("root:secret\n")
            os.chmod(victim, 0o600)
        else:
            os.makedirs(vdir, mode=0o755, exist_ok=True)

    def state(path):
        st = os.lstat(path)
        body = open(path).read() if os.path.isfile(path) else None
        return (st.st_uid, st.st_gid, st.st_mode, body)

    before = {p: state(p) for p in (victim, vdir)}
    cases = [
        ("PidFile a symbolic link to a root file", "pid-link",
         lambda p: os.symlink(victim, p), "PidFile", "symbolic link"),
        ("PidFile a hard link to a root file", "pid-hard",
         lambda p: os.link(victim, p), "PidFile", "not a file of its own"),
        ("PidFile owned by another user", "pid-other",
         lambda p: (open(p, "w").close(), os.chown(p, 65534, 65534)),
         "PidFile", "owned by uid 65534"),
        ("StateDir a symbolic link to a root directory", "state-link",
         lambda p: os.symlink(vdir, p), "StateDir", "symbolic link"),
    ]
    for name, tag, plant, opt, why in cases:
        mt = Milter(wd, "sf-" + tag, dnsconf)
        path = os.path.join(mt.dir, tag)
        plant(path)
        opts = {"UserID": "nobody"}
        opts[opt] = path
        if opt == "StateDir":
            opts["PidFile"] = None
        mt.write_conf(opts)
        argv = mta.valgrind_wrapper() + [milter_path(), "-f", "-c", mt.conf]
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=30 * SLOW)
            rc, err = r.returncode, r.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            rc, err = None, "still running after %ds" % (30 * SLOW)
            subprocess.run(["pkill", "-f", mt.conf])
        after = {p: state(p) for p in (victim, vdir)}
        res.ok(rc == 1 and why in err and after == before,
               "%s: refused, the target untouched" % name,
               ["exit status %r, stderr %r" % (rc, err[-400:]),
                "before %r after %r" % (before, after)])
    return res


def drain_case(res, mt):
    """SIGTERM while a message is between its header and its body: the
    message still gets its reply, then the milter exits 0."""
    pause = os.path.join(mt.dir, "paused")
    go = os.path.join(mt.dir, "go")
    out_box = {}
    conns = [Conn([Msg("MDRAIN", message("alice@reject.example", "Drain"),
                       pause=pause, go=go,
                       checks=[c_reply("550", "5.7.1",
                                       reject_text("reject.example"))])])]

    def runner():
        out_box["out"] = mt.run(conns)

    t = threading.Thread(target=runner, daemon=True)
    t.start()
    paused = wait_for(lambda: os.path.exists(pause), 20 * SLOW)
    t0 = time.monotonic()
    stopping = None
    if paused:
        os.kill(mt.proc.pid, signal.SIGTERM)
        stopping = mt.wait_log(lambda l: "stopping" in l, 10 * SLOW)
    with open(go, "w"):
        pass
    t.join(30 * SLOW)
    out = out_box.get("out") or Outcome("no result", "", "")
    try:
        rc = mt.proc.wait(10 * SLOW)
    except subprocess.TimeoutExpired:
        rc = "still running"
    secs = time.monotonic() - t0
    if not check_msg(res, mt, out, "MDRAIN", "SIGTERM with a message in "
                     "flight: the message completes (550)", eom="y",
                     reply=True):
        res.items[-1][2].insert(0, "the milter stopped answering the "
                                "connection after SIGTERM (Debian's "
                                "libmilter worker pool stops polling "
                                "sessions once smfi_main is told to stop)")
    stopped = mt.count(lambda l: l == "dmarc-milter: stopped")
    res.ok(paused and stopping is not None and rc == 0 and stopped and
           secs < 10 * SLOW,
           "SIGTERM drains: \"stopping\" logged, exit status 0 within %d s,"
           " \"stopped\" logged" % (10 * SLOW),
           ["message paused: %s; stopping logged: %s; exit status %s after "
            "%.1f s; stopped logged: %s" % (paused, stopping is not None, rc,
                                            secs, bool(stopped))] +
           mt.log_tail())


def group_quarantine(wd, dnsconf):
    """QuarantineAction hold (with IgnoreHosts from a file) and both (with
    a QuarantineHeader of our own)."""
    res = Results("QuarantineAction")
    ignfile = wd.file("ignore-hosts", "# ignored clients\n203.0.113.0/24\n"
                      "2001:db8::/32\n")
    for qa, extra, header in (
            ("hold", {"IgnoreHosts": ignfile}, None),
            ("both", {"QuarantineHeader": "X-Spam-Flag: YES"},
             ("X-Spam-Flag", "YES"))):
        mt = Milter(wd, "q" + qa, dnsconf, dict(QuarantineAction=qa,
                                                **extra))
        try:
            if not start_check(res, mt):
                continue
            watch = ("Authentication-Results", "X-DMARC-Quarantine",
                     "X-Spam-Flag")
            conns = [Conn([Msg("Q" + qa, message("alice@quarantine.example",
                                                 "Spoof"), watch=watch,
                               checks=[C_QUAR,
                                       ("reason", 'mt.eom_check(c, '
                                        'MT_QUARANTINE, "DMARC policy of '
                                        'quarantine.example")')])])]
            if qa == "hold":
                conns.append(Conn([Msg("QIGN", message(
                    "alice@reject.example", "Ignored"))], ip="203.0.113.9"))
                conns.append(Conn([Msg("QIGN2", message(
                    "alice@reject.example", "Not ignored"),
                    checks=[c_reply("550", "5.7.1",
                                    reject_text("reject.example"))])],
                    ip=IGNORED_IP))
            out = mt.run(conns)
            check_msg(res, mt, out, "Q" + qa, "%s: p=quarantine failure: "
                      "accept, held (smfi_quarantine with the domain)%s" %
                      (qa, ", and %s: %s added" % header if header else
                       ", no header added"), eom="a",
                      checks={"quarantine": True,
                              "reason": True},
                      quarantine=header or W_Q,
                      ar=[r"\bdmarc=fail\b[^;]*dis=quarantine"],
                      log={"action": "quarantine"})
            if qa == "hold":
                check_skipped(res, mt, out, "203.0.113.9", "QIGN",
                              "IgnoreHosts", "IgnoreHosts from a file: "
                              "203.0.113.9")
                check_msg(res, mt, out, "QIGN2", "IgnoreHosts from a file "
                          "replaces the list: 10.255.255.255 is evaluated",
                          eom="y", reply=True)
            stop_check(res, mt)
        finally:
            mt.kill()
    return res


def group_options(wd, dnsconf):
    """One instance per option value that changes the outcome."""
    res = Results("options")
    spoof = message("alice@reject.example", "Spoof")
    plans = [
        ("noauth", {"IgnoreAuthenticatedClients": "no", "IgnoreHosts": None},
         [Conn([Msg("NAUTH", spoof, auth="alice",
                    checks=[c_reply("550", "5.7.1",
                                    reject_text("reject.example"))])]),
          Conn([Msg("NLOCAL", spoof)], ip="127.0.0.1"),
          Conn([Msg("NOTHER", spoof,
                    checks=[c_reply("550", "5.7.1",
                                    reject_text("reject.example"))])],
               ip=IGNORED_IP)]),
        ("tempfail", {"TemporaryErrorAction": "tempfail"},
         [Conn([Msg("TTEMPD", message("alice@tempdmarc.example", "Temp"),
                    mail_from="<alice@tempdmarc.example>",
                    checks=[c_reply("451", "4.7.1",
                                    temp_text("tempdmarc.example"))])],
               ip=GOOD)]),
        ("accept", {"TemporaryErrorAction": "accept"},
         [Conn([Msg("ATEMPS",
                    message("alice@reject.example", "Temp SPF"),
                    mail_from="<bounce@spftemp.reject.example>",
                    )], ip=GOOD)]),
        ("monitor", {"Mode": "monitor"},
         [Conn([Msg("MONREJ", spoof, checks=[C_QUAR,
                                             C_AR_TOP]),
                Msg("MONQ", message("alice@quarantine.example", "Spoof"),
                    checks=[C_QUAR]),
                Msg("MONT", message("alice@reject.example", "Temp SPF"),
                    mail_from="<bounce@spftemp.reject.example>",
                    )])]),
    ]
    for name, opts, conns in plans:
        mt = Milter(wd, name, dnsconf, opts)
        try:
            if not start_check(res, mt):
                continue
            out = mt.run(conns)
            if name == "noauth":
                check_msg(res, mt, out, "NAUTH", "IgnoreAuthenticatedClients "
                          "no: an authenticated client is evaluated (550)",
                          mail="c", eom="y", reply=True,
                          log={"action": "reject"})
                check_skipped(res, mt, out, "127.0.0.1", "NLOCAL",
                              "IgnoreHosts", "IgnoreHosts default: "
                              "127.0.0.1")
                check_msg(res, mt, out, "NOTHER", "IgnoreHosts default: "
                          "10.255.255.255 evaluated", eom="y",
                          reply=True)
            elif name == "tempfail":
                check_msg(res, mt, out, "TTEMPD", "TemporaryErrorAction "
                          "tempfail: policy lookup REFUSED -> 451 4.7.1 "
                          "naming the domain", eom="y", reply=True,
                          ar=[r"\bdmarc=temperror\b"],
                          log={"dmarc": "temperror", "action": "tempfail"})
            elif name == "accept":
                check_msg(res, mt, out, "ATEMPS", "TemporaryErrorAction "
                          "accept: SPF temperror under p=reject -> accept "
                          "with dmarc=temperror", eom="a",
                          ar=[r"\bdmarc=temperror\b"],
                          log={"dmarc": "temperror", "action": "accept"})
            elif name == "monitor":
                check_msg(res, mt, out, "MONREJ", "Mode monitor: p=reject "
                          "failure accepted, A-R dmarc=fail at the top",
                          eom="a", checks={"quarantine": False,
                                           "ar_top": True},
                          quarantine=W_Q,
                          ar=[r"\bdmarc=fail \(p=reject\b"],
                          # the string docs/GUIDE.md section 7 greps for
                          log={"dmarc": "fail", "action": "accept",
                               "reasons": r".*" + re.escape(
                                   "local_policy(monitor mode)") + ".*"})
                check_msg(res, mt, out, "MONQ", "Mode monitor: p=quarantine "
                          "failure accepted, neither header nor hold",
                          eom="a", checks={"quarantine": False},
                          quarantine=W_Q, ar=[r"\bdmarc=fail\b"],
                          log={"action": "accept"})
                check_msg(res, mt, out, "MONT", "Mode monitor: temperror "
                          "under p=reject accepted", eom="a",
                          ar=[r"\bdmarc=temperror\b"],
                          log={"dmarc": "temperror", "action": "accept"})
            stop_check(res, mt)
        finally:
            mt.kill()
    return res


def group_cli(wd, dnsconf):
    """-n and -V."""
    res = Results("command line")
    bad = wd.file("cli/bad.conf", "# a comment\nAuthservID %s\n"
                  "Mode enforcing\nDNSConfig %s\n" % (MX, dnsconf))
    good = wd.file("cli/good.conf", "AuthservID %s\nDNSConfig %s\n"
                   "Socket unix:%s\n" % (MX, dnsconf,
                                         wd.file("cli/never.sock")))
    unknown = wd.file("cli/unknown.conf", "AuthservID %s\n\n"
                      "NoSuchOption yes\n" % MX)
    argv0 = mta.valgrind_wrapper() + [milter_path()]

    def run(*args):
        r = subprocess.run(argv0 + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30 * SLOW)
        return r.returncode, r.stdout.decode(errors="replace"), \
            r.stderr.decode(errors="replace")

    for path, line, what in ((bad, 3, "Mode"),
                             (unknown, 3, "NoSuchOption")):
        rc, out, err = run("-n", "-c", path)
        # exactly 1: a sanitizer's abort or valgrind's 9 is no refusal
        res.ok(rc == 1 and "%s:%d:" % (path, line) in err and
               what in err,
               "-n with a bad config (%s on line %d): exit status 1,"
               " error names %s:%d and the option" % (what, line,
                                                       os.path.basename(path),
                                                       line),
               ["exit status %s" % rc, "stderr: " + err.strip(),
                "stdout: " + out.strip()])
    rc, out, err = run("-n", "-c", good)
    res.ok(rc == 0 and not os.path.exists(wd.file("cli/never.sock")),
           "-n with a good config: exit status 0, nothing opened",
           ["exit status %s" % rc, "stderr: " + err.strip(),
            "stdout: " + out.strip()])
    rc, out, err = run("-V")
    ver = package_version()
    res.ok(rc == 0 and ver is not None and
           re.search(r"^dmarc-milter %s$" % re.escape(ver), out, re.M) and
           re.search(r"\bmilter protocol 2 to 6\b", out),
           "-V prints the version (%s) and the milter protocol versions"
           % ver,
           ["exit status %s" % rc, "stdout: " + out.strip(),
            "stderr: " + err.strip()])
    rc, out, err = run("-x")
    res.ok(rc == 2 and "usage" in err, "an unknown flag: usage, exit 2",
           ["exit status %s" % rc, "stderr: " + err.strip()])
    return res


# ---------------------------------------------------------------- reload

RELOAD_LUA = r"""
-- traffic for the reload test: stream %(stream)s
local n = 0
while n < %(min)d or (not exists(%(stop)s) and n < %(max)d) do
  local conn, ok = open(%(sock)s, %(ip)s, "mx.sample.example",
                        "mx.sample.example")
  if not ok then fail("open", "connection refused at connect/helo") end
  for k = 1, 3 do
    n = n + 1
    local qid = string.format("R%(stream)s%%05d", n)
    message(conn, {qid = qid, from = "<bounce@sample.example>",
      macros = {"i", qid},
      headers = {{"From", " alice@reject.example"},
                 {"To", " bob@mx.rcpt.example"},
                 {"Subject", " reload " .. qid}},
      body = {"Hello.\r\n"}, watch = {"Authentication-Results"},
      checks = {}})
  end
  mt.disconnect(conn)
end
"""

# The ten SIGHUPs: a new AuthservID (visible), the same file again, or a
# broken file.
RELOAD_PLAN = ["gen1", "same", "gen2", "broken", "same", "gen3", "same",
               "gen4", "same", "gen5"]


def group_reload(wd, dnsconf):
    res = Results("reload")
    mt = Milter(wd, "reload", dnsconf)
    procs = []
    try:
        if not start_check(res, mt):
            return res
        reload_run(res, mt, procs)
        stop_check(res, mt)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        mt.kill()
    return res


def reload_run(res, mt, procs):
    stop = os.path.join(mt.dir, "stop-traffic")
    streams = {}
    lock = threading.Lock()
    per_stream = 150

    def reader(name, proc):
        for raw in proc.stdout:
            with lock:
                streams[name].append(raw.decode(errors="replace")
                                     .rstrip("\n"))

    readers = []
    for s in ("A", "B"):
        path = os.path.join(mt.dir, "traffic%s.lua" % s)
        with open(path, "w") as f:
            f.write(LUA_PRELUDE % {"timeout": 20 * SLOW} + RELOAD_LUA % {
                "stream": s, "min": per_stream, "max": per_stream * 20,
                "stop": lua_str(stop), "sock": lua_str("unix:" + mt.sock),
                "ip": lua_str(BAD)})
        streams[s] = []
        p = subprocess.Popen([miltertest_path(), "-s", path],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(p)
        t = threading.Thread(target=reader, args=(s, p), daemon=True)
        t.start()
        readers.append(t)

    def ends():
        with lock:
            return {s: sum(1 for l in v if l.startswith("END "))
                    for s, v in streams.items()}

    def progress(base, n):
        """Each stream finished n more messages than in base (or ended)."""
        e = ends()
        return all(e[s] >= base[s] + n or procs[i].poll() is not None
                   for i, s in enumerate(sorted(streams)))

    pid0 = mt.proc.pid
    wait_for(lambda: progress({"A": 0, "B": 0}, 5), 20 * SLOW)
    gen = MX
    marks = []      # (kind, log index, authserv-id in force after it)
    sent = 0
    for kind in RELOAD_PLAN:
        if kind == "broken":
            mt.write_conf(None, raw=mt.conf_text({"AuthservID": gen}) +
                          "Mode enforcing\n")
        else:
            if kind != "same":
                gen = "%s.rcpt.example" % kind
            mt.write_conf({"AuthservID": gen})
        before = len(mt.text())
        base = ends()
        os.kill(mt.proc.pid, signal.SIGHUP)
        sent += 1
        idx = mt.wait_log(lambda l: "reload:" in l or "reload refused" in l,
                          10 * SLOW, since=before)
        marks.append((kind, idx, gen))
        # Let every stream finish a few messages under this config.
        wait_for(lambda: progress(base, 4), 20 * SLOW)
    base = ends()
    wait_for(lambda: progress(base, 10), 20 * SLOW)
    with open(stop, "w"):
        pass
    rcs = []
    for p in procs:
        try:
            rcs.append(p.wait(60 * SLOW))
        except subprocess.TimeoutExpired:
            p.kill()
            rcs.append("timeout")
    for t in readers:
        t.join(10)
    errs = [p.stderr.read().decode(errors="replace") for p in procs]

    # Every message got a reply at its end, in both streams.
    msgs = {}
    bad = []
    for s in sorted(streams):
        cur = None
        msgs[s] = []
        for line in streams[s]:
            key, _, val = line.partition(" ")
            if key == "MSG":
                cur = {"qid": val, "eom": None, "ar": None}
            elif key == "EOM" and cur:
                cur["eom"] = val
            elif key == "HDR" and cur:
                cur["ar"] = unescape(val.partition(" ")[2])
            elif key == "END" and cur:
                msgs[s].append(cur)
                if cur["eom"] != "y" or cur["ar"] is None:
                    bad.append(cur)
                cur = None
            elif key == "ERROR":
                bad.append({"error": unescape(val)})
    total = sum(len(v) for v in msgs.values())
    res.ok(rcs == [0, 0] and not bad and total >= 2 * per_stream,
           "%d messages in 2 concurrent streams over %d SIGHUPs: every one "
           "got its reply (550) and an A-R, no miltertest error" %
           (total, sent),
           ["miltertest exit statuses %r" % rcs,
            "bad messages: %r" % bad[:5]] +
           ["stream stderr: " + e.strip()[-800:] for e in errs if e.strip()]
           + mt.log_tail())
    alive = mt.proc.poll() is None and mt.proc.pid == pid0
    try:
        with open(mt.pidfile) as f:
            pidfile = int(f.read().strip())
    except (OSError, ValueError):
        pidfile = None
    res.ok(alive and pidfile == pid0,
           "the milter is the same process after %d SIGHUPs (PidFile %s)" %
           (sent, pidfile), ["running: %s, started as %d, PidFile %s" %
                             (mt.proc.poll() is None, pid0, pidfile)] +
           mt.log_tail())
    good = mt.count(lambda l: "reload: " in l and "new settings in use" in l)
    refused = [l for l in mt.text() if "reload refused" in l]
    res.ok(good == len(RELOAD_PLAN) - RELOAD_PLAN.count("broken") and
           len(refused) == 1 and "Mode" in refused[0] and
           all(i is not None for _, i, _ in marks),
           "log: %d reloads in use, one \"reload refused\" naming the broken "
           "option" % (len(RELOAD_PLAN) - 1),
           ["reloads logged: %d, refused: %r" % (good, refused),
            "marks: %r" % marks] + mt.log_tail())
    reload_order_checks(res, mt, msgs, marks)


def reload_order_checks(res, mt, msgs, marks):
    """Which authserv-id each message must carry, from the order of the
    milter's own log: a message whose predecessor on its stream was
    logged after a reload line began after that reload (its MAIL FROM
    came after the predecessor's end), and a message logged before a
    reload line was pinned before it."""
    gens = [MX] + ["gen%d.rcpt.example" % i for i in range(1, 6)]
    log = mt.text()
    where = {}
    for i, l in enumerate(log):
        m = re.match(r"^dmarc-milter: (R[AB]\d+): ip=", l)
        if m:
            where[m.group(1)] = i
    diag_mono, diag_last, diag_refused = [], [], []
    last_ok = [i for k, i, _ in marks if k != "broken" and i is not None]
    last_ok = last_ok[-1] if last_ok else None
    ref = [(i, g) for k, i, g in marks if k == "broken" and i is not None]
    ref_next = None
    if ref:
        later = [i for k, i, _ in marks
                 if k != "broken" and i is not None and i > ref[0][0]]
        ref_next = later[0] if later else None
    after_last = 0
    in_refused = 0
    for s, lst in msgs.items():
        prev_rank = 0
        for n, m in enumerate(lst):
            sid = (m["ar"] or "").strip().split(";")[0].strip()
            rank = gens.index(sid) if sid in gens else -1
            if rank < prev_rank:
                diag_mono.append("%s carries %s after a message with %s" %
                                 (m["qid"], sid, gens[prev_rank]))
            prev_rank = max(prev_rank, rank)
            pred = where.get(lst[n - 1]["qid"]) if n > 0 else None
            mine = where.get(m["qid"])
            if pred is not None and last_ok is not None and pred > last_ok:
                after_last += 1
                if sid != gens[-1]:
                    diag_last.append("%s began after the last reload but "
                                     "carries %s" % (m["qid"], sid))
            if ref and pred is not None and mine is not None and \
                    pred > ref[0][0] and ref_next is not None and \
                    mine < ref_next:
                in_refused += 1
                if sid != ref[0][1]:
                    diag_refused.append("%s ran under the refused config "
                                        "but carries %s, expected %s" %
                                        (m["qid"], sid, ref[0][1]))
    res.ok(not diag_mono and len(where) == sum(len(v) for v in
                                                 msgs.values()),
           "every message logged once; authserv-ids follow the reloads in "
           "order on each stream", diag_mono[:10] +
           ["log lines for %d of %d messages" %
            (len(where), sum(len(v) for v in msgs.values()))])
    res.ok(after_last > 0 and not diag_last,
           "%d messages begun after the last reload carry its AuthservID "
           "%s" % (after_last, gens[-1]), diag_last[:10] or
           ["no message began after the last reload"])
    res.ok(in_refused > 0 and not diag_refused,
           "%d messages between the refused reload and the next one keep "
           "the running AuthservID" % in_refused, diag_refused[:10] or
           ["no message ran between the refused reload and the next"])


# ------------------------------------------------------------------ main

def fixture_check(tap, zone, key):
    m = ec.sign(message("alice@reject.example", "Fixture"),
                "reject.example", "s1", key, canon=(b"simple", b"simple"))
    try:
        good = dkim.verify(m, dnsfunc=zone.dkimpy_dns)
        err = ""
    except Exception as e:  # noqa: BLE001 - any failure is a finding
        good, err = False, repr(e)
    tap.ok(good, "fixture: dkimpy verifies its own signature against the "
           "test zone", ["dkim.verify failed " + err])


def main():
    tap = ec.Tap()
    if miltertest_path() is None:
        print("1..0 # SKIP miltertest is not installed (Debian package "
              "miltertest)")
        return 0
    if not os.access(milter_path(), os.X_OK):
        tap.bail("dmarc-milter not built: %s" % milter_path())
    wd = ec.Workdir("dmarc-milter-proto.")
    try:
        key = ec.Key.rsa(wd, "rsa")
        zone = build_zone(key)
        dnsconf = zone.write(wd.file("unbound.conf"))
        fixture_check(tap, zone, key)
        groups = [lambda: group_main(wd, dnsconf, key),
                  lambda: group_quarantine(wd, dnsconf),
                  lambda: group_spoof(wd, dnsconf),
                  lambda: group_startfiles(wd, dnsconf),
                  lambda: group_options(wd, dnsconf),
                  lambda: group_cli(wd, dnsconf),
                  lambda: group_reload(wd, dnsconf)]
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            futs = [pool.submit(g) for g in groups]
            for f in futs:
                try:
                    r = f.result()
                except Exception as e:  # noqa: BLE001
                    import traceback
                    tap.ok(False, "harness error", [repr(e),
                                                    traceback.format_exc()])
                    continue
                for cond, name, diag in r.items:
                    tap.ok(cond, name, diag)
    finally:
        wd.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
