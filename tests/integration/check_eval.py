#!/usr/bin/env python3
"""tests/integration/check_eval.py - the end-to-end corpus of dmarc-check:
every case is a message (signed here with dkimpy, with keys made here by
openssl), an SMTP envelope, a configuration and the verdict expected from
`dmarc-check --json`, all against a private DNS served from local-data.

The cases cover every applicable example of RFC 7489 Appendix B and
RFC 9989 Appendix B, alignment in both modes and both directions, DKIM
failures, several authors, sp/np, pct with a fixed random number, t=y,
broken and duplicate records, temporary DNS errors, the 8-label tree-walk
shortcut, psd=, the PSL method on co.uk, the null sender, and the
Authentication-Results text output.

RFC domains are mapped under .example (the tests never touch the real
DNS): example.com is relaxed.example (adkim/aspf relaxed) or
strict.example, example.net / sample.net is sample.example; the Appendix
B.2-B.4 examples each get a domain of their own (b21.example, ...).
bank.example (RFC 9989 B.4.3) and the co.uk names are used as they are.

One TAP line per case; a failing case lists every field that differs.
"""

import os
import re
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evalcorpus as ec  # noqa: E402

ec.need_dkim()
import dkim  # noqa: E402

GOOD, BAD = ec.GOOD_IP, ec.BAD_IP
R, S = "relaxed.example", "strict.example"
SAMPLE = "sample.example"
DEEP_AUTHOR = "a.b.c.d.e.f.g.h.i.j.k.deep.example"   # 13 labels


# ----------------------------------------------------------------- zone

def build_zone(keys):
    z = ec.Zone(static=("example.", "uk."))
    k, ed = keys["rsa"], keys["ed25519"]

    z.comment("example.com of the RFCs, relaxed alignment (the default)")
    z.dmarc(R, "v=DMARC1; p=reject")
    for d in (R, "child." + R, "mta." + R, "mail." + R):
        z.spf(d)
        z.a(d)
    z.key("s1", R, k)
    z.key("ed", R, ed)
    # s2 publishes the first key: a signature made with rsa2 fails.
    z.key("s2", R, k)
    z.key("s1", "child." + R, k)
    z.comment("two DMARC records at one name: neither counts")
    z.dmarc("dup." + R, "v=DMARC1; p=none", "v=DMARC1; p=quarantine")
    z.a("dup." + R)
    z.comment("SPF temperror: the include points into a refused zone")
    z.spf("spftemp." + R, "v=spf1 include:spf.refused.example -all")
    z.a("spftemp." + R)
    z.refuse("refused.example")

    z.comment("issue 12: an attacker's domain whose own lookups fail")
    z.spf("evil2.example")
    z.refuse("_dmarc.evil2.example")
    z.refuse("_domainkey.evil2.example")

    z.comment("example.com of the RFCs, strict alignment")
    z.dmarc(S, "v=DMARC1; p=reject; adkim=s; aspf=s")
    for d in (S, "child." + S, "mta." + S):
        z.spf(d)
        z.a(d)
    z.key("s1", S, k)
    z.key("s1", "child." + S, k)

    z.comment("example.net / sample.net: authenticated, never aligned")
    z.spf(SAMPLE)
    z.a(SAMPLE)
    z.spf("mx." + SAMPLE)
    z.key("s1", SAMPLE, k)

    z.comment("RFC 7489 B.2.1 / RFC 9989 B.2.1, as in the zone file shown")
    z.dmarc("b21.example", ["v=DMARC1; p=none; ",
                            "rua=mailto:dmarc-feedback@b21.example"])
    z.comment("B.2.2: per-message failure reports")
    z.dmarc("b22.example", ["v=DMARC1; p=none; ",
                            "rua=mailto:dmarc-feedback@b22.example; ",
                            "ruf=mailto:auth-reports@b22.example"])
    z.comment("B.2.3: failure reports to a third party, which consents")
    z.dmarc("b23.example", ["v=DMARC1; p=none; ",
                            "rua=mailto:dmarc-feedback@b23.example; ",
                            "ruf=mailto:auth-reports@thirdparty.example"])
    z.txt("b23.example._report._dmarc.thirdparty.example", "v=DMARC1")
    z.comment("RFC 9989 B.2.4: the third party overrides the addresses")
    z.dmarc("b24.example", ["v=DMARC1; p=none; ",
                            "rua=mailto:dmarc-feedback@b24.example; ",
                            "ruf=mailto:auth-reports@thirdparty.example"])
    z.txt("b24.example._report._dmarc.thirdparty.example",
          ["v=DMARC1; ",
           "rua=mailto:aggregate-reports@thirdparty.example; ",
           "ruf=mailto:failure-reports@thirdparty.example"])
    for d in ("b21", "b22", "b23", "b24"):
        z.spf(d + ".example")
        z.key("s1", d + ".example", k)
    z.comment("RFC 7489 B.2.4: subdomain, pct=25, two rua URIs")
    z.dmarc("test.b7424.example",
            ["v=DMARC1; p=quarantine; ",
             "rua=mailto:dmarc-feedback@b7424.example,",
             "mailto:tld-test@thirdparty.example!10m; ", "pct=25"])
    z.a("test.b7424.example")
    z.comment("RFC 9989 B.2.5: subdomain in testing, then at p=reject")
    z.dmarc("test.b925.example",
            ["v=DMARC1; p=quarantine; ",
             "rua=mailto:dmarc-feedback@b925.example,",
             "mailto:tld-test@thirdparty.example; ", "t=y"])
    z.a("test.b925.example")
    z.dmarc("test.b925final.example",
            ["v=DMARC1; p=reject; ",
             "rua=mailto:dmarc-feedback@b925final.example,",
             "mailto:tld-test@thirdparty.example"])
    z.a("test.b925final.example")

    z.comment("RFC 7489 B.3.1 / RFC 9989 B.3.1")
    z.dmarc("b31.example", "v=DMARC1; p=reject; aspf=r; "
            "rua=mailto:dmarc-feedback@b31.example")
    z.spf("mail.b31.example")
    z.key("s1", "b31.example", k)

    z.comment("RFC 9989 B.4.1: records at the domain and at signing.")
    z.dmarc("b41.example", "v=DMARC1; p=reject")
    z.dmarc("signing.b41.example", "v=DMARC1; p=reject")
    z.spf("b41.example")
    z.key("s1", "signing.b41.example", k)

    z.comment("RFC 9989 B.4.2: deep tree walk. The psd=n trap sits at an "
              "8-label name the shortcut skips: a walk that queried it "
              "would end there")
    z.dmarc("deep.example", "v=DMARC1; p=reject")
    z.dmarc("signing.deep.example", "v=DMARC1; p=reject")
    z.dmarc("f.g.h.i.j.k.deep.example", "v=DMARC1; p=none; psd=n")
    z.spf("deep.example")
    z.a(DEEP_AUTHOR)
    z.key("s1", "signing.deep.example", k)

    z.comment("RFC 9989 B.4.3: a PSD record with psd=y")
    z.dmarc("bank.example", "v=DMARC1; p=quarantine; np=reject; psd=y")
    z.dmarc("giant.bank.example", "v=DMARC1; p=reject")
    z.spf("mail.giant.bank.example")
    z.key("s1", "mail.mega.bank.example", k)
    z.a("other.bank.example")

    z.comment("psd=n: dept.psdn.example is its own Organizational Domain")
    z.dmarc("psdn.example", "v=DMARC1; p=reject")
    z.dmarc("dept.psdn.example", "v=DMARC1; p=reject; psd=n")
    z.key("s1", "dept.psdn.example", k)
    z.a("mail.dept.psdn.example")

    z.comment("an intermediate record is not the policy: the org domain is")
    z.dmarc("mid.example", "v=DMARC1; p=reject")
    z.dmarc("dept.mid.example", "v=DMARC1; p=none")
    z.a("host.dept.mid.example")

    z.comment("sp and np; ent.np.example is an empty non-terminal")
    z.dmarc("np.example", "v=DMARC1; p=none; sp=quarantine; np=reject")
    z.a("host.np.example")
    z.a("x.ent.np.example")
    z.dmarc("nonp.example", "v=DMARC1; p=reject; sp=quarantine")

    z.comment("pct (RFC 7489) and t (RFC 9989)")
    for name, rec in (("pct0", "v=DMARC1; p=reject; pct=0"),
                      ("pct50", "v=DMARC1; p=reject; pct=50"),
                      ("pct100", "v=DMARC1; p=reject; pct=100"),
                      ("pctq50", "v=DMARC1; p=quarantine; pct=50"),
                      ("testmode", "v=DMARC1; p=reject; t=y"),
                      ("testno", "v=DMARC1; p=reject; t=n")):
        z.dmarc(name + ".example", rec)
        z.spf(name + ".example")

    z.comment("broken records")
    z.dmarc("dup.example", "v=DMARC1; p=reject", "v=DMARC1; p=quarantine")
    z.dmarc("badp.example", "v=DMARC1; p=bogus")
    z.dmarc("badp-rua.example",
            "v=DMARC1; p=bogus; rua=mailto:agg@badp-rua.example")
    z.dmarc("nop-rua.example", "v=DMARC1; rua=mailto:agg@nop-rua.example")
    z.dmarc("badsp-rua.example", "v=DMARC1; p=reject; sp=bogus; "
            "rua=mailto:agg@badsp-rua.example")
    z.dmarc("nov.example", "p=reject; v=DMARC1")
    z.dmarc("spfonly.example", "v=spf1 -all")
    z.dmarc("mixed.example", "v=spf1 -all", "v=DMARC1; p=reject")

    z.comment("DMARC lookup fails temporarily (REFUSED, like SERVFAIL)")
    z.spf("tempdmarc.example")
    z.a("tempdmarc.example")
    z.refuse("_dmarc.tempdmarc.example")

    z.comment("a multi-label public suffix: co.uk (Debian's PSL)")
    z.dmarc("shop.co.uk", "v=DMARC1; p=reject")
    z.a("news.shop.co.uk")
    z.key("s1", "shop.co.uk", k)
    z.key("s1", "other.co.uk", k)
    z.dmarc("x.shop.co.uk", "v=DMARC1; p=reject; psd=n")
    z.key("s1", "x.shop.co.uk", k)
    return z


# ------------------------------------------------------------- messages

class Msg:
    """A message to build once the keys exist."""

    def __init__(self, frm="alice@" + R, froms=None, sigs=(), tamper=None,
                 subject="Quarterly figures", body=None, extra=()):
        self.froms = [frm] if froms is None else froms
        self.sigs = sigs
        self.tamper = tamper
        self.subject = subject
        self.body = body or (b"Hello,\r\n\r\nthe figures are attached.\r\n"
                             b"\r\n-- \r\nAlice\r\n")
        self.extra = extra

    def build(self, keys):
        hdrs = [("From", f) for f in self.froms]
        hdrs += [("To", "bob@receiver.example"),
                 ("Subject", self.subject),
                 ("Date", "Fri, 15 Feb 2002 16:54:30 -0800"),
                 ("Message-ID", "<%d.figures@sender.example>" %
                  zlib.crc32(repr((self.froms, self.subject)).encode()))]
        hdrs += list(self.extra)
        m = ec.build_message(hdrs, self.body)
        for d, s, kname in self.sigs:
            m = ec.sign(m, d, s, keys[kname])
        if self.tamper == "body":
            m += b"P.S. wire the money to the new account.\r\n"
        elif self.tamper == "header":
            m = m.replace(b"Subject: " + self.subject.encode(),
                          b"Subject: Urgent: new bank details", 1)
        return m


def sig(d, s="s1", key="rsa"):
    return (d, s, key)


# ---------------------------------------------------------- expectations

class Pred:
    def __init__(self, fn, text):
        self.fn, self.text = fn, text

    def __call__(self, v):
        return self.fn(v)

    def __repr__(self):
        return self.text


def has(t):
    return Pred(lambda v: isinstance(v, list) and t in v, "a list with %r" % t)


def lacks(t):
    return Pred(lambda v: isinstance(v, list) and t not in v,
                "a list without %r" % t)


def length(n):
    return Pred(lambda v: isinstance(v, list) and len(v) == n,
                "a list of %d" % n)


MISSING = object()


def lookup(obj, path):
    """Paths: "policy/p", "dkim/[selector=s1]/result" (first element whose
    field has that value), "reasons/*type" (that field of every element),
    "dkim/0/result"."""
    cur = obj
    for seg in path.split("/"):
        if cur is MISSING:
            return MISSING
        if seg.startswith("[") and seg.endswith("]"):
            k, v = seg[1:-1].split("=", 1)
            found = [e for e in (cur if isinstance(cur, list) else [])
                     if isinstance(e, dict) and str(e.get(k)) == v]
            cur = found[0] if found else MISSING
        elif seg.startswith("*"):
            if not isinstance(cur, list):
                return MISSING
            cur = [e.get(seg[1:]) if isinstance(e, dict) else None
                   for e in cur]
        elif isinstance(cur, list):
            try:
                cur = cur[int(seg)]
            except (ValueError, IndexError):
                return MISSING
        elif isinstance(cur, dict):
            cur = cur.get(seg, MISSING)
        else:
            return MISSING
    return cur


def matches(got, want):
    if isinstance(want, Pred):
        return got is not MISSING and want(got)
    if isinstance(want, (set, frozenset)):
        return got in want
    return got == want and type(got) is type(want) if \
        isinstance(want, bool) or isinstance(got, bool) else got == want


# ----------------------------------------------------------------- cases

class Case:
    def __init__(self, name, msg, expect, ip=BAD, helo="mx.sample.example",
                 mail_from="bounce@" + SAMPLE, config=None, random=None,
                 text=None, stdin=False):
        self.name, self.msg, self.expect = name, msg, expect
        self.ip, self.helo, self.mail_from = ip, helo, mail_from
        self.config, self.random = config or {}, random
        self.text = text        # regexes the A-R text output must match
        self.stdin = stdin


PSL = {"OrgDomainMethod": "psl"}
TREE = {"OrgDomainMethod": "treewalk"}


def pass_(extra=None):
    e = {"dmarc": "pass", "disposition": "none"}
    e.update(extra or {})
    return e


def fail(disp, extra=None):
    e = {"dmarc": "fail", "disposition": disp}
    e.update(extra or {})
    return e


def cases():
    c = []
    add = c.append

    # --- RFC 7489 B.1.1 and RFC 9989 B.1.1: SPF (SPF passes in each) ---
    add(Case("RFC 7489/9989 B.1.1 example 1: SPF in (strict) alignment",
             Msg("sender@" + R), pass_({
                 "header_from": R, "policy_domain": R,
                 "spf/result": "pass", "spf/domain": R,
                 "spf/scope": "mfrom", "spf/aligned": True}),
             ip=GOOD, mail_from="sender@" + R))
    add(Case("RFC 7489/9989 B.1.1 example 1 under aspf=s: identical "
             "domains align", Msg("sender@" + S),
             pass_({"spf/aligned": True, "policy/aspf": "s"}),
             ip=GOOD, mail_from="sender@" + S))
    add(Case("RFC 7489/9989 B.1.1 example 2: MAIL FROM child, From parent,"
             " relaxed: aligned", Msg("sender@" + R),
             pass_({"spf/result": "pass", "spf/domain": "child." + R,
                    "spf/aligned": True, "policy/aspf": "r"}),
             ip=GOOD, mail_from="sender@child." + R))
    add(Case("RFC 7489 B.1.1 example 2: MAIL FROM child, From parent, "
             "strict: not aligned", Msg("sender@" + S),
             fail("reject", {"spf/result": "pass", "spf/aligned": False}),
             ip=GOOD, mail_from="sender@child." + S))
    add(Case("RFC 7489/9989 B.1.1 example 3: MAIL FROM example.net, From "
             "child: not aligned", Msg("sender@child." + R),
             fail("reject", {"spf/result": "pass", "spf/domain": SAMPLE,
                             "spf/aligned": False, "policy_domain": R}),
             ip=GOOD, mail_from="sender@" + SAMPLE))

    # --- RFC 7489 B.1.2 and RFC 9989 B.1.2: DKIM (signatures pass) ---
    add(Case("RFC 7489/9989 B.1.2 example 1: d= equals the From domain",
             Msg("sender@" + R, sigs=[sig(R)]),
             pass_({"dkim": length(1), "dkim/0/domain": R,
                    "dkim/0/selector": "s1", "dkim/0/result": "pass",
                    "dkim/0/aligned": True, "spf/result": "fail"})))
    add(Case("RFC 7489/9989 B.1.2 example 1 under adkim=s",
             Msg("sender@" + S, sigs=[sig(S)]),
             pass_({"dkim/0/aligned": True, "policy/adkim": "s"})))
    add(Case("RFC 7489/9989 B.1.2 example 2: d=parent, From child, "
             "relaxed: aligned", Msg("sender@child." + R, sigs=[sig(R)]),
             pass_({"dkim/0/result": "pass", "dkim/0/aligned": True,
                    "header_from": "child." + R, "policy_domain": R})))
    add(Case("RFC 7489/9989 B.1.2 example 2: d=parent, From child, "
             "strict: not aligned", Msg("sender@child." + S, sigs=[sig(S)]),
             fail("reject", {"dkim/0/result": "pass",
                             "dkim/0/aligned": False})))
    add(Case("RFC 7489/9989 B.1.2 example 3: d=sample.net, From child: "
             "not aligned", Msg("sender@child." + R, sigs=[sig(SAMPLE)]),
             fail("reject", {"dkim/0/result": "pass",
                             "dkim/0/domain": SAMPLE,
                             "dkim/0/aligned": False})))

    # --- B.2: Domain Owner examples ---
    for sec, d in (("B.2.1 monitoring only", "b21"),
                   ("B.2.2 per-message reports", "b22"),
                   ("B.2.3 failure reports to a third party", "b23")):
        dom = d + ".example"
        add(Case("RFC 7489/9989 %s: unauthenticated mail is only "
                 "monitored" % sec, Msg("sender@" + dom),
                 fail("none", {"policy_domain": dom, "policy/p": "none",
                               "policy/pct": 100, "policy/t": False,
                               "reasons": length(0)}),
                 ip=BAD, mail_from="sender@" + dom))
        add(Case("RFC 7489/9989 %s: its own authenticated mail passes" % sec,
                 Msg("sender@" + dom, sigs=[sig(dom)]),
                 pass_({"spf/result": "pass", "spf/aligned": True,
                        "dkim/0/aligned": True}),
                 ip=GOOD, mail_from="sender@" + dom))
    add(Case("RFC 9989 B.2.4 overriding report destinations: evaluation "
             "unchanged", Msg("sender@b24.example"),
             fail("none", {"policy_domain": "b24.example",
                           "policy/p": "none"}),
             mail_from="sender@b24.example"))
    add(Case("RFC 7489 B.2.4 subdomain pct=25, random 24: sampled in, "
             "quarantine", Msg("sender@test.b7424.example"),
             fail("quarantine", {"policy_domain": "test.b7424.example",
                                 "policy/p": "quarantine",
                                 "policy/pct": 25,
                                 "reasons/*type": lacks("sampled_out")}),
             random=24))
    add(Case("RFC 7489 B.2.4 subdomain pct=25, random 25: sampled out, "
             "quarantine steps down to none",
             Msg("sender@test.b7424.example"),
             fail("none", {"policy/pct": 25,
                           "reasons/*type": has("sampled_out")}),
             random=25))
    add(Case("RFC 9989 B.2.5 subdomain p=quarantine t=y: none, "
             "policy_test_mode", Msg("sender@test.b925.example"),
             fail("none", {"policy_domain": "test.b925.example",
                           "policy/p": "quarantine", "policy/t": True,
                           "reasons/*type": has("policy_test_mode")})))
    add(Case("RFC 9989 B.2.5 the same subdomain later at p=reject, no t",
             Msg("sender@test.b925final.example"),
             fail("reject", {"policy/p": "reject", "policy/t": False,
                             "reasons": length(0)})))

    # --- B.3.1: SMTP-time processing ---
    add(Case("RFC 7489/9989 B.3.1: SPF id mail.example.com and DKIM "
             "example.com both align: pass",
             Msg("sender@b31.example", sigs=[sig("b31.example")]),
             pass_({"policy/p": "reject", "policy/aspf": "r",
                    "spf/domain": "mail.b31.example", "spf/aligned": True,
                    "dkim/0/aligned": True}),
             ip=GOOD, mail_from="sender@mail.b31.example"))
    add(Case("RFC 7489/9989 B.3.1: no identifier aligns: p=reject applies",
             Msg("sender@b31.example", sigs=[sig(SAMPLE)]),
             fail("reject", {"spf/aligned": False, "dkim/0/aligned": False}),
             ip=GOOD, mail_from="sender@" + SAMPLE))

    # --- RFC 9989 B.4: tree walks ---
    add(Case("RFC 9989 B.4.1: d=signing.example.com aligns relaxed "
             "(org domain example.com, fewest labels)",
             Msg("sender@b41.example", sigs=[sig("signing.b41.example")]),
             pass_({"policy_domain": "b41.example", "spf/result": "fail",
                    "dkim/0/aligned": True}),
             ip=BAD, mail_from="sender@b41.example"))
    add(Case("RFC 9989 B.4.1: MAIL FROM example.com aligns",
             Msg("sender@b41.example"),
             pass_({"spf/result": "pass", "spf/aligned": True}),
             ip=GOOD, mail_from="sender@b41.example"))
    add(Case("RFC 9989 B.4.2 deep tree walk (13 labels): SPF and DKIM "
             "align with example.com", Msg("sender@" + DEEP_AUTHOR,
                                          sigs=[sig("signing.deep.example")]),
             pass_({"header_from": DEEP_AUTHOR,
                    "policy_domain": "deep.example",
                    "spf/aligned": True, "dkim/0/aligned": True}),
             ip=GOOD, mail_from="sender@deep.example"))
    add(Case("RFC 9989 B.4.2 deep tree walk, nothing authenticated: "
             "policy of example.com, skipped 8-label name never queried",
             Msg("sender@" + DEEP_AUTHOR),
             fail("reject", {"policy_domain": "deep.example",
                             "policy/p": "reject"}),
             ip=BAD, mail_from="sender@" + SAMPLE))
    add(Case("RFC 9989 B.4.3 PSD psd=y: SPF mail.giant aligns, DKIM "
             "mail.mega does not: pass",
             Msg("sender@giant.bank.example",
                 sigs=[sig("mail.mega.bank.example")]),
             pass_({"policy_domain": "giant.bank.example",
                    "spf/domain": "mail.giant.bank.example",
                    "spf/aligned": True, "dkim/0/result": "pass",
                    "dkim/0/aligned": False}),
             ip=GOOD, mail_from="sender@mail.giant.bank.example"))
    add(Case("RFC 9989 B.4.3 PSD psd=y: only DKIM mail.mega passes: not "
             "aligned (org domains giant.bank / mega.bank): fail",
             Msg("sender@giant.bank.example",
                 sigs=[sig("mail.mega.bank.example")]),
             fail("reject", {"dkim/0/result": "pass",
                             "dkim/0/aligned": False}),
             ip=BAD, mail_from="sender@mail.giant.bank.example"))
    add(Case("psd=y: an existing domain under the PSD without a record "
             "gets the PSD policy", Msg("sender@other.bank.example"),
             fail("quarantine", {"policy_domain": "bank.example",
                                 "authors/0/policy_tag": {"p", "sp"}})))
    add(Case("psd=y: a non-existent domain under the PSD gets np",
             Msg("sender@ghost.bank.example"),
             fail("reject", {"policy_domain": "bank.example",
                             "authors/0/policy_tag": "np"})))
    add(Case("psd=n: d=dept.psdn.example is its own org domain, not "
             "aligned with psdn.example",
             Msg("sender@psdn.example", sigs=[sig("dept.psdn.example")]),
             fail("reject", {"policy_domain": "psdn.example",
                             "dkim/0/result": "pass",
                             "dkim/0/aligned": False})))
    add(Case("psd=n: the walk from mail.dept.psdn.example stops at "
             "dept.psdn.example", Msg("sender@mail.dept.psdn.example"),
             fail("reject", {"policy_domain": "dept.psdn.example"})))
    add(Case("tree walk: a record between author and org domain is not "
             "the policy (RFC 9989 4.10.1)", Msg("sender@host.dept.mid.example"),
             fail("reject", {"policy_domain": "mid.example",
                             "policy/p": "reject"})))

    # --- DKIM ---
    add(Case("aligned DKIM pass, SPF fails: pass", Msg(sigs=[sig(R)]),
             pass_({"spf/result": "fail", "dkim/0/result": "pass",
                    "dkim/0/aligned": True})))
    add(Case("aligned SPF pass, no signature: pass", Msg(),
             pass_({"spf/result": "pass", "spf/aligned": True,
                    "dkim": length(0)}),
             ip=GOOD, mail_from="bounce@" + R))
    add(Case("unaligned DKIM pass alone: fail",
             Msg(sigs=[sig(SAMPLE)]),
             fail("reject", {"dkim/0/result": "pass",
                             "dkim/0/aligned": False,
                             "spf/result": "fail"})))
    add(Case("tampered body: DKIM fails, dmarc fail",
             Msg(sigs=[sig(R)], tamper="body"),
             fail("reject", {"dkim/0/result": "fail",
                             "dkim/0/domain": R})))
    add(Case("tampered header: DKIM fails, dmarc fail",
             Msg(sigs=[sig(R)], tamper="header"),
             fail("reject", {"dkim/0/result": "fail"})))
    add(Case("two signatures, one made with the wrong key: the good one "
             "passes", Msg(sigs=[sig(R), sig(R, "s2", "rsa2")]),
             pass_({"dkim": length(2), "dkim/[selector=s1]/result": "pass",
                    "dkim/[selector=s2]/result": "fail",
                    "dkim/[selector=s1]/aligned": True})))
    add(Case("two signatures, the aligned one bad, the good one unaligned:"
             " fail", Msg(sigs=[sig(SAMPLE), sig(R, "s2", "rsa2")]),
             fail("reject", {"dkim": length(2),
                             "dkim/[domain=%s]/result" % SAMPLE: "pass",
                             "dkim/[domain=%s]/result" % R: "fail"})))
    add(Case("Ed25519 signature (RFC 8463): aligned pass",
             Msg(sigs=[sig(R, "ed", "ed25519")]),
             pass_({"dkim/0/selector": "ed", "dkim/0/result": "pass",
                    "dkim/0/aligned": True})))
    add(Case("RSA and Ed25519 signatures: both pass",
             Msg(sigs=[sig(R), sig(R, "ed", "ed25519")]),
             pass_({"dkim/[selector=ed]/result": "pass",
                    "dkim/[selector=s1]/result": "pass"})))
    add(Case("Ed25519 signature, tampered body: fail",
             Msg(sigs=[sig(R, "ed", "ed25519")], tamper="body"),
             fail("reject", {"dkim/0/result": "fail"})))
    add(Case("signature whose key is not published: no pass",
             Msg(sigs=[sig(R, "nokey")]),
             fail("reject", {"dkim/0/result": {"fail", "permerror", "none",
                                               "neutral", "policy"}})))

    # --- alignment, strict and relaxed, both mechanisms and directions ---
    for mode, dom in (("relaxed", R), ("strict", S)):
        ok = pass_ if mode == "relaxed" else \
            (lambda e=None: fail("reject", e))
        al = mode == "relaxed"
        add(Case("DKIM %s: From child.%s, d=%s" % (mode, dom, dom),
                 Msg("sender@child." + dom, sigs=[sig(dom)]),
                 ok({"dkim/0/result": "pass", "dkim/0/aligned": al})))
        add(Case("DKIM %s: From %s, d=child.%s" % (mode, dom, dom),
                 Msg("sender@" + dom, sigs=[sig("child." + dom)]),
                 ok({"dkim/0/result": "pass", "dkim/0/aligned": al})))
        add(Case("SPF %s: From child.%s, MAIL FROM %s" % (mode, dom, dom),
                 Msg("sender@child." + dom),
                 ok({"spf/result": "pass", "spf/aligned": al}),
                 ip=GOOD, mail_from="bounce@" + dom))
        add(Case("SPF %s: From %s, MAIL FROM child.%s" % (mode, dom, dom),
                 Msg("sender@" + dom),
                 ok({"spf/result": "pass", "spf/aligned": al}),
                 ip=GOOD, mail_from="bounce@child." + dom))

    # --- upstream results: only TrustedAuthservIDs are read ---
    upstream = Msg("alice@" + R, extra=[
        ("Authentication-Results",
         " border.example; spf=pass (relay checked) smtp.mailfrom=bounce@" +
         R),
        ("Received-SPF", " pass (forged) client-ip=198.51.100.66")])
    add(Case("A-R spf=pass from an untrusted authserv-id changes nothing",
             upstream, fail("reject", {"spf/result": "fail"}),
             mail_from="bounce@" + R))
    add(Case("A-R spf=pass from a TrustedAuthservIDs host is the SPF result",
             upstream, pass_({"spf/result": "pass", "spf/aligned": True,
                              "spf/domain": R}),
             mail_from="bounce@" + R,
             config={"TrustedAuthservIDs": "relay.example, border.example"}))
    add(Case("our own authserv-id in TrustedAuthservIDs is never trusted",
             upstream, fail("reject", {"spf/result": "fail"}),
             mail_from="bounce@" + R,
             config={"TrustedAuthservIDs": "border.example",
                     "AuthservID": "border.example"}))

    # issue 12: bank.example is S; the attacker's own mail fails SPF
    # (BAD ip) and forges fields of the trusted id below the real one.
    relay = {"TrustedAuthservIDs": "relay.example"}
    for what, top in (
            ("a quoted local part",
             ' relay.example; spf=pass smtp.mailfrom="ceo@%s"@%s' %
             (S, SAMPLE)),
            ("smtp.mailfrom inside a reason",
             ' relay.example; spf=pass reason="smtp.mailfrom=%s" '
             'smtp.mailfrom=%s' % (S, SAMPLE))):
        add(Case("trusted A-R with %s: the domain is the real one" % what,
                 Msg("ceo@" + S, extra=[("Authentication-Results", top)]),
                 fail("reject", {"spf/result": "pass",
                                 "spf/domain": SAMPLE,
                                 "spf/aligned": False}),
                 config=relay))
    for what, top in (("spf=none smtp.mailfrom=<>",
                       " relay.example; spf=none smtp.mailfrom=<>"),
                      ("an unknown result word",
                       " relay.example; spf=great smtp.mailfrom=x@" + S),
                      ("no spf= result", " relay.example; none")):
        add(Case("topmost trusted A-R with %s: a lower one of the same id "
                 "is not read" % what,
                 Msg("ceo@" + S, extra=[
                     ("Authentication-Results", top),
                     ("Authentication-Results",
                      " relay.example; spf=pass smtp.mailfrom=ceo@" + S)]),
                 fail("reject", {"spf/result": "fail",
                                 "spf/domain": SAMPLE}),
                 config=relay))

    # issue 12: the attacker's DNS cannot turn fail into temperror.
    add(Case("SPF pass for a domain whose _dmarc is REFUSED: still fail",
             Msg("ceo@" + R), fail("reject", {"spf/result": "pass",
                                             "spf/domain": "evil2.example"}),
             ip=GOOD, mail_from="attacker@evil2.example"))
    add(Case("a signature whose key lookup is REFUSED, unaligned: fail",
             Msg("ceo@" + R, sigs=[sig("evil2.example")]),
             fail("reject", {"dkim/0/result": "temperror"}),
             ip=GOOD, mail_from="attacker@evil2.example"))

    # --- several authors ---
    two_fields = Msg(froms=["alice@" + R, "mallory@" + S], sigs=[sig(R)])
    add(Case("two From fields, the second fails p=reject: strictest wins",
             two_fields,
             {"from_state": "several-fields", "disposition": "reject",
              "authors": length(2),
              "authors/[domain=%s]/dmarc" % R: "pass",
              "authors/[domain=%s]/dmarc" % S: "fail",
              "authors/[domain=%s]/disposition" % S: "reject"}))
    add(Case("two From fields, MultipleFrom first: only the first counts",
             two_fields, {"from_state": "several-fields", "dmarc": "pass",
                          "disposition": "none", "header_from": R},
             config={"MultipleFrom": "first"}))
    add(Case("two From fields, both pass, MultipleFrom reject: reject",
             Msg(froms=["alice@" + R, "alice@child." + R], sigs=[sig(R)]),
             {"from_state": "several-fields", "disposition": "reject",
              "reasons/*type": has("local_policy")},
             config={"MultipleFrom": "reject"}))
    add(Case("two From fields, both pass, strictest: none",
             Msg(froms=["alice@" + R, "alice@child." + R], sigs=[sig(R)]),
             {"from_state": "several-fields", "dmarc": "pass",
              "disposition": "none"}))
    add(Case("one From field with two mailboxes, one fails: reject",
             Msg("alice@%s, mallory@%s" % (R, S), sigs=[sig(R)]),
             {"from_state": "several-mailboxes", "disposition": "reject",
              "authors/[domain=%s]/dmarc" % S: "fail"}))
    add(Case("one From field, two mailboxes of one domain: one author",
             Msg("alice@%s, bob@%s" % (R, R), sigs=[sig(R)]),
             {"from_state": "several-mailboxes", "dmarc": "pass",
              "disposition": "none", "authors": length(1)}))
    add(Case("no From field", Msg(froms=[]),
             {"from_state": "missing", "header_from": None,
              "policy_domain": None}))
    add(Case("From field without a mailbox (empty group)",
             Msg("undisclosed-recipients:;"),
             {"from_state": "unusable", "header_from": None}))

    # --- malformed From fields (issue 12): what a reader shows counts ---
    # strict.example (p=reject) plays bank.example; the attacker's mail
    # passes SPF for sample.example, which never aligns with it.
    shown = [
        ("a word after the angle address", "CEO <ceo@%s> x" % S),
        ("a second '>'", "CEO <ceo@%s>>" % S),
        ("an unclosed angle address", "CEO <ceo@%s" % S),
        ("';' outside a group", "ceo@%s;" % S),
        ("an unclosed comment", "ceo@%s (CEO" % S),
        ("a control byte in the display name", "C\x01O <ceo@%s>" % S),
        ("a domain folded across its labels",
         "ceo@%s\r\n .%s" % (S, SAMPLE)),
        ("an unterminated quote", "\"CEO <ceo@%s>" % S),
    ]
    for what, frm in shown:
        add(Case("malformed From, %s: the shown domain is evaluated" % what,
                 Msg(frm), fail("reject", {
                     "authors/[domain=%s]/dmarc" % S: "fail",
                     "from_fault": "malformed"}), ip=GOOD))
    add(Case("malformed From with a second, passing author: reject",
             Msg("CEO <ceo@%s> x, a@%s" % (S, R), sigs=[]),
             {"disposition": "reject", "from_fault": "malformed",
              "authors/[domain=%s]/dmarc" % S: "fail",
              "authors/[domain=%s]/dmarc" % R: "pass"},
             ip=GOOD, mail_from="bounce@" + R))
    add(Case("a malformed first From field and a good second one: reject",
             Msg(froms=["CEO <ceo@%s> x" % S, "a@" + R]),
             {"disposition": "reject", "from_state": "several-fields",
              "authors/[domain=%s]/dmarc" % S: "fail"},
             ip=GOOD, mail_from="bounce@" + R))
    deceptive = [
        ("an empty label at the end", "ceo@%s.." % S),
        ("U+200E after the domain", "ceo@%s\u200e" % S),
        ("a soft hyphen IDNA would drop", "ceo@strict\u00ad.example"),
        ("a right-to-left override", "CEO <ceo@\u202eelpmaxe.tcirts>"),
        ("a control byte in the domain", "ceo@%s\x01" % S),
    ]
    for what, frm in deceptive:
        add(Case("deceptive From, %s: refused as malformed" % what,
                 Msg(frm), {"disposition": "reject",
                            "from_fault": "deceptive", "dmarc": "permerror",
                            "header_from": None}, ip=GOOD))
    add(Case("deceptive From beside a passing author: still refused",
             Msg("a@%s, ceo@%s.." % (R, S)),
             {"disposition": "reject", "from_fault": "deceptive",
              "dmarc": "pass"}, ip=GOOD, mail_from="bounce@" + R))
    add(Case("deceptive From, MalformedFromAction permissive: the others",
             Msg("a@%s, ceo@%s.." % (R, S)),
             {"disposition": "none", "from_fault": "deceptive",
              "dmarc": "pass"}, ip=GOOD, mail_from="bounce@" + R,
             config={"MalformedFromAction": "permissive"}))
    add(Case("deceptive From in Mode monitor: nothing refused",
             Msg("ceo@%s.." % S),
             {"disposition": "none", "from_fault": "deceptive"},
             ip=GOOD, config={"Mode": "monitor"}))
    add(Case("A-R text: a deceptive From says why in a comment",
             Msg("ceo@%s.." % S), None, ip=GOOD, config={
                 "AuthservID": "mx.receiver.example"}, text=[
                 r"\bdmarc=permerror \(unusable From: empty label in the "
                 r"domain\)"]))
    for what, frm in (("no domain", "alice"), ("an empty domain",
                                               "<alice@>")):
        add(Case("From with %s: outside DMARC, accepted" % what, Msg(frm),
                 {"disposition": "none", "header_from": None,
                  "from_state": "unusable", "from_fault": "malformed"}))
        add(Case("From with %s, NoAuthorAction reject: refused" % what,
                 Msg(frm), {"disposition": "reject", "header_from": None},
                 config={"NoAuthorAction": "reject"}))
    add(Case("no From field, NoAuthorAction reject: refused",
             Msg(froms=[]), {"disposition": "reject",
                             "from_state": "missing"},
             config={"NoAuthorAction": "reject"}))
    add(Case("'From :' (space before the colon) is the From field",
             Msg(froms=[], extra=[b"From : CEO <ceo@" + S.encode() + b">"]),
             fail("reject", {"header_from": S, "from_state": "one"}),
             ip=GOOD))
    add(Case("'From\\t:' (a tab before the colon) is the From field",
             Msg(froms=[], extra=[b"From\t: ceo@" + S.encode()]),
             fail("reject", {"header_from": S}), ip=GOOD))

    # --- sp and np ---
    add(Case("the org domain itself: p applies", Msg("sender@np.example"),
             fail("none", {"policy_domain": "np.example",
                           "authors/0/policy_tag": "p"})))
    add(Case("existing subdomain: sp applies",
             Msg("sender@host.np.example"),
             fail("quarantine", {"policy_domain": "np.example",
                                 "policy/sp": "quarantine",
                                 "authors/0/policy_tag": "sp"})))
    add(Case("non-existent subdomain (NXDOMAIN): np applies",
             Msg("sender@ghost.np.example"),
             fail("reject", {"policy_domain": "np.example",
                             "policy/np": "reject",
                             "authors/0/policy_tag": "np"})))
    add(Case("empty non-terminal subdomain exists (RFC 8020): sp applies",
             Msg("sender@ent.np.example"),
             fail("quarantine", {"authors/0/policy_tag": "sp"})))
    add(Case("non-existent subdomain, no np: sp applies",
             Msg("sender@ghost.nonp.example"),
             fail("quarantine", {"policy_domain": "nonp.example"})))

    # --- pct with a fixed random number, t= ---
    add(Case("pct=50, random 10: sampled in, reject",
             Msg("sender@pct50.example"),
             fail("reject", {"policy/pct": 50,
                             "reasons/*type": lacks("sampled_out")}),
             random=10))
    add(Case("pct=50, random 60: sampled out, reject steps down to "
             "quarantine", Msg("sender@pct50.example"),
             fail("quarantine", {"reasons/*type": has("sampled_out")}),
             random=60))
    add(Case("pct=50, random 4294967210 (mod 100 = 10): sampled in",
             Msg("sender@pct50.example"), fail("reject"),
             random=4294967210))
    add(Case("pct=50, random 60, HonorPct no: no step-down",
             Msg("sender@pct50.example"),
             fail("reject", {"reasons/*type": lacks("sampled_out")}),
             random=60, config={"HonorPct": "no"}))
    add(Case("pct=0, random 0: sampled out, quarantine",
             Msg("sender@pct0.example"),
             fail("quarantine", {"policy/pct": 0,
                                 "reasons/*type": has("sampled_out")}),
             random=0))
    add(Case("pct=100, random 99: sampled in, reject",
             Msg("sender@pct100.example"),
             fail("reject", {"policy/pct": 100, "reasons": length(0)}),
             random=99))
    add(Case("pct=50 p=quarantine, random 60: steps down to none",
             Msg("sender@pctq50.example"),
             fail("none", {"reasons/*type": has("sampled_out")}),
             random=60))
    add(Case("pct=50, aligned pass, random 60: pass, no sampling reason",
             Msg("sender@pct50.example"),
             pass_({"reasons/*type": lacks("sampled_out")}),
             random=60, ip=GOOD, mail_from="sender@pct50.example"))
    add(Case("t=y p=reject: one level down to quarantine, "
             "policy_test_mode", Msg("sender@testmode.example"),
             fail("quarantine", {"policy/t": True,
                                 "reasons/*type": has("policy_test_mode")})))
    add(Case("t=n p=reject: reject", Msg("sender@testno.example"),
             fail("reject", {"policy/t": False,
                             "reasons/*type": lacks("policy_test_mode")})))

    # --- broken, duplicate and foreign records ---
    add(Case("two DMARC records at the author domain: the walk goes on to "
             "the parent", Msg("sender@dup." + R),
             fail("reject", {"policy_domain": R})))
    add(Case("two DMARC records at the author domain, PSL method: DMARC "
             "does not apply (RFC 7489 6.6.3 step 5)", Msg("sender@dup." + R),
             {"dmarc": "none", "disposition": "none"}, config=PSL))
    add(Case("two DMARC records and nothing above: none",
             Msg("sender@dup.example"),
             {"dmarc": "none", "disposition": "none", "policy": None}))
    add(Case("invalid p=, no rua: no DMARC processing",
             Msg("sender@badp.example"),
             {"dmarc": "none", "disposition": "none"}))
    add(Case("invalid p= with a valid rua: as p=none",
             Msg("sender@badp-rua.example"),
             fail("none", {"policy_domain": "badp-rua.example",
                           "policy/p": "none"})))
    add(Case("no p= with a valid rua: as p=none",
             Msg("sender@nop-rua.example"),
             fail("none", {"policy/p": "none"})))
    add(Case("invalid sp= with a valid rua: as p=none",
             Msg("sender@badsp-rua.example"), fail("none")))
    add(Case("record not starting with v=DMARC1: none",
             Msg("sender@nov.example"),
             {"dmarc": "none", "disposition": "none", "policy": None}))
    add(Case("only a non-DMARC TXT at _dmarc: none",
             Msg("sender@spfonly.example"),
             {"dmarc": "none", "disposition": "none", "policy": None}))
    add(Case("a non-DMARC TXT beside the DMARC record is ignored",
             Msg("sender@mixed.example"),
             fail("reject", {"policy_domain": "mixed.example"})))

    # --- temporary DNS errors ---
    add(Case("SPF temperror, no DKIM: temperror, disposition none",
             Msg("sender@" + R),
             {"dmarc": "temperror", "disposition": "none",
              "spf/result": "temperror", "spf/aligned": True},
             ip=GOOD, mail_from="bounce@spftemp." + R))
    add(Case("SPF temperror with an aligned DKIM pass: pass",
             Msg("sender@" + R, sigs=[sig(R)]),
             pass_({"spf/result": "temperror", "dkim/0/result": "pass"}),
             ip=GOOD, mail_from="bounce@spftemp." + R))
    add(Case("DMARC lookup fails (REFUSED/SERVFAIL): temperror",
             Msg("sender@tempdmarc.example"),
             {"dmarc": "temperror", "disposition": "none"},
             ip=GOOD, mail_from="sender@tempdmarc.example"))

    # --- co.uk: a public suffix of two labels ---
    for meth, cfg in (("psl", PSL), ("treewalk", TREE)):
        add(Case("co.uk, %s: From news.shop.co.uk, d=shop.co.uk: relaxed "
                 "pass" % meth, Msg("sender@news.shop.co.uk",
                                    sigs=[sig("shop.co.uk")]),
                 pass_({"policy_domain": "shop.co.uk",
                        "dkim/0/aligned": True}), config=cfg))
        add(Case("co.uk, %s: d=other.co.uk does not align with "
                 "news.shop.co.uk" % meth,
                 Msg("sender@news.shop.co.uk", sigs=[sig("other.co.uk")]),
                 fail("reject", {"dkim/0/result": "pass",
                                 "dkim/0/aligned": False}), config=cfg))
    add(Case("co.uk, psl: d=x.shop.co.uk aligns with shop.co.uk (the PSL "
             "knows no psd=n)", Msg("sender@shop.co.uk",
                                   sigs=[sig("x.shop.co.uk")]),
             pass_({"dkim/0/aligned": True}), config=PSL))
    add(Case("co.uk, treewalk: d=x.shop.co.uk (psd=n) is its own org "
             "domain: no alignment", Msg("sender@shop.co.uk",
                                         sigs=[sig("x.shop.co.uk")]),
             fail("reject", {"dkim/0/aligned": False}), config=TREE))
    add(Case("PSL method on .example names: B.1.2 example 2 still aligns",
             Msg("sender@child." + R, sigs=[sig(R)]),
             pass_({"policy_domain": R, "dkim/0/aligned": True}),
             config=PSL))

    # --- null sender: the HELO identity ---
    add(Case("null sender <>: SPF checks the HELO, relaxed aligned",
             Msg("sender@" + R),
             pass_({"spf/scope": "helo", "spf/domain": "mta." + R,
                    "spf/result": "pass", "spf/aligned": True}),
             ip=GOOD, helo="mta." + R, mail_from="<>"))
    add(Case("no --mail-from: null sender, HELO scope",
             Msg("sender@" + R),
             pass_({"spf/scope": "helo", "spf/domain": "mta." + R}),
             ip=GOOD, helo="mta." + R, mail_from=None))
    add(Case("null sender, strict: HELO mta.strict.example does not align",
             Msg("sender@" + S),
             fail("reject", {"spf/scope": "helo", "spf/result": "pass",
                             "spf/aligned": False}),
             ip=GOOD, helo="mta." + S, mail_from="<>"))
    add(Case("MAIL FROM given: scope mfrom, the HELO is not the identity",
             Msg("sender@" + R),
             fail("reject", {"spf/scope": "mfrom", "spf/domain": SAMPLE}),
             ip=BAD, helo="mta." + R, mail_from="<bounce@%s>" % SAMPLE))

    # --- the message on stdin ---
    add(Case("message read from stdin (-)", Msg(sigs=[sig(R)]),
             pass_({"dkim/0/result": "pass"}), stdin=True))

    # --- Authentication-Results text ---
    ar = {"AuthservID": "mx.receiver.example"}
    add(Case("A-R text: spf, dkim with header.d/header.s, dmarc pass",
             Msg("sender@" + R, sigs=[sig(R)]), None, ip=GOOD,
             mail_from="bounce@" + R, config=ar, text=[
                 r"^Authentication-Results: ?mx\.receiver\.example;",
                 r"\bspf=pass smtp\.mailfrom=relaxed\.example\b",
                 r"\bdkim=pass\b[^;]*\bheader\.d=relaxed\.example\b",
                 r"\bdkim=pass\b[^;]*\bheader\.s=s1\b",
                 r"\bdmarc=pass \(p=reject sp=\w+ dis=none\)[^;]*"
                 r"\bheader\.from=relaxed\.example\b"]))
    add(Case("A-R text: dmarc fail with p=, sp=, dis=reject",
             Msg("sender@" + S, sigs=[sig("child." + S)]), None,
             ip=BAD, config=ar, text=[
                 r"\bspf=fail smtp\.mailfrom=sample\.example\b",
                 r"\bdkim=pass\b[^;]*\bheader\.d=child\.strict\.example\b",
                 r"\bdmarc=fail \(p=reject sp=\w+ dis=reject\)[^;]*"
                 r"\bheader\.from=strict\.example\b"]))
    add(Case("A-R text: np, sp and the HELO identity",
             Msg("sender@ghost.np.example"), None, ip=GOOD,
             helo="mta." + R, mail_from="<>", config=ar, text=[
                 r"\bspf=pass smtp\.helo=mta\.relaxed\.example\b",
                 r"\bdkim=none\b",
                 r"\bdmarc=fail \(p=none sp=quarantine dis=reject\)[^;]*"
                 r"\bheader\.from=ghost\.np\.example\b"]))
    return c


# ---------------------------------------------------------------- runner

def run_case(case, wd, conf, keys, index):
    msg = case.msg.build(keys)
    path = wd.file("msgs/%03d.eml" % index, msg)
    args = ["--ip", case.ip]
    if case.helo is not None:
        args += ["--helo", case.helo]
    if case.mail_from is not None:
        args += ["--mail-from", case.mail_from]
    args += ["--dns-config", conf]
    if case.config:
        args += ["-c", ec.write_config(wd, "%03d" % index, case.config)]
    if case.random is not None:
        args += ["--random", str(case.random)]
    if case.text is None:
        args.append("--json")
    args.append("-" if case.stdin else path)
    return ec.run_check(args, stdin=msg if case.stdin else None, timeout=60)


def judge(case, run):
    """(ok, diagnostics)"""
    diag = []
    bad = run.crashed()
    if bad:
        return False, [bad] + run.describe()
    if run.rc != 0:
        return False, ["exit status %d, expected 0" % run.rc] + \
            run.describe()
    if case.text is not None:
        out = run.out.decode("utf-8", "replace")
        lines = out.rstrip("\n").split("\n")
        if any(not l[:1].isspace() for l in lines[1:]):
            diag.append("got a continuation line not starting with white "
                        "space: not one header field")
        flat = re.sub(r"\r?\n[ \t]+", " ", out)
        for rx in case.text:
            if not re.search(rx, flat, re.M):
                diag.append("got no match, expected /%s/" % rx)
        if diag:
            diag.append("output: " + out.strip())
        return not diag, diag
    if run.json is None:
        return False, ["stdout is not JSON: %s" % run.json_error] + \
            run.describe()
    for path, want in case.expect.items():
        got = lookup(run.json, path)
        if not matches(got, want):
            diag.append("%s: got %s expected %r" % (
                path, "(absent)" if got is MISSING else repr(got), want))
    if diag:
        j = run.json
        diag.append("verdict: dmarc=%s disposition=%s from=%s "
                    "policy_domain=%s spf=%s dkim=%s reasons=%s errors=%s" % (
                        j.get("dmarc"), j.get("disposition"),
                        j.get("header_from"), j.get("policy_domain"),
                        j.get("spf"), j.get("dkim"), j.get("reasons"),
                        j.get("errors")))
        diag.append("command: " + " ".join(run.argv))
    return not diag, diag


def self_checks(tap, zone, keys):
    """The fixture itself: dkimpy must verify what it signed against the
    very zone dmarc-check will be served."""
    for kname, d, s in (("rsa", R, "s1"), ("ed25519", R, "ed"),
                        ("rsa", "shop.co.uk", "s1")):
        m = ec.sign(ec.build_message([("From", "a@" + d), ("Subject", "x")]),
                    d, s, keys[kname])
        try:
            good = dkim.verify(m, dnsfunc=zone.dkimpy_dns)
            err = ""
        except Exception as e:  # noqa: BLE001 - any failure is a finding
            good, err = False, repr(e)
        tap.ok(good, "fixture: dkimpy verifies its own %s signature d=%s "
               "s=%s against the test zone" % (kname, d, s),
               ["dkim.verify failed " + err])
    m = ec.sign(ec.build_message([("From", "a@" + R), ("Subject", "x")]),
                R, "s2", keys["rsa2"])
    tap.ok(not dkim.verify(m, dnsfunc=zone.dkimpy_dns),
           "fixture: a signature with the wrong key fails under dkimpy too",
           ["dkim.verify passed a signature made with rsa2 for s2"])


def main():
    tap = ec.Tap()
    wd = ec.Workdir("dmarc-check-eval.")
    try:
        keys = {"rsa": ec.Key.rsa(wd, "rsa"), "rsa2": ec.Key.rsa(wd, "rsa2"),
                "ed25519": ec.Key.ed25519(wd, "ed25519")}
        zone = build_zone(keys)
        conf = zone.write(wd.file("unbound.conf"))
        self_checks(tap, zone, keys)
        ec.preflight(tap)
        table = cases()
        with ThreadPoolExecutor(max_workers=ec.jobs()) as pool:
            futs = [pool.submit(run_case, c, wd, conf, keys, i)
                    for i, c in enumerate(table)]
            for c, f in zip(table, futs):
                try:
                    run = f.result()
                except Exception as e:  # noqa: BLE001
                    tap.ok(False, c.name, ["harness error: %r" % e])
                    continue
                good, diag = judge(c, run)
                tap.ok(good, c.name, diag)
    finally:
        wd.cleanup(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
