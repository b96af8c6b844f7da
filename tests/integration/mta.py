"""tests/integration/mta.py - a private Postfix and a dmarc-milter for the
end-to-end tests, and an SMTP client that sets the client address with
XCLIENT.

PrivatePostfix runs a Postfix instance of its own: config_directory,
queue_directory, data_directory and the delivered mail all live under a
work directory; smtpd listens on 127.0.0.1:<free port> only; no service
is chrooted; Postfix looks nothing up in DNS and relays nothing (every
domain but the test domain goes to the error transport). The master
daemon is started directly (`master -c DIR -d`) as a child of the test,
in its own process group, so it is stopped by its PID (and that group)
and nothing depends on, or touches, /etc/postfix or the system's own
Postfix, running or not. Mail for the test domain (rcpt.example) is
delivered by virtual(8) into one maildir; the Delivered-To field that
virtual(8) prepends tells the recipients apart.

Milter runs $builddir/milter/dmarc-milter -f -c CONF in the foreground
(under $MILTER_WRAPPER, e.g. "valgrind -q --error-exitcode=9", if set),
with its stderr in a log file.

send() talks SMTP through swaks (one session per message);
SmtpSession talks it through smtplib (many messages in one session).
Both send XCLIENT ADDR= HELO= before MAIL, which Postfix allows from
smtpd_authorized_xclient_hosts (127.0.0.0/8 here).

Every server started here is stopped at exit, also when the test fails
or is killed with SIGTERM/SIGINT (see install_signal_cleanup).

Environment: DMARC_MILTER (another binary than
$builddir/milter/dmarc-milter), MILTER_WRAPPER, MTA_START_TIMEOUT
(seconds a server may take to come up; default 30).
"""

import atexit
import errno
import os
import pwd
import re
import shlex
import signal
import smtplib
import socket
import subprocess
import sys
import time

TEST_DOMAIN = "rcpt.example"
MX_NAME = "mx." + TEST_DOMAIN
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin",
             "/usr/local/bin")


class HarnessError(Exception):
    """A server of the harness did not start or stop as it should."""


def start_timeout():
    try:
        return float(os.environ.get("MTA_START_TIMEOUT", "30"))
    except ValueError:
        return 30.0


def which(name):
    """A program on PATH or in the sbin directories (root's PATH may lack
    them under make check)."""
    dirs = os.environ.get("PATH", "").split(os.pathsep) + list(SBIN_DIRS)
    for d in dirs:
        p = os.path.join(d, name)
        if d and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _path(workdir):
    """A work directory given as a path or as an evalcorpus.Workdir."""
    return getattr(workdir, "path", workdir)


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def _tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(%s: %s)" % (path, e.strerror)
    text = data.decode("utf-8", "replace").rstrip("\n").split("\n")
    return "\n".join(text[-lines:]) or "(empty)"


def _open_to_others(path):
    """Postfix daemons run as user postfix and must reach the queue
    under the work directory (mkdtemp makes it 0700): let others search
    every directory from there up to / (only those we own and made
    private; /tmp and / already allow it)."""
    path = os.path.abspath(path)
    while path and path != "/":
        try:
            st = os.stat(path)
        except OSError:
            break
        if not st.st_mode & 0o001 and st.st_uid == os.getuid():
            os.chmod(path, st.st_mode | 0o011)
        path = os.path.dirname(path)


# ------------------------------------------------------------- clean-up

_running = []


def _stop_all():
    for server in list(reversed(_running)):
        try:
            server.stop()
        except Exception as e:  # noqa: BLE001 - best effort at exit
            sys.stderr.write("mta.py: stopping %r: %r\n" % (server, e))


atexit.register(_stop_all)


def install_signal_cleanup():
    """SIGTERM/SIGINT/SIGHUP end the test through SystemExit, so atexit
    stops the servers (a plain signal death would leave them running)."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, handler)


def _wait_pid(proc, timeout):
    """proc.wait with a timeout; the exit code, or None if still alive."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def _terminate(server, timeout):
    """SIGTERM to server.proc, SIGKILL to its process group after timeout.
    Returns (exit status, pid, whether SIGKILL was needed), or (None,
    None, False) when it was not running. The server stays in _running,
    its proc kept, until it is gone: a signal that ends the test during
    the wait still leaves _stop_all a server to stop."""
    proc = server.proc
    if proc is None:
        return None, None, False
    killed = False
    rc = proc.poll()
    if rc is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except OSError:
            pass
        rc = _wait_pid(proc, timeout)
    if rc is None:
        killed = True
        _killpg(proc.pid, signal.SIGKILL)
        rc = _wait_pid(proc, 5)
    server.proc = None
    if server in _running:
        _running.remove(server)
    return rc, proc.pid, killed


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
        return True
    except OSError as e:
        if e.errno != errno.ESRCH:
            raise
        return False


# --------------------------------------------------------------- postfix

class PrivatePostfix:
    """A private Postfix on 127.0.0.1:port. settings: extra main.cf
    parameters (name -> value) that override the defaults below."""

    def __init__(self, workdir, milter_socket=None, port=None, name="postfix",
                 settings=None):
        self.base = os.path.join(_path(workdir), name)
        self.etc = os.path.join(self.base, "etc")
        self.queue = os.path.join(self.base, "spool")
        self.data = os.path.join(self.base, "data")
        self.mailbase = os.path.join(self.base, "mail")
        self.maildir = os.path.join(self.mailbase, "inbox")
        self.logfile = os.path.join(self.base, "maillog")
        self.outfile = os.path.join(self.base, "master.out")
        self.port = port or free_port()
        self.milter_socket = milter_socket
        self.settings = dict(settings or {})
        self.proc = None
        self.master = which("master") or \
            "/usr/lib/postfix/sbin/master"
        self.postfix = which("postfix")

    def __repr__(self):
        return "PrivatePostfix(%s, port %d)" % (self.base, self.port)

    # configuration

    def main_cf(self):
        pw = pwd.getpwnam("postfix")
        daemon_dir = os.path.dirname(self.master)
        p = [
            ("compatibility_level", "3.6"),
            ("queue_directory", self.queue),
            ("data_directory", self.data),
            ("daemon_directory", daemon_dir),
            ("mail_owner", "postfix"),
            ("setgid_group", "postdrop"),
            ("myhostname", MX_NAME),
            ("mydomain", TEST_DOMAIN),
            ("myorigin", "$myhostname"),
            ("mydestination", ""),
            ("inet_interfaces", "127.0.0.1"),
            ("inet_protocols", "ipv4"),
            ("mynetworks", "127.0.0.0/8"),
            # Nothing leaves: no relay, no DNS, no outbound SMTP (bounces
            # to test senders fail at once in the error transport).
            ("relayhost", ""),
            ("relay_domains", ""),
            ("default_transport", "error:outbound mail disabled in tests"),
            ("relay_transport", "error:outbound mail disabled in tests"),
            ("smtp_dns_support_level", "disabled"),
            ("smtpd_peername_lookup", "no"),
            ("smtpd_relay_restrictions",
             "permit_mynetworks, reject_unauth_destination"),
            ("smtpd_authorized_xclient_hosts", "127.0.0.0/8"),
            ("smtpd_error_sleep_time", "0"),
            ("smtpd_soft_error_limit", "1000"),
            ("smtpd_hard_error_limit", "1000"),
            ("in_flow_delay", "0"),
            ("smtpd_milters", self.postfix_milter_spec() or ""),
            ("non_smtpd_milters", ""),
            ("milter_default_action", "tempfail"),
            ("milter_protocol", "6"),
            ("milter_connect_timeout", "10s"),
            ("milter_command_timeout", "30s"),
            ("milter_content_timeout", "60s"),
            # Delivery: one maildir; virtual(8) runs without chroot.
            ("virtual_mailbox_domains", TEST_DOMAIN),
            ("virtual_mailbox_base", self.mailbase),
            ("virtual_mailbox_maps", "static:inbox/"),
            ("virtual_uid_maps", "static:%d" % pw.pw_uid),
            ("virtual_gid_maps", "static:%d" % pw.pw_gid),
            ("virtual_minimum_uid", "1"),
            ("alias_maps", ""),
            ("alias_database", ""),
            ("local_recipient_maps", ""),
            ("biff", "no"),
            ("maillog_file", self.logfile),
            ("maillog_file_prefixes", self.base),
            ("syslog_name", "postfix-test"),
        ]
        out, seen = [], set()
        for k, v in p:
            if k in self.settings:
                v = self.settings[k]
            seen.add(k)
            out.append("%s = %s" % (k, v))
        for k, v in self.settings.items():
            if k not in seen:
                out.append("%s = %s" % (k, v))
        return "# written by tests/integration/mta.py\n" + "\n".join(out) + \
            "\n"

    def master_cf(self):
        # service type private unpriv chroot wakeup maxproc command
        rows = [
            ("127.0.0.1:%d" % self.port, "inet", "n", "-", "n", "-", "-",
             "smtpd"),
            ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
            ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
            ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
            ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
            ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
            ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
            ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
            ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
            ("error", "unix", "-", "-", "n", "-", "-", "error"),
            ("retry", "unix", "-", "-", "n", "-", "-", "error"),
            ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
            ("virtual", "unix", "-", "n", "n", "-", "-", "virtual"),
            ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
            ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
            ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
        ]
        return "# written by tests/integration/mta.py (no chroot)\n" + \
            "".join("%-16s %-10s %-3s %-3s %-3s %-6s %-3s %s\n" % r
                    for r in rows)

    def postfix_milter_spec(self):
        s = self.milter_socket
        if s is None:
            return None
        if hasattr(s, "postfix_spec"):
            return s.postfix_spec
        return str(s)

    def write_config(self):
        pw = pwd.getpwnam("postfix")
        for d in (self.etc, self.queue, self.data, self.mailbase):
            os.makedirs(d, exist_ok=True)
        _open_to_others(self.base)
        os.chmod(self.base, 0o755)
        for d in (self.data, self.mailbase):
            os.chown(d, pw.pw_uid, pw.pw_gid)
        _write(os.path.join(self.etc, "main.cf"), self.main_cf())
        _write(os.path.join(self.etc, "master.cf"), self.master_cf())

    def _env(self):
        env = dict(os.environ)
        env["MAIL_CONFIG"] = self.etc
        env.pop("MAIL_DEBUG", None)
        return env

    # life cycle

    def start(self):
        if os.geteuid() != 0:
            raise HarnessError("a private Postfix needs root (its daemons "
                               "switch to user postfix)")
        if not self.postfix or not os.access(self.master, os.X_OK):
            raise HarnessError("postfix is not installed")
        self.write_config()
        # `postfix check` makes the queue directories with their owners
        # and modes (post-install create-missing); it reads only our
        # main.cf, and as root no alternate_config_directories entry in
        # the system's main.cf is needed.
        r = subprocess.run([self.postfix, "-c", self.etc, "check"],
                           env=self._env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            raise HarnessError("postfix -c %s check failed (%d): %s\n%s" % (
                self.etc, r.returncode, r.stdout.decode(errors="replace"),
                _tail(self.logfile)))
        out = open(self.outfile, "ab")
        try:
            self.proc = subprocess.Popen(
                [self.master, "-c", self.etc, "-d"], env=self._env(),
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True, close_fds=True)
        finally:
            out.close()
        _running.append(self)
        deadline = time.monotonic() + start_timeout()
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError("postfix master exited with %s at "
                                   "start-up:\n%s\n%s" % (
                                       self.proc.returncode,
                                       _tail(self.outfile),
                                       _tail(self.logfile)))
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              timeout=5) as s:
                    s.settimeout(10)
                    banner = s.recv(512)
                    s.sendall(b"QUIT\r\n")
                if banner.startswith(b"220"):
                    return self
                last = banner
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise HarnessError("postfix on port %d did not greet within %.0f s "
                           "(last: %r):\n%s" % (self.port, start_timeout(),
                                                last, _tail(self.logfile)))

    def stop(self, timeout=15):
        """SIGTERM to the master (it stops its children), then SIGKILL
        to its process group if anything is left. Returns the master's
        exit status (None if it was not running)."""
        rc, pid, _ = _terminate(self, timeout)
        if pid is None:
            return None
        # Children that outlived the master (they share its group).
        deadline = time.monotonic() + 5
        while _killpg(pid, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        _killpg(pid, signal.SIGKILL)
        return rc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        return _tail(self.logfile, lines)

    # delivered mail

    def delivered(self):
        """Every delivered message: a list of (path, bytes), oldest
        first."""
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir, sub)
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for n in names:
                p = os.path.join(d, n)
                try:
                    with open(p, "rb") as f:
                        data = f.read()
                    out.append((os.stat(p).st_mtime_ns, p, data))
                except FileNotFoundError:
                    continue
        out.sort()
        return [(p, data) for _, p, data in out]

    def messages_for(self, rcpt):
        """The delivered messages whose Delivered-To is rcpt."""
        want = rcpt.lower()
        found = []
        for p, data in self.delivered():
            for name, value in parse_headers(data):
                if name.lower() == "delivered-to" and \
                        value.strip().lower() == want:
                    found.append((p, data))
                    break
        return found

    def wait_delivered(self, rcpt, timeout=20, count=1):
        """Poll the maildir until count messages for rcpt are there;
        returns their bytes, or raises HarnessError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages_for(rcpt)
            if len(got) >= count:
                return [data for _, data in got]
            if time.monotonic() > deadline:
                raise HarnessError("no delivery to %s within %.0f s (%d of "
                                   "%d); Postfix log:\n%s" % (
                                       rcpt, timeout, len(got), count,
                                       self.log_tail(15)))
            time.sleep(0.02)

    def queue_id_status(self, queue_id):
        """The last status= of a queue id in the log (sent, bounced,
        deferred), or None."""
        st = None
        for m in re.finditer(r"\b%s: to=<[^>]*>.*?\bstatus=(\w+)" %
                             re.escape(queue_id), self.log_text()):
            st = m.group(1)
        return st


# -------------------------------------------------------------- headers

def split_message(data):
    """(header bytes, body bytes) at the first empty line."""
    m = re.search(rb"\r?\n\r?\n", data)
    if not m:
        return data, b""
    return data[:m.start()], data[m.end():]


def parse_headers(data):
    """The header fields of a message, in order, as (name, value) with
    folding undone (CRLF + WSP -> the WSP) and the value as text."""
    head, _ = split_message(data)
    fields = []
    for line in re.split(rb"\r?\n", head):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            n, v = fields[-1]
            fields[-1] = (n, v + line)
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            fields.append((line.decode("utf-8", "replace"), None))
            continue
        fields.append((name, value))
    return [(n if isinstance(n, str) else n.decode("utf-8", "replace"),
             v.decode("utf-8", "replace").strip() if v is not None else None)
            for n, v in fields]


# The header fields that virtual(8) prepends when it delivers: a milter's
# field inserted at index 0 lands right under them, above the Received
# field of Postfix's smtpd (which milters do not see).
TRACE_BY_DELIVERY = ("return-path", "x-original-to", "delivered-to")


# ---------------------------------------------------------------- milter

def valgrind_wrapper():
    """MILTER_WRAPPER as argv; when it runs valgrind, with the project's
    suppression of glibc's block (tests/fixtures/valgrind.supp)."""
    argv = shlex.split(os.environ.get("MILTER_WRAPPER", ""))
    for i, a in enumerate(argv):
        if os.path.basename(a) == "valgrind":
            src = os.environ.get("srcdir") or os.path.join(
                os.path.dirname(os.path.abspath(__file__)), "..", "..")
            argv.insert(i + 1, "--suppressions=" + os.path.join(
                src, "tests", "fixtures", "valgrind.supp"))
            break
    return argv


class Milter:
    """dmarc-milter in the foreground. options: config lines (name ->
    value; None drops a default). socket: 'unix' or 'inet'."""

    def __init__(self, builddir, workdir, options=None, socket="unix",
                 name="milter"):
        self.dir = os.path.join(_path(workdir), name)
        os.makedirs(self.dir, exist_ok=True)
        _open_to_others(self.dir)
        self.binary = os.environ.get("DMARC_MILTER") or \
            os.path.join(builddir, "milter", "dmarc-milter")
        self.kind = socket
        if socket == "unix":
            self.sock_path = os.path.join(self.dir, "milter.sock")
            self.spec = "unix:" + self.sock_path
            self.postfix_spec = "unix:" + self.sock_path
            self.port = None
        elif socket == "inet":
            self.sock_path = None
            self.port = free_port()
            self.spec = "inet:%d@127.0.0.1" % self.port
            self.postfix_spec = "inet:127.0.0.1:%d" % self.port
        else:
            raise ValueError("socket must be 'unix' or 'inet'")
        self.conf = os.path.join(self.dir, "dmarc-milter.conf")
        self.pidfile = os.path.join(self.dir, "dmarc-milter.pid")
        self.logfile = os.path.join(self.dir, "milter.log")
        self.options = {
            "Socket": self.spec,
            "PidFile": self.pidfile,
            "StateDir": os.path.join(self.dir, "state"),
            "AuthservID": MX_NAME,
            "LogLevel": "info",
        }
        self.options.update(options or {})
        self.proc = None
        self.exit_status = None
        self.killed = False
        self.wrapper = valgrind_wrapper()

    def __repr__(self):
        return "Milter(%s)" % self.spec

    def write_conf(self, options=None):
        if options is not None:
            self.options.update(options)
        lines = ["# written by tests/integration/mta.py"]
        for k, v in self.options.items():
            if v is not None:
                lines.append("%s %s" % (k, v))
        _write(self.conf, "\n".join(lines) + "\n")
        return self.conf

    def available(self):
        """(True, version line) if the binary runs -V and says its
        version, else (False, why)."""
        if not os.access(self.binary, os.X_OK):
            return False, "%s is not built" % self.binary
        try:
            r = subprocess.run([self.binary, "-V"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, "%s -V: %r" % (self.binary, e)
        out = r.stdout.decode(errors="replace").strip()
        if r.returncode != 0 or not out.startswith("dmarc-milter"):
            return False, "%s -V exited %d with %r" % (self.binary,
                                                       r.returncode, out)
        return True, out.split("\n")[0]

    def command(self):
        return self.wrapper + [self.binary, "-f", "-c", self.conf]

    def start(self):
        self.write_conf()
        if self.sock_path and os.path.exists(self.sock_path):
            os.unlink(self.sock_path)
        log = open(self.logfile, "ab")
        try:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, start_new_session=True, close_fds=True)
        finally:
            log.close()
        self.exit_status = None
        _running.append(self)
        deadline = time.monotonic() + start_timeout()
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                if self in _running:
                    _running.remove(self)
                raise HarnessError("%s exited with %s at start-up:\n%s" % (
                    " ".join(self.command()), rc, _tail(self.logfile)))
            try:
                if self.sock_path:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(2)
                    s.connect(self.sock_path)
                else:
                    s = socket.create_connection(("127.0.0.1", self.port),
                                                 timeout=2)
                s.close()
                return self
            except OSError as e:
                last = e
            time.sleep(0.02)
        raise HarnessError("%s did not listen within %.0f s (%r):\n%s" % (
            self.spec, start_timeout(), last, _tail(self.logfile)))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.proc else None

    def reload(self, options=None):
        """Rewrite the config (with options changed) and send SIGHUP."""
        if options:
            self.write_conf(options)
        if not self.running():
            raise HarnessError("reload: the milter is not running")
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, timeout=20):
        """SIGTERM, wait, SIGKILL after timeout. Returns the exit status
        (negative: killed by that signal; also kept in exit_status) and
        sets killed=True if SIGKILL was needed."""
        if self.proc is None:
            return self.exit_status
        rc, pid, self.killed = _terminate(self, timeout)
        _killpg(pid, signal.SIGKILL)   # a wrapper's leftovers
        self.exit_status = rc
        return rc

    def log_text(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self):
        return self.log_text().splitlines()

    def wait_log(self, pattern, timeout=10, start=0):
        """Poll the log until a line from index start on matches the
        regex; returns the line or None."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines()
            for l in lines[start:]:
                if rx.search(l):
                    return l
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)


# ------------------------------------------------------------------ SMTP

class Reply:
    """The SMTP reply to the end of DATA (or to the command that failed
    before it: stage tells which)."""

    def __init__(self, code, text, stage="data", transcript=""):
        self.code = code
        self.text = text
        self.stage = stage
        self.transcript = transcript

    def __repr__(self):
        return "%s %s (at %s)" % (self.code, self.text, self.stage)

    def __iter__(self):
        return iter((self.code, self.text))


def _swaks_reply(out):
    """The reply to the end of DATA in swaks' transcript: the server lines
    ('<-  ' or '<** ') after the client's '.' line. When the dialogue
    ended before that, the last server reply and the command it answered."""
    lines = out.split("\n")
    stage, last_cmd = None, "connect"
    reply, collecting = [], False
    replies = []
    for line in lines:
        line = line.rstrip("\r")
        if line.startswith(" -> ") or line.startswith("~> "):
            cmd = line[4:]
            if collecting and reply:
                replies.append((last_cmd, reply))
            reply, collecting = [], True
            if cmd == ".":
                last_cmd = "data"
            elif re.match(r"(?i)(EHLO|HELO|XCLIENT|MAIL|RCPT|DATA|QUIT|RSET)"
                          r"\b", cmd):
                last_cmd = cmd.split()[0].upper()
            continue
        m = re.match(r"^(?:<-|<\*\*|<~|<~\*)\s+(\d{3})([ -])(.*)$", line)
        if m:
            reply.append((m.group(1), m.group(2), m.group(3)))
    if reply:
        replies.append((last_cmd, reply))
    for cmd, rl in replies:
        if cmd == "data":
            stage = cmd
            break
    else:
        # No end of DATA: the last reply before QUIT, if any.
        useful = [r for r in replies if r[0] != "QUIT"]
        if not useful:
            return None, "", "connect"
        stage = useful[-1][0]
        rl = useful[-1][1]
        return int(rl[-1][0]), " ".join(t for _, _, t in rl), stage
    return int(rl[-1][0]), " ".join(t for _, _, t in rl), stage


def send(port, mail_from, rcpt, message_bytes, client_ip, helo,
         timeout=120):
    """One SMTP session through swaks: EHLO, XCLIENT ADDR=client_ip
    HELO=helo, EHLO helo, MAIL, RCPT, DATA. Returns a Reply (code None
    when swaks could not talk to the server at all)."""
    swaks = which("swaks")
    if swaks is None:
        raise HarnessError("swaks is not installed")
    rcpts = [rcpt] if isinstance(rcpt, str) else list(rcpt)
    argv = [swaks, "--server", "127.0.0.1", "--port", str(port),
            "--helo", helo, "--xclient-addr", client_ip,
            "--xclient-helo", helo,
            "--from", mail_from if mail_from else "<>",
            "--to", ",".join(rcpts), "--timeout", "90",
            "--data", "-"]
    if not mail_from:
        argv[argv.index("--from") + 1] = ""
    r = subprocess.run(argv, input=message_bytes, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    out = r.stdout.decode("utf-8", "replace")
    code, text, stage = _swaks_reply(out)
    return Reply(code, text, stage, out)


class SmtpSession:
    """One SMTP session with smtplib: XCLIENT once, then any number of
    messages (MAIL, RCPT, DATA, RSET)."""

    def __init__(self, port, client_ip, helo, timeout=120):
        self.s = smtplib.SMTP("127.0.0.1", port, local_hostname=helo,
                              timeout=timeout)
        self.s.ehlo(helo)
        if not self.s.has_extn("xclient"):
            raise HarnessError("the server does not offer XCLIENT")
        code, text = self.s.docmd("XCLIENT", "ADDR=%s HELO=%s" % (
            client_ip, helo))
        if code != 220:
            raise HarnessError("XCLIENT: %d %s" % (code, text.decode(
                errors="replace")))
        # XCLIENT resets the session to the greeting: EHLO again.
        self.s.ehlo_resp = None
        self.s.esmtp_features = {}
        self.s.does_esmtp = False
        self.s.ehlo(helo)

    def send(self, mail_from, rcpt, message_bytes):
        rcpts = [rcpt] if isinstance(rcpt, str) else list(rcpt)
        code, text = self.s.mail(mail_from or "")
        if code != 250:
            self.s.rset()
            return Reply(code, text.decode(errors="replace"), "MAIL")
        for r in rcpts:
            code, text = self.s.rcpt(r)
            if code not in (250, 251):
                self.s.rset()
                return Reply(code, text.decode(errors="replace"), "RCPT")
        code, text = self.s.data(message_bytes)
        self.s.rset()
        return Reply(code, text.decode(errors="replace"), "data")

    def close(self):
        try:
            self.s.quit()
        except (smtplib.SMTPException, OSError):
            self.s.close()


# ------------------------------------------------------- test tooling

def ensure_tools(packages=("postfix", "swaks")):
    """None when postfix and swaks are there (installing them with apt-get
    when missing and we are root), else the reason they are not. The
    system Postfix is left unconfigured ("No configuration")."""
    def missing():
        m = []
        if "postfix" in packages and (which("postfix") is None or
                                      which("postconf") is None):
            m.append("postfix")
        if "swaks" in packages and which("swaks") is None:
            m.append("swaks")
        return m
    need = missing()
    if not need:
        return None
    if os.geteuid() != 0 or which("apt-get") is None:
        return "%s not installed (and not root with apt-get)" % \
            " ".join(need)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if "postfix" in need and which("debconf-set-selections"):
        subprocess.run(["debconf-set-selections"],
                       input=b"postfix postfix/main_mailer_type select "
                             b"No configuration\n",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + \
        need
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=600)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=600)
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=600)
    if missing():
        return "%s not installed; apt-get install failed: %s" % (
            " ".join(missing()),
            r.stdout.decode(errors="replace").strip()[-300:])
    return None



# ----------------------------------------------------------------- Redis

class RedisError(Exception):
    """An error reply (-ERR ...) from Redis, or a broken connection."""


class RedisClient:
    """A minimal RESP2 client over a unix socket (stdlib only): call()
    sends one command and returns its reply as str (bulk and status),
    int, list or None; an error reply raises RedisError."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise RedisError("connection closed by Redis")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            return RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else \
                self._exact(n).decode("utf-8", "surrogateescape")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError("unexpected reply %r" % line[:80])

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode("utf-8", "surrogateescape")
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        r = self._reply()
        if isinstance(r, RedisError):
            raise r
        return r


class RedisServer:
    """A private redis-server in the foreground on a unix socket in the
    work directory (no TCP unless port= gives a loopback one), in its own
    process group, stopped by its PID at exit. persist=True: an append-only file with
    appendfsync always, so what Redis acknowledged survives kill -9 and
    a restart on the same directory and socket. debug=True allows the
    DEBUG command (DEBUG SLEEP) from local connections."""

    def __init__(self, workdir, name="redis", persist=False, debug=False,
                 port=None, extra=()):
        self.dir = os.path.join(_path(workdir), name)
        self.port = port        # a loopback TCP port as well, or None
        self.extra = list(extra)        # further redis-server options
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "redis.sock")
        self.url = "unix://" + self.sock
        self.logfile = os.path.join(self.dir, "redis.log")
        self.persist = persist
        self.debug = debug
        self.proc = None
        self.binary = which("redis-server")

    def __repr__(self):
        return "RedisServer(%s)" % self.sock

    def command(self):
        argv = [self.binary, "--port", str(self.port or 0),
                "--bind", "127.0.0.1", "--unixsocket", self.sock,
                "--unixsocketperm", "700", "--dir", self.dir,
                "--save", "", "--daemonize", "no",
                "--logfile", self.logfile]
        if self.persist:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        if self.debug and self.version() >= (7,):
            # Redis 7 refuses DEBUG unless allowed; 6 has no such option.
            argv += ["--enable-debug-command", "local"]
        return argv + self.extra

    def version(self):
        """redis-server's version as a tuple of ints ((0,) if unknown)."""
        try:
            out = subprocess.run([self.binary, "--version"],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL,
                                 timeout=30).stdout.decode(errors="replace")
        except (OSError, subprocess.TimeoutExpired):
            return (0,)
        m = re.search(r"\bv=(\d+(?:\.\d+)*)", out)
        return tuple(int(x) for x in m.group(1).split(".")) if m else (0,)

    def start(self):
        if self.binary is None:
            raise HarnessError("redis-server is not installed")
        if self.running():
            raise HarnessError("%r is running already" % self)
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)
        _running.append(self)
        deadline = time.monotonic() + start_timeout()
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                if self in _running:
                    _running.remove(self)
                raise HarnessError("redis-server exited with %s at "
                                   "start-up:\n%s" % (rc,
                                                      _tail(self.logfile)))
            try:
                if self.call("PING") == "PONG":
                    return self
            except (OSError, RedisError) as e:
                last = e
            time.sleep(0.02)
        raise HarnessError("redis-server on %s did not answer PING within "
                           "%.0f s (%r):\n%s" % (self.sock, start_timeout(),
                                                  last, _tail(self.logfile)))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.proc else None

    def client(self, timeout=10):
        return RedisClient(self.sock, timeout)

    def call(self, *args):
        """One command on a connection of its own."""
        with self.client() as c:
            return c.call(*args)

    def kill(self):
        """kill -9 by PID, as a crash would (nothing is flushed)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if self in _running:
            _running.remove(self)
        _killpg(proc.pid, signal.SIGKILL)
        return _wait_pid(proc, 10)

    def stop(self, timeout=10):
        """SIGTERM by PID, SIGKILL after timeout; the exit status."""
        return _terminate(self, timeout)[0]

    def log_tail(self, lines=20):
        return _tail(self.logfile, lines)
