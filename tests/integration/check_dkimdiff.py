#!/usr/bin/env python3
"""tests/integration/check_dkimdiff.py - differential test of our DKIM
verdicts (dmarc-check, i.e. lib/dkim.c over libopendkim) against dkimpy
(python3-dkim), on the same messages and the same key records.

The messages are made here: signed by dkimpy, or by the small signer below
when a signature must carry a tag dkimpy would never write (a duplicate
tag, an odd d=, x= before t=) and still be cryptographically right, then
mutated (body, header, final CRLF, appended text). Both verifiers read the
keys from one zone: dmarc-check through its resolver's local-data, dkimpy
through a dnsfunc over the same records.

For each message: ours is "pass" exactly when dkimpy's verify() is True
(agreement), or the case names the disagreement, our result and why
(explained): then exactly that result is required. A disagreement nobody
explained fails, and so does any pass of a signature whose syntax is
wrong. The summary line counts agreements and
disagreements.
"""

import base64
import hashlib
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evalcorpus as ec  # noqa: E402

ec.need_dkim()
import dkim  # noqa: E402

D = "dk.example"
CRLF = b"\r\n"
HDRS = [("From", "Alice <alice@%s>" % D), ("To", "bob@rcpt.example"),
        ("Subject", "a differential test"),
        ("Date", "Tue, 24 Nov 2026 10:00:00 +0000"),
        ("Message-ID", "<1@%s>" % D)]
BODY = b"Hello Bob,\r\n\r\nthis is a test.\r\n-- \r\nAlice\r\n"


# ---- a signer for signatures dkimpy would not write ----------------------

def relaxed_body(body):
    lines = body.split(CRLF)
    if lines and lines[-1] == b"":
        lines.pop()
    out = [re.sub(rb"[ \t]+", b" ", l).rstrip(b" \t") for l in lines]
    while out and out[-1] == b"":
        out.pop()
    return b"".join(l + CRLF for l in out)


def relaxed_header(name, value):
    v = re.sub(rb"\r\n(?=[ \t])", b"", value)
    v = re.sub(rb"[ \t]+", b" ", v).strip(b" \t")
    return name.strip().lower() + b":" + v


def craft(key_pem_path, tags, headers=HDRS, body=BODY, length=None):
    """A relaxed/relaxed rsa-sha256 DKIM-Signature whose tag list is tags
    (a str with {bh} where the body hash goes, and ending in "b="), signed
    over the From, To and Subject fields, prepended to the message."""
    cb = relaxed_body(body)
    if length is not None:
        cb = cb[:length]
    bh = base64.b64encode(hashlib.sha256(cb).digest()).decode()
    value = tags.replace("{bh}", bh).encode()
    data = b""
    for n, v in headers:
        if n.lower() in ("from", "to", "subject"):
            data += relaxed_header(n.encode(), v.encode()) + CRLF
    data += relaxed_header(b"DKIM-Signature", value)
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_pem_path],
                       input=data, stdout=subprocess.PIPE, check=True)
    sig = value + base64.b64encode(r.stdout)
    return ec.build_message([("DKIM-Signature", sig.decode())] + headers,
                            body)


# ---- the zone --------------------------------------------------------------

def make_zone(w):
    keys = {"rsa": ec.Key.rsa(w, "rsa"), "ed": ec.Key.ed25519(w, "ed")}
    pem = w.file("keys/rsa.pem")
    pkcs1 = base64.b64encode(ec._openssl(
        "rsa", "-in", pem, "-RSAPublicKey_out", "-outform", "DER")).decode()
    spki = keys["rsa"].public_b64
    z = ec.Zone()
    z.key("s1", D, keys["rsa"])
    z.key("ed", D, keys["ed"])
    records = {
        "pkcs1": "v=DKIM1; k=rsa; p=" + pkcs1,
        "nok": "v=DKIM1; p=" + spki,
        "nov": "k=rsa; p=" + spki,
        "v2": "v=DKIM2; k=rsa; p=" + spki,
        "revoked": "v=DKIM1; k=rsa; p=",
        "testing": "v=DKIM1; k=rsa; t=y; p=" + spki,
        "strict": "v=DKIM1; k=rsa; t=s; p=" + spki,
        "hsha256": "v=DKIM1; k=rsa; h=sha256; p=" + spki,
        "hsha1": "v=DKIM1; k=rsa; h=sha1; p=" + spki,
        "semail": "v=DKIM1; k=rsa; s=email; p=" + spki,
        "sstar": "v=DKIM1; k=rsa; s=*; p=" + spki,
        "sother": "v=DKIM1; k=rsa; s=other; p=" + spki,
        "unknown": "v=DKIM1; k=rsa; foo=bar; n=a note; p=" + spki,
        "ktype": "v=DKIM1; k=dsa; p=" + spki,
        "edasrsa": "v=DKIM1; k=rsa; p=" + keys["ed"].public_b64,
        "garbage": "v=DKIM1; k=rsa; p=bm90IGEga2V5",
    }
    for sel, txt in records.items():
        z.txt("%s._domainkey.%s" % (sel, D), txt)
    # the key of s1 at a name no d= may hold ('(' written as \040)
    odd = "legitimate.example(.%s" % D
    z.lines.append("local-data: 's1._domainkey.legitimate.example\\040.%s. "
                   "300 IN TXT %s'" % (D, " ".join(
                       '"%s"' % p.decode() for p in ec.split_txt(
                           keys["rsa"].txt))))
    z.txt_records["s1._domainkey.%s." % odd] = [keys["rsa"].txt.encode()]
    return z, keys, pem


# ---- the cases ---------------------------------------------------------

class Case:
    def __init__(self, name, msg, explain=None, malformed=False,
                 partial=False):
        self.name = name
        self.msg = msg
        self.explain = explain      # (our result, why) when we differ
        self.malformed = malformed  # never pass, whatever dkimpy says
        self.partial = partial      # l= leaves body out: run both ways


def signed(keys, sel="s1", kind="rsa", canon=(b"relaxed", b"relaxed"),
           body=BODY, headers=HDRS, **kw):
    msg = ec.build_message(headers, body)
    return dkim.sign(msg, sel.encode(), D.encode(), keys[kind].private,
                     canonicalize=canon, signature_algorithm=keys[
                         kind].algorithm, linesep=CRLF,
                     include_headers=[b"from", b"to", b"subject"],
                     **kw) + msg


def split(msg):
    i = msg.index(CRLF + CRLF)
    return msg[:i + 2], msg[i + 4:]


def canon_cases(keys):
    out = []
    for kind in ("rsa", "ed"):
        sel = "s1" if kind == "rsa" else "ed"
        for c in ((b"simple", b"simple"), (b"relaxed", b"relaxed"),
                  (b"simple", b"relaxed"), (b"relaxed", b"simple")):
            tag = "%s %s/%s" % (kind, c[0].decode(), c[1].decode())
            m = signed(keys, sel, kind, c)
            h, b = split(m)
            out += [
                Case(tag, m),
                Case(tag + ", tampered body", h + CRLF +
                     b.replace(b"test", b"fake")),
                Case(tag + ", tampered Subject",
                     m.replace(b"a differential test", b"a different test")),
                Case(tag + ", trailing empty lines added", m + b"\r\n\r\n"),
                Case(tag + ", trailing blank line added", m + b" \r\n"),
                Case(tag + ", inner whitespace doubled",
                     m.replace(b"this is", b"this  is")),
                Case(tag + ", no final CRLF", m[:-2]),
                Case(tag + ", no final CRLF, tampered",
                     m[:-2] + b"!"),
                Case(tag + ", empty body signed",
                     signed(keys, sel, kind, c, body=b"")),
            ]
    return out


def header_cases(keys):
    """dkimpy's default h= signs From twice (over-signing): a second From
    above or below breaks the signature for both."""
    msg = ec.build_message(HDRS, BODY)
    sig = dkim.sign(msg, b"s1", D.encode(), keys["rsa"].private,
                    linesep=CRLF)
    h, b = split(sig + msg)
    evil = b"From: Mallory <m@evil.example>\r\n"
    lf = msg.replace(CRLF, b"\n")
    return [
        Case("over-signed From", sig + msg),
        Case("over-signed From, a From added on top", evil + sig + msg),
        Case("over-signed From, a From added below", h + evil + CRLF + b),
        Case("LF line ends throughout", dkim.sign(
            lf, b"s1", D.encode(), keys["rsa"].private,
            linesep=b"\n") + lf),
        Case("text without CRLF appended", sig + msg + b"foo"),
    ]


def length_cases(keys):
    m = signed(keys, length=True)
    return [
        Case("l= the whole body", m),
        Case("l= then appended text", m + b"Buy now!\r\n", partial=True,
             explain=("policy", "by default an l= that leaves body "
                      "unsigned is not a pass (DKIMAcceptPartialBody)")),
        Case("l= then trailing empty lines", m + b"\r\n\r\n"),
    ]


def key_cases(keys):
    rows = [
        ("pkcs1", None), ("nok", None), ("nov", None), ("v2", None),
        ("revoked", None), ("testing", None), ("strict", None),
        ("hsha256", None),
        ("hsha1", ("permerror", "RFC 6376 3.6.1: the key allows only "
                   "sha1, the signature is rsa-sha256; dkimpy ignores "
                   "the key's h=")),
        ("semail", None),
        ("sstar", None), ("sother", None), ("unknown", None),
        ("ktype", None), ("edasrsa", None), ("garbage", None),
        ("nokey", None),
    ]
    return [Case("key record %s" % sel, signed(keys, sel), explain=ex)
            for sel, ex in rows]


SIG = ("v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=s1; "
       "h=from:to:subject; bh={bh}; " % D)


def crafted_cases(pem):
    bad = [
        ("duplicate s=", SIG + "s=s1; b=", None),
        ("duplicate d= (the same)", SIG + "d=%s; b=" % D, None),
        ("d= with '('", SIG.replace("d=%s" % D,
                                    "d=legitimate.example(.%s" % D) + "b=",
         None),
        ("v=2", SIG.replace("v=1", "v=2") + "b=", None),
        ("v missing", SIG.replace("v=1; ", "") + "b=", None),
        ("h= without From", SIG.replace("from:to:subject", "to:subject") +
         "b=", None),
        ("i= outside d=", SIG + "i=a@other.example; b=", None),
        ("x= before t=", SIG + "t=2000000000; x=1900000000; b=", None),
        ("x= equal to t=", SIG + "t=1900000000; x=1900000000; b=",
         ("permerror", "RFC 6376 3.5: x= MUST be greater than t=; dkimpy "
          "only refuses x= < t= (this x= is also past: dkimpy says "
          "expired)")),
        ("empty tag-spec", SIG.replace("; s=s1;", "; s=s1;;") + "b=",
         ("permerror", "RFC 6376 3.2 tag-list has no empty tag-spec; "
          "dkimpy skips empty ones")),
        ("upper-case D=", SIG.replace("d=", "D=") + "b=", None),
        ("unknown a=", SIG.replace("rsa-sha256", "rsa-sha512") + "b=", None),
        ("t= not a number", SIG + "t=12x; b=", None),
        ("c= unknown", SIG.replace("relaxed/relaxed", "relaxed/fancy") +
         "b=", None),
    ]
    good = [
        ("unknown tag", SIG + "foo=bar; b="),
        ("i= in a subdomain", SIG + "i=a@mail.%s; b=" % D),
        ("folded tag list", SIG.replace("; s=", ";\r\n s=") + "b="),
        ("q=dns/txt", SIG + "q=dns/txt; b="),
        ("x= far ahead", SIG + "t=1700000000; x=4000000000; b="),
    ]
    out = [Case("crafted: " + n, craft(pem, t), explain=ex, malformed=True)
           for n, t, ex in bad]
    out += [Case("crafted: " + n, craft(pem, t)) for n, t in good]
    n = len(BODY) - 6
    out.append(Case("crafted: l= larger than the body", craft(
        pem, SIG + "l=%d; b=" % (len(BODY) + 10)), explain=(
            "fail", "l= claims more body than there is (libopendkim's "
            "TOOLARGE_L); dkimpy hashes what there is")))
    out.append(Case("crafted: l= short, body appended", craft(
        pem, SIG + "l=%d; b=" % n, length=n), partial=True,
        explain=("policy", "l= leaves the last line unsigned "
                 "(DKIMAcceptPartialBody)")))
    return out


def rsa_sha1_case(keys):
    m = ec.build_message(HDRS, BODY)
    m = dkim.sign(m, b"s1", D.encode(), keys["rsa"].private,
                  signature_algorithm=b"rsa-sha1", linesep=CRLF,
                  include_headers=[b"from"]) + m
    return [Case("rsa-sha1", m, explain=(
        "policy", "RFC 8301 3.1: rsa-sha1 MUST NOT be considered valid; "
        "dkimpy 1.1 still verifies it"))]


# ---- running both ------------------------------------------------------

def dkimpy_verdict(z, msg):
    try:
        d = dkim.DKIM(msg)
        return "pass" if d.verify(dnsfunc=z.dkimpy_dns) else "False"
    except dkim.DKIMException as e:
        return type(e).__name__


def ours(dnsconf, conf, msg):
    args = ["--ip", ec.GOOD_IP, "--json", "--dns-config", dnsconf]
    if conf:
        args += ["-c", conf]
    r = ec.run_check(args + ["-"], stdin=msg)
    bad = r.crashed()
    if bad or r.json is None or not r.json.get("dkim"):
        return None, "; ".join(r.describe()) if not bad else bad
    s = r.json["dkim"][0]
    return s["result"], s.get("error") or ""


def judge(tap, c, py, mine, why, partial_conf):
    name = c.name + (" (DKIMAcceptPartialBody yes)" if partial_conf else "")
    if mine is None:
        tap.ok(False, name + ": dmarc-check gave a verdict", [why])
        return "broken"
    if c.malformed and mine == "pass":
        tap.ok(False, name + ": a malformed signature never passes",
               ["ours pass, dkimpy %s" % py])
        return "disagree"
    agree = (mine == "pass") == (py == "pass")
    ex = None if partial_conf else c.explain
    if agree and (ex is None or ex[0] == mine):
        tap.ok(True, "%s: agree (ours %s, dkimpy %s)" % (name, mine, py))
        return "agree"
    # an explained case must come out as explained, agreeing or not
    ok = ex is not None and ex[0] == mine and not agree
    tap.ok(ok, "%s: ours %s, dkimpy %s: %s" % (
        name, mine, py, ex[1] if ex else "UNEXPLAINED"),
        ["reason: " + why])
    return "explained" if ok else "disagree"


def main():
    tap = ec.Tap()
    ec.preflight(tap)
    w = ec.Workdir("dkimdiff.")
    try:
        z, keys, pem = make_zone(w)
        dnsconf = z.write(w.file("dns.conf"))
        partial = ec.write_config(w, "partial",
                                  {"DKIMAcceptPartialBody": "yes"})
        cases = canon_cases(keys) + header_cases(keys) + \
            length_cases(keys) + key_cases(keys) + crafted_cases(pem) + \
            rsa_sha1_case(keys)
        runs = [(c, None) for c in cases] + \
            [(c, partial) for c in cases if c.partial]
        t0 = time.monotonic()
        with ThreadPoolExecutor(ec.jobs()) as pool:
            got = list(pool.map(lambda r: ours(dnsconf, r[1], r[0].msg),
                                runs))
        counts = {}
        for (c, conf), (mine, why) in zip(runs, got):
            k = judge(tap, c, dkimpy_verdict(z, c.msg), mine, why,
                      conf is not None)
            counts[k] = counts.get(k, 0) + 1
        tap.diag("%d messages in %.1f s: %d agreements, %d explained "
                 "disagreements, %d unexplained, %d without a verdict" % (
                     len(runs), time.monotonic() - t0,
                     counts.get("agree", 0), counts.get("explained", 0),
                     counts.get("disagree", 0), counts.get("broken", 0)))
    finally:
        w.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
