#!/usr/bin/env python3
"""tests/integration/badinput.py - hostile input for dmarc-check (run by
check_badinput.sh). Whatever it is fed, dmarc-check must end with a
verdict (exit 0) or a one-line error (exit 2): never a signal, an exit
status of 128 or more, a sanitizer or valgrind report, a hang, or memory
that grows with the input. Every run is under an address-space limit
(RLIMIT_AS, 512 MB, unless the binary is sanitized or wrapped) and its
maximum RSS, from wait4(), is checked against a bound.

Cases: garbage bytes; NUL bytes in header and body; 8-bit and invalid
UTF-8 in From; a 1 MB and a 5 MB header line; 10,000 header fields;
10,000 From fields of distinct domains; a 64 KB DMARC record; CNAME loops
at _dmarc names; truncated messages; a 50 MB signed message streamed on
stdin (maximum RSS under 60 MB); a 100 MB header section; header and
envelope values that try to inject into the Authentication-Results
text; a nonexistent file, a directory, and bad usage (exit 2).
"""

import os
import random
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evalcorpus as ec  # noqa: E402

ec.need_dkim()

R = "relaxed.example"
MB = 1 << 20
DEFAULT_RSS_MB = 64
# Under ASan every allocation carries redzones and freed memory waits in
# a quarantine (256 MB by default): the bounds still catch growth with
# the input, which is what they are for, at 8 times the size.
RSS_SCALE = 8 if ec.binary_is_sanitized(ec.dmarc_check_path()) else 1
DMARC_VALUES = {"pass", "fail", "none", "temperror", "permerror"}


def build_zone(keys):
    z = ec.Zone(static=("example.",))
    z.dmarc(R, "v=DMARC1; p=reject")
    z.spf(R)
    z.key("s1", R, keys["rsa"])
    z.comment("a DMARC record of 65,000 bytes in 255-byte strings")
    rua = ",".join("mailto:r%05d@big.example" % i for i in range(2700))
    z.dmarc("big.example", ("v=DMARC1; p=reject; rua=" + rua)[:65000])
    z.comment("CNAME loops at _dmarc names: to itself, and between two")
    z.cname("_dmarc.loop.example", "_dmarc.loop.example")
    z.cname("_dmarc.loop2.example", "_dmarc.x.loop2.example")
    z.cname("_dmarc.x.loop2.example", "_dmarc.loop2.example")
    z.a("loop.example")
    z.a("loop2.example")
    return z


def msg(headers, body=b"body\r\n"):
    return ec.build_message(headers, body)


def base_headers(frm="alice@" + R):
    return [("From", frm), ("To", "bob@receiver.example"),
            ("Subject", "test"), ("Date", "Fri, 15 Feb 2002 16:54:30 -0800")]


class Case:
    """args: extra arguments (the message path or "-" is added unless
    raw_args); want_rc: the set of acceptable exit statuses."""

    def __init__(self, name, data=None, stream=None, args=(), want_rc=(0, 2),
                 rss_mb=DEFAULT_RSS_MB, raw_args=None, json=True,
                 check=None, timeout=120, path=None):
        self.name, self.data, self.stream = name, data, stream
        self.args, self.want_rc = list(args), set(want_rc)
        self.rss_mb, self.raw_args, self.json = rss_mb, raw_args, json
        self.check, self.timeout, self.path = check, timeout, path


BIG_LINE = b"The quick brown fox jumps over the lazy dog, 0123456789.\r\n"
BIG_LINES = 50 * MB // len(BIG_LINE)


def big_body_chunks(per=1024):
    """The 50 MB body, in 58 KB chunks."""
    block = BIG_LINE * per
    n = BIG_LINES
    while n >= per:
        yield block
        n -= per
    if n:
        yield BIG_LINE * n


def sign_big(pem_path):
    """Child mode: print the DKIM-Signature of the 50 MB message."""
    with open(pem_path, "rb") as f:
        key = ec.Key("rsa", f.read(), "")
    head = ec.build_message(base_headers(), b"")
    body = b"".join(big_body_chunks())
    signed = ec.sign(head + body, R, "s1", key, canon=(b"relaxed", b"simple"))
    sys.stdout.buffer.write(signed[:len(signed) - len(head) - len(body)])


def stream_of(head, chunks):
    yield head
    for c in chunks:
        yield c


def header_flood(n, size):
    yield ec.CRLF.join(("%s: %s" % h).encode() for h in base_headers())
    yield ec.CRLF
    pad = b"x" * (size - 20)
    for i in range(n):
        yield b"X-Flood-%07d: " % i + pad + b"\r\n"
    yield b"\r\nbody\r\n"


def ar_one_field(run):
    """The A-R text is one header field: no line that does not start with
    white space after the first, no CR or NUL, no injected field."""
    out = run.out.decode("utf-8", "replace")
    lines = out.rstrip("\n").split("\n")
    bad = [l for l in lines[1:] if not l[:1].isspace()]
    if bad:
        return "a line that starts a new field: %r" % bad[0]
    if "\r" in out or "\0" in out:
        return "a CR or NUL in the output"
    if not lines[0].startswith("Authentication-Results:"):
        return "does not start with Authentication-Results:"
    return None


def cases(wd, keys):
    c = []
    add = c.append
    rnd = random.Random(7489)

    add(Case("garbage: 64 KB of random bytes",
             bytes(rnd.getrandbits(8) for _ in range(65536))))
    add(Case("garbage: random bytes without any line break",
             bytes(rnd.choice(range(14, 256)) for _ in range(200000))))
    add(Case("empty input", b""))
    add(Case("only a line break", b"\r\n"))
    add(Case("NUL bytes in header names, values and the body",
             b"Fr\0om: alice@relaxed.example\r\n"
             b"From: al\0ice@relaxed.example\r\n"
             b"Subject: a\0b\0c\r\nX-\0: \0\r\n\r\nbo\0dy\0\r\n\0\0\0"))
    add(Case("NUL byte inside the From domain",
             msg([("From", "alice@relax\0ed.example")])))
    add(Case("8-bit Latin-1 display name and local part in From",
             msg([b"From: J\xf6rg M\xfcller <j\xf6rg@relaxed.example>",
                  b"Subject: \xe9t\xe9"])))
    add(Case("invalid UTF-8 in the From domain",
             msg([b"From: alice@\xc3\x28\xa0\xa1.example"])))
    add(Case("valid UTF-8 (IDN) From domain",
             msg([("From", "alice@b\u00fccher.example")])))
    add(Case("overlong UTF-8 and surrogates in From",
             msg([b"From: \xc0\xaf\xed\xa0\x80 <a@\xf4\x90\x80\x80.example>"])))
    add(Case("a 1 MB header line", msg(base_headers() +
                                        [("Subject", "a" * MB)])))
    add(Case("a 1 MB From field of mailboxes",
             msg([("From", ", ".join("u%d@d%d.example" % (i, i % 40)
                                     for i in range(60000)))])))
    add(Case("a 5 MB header field (above the 4 MB bound)",
             msg(base_headers() + [("X-Big", "b" * (5 * MB))])))
    add(Case("10,000 header fields",
             msg(base_headers() + [("X-H-%d" % i, "value %d" % i)
                                   for i in range(10000)])))
    add(Case("10,000 From fields of distinct domains (DNS work bounded)",
             msg([("From", "u@d%d.example" % i) for i in range(10000)]),
             timeout=60))
    add(Case("one From field with 2,000 mailboxes of distinct domains",
             msg([("From", ", ".join("u@m%d.example" % i
                                     for i in range(2000)))]), timeout=60))
    add(Case("From domain of 120 labels (tree walk bounded)",
             msg([("From", "u@" + "a." * 120 + "example")])))
    add(Case("From domain with a 300-byte label",
             msg([("From", "u@" + "x" * 300 + ".example")])))
    add(Case("From with unbalanced quotes, comments and brackets",
             msg([("From", '"alice <(((" <<a@relaxed.example (x'),
                  ("From", "\\\"@\"@\"<>:;,")])))
    add(Case("200 DKIM-Signature fields with distinct d= (DNS work "
             "bounded)", msg(base_headers() + [
                 ("DKIM-Signature", "v=1; a=rsa-sha256; d=s%d.example; s=x;"
                  " h=from; bh=AAAA; b=AAAA" % i) for i in range(200)]),
             timeout=60))
    add(Case("garbage DKIM-Signature fields",
             msg(base_headers() + [
                 ("DKIM-Signature", "v=1; a=; d=; s=; b="),
                 ("DKIM-Signature", ";;;;===;;;"),
                 ("DKIM-Signature", "v=1; a=rsa-sha256; d=relaxed.example;"
                  " s=s1; h=from; l=99999999999999999999; bh=!!; b=!!"),
                 ("DKIM-Signature", "x" * 70000)])))
    add(Case("a 64 KB DMARC record", msg(base_headers("u@big.example")),
             check=lambda r, j: None if j.get("dmarc") in DMARC_VALUES
             else "dmarc=%r" % j.get("dmarc")))
    add(Case("a CNAME loop at _dmarc (to itself)",
             msg(base_headers("u@loop.example")), timeout=60,
             check=lambda r, j: None if j.get("dmarc") in
             {"none", "temperror", "permerror"} else
             "dmarc=%r, expected none, temperror or permerror" %
             j.get("dmarc")))
    add(Case("a CNAME loop at _dmarc (between two names)",
             msg(base_headers("u@loop2.example")), timeout=60,
             check=lambda r, j: None if j.get("dmarc") in
             {"none", "temperror", "permerror"} else
             "dmarc=%r, expected none, temperror or permerror" %
             j.get("dmarc")))
    full = msg(base_headers())
    add(Case("truncated: headers only, no blank line",
             full[:full.index(b"\r\n\r\n") + 2]))
    add(Case("truncated: cut in the middle of the From field",
             b"Subject: x\r\nFrom: alice@rela"))
    add(Case("truncated: cut in the middle of a header name", b"Fro"))
    add(Case("truncated: cut inside a folded field",
             b"From: alice@relaxed.example\r\nSubject: a\r\n  b\r\n   "))
    add(Case("bare CR line ends only", full.replace(b"\r\n", b"\r")))
    add(Case("a header line of only white space, then a continuation",
             b"   \r\n\tFrom: x\r\nFrom: a@relaxed.example\r\n\r\nb\r\n"))

    # 50 MB, signed (the verifier hashes the body as it streams by). The
    # body is made twice, in a child that signs it and chunk by chunk as
    # it is written, so this process stays small (see ec.gnu_time).
    head = ec.build_message(base_headers(), b"")
    r = subprocess.run([sys.executable, os.path.abspath(__file__),
                           "--sign-big", wd.file("keys/rsa.pem")],
                          stdout=subprocess.PIPE, check=True)
    sig_hdr = r.stdout

    def chunks():
        return big_body_chunks()

    add(Case("a 50 MB signed message on stdin: DKIM passes, RSS < 60 MB",
             stream=lambda: stream_of(sig_hdr + head, chunks()),
             rss_mb=60, timeout=300,
             check=lambda r, j: None if j.get("dkim") and
             j["dkim"][0].get("result") == "pass" and
             j.get("dmarc") == "pass" else
             "dkim=%r dmarc=%r, expected a DKIM and DMARC pass" %
             (j.get("dkim"), j.get("dmarc"))))
    add(Case("a 100 MB header section on stdin (1 KB fields): bounded",
             stream=lambda: header_flood(100 * 1024, 1024), rss_mb=256,
             timeout=300))

    # Injection into the Authentication-Results text.
    add(Case("text output: HELO with quotes, CR LF and a fake field",
             msg(base_headers()), json=False,
             args=["--helo", 'evil";\r\nX-Injected: yes\r\n\tdmarc=pass'],
             check=lambda r, j: ar_one_field(r) or (
                 "injected" if re.search(r"^X-Injected", r.out.decode(
                     "utf-8", "replace"), re.M) else None)))
    add(Case("text output: MAIL FROM with CR LF and a fake field",
             msg(base_headers()), json=False,
             args=["--mail-from", "a@b.example\r\nX-Injected: yes"],
             check=lambda r, j: ar_one_field(r)))
    add(Case("text output: DKIM selector and domain with quotes and CR LF",
             msg(base_headers() + [
                 ("DKIM-Signature", 'v=1; a=rsa-sha256; d="x\r\nX-I: 1";'
                  ' s=a"b\\; h=from; bh=AA; b=AA')]), json=False,
             check=lambda r, j: ar_one_field(r)))
    add(Case("text output: a From domain with control characters",
             msg([b"From: a@ex\x01am\x7fple.example"]), json=False,
             check=lambda r, j: ar_one_field(r)))

    # Odd envelope values.
    add(Case("--ip that is not an address", msg(base_headers()),
             raw_args=["--ip", "not-an-ip"]))
    add(Case("--ip 999.1.1.1", msg(base_headers()),
             raw_args=["--ip", "999.1.1.1"]))
    add(Case("--ip IPv6", msg(base_headers()),
             raw_args=["--ip", "2001:db8::1"], want_rc=(0,)))
    add(Case("--helo of 10,000 bytes", msg(base_headers()),
             args=["--helo", "h" * 10000]))
    add(Case("--mail-from without a domain", msg(base_headers()),
             args=["--mail-from", "postmaster"]))

    # Exit status 2 and one line on stderr.
    good = wd.file("good.eml", msg(base_headers()))
    os.makedirs(wd.file("adir"), exist_ok=True)
    conf_bad_opt = wd.file("conf/bad-option.conf", "NoSuchOption yes\n")
    conf_bad_val = wd.file("conf/bad-value.conf", "HonorPct perhaps\n")
    conf_bad_int = wd.file("conf/bad-int.conf", "DNSTimeout 99999\n")
    usage = [
        ("nonexistent message file",
         ["--ip", ec.GOOD_IP, wd.file("no/such/file.eml")]),
        ("a directory as the message", ["--ip", ec.GOOD_IP,
                                        wd.file("adir")]),
        ("no arguments at all", []),
        ("no --ip", [good]),
        ("unknown option", ["--ip", ec.GOOD_IP, "--frobnicate", good]),
        ("--random -1", ["--ip", ec.GOOD_IP, "--random", "-1", good]),
        ("--random 4294967296", ["--ip", ec.GOOD_IP, "--random",
                                 "4294967296", good]),
        ("--random abc", ["--ip", ec.GOOD_IP, "--random", "abc", good]),
        ("--ip without its value", ["--ip"]),
        ("two message files", ["--ip", ec.GOOD_IP, good, good]),
        ("-c with a nonexistent config", ["--ip", ec.GOOD_IP, "-c",
                                          wd.file("no/such.conf"), good]),
        ("config with an unknown option", ["--ip", ec.GOOD_IP, "-c",
                                           conf_bad_opt, good]),
        ("config with a bad boolean", ["--ip", ec.GOOD_IP, "-c",
                                       conf_bad_val, good]),
        ("config with an integer out of bounds", ["--ip", ec.GOOD_IP, "-c",
                                                  conf_bad_int, good]),
        ("--dns-config that does not exist",
         ["--ip", ec.GOOD_IP, "--dns-config", wd.file("no/unbound.conf"),
          good]),
    ]
    for name, argv in usage:
        add(Case("exit 2 and one line: " + name, raw_args=argv,
                 want_rc=(2,), json=False))
    return c


def run_case(case, wd, conf, index):
    if case.raw_args is not None:
        args = list(case.raw_args)
        if case.data is not None:
            args += ["--dns-config", conf] + (["--json"] if case.json
                                              else [])
            args.append(wd.file("in/%03d.eml" % index, case.data))
    else:
        args = ["--ip", ec.GOOD_IP, "--helo", "mx.sample.example",
                "--mail-from", "bounce@" + R, "--dns-config", conf]
        args += case.args
        if case.json:
            args.append("--json")
        if case.stream is not None:
            args.append("-")
        else:
            args.append(wd.file("in/%03d.eml" % index, case.data))
    limit = None
    if not os.environ.get("DMARC_CHECK_WRAPPER") and \
            not ec.binary_is_sanitized(ec.dmarc_check_path()):
        limit = 512 * MB
    stdin = case.stream() if case.stream is not None else None
    return ec.run_check(args, stdin=stdin, timeout=case.timeout,
                        as_limit=limit)


def judge(case, run):
    diag = []
    bad = run.crashed()
    if bad:
        return [bad] + run.describe()
    if run.rc not in case.want_rc:
        diag.append("exit status: got %d expected %s" %
                    (run.rc, " or ".join(map(str, sorted(case.want_rc)))))
    err_lines = run.err.decode("utf-8", "replace").rstrip("\n").split("\n")
    if run.rc == 2 and (len(err_lines) != 1 or not err_lines[0].strip()):
        diag.append("stderr: got %d lines expected one line" %
                    len([l for l in err_lines if l]))
    rss_mb = run.rss_kb / 1024.0
    if rss_mb > case.rss_mb * RSS_SCALE:
        diag.append("max RSS: got %.1f MB expected below %d MB" %
                    (rss_mb, case.rss_mb * RSS_SCALE))
    j = {}
    if run.rc == 0 and case.json:
        if run.json is None:
            diag.append("stdout is not JSON: %s" % run.json_error)
        else:
            j = run.json
            if j.get("dmarc") not in DMARC_VALUES:
                diag.append("dmarc: got %r expected one of %s" %
                            (j.get("dmarc"), sorted(DMARC_VALUES)))
    if run.rc == 0 and case.check is not None and (j or not case.json):
        why = case.check(run, j)
        if why:
            diag.append(why)
    if diag:
        diag += run.describe()
    return diag


def main():
    if sys.argv[1:2] == ["--sign-big"]:
        sign_big(sys.argv[2])
        return 0
    tap = ec.Tap()
    wd = ec.Workdir("dmarc-check-bad.")
    try:
        keys = {"rsa": ec.Key.rsa(wd, "rsa")}
        conf = build_zone(keys).write(wd.file("unbound.conf"))
        tap.ok(os.path.getsize(conf) > 65000,
               "fixture: unbound.conf with the 64 KB record written")
        ec.preflight(tap)
        table = cases(wd, keys)
        # Sequential: RSS and time bounds mean more when runs do not
        # compete, and the big cases would multiply memory in parallel.
        for i, case in enumerate(table):
            try:
                run = run_case(case, wd, conf, i)
            except Exception as e:  # noqa: BLE001
                tap.ok(False, case.name, ["harness error: %r" % e])
                continue
            diag = judge(case, run)
            tap.ok(not diag, case.name, diag)
            if os.environ.get("VERBOSE"):
                tap.diag("%s: rc=%d rss=%.1f MB %.2f s" % (
                    case.name, run.rc, run.rss_kb / 1024.0, run.seconds))
    finally:
        wd.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
