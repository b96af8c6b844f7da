"""tests/integration/evalcorpus.py - the harness shared by the dmarc-check
integration tests (check_eval.py, badinput.py): TAP output, test keys made
with openssl, an unbound.conf that serves every test zone from local-data
(never the network), DKIM signing with dkimpy, and running dmarc-check
with its resource use measured.

Everything lives in one temporary directory that is removed at exit
unless KEEP_TMP=1 is set (then its path is printed as a TAP comment).

Environment: srcdir and builddir (set by make check; default: two levels
up from this file), DMARC_CHECK (another binary than
$builddir/tools/dmarc-check), DMARC_CHECK_WRAPPER (a command prefix such
as "valgrind -q --error-exitcode=9"), TEST_JOBS (parallel runs).
"""

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# Client addresses: GOOD is authorised by every SPF record of the zone,
# BAD by none (every record ends in -all).
GOOD_IP = "192.0.2.10"
BAD_IP = "198.51.100.66"


def need_module(module, package):
    """Make `import module` work: the python3 first on PATH may not be
    Debian's, which is where the package's module lives; run again under
    it (once), or print a TAP skip and exit."""
    try:
        __import__(module)
        return
    except ImportError:
        pass
    debian = "/usr/bin/python3"
    guard = "REEXEC_FOR_" + module.upper()
    if os.path.exists(debian) and \
            os.path.realpath(sys.executable) != os.path.realpath(debian) \
            and not os.environ.get(guard):
        os.environ[guard] = "1"
        os.execv(debian, [debian] + sys.argv)
    print("1..0 # SKIP %s (module %s) is not installed" % (package, module))
    sys.exit(0)


def need_dkim():
    need_module("dkim", "python3-dkim")


def dirs():
    """(srcdir, builddir) as make check sets them."""
    top = os.path.normpath(os.path.join(HERE, "..", ".."))
    src = os.environ.get("srcdir") or top
    build = os.environ.get("builddir") or top
    return os.path.abspath(src), os.path.abspath(build)


def dmarc_check_path():
    if os.environ.get("DMARC_CHECK"):
        return os.environ["DMARC_CHECK"]
    return os.path.join(dirs()[1], "tools", "dmarc-check")


class Tap:
    """TAP producer: plan at the end, one line per check, diagnostics as
    comments. Thread-safe so results can be printed as they come."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.lock = threading.Lock()

    def ok(self, cond, name, diag=()):
        with self.lock:
            self.n += 1
            name = name.replace("#", "\\#").replace("\n", " ")
            print("%sok %d - %s" % ("" if cond else "not ", self.n, name))
            if not cond:
                self.failed += 1
                for line in diag:
                    for sub in str(line).splitlines() or [""]:
                        print("# " + sub)
            sys.stdout.flush()
        return cond

    def diag(self, text):
        with self.lock:
            for sub in str(text).splitlines():
                print("# " + sub)
            sys.stdout.flush()

    def bail(self, why):
        print("Bail out! " + why)
        sys.stdout.flush()
        sys.exit(1)

    def done(self):
        print("1..%d" % self.n)
        sys.stdout.flush()
        return 1 if self.failed else 0


class Workdir:
    """The temporary directory of one test run."""

    def __init__(self, prefix):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def file(self, name, data=None):
        p = os.path.join(self.path, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if data is not None:
            with open(p, "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode())
        return p

    def cleanup(self, tap):
        if os.environ.get("KEEP_TMP"):
            tap.diag("kept " + self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def _openssl(*args, stdin=None):
    r = subprocess.run(["openssl"] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args),
                                               r.stderr.decode(errors="replace")))
    return r.stdout


class Key:
    """A signing key: .private is what dkimpy's sign() takes, .txt the
    DKIM key record (RFC 6376 3.6.1, RFC 8463 for ed25519)."""

    def __init__(self, kind, private, public_b64):
        self.kind = kind
        self.private = private
        self.public_b64 = public_b64
        self.algorithm = b"ed25519-sha256" if kind == "ed25519" \
            else b"rsa-sha256"

    @property
    def txt(self):
        return "v=DKIM1; k=%s; p=%s" % (
            "ed25519" if self.kind == "ed25519" else "rsa", self.public_b64)

    @classmethod
    def rsa(cls, workdir, name, bits=2048):
        pem_path = workdir.file("keys/%s.pem" % name)
        _openssl("genrsa", "-out", pem_path, str(bits))
        with open(pem_path, "rb") as f:
            pem = f.read()
        der = _openssl("rsa", "-in", pem_path, "-pubout", "-outform", "DER")
        return cls("rsa", pem, base64.b64encode(der).decode())

    @classmethod
    def ed25519(cls, workdir, name):
        """dkimpy (through PyNaCl) wants the base64 of the raw 32-byte
        seed; openssl gives PKCS#8, whose DER ends with that seed, and a
        SubjectPublicKeyInfo whose DER ends with the raw public key."""
        pem_path = workdir.file("keys/%s.pem" % name)
        _openssl("genpkey", "-algorithm", "ed25519", "-out", pem_path)
        priv_der = _openssl("pkey", "-in", pem_path, "-outform", "DER")
        pub_der = _openssl("pkey", "-in", pem_path, "-pubout",
                           "-outform", "DER")
        if len(priv_der) != 48 or len(pub_der) != 44:
            raise RuntimeError("unexpected ed25519 DER lengths %d/%d" %
                               (len(priv_der), len(pub_der)))
        return cls("ed25519", base64.b64encode(priv_der[-32:]),
                   base64.b64encode(pub_der[-32:]).decode())


def split_txt(s, size=255):
    """A TXT value as character-strings of at most 255 bytes."""
    b = s.encode() if isinstance(s, str) else s
    if not b:
        return [b""]
    return [b[i:i + size] for i in range(0, len(b), size)]


class Zone:
    """The test DNS: an unbound.conf with static local zones. A name with
    no local-data inside a static zone is NXDOMAIN; an empty non-terminal
    is NOERROR/NODATA (RFC 8020); zones of type refuse answer REFUSED at
    once, which is a temporary DNS error like SERVFAIL, without waiting
    for a dead server (a forward to a closed port makes unbound retry for
    many seconds). The root is refused too, and forwarded to a closed port
    as a second guard, so no query ever leaves the machine."""

    def __init__(self, static=("example.",)):
        self.static = list(static)
        self.refused = []
        self.lines = []
        self.txt_records = {}   # name -> [value bytes], for self-checks

    @staticmethod
    def _fqdn(name):
        return name if name.endswith(".") else name + "."

    def txt(self, name, *values):
        """One TXT record per value; a value given as a list or tuple is
        published as those character-strings, a string is split at 255."""
        for v in values:
            parts = list(v) if isinstance(v, (list, tuple)) else split_txt(v)
            parts = [p.encode() if isinstance(p, str) else p for p in parts]
            for p in parts:
                if b'"' in p or b"\\" in p or b"'" in p or b"\n" in p:
                    raise ValueError("TXT test data must not hold quotes, "
                                     "backslashes or newlines: %r" % p)
            rdata = " ".join('"%s"' % p.decode("latin-1") for p in parts)
            self.lines.append("local-data: '%s 300 IN TXT %s'" %
                              (self._fqdn(name), rdata))
            self.txt_records.setdefault(self._fqdn(name).lower(), []).append(
                b"".join(parts))

    def dmarc(self, domain, *records):
        self.txt("_dmarc." + domain, *records)

    def spf(self, domain, record="v=spf1 ip4:%s -all" % GOOD_IP):
        self.txt(domain, record)

    def key(self, selector, domain, key):
        self.txt("%s._domainkey.%s" % (selector, domain), key.txt)

    def a(self, name, addr="192.0.2.80"):
        self.lines.append("local-data: '%s 300 IN A %s'" %
                          (self._fqdn(name), addr))

    def cname(self, name, target):
        self.lines.append("local-data: '%s 300 IN CNAME %s'" %
                          (self._fqdn(name), self._fqdn(target)))

    def refuse(self, name):
        self.refused.append(self._fqdn(name))

    def comment(self, text):
        self.lines.append("# " + text)

    def text(self):
        out = ["# unbound.conf written by tests/integration/evalcorpus.py",
               "server:",
               "\tverbosity: 0",
               "\tdo-not-query-localhost: no",
               "\tmodule-config: \"iterator\"",
               "\tlocal-zone: \".\" refuse"]
        for z in self.static:
            out.append("\tlocal-zone: \"%s\" static" % z)
            out.append("\tlocal-data: \"%s 300 IN SOA ns.%s hostmaster.%s "
                       "1 3600 600 86400 300\"" % (z, z, z))
            out.append("\tlocal-data: \"%s 300 IN NS ns.%s\"" % (z, z))
            out.append("\tlocal-data: \"ns.%s 300 IN A 192.0.2.53\"" % z)
        for z in self.refused:
            out.append("\tlocal-zone: \"%s\" refuse" % z)
        out.extend("\t" + l for l in self.lines)
        out += ["", "forward-zone:", "\tname: \".\"",
                "\tforward-addr: 127.0.0.1@1", ""]
        return "\n".join(out)

    def write(self, path):
        with open(path, "w") as f:
            f.write(self.text())
        return path

    def dkimpy_dns(self, name, timeout=5):
        """A dnsfunc for dkim.verify: the harness checks its own signatures
        against the zone it publishes, so a broken fixture is told apart
        from a broken dmarc-check."""
        if isinstance(name, bytes):
            name = name.decode()
        vals = self.txt_records.get(self._fqdn(name).lower())
        return vals[0] if vals else None


CRLF = b"\r\n"


def build_message(headers, body=b"Hello.\r\n"):
    """headers: list of (name, value) or raw bytes lines; CRLF endings."""
    out = []
    for h in headers:
        if isinstance(h, bytes):
            out.append(h)
        else:
            n, v = h
            out.append(("%s: %s" % (n, v)).encode("utf-8", "surrogateescape"))
    if isinstance(body, str):
        body = body.encode()
    return CRLF.join(out) + CRLF + CRLF + body


def sign(message, domain, selector, key, canon=(b"relaxed", b"relaxed"),
         include_headers=None):
    """Prepend a DKIM-Signature made by dkimpy."""
    import dkim
    kw = {}
    if include_headers is not None:
        kw["include_headers"] = [h.encode() if isinstance(h, str) else h
                                 for h in include_headers]
    sig = dkim.sign(message, selector.encode(), domain.encode(), key.private,
                    canonicalize=canon, signature_algorithm=key.algorithm,
                    linesep=CRLF, **kw)
    return sig + message


class Run:
    """The outcome of one dmarc-check run."""

    def __init__(self, argv, rc, out, err, rss_kb, seconds, timed_out):
        self.argv = argv
        self.rc = rc
        self.out = out
        self.err = err
        self.rss_kb = rss_kb
        self.seconds = seconds
        self.timed_out = timed_out
        self._json = None
        self.json_error = None

    @property
    def json(self):
        if self._json is None and self.json_error is None:
            try:
                self._json = json.loads(self.out.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                self.json_error = str(e)
        return self._json

    def crashed(self):
        """A signal, a sanitizer report or a timeout: never acceptable."""
        if self.timed_out:
            return "timed out after %.1f s" % self.seconds
        if self.rc < 0:
            return "killed by signal %d" % -self.rc
        if self.rc >= 128:
            return "exit status %d" % self.rc
        m = re.search(rb"(ERROR: \w+Sanitizer|runtime error:|"
                      rb"LeakSanitizer|==\d+== (Invalid|Conditional|"
                      rb"Use of uninit|Syscall param|Mismatched))", self.err)
        if m:
            return "sanitizer/valgrind report: " + \
                m.group(0).decode(errors="replace")
        return None

    def describe(self):
        err = self.err.decode(errors="replace").strip()
        out = self.out.decode(errors="replace").strip()
        return ["command: " + " ".join(shlex.quote(a) for a in self.argv),
                "exit status: %s%s" % (self.rc,
                                       " (timed out)" if self.timed_out else ""),
                "stderr: " + (err[:1500] if err else "(empty)"),
                "stdout: " + (out[:1500] if out else "(empty)")]


def _limit_as(limit):
    def pre():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return pre


def binary_is_sanitized(path):
    """ASan reserves terabytes of address space: no RLIMIT_AS then."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__tsan_init" in data


_gnu_time = None


def gnu_time():
    """GNU time, when installed, measures the maximum RSS of a child it
    forked itself, so the figure is dmarc-check's own. Measured from here
    instead (wait4), it would include this Python process: a child's
    maximum RSS starts at its parent's when it forks and survives exec."""
    global _gnu_time
    if _gnu_time is None:
        _gnu_time = ""
        if os.access("/usr/bin/time", os.X_OK):
            r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o",
                                os.devnull, "true"],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                _gnu_time = "/usr/bin/time"
    return _gnu_time


def run_check(args, stdin=None, timeout=120, as_limit=None, cwd=None):
    """Run dmarc-check with args. stdin: bytes, an iterator of bytes
    chunks (streamed from a thread, never held whole), or None. Returns a
    Run with the maximum RSS of dmarc-check (see gnu_time)."""
    argv = shlex.split(os.environ.get("DMARC_CHECK_WRAPPER", "")) + \
        [dmarc_check_path()] + list(args)
    full = argv
    rss_file = None
    if gnu_time():
        fd, rss_file = tempfile.mkstemp(prefix="dmarc-check-rss.")
        os.close(fd)
        full = [gnu_time(), "-f", "%M", "-o", rss_file] + argv
    pre = _limit_as(as_limit) if as_limit else None
    t0 = time.monotonic()
    p = subprocess.Popen(full, stdin=subprocess.PIPE if stdin is not None
                         else subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=pre, cwd=cwd,
                         start_new_session=True)
    outs = {"out": [], "err": []}

    def reader(stream, key):
        while True:
            b = stream.read(65536)
            if not b:
                break
            # Bounded: a runaway child must not exhaust the test's memory.
            if sum(len(x) for x in outs[key]) < 8 << 20:
                outs[key].append(b)
        stream.close()

    def writer():
        try:
            if isinstance(stdin, (bytes, bytearray)):
                p.stdin.write(stdin)
            else:
                for chunk in stdin:
                    p.stdin.write(chunk)
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                p.stdin.close()
            except OSError:
                pass

    threads = [threading.Thread(target=reader, args=(p.stdout, "out")),
               threading.Thread(target=reader, args=(p.stderr, "err"))]
    if stdin is not None:
        threads.append(threading.Thread(target=writer))
    for t in threads:
        t.daemon = True
        t.start()
    timed_out = False
    deadline = t0 + timeout
    while True:
        pid, status, rusage = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            break
        if time.monotonic() > deadline:
            timed_out = True
            try:
                os.killpg(p.pid, 9)
            except OSError:
                pass
            pid, status, rusage = os.wait4(p.pid, 0)
            break
        time.sleep(0.005)
    p.returncode = rc = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join(10)
    rss_kb, how = rusage.ru_maxrss, "wait4 (includes the test's own RSS)"
    if rss_file:
        how = "GNU time"
        try:
            with open(rss_file) as f:
                lines = f.read().split()
            rss_kb = int(lines[-1])
            # GNU time exits 128+N when its child died of signal N.
            m = re.search(r"terminated by signal (\d+)", " ".join(lines))
            if m:
                rc = -int(m.group(1))
        except (OSError, ValueError, IndexError):
            pass
        os.unlink(rss_file)
    run = Run(argv, rc, b"".join(outs["out"]), b"".join(outs["err"]),
              rss_kb, time.monotonic() - t0, timed_out)
    run.rss_how = how
    return run


def write_config(workdir, name, options):
    """A dmarc-check config file: one "Name value" line per option."""
    text = "".join("%s %s\n" % (k, v) for k, v in options.items())
    return workdir.file("conf/%s.conf" % name, text)


def jobs():
    try:
        return max(1, int(os.environ.get("TEST_JOBS", "")))
    except ValueError:
        return min(8, os.cpu_count() or 2)


def preflight(tap):
    """Bail out early, with one clear line, when the program is missing."""
    path = dmarc_check_path()
    if not os.access(path, os.X_OK):
        tap.bail("dmarc-check not built: %s" % path)
    return path
