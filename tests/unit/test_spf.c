/*
 * tests/unit/test_spf.c - our SPF evaluator over our resolver: the seven
 * results, both scopes, IPv4 and IPv6 clients, include/redirect, a/mx/
 * ptr/exists, macros, the RFC 7208 4.6.4 limits (also across includes),
 * identities without a local-part or a valid domain, and many threads
 * on one dm_spf; then cases written from RFC 7208 section by section
 * (rfc_rows, with explanations), whose counts per section are printed.
 * DNS comes from tests/fixtures/spf.conf, never the network. The record
 * parser and the macros alone are test_spfrec's.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "dm_log.h"
#include "dm_resolver.h"
#include "dm_spf.h"
#include "tap.h"

#define S	".spf.example"
#define IN4	"192.0.2.10"
#define OUT4	"198.51.100.1"
#define IN6	"2001:db8:1::5"
#define OUT6	"2001:db8:2::1"
#define HELO	"mta.client.example"

#define NONE	DM_SPF_NONE
#define NEUTRAL	DM_SPF_NEUTRAL
#define PASS	DM_SPF_PASS
#define FAIL	DM_SPF_FAIL
#define SOFT	DM_SPF_SOFTFAIL
#define TEMP	DM_SPF_TEMPERROR
#define PERM	DM_SPF_PERMERROR
#define MFROM	DM_SPF_SCOPE_MFROM
#define HSCOPE	DM_SPF_SCOPE_HELO

struct row {
	const char *name;
	const char *ip, *helo, *mail_from;
	dm_spf_result want;
	dm_spf_scope scope;
	const char *domain;
};

static const struct row rows[] = {
	/* the seven results, IPv4 and IPv6 */
	{ "pass v4", IN4, HELO, "user@pass" S, PASS, MFROM, "pass" S },
	{ "fail v4", OUT4, HELO, "user@pass" S, FAIL, MFROM, "pass" S },
	{ "pass v6", IN6, HELO, "user@pass" S, PASS, MFROM, "pass" S },
	{ "fail v6", OUT6, HELO, "user@pass" S, FAIL, MFROM, "pass" S },
	{ "v4-mapped v6 is v4", "::ffff:192.0.2.10", HELO, "user@pass" S,
	    PASS, MFROM, "pass" S },
	{ "IPv6: prefix", "IPv6:" IN6, HELO, "user@pass" S, PASS, MFROM,
	    "pass" S },
	{ "softfail", OUT4, HELO, "user@soft" S, SOFT, MFROM, "soft" S },
	{ "neutral ?all", OUT4, HELO, "user@neutral" S, NEUTRAL, MFROM,
	    "neutral" S },
	{ "bare v=spf1 is neutral", OUT4, HELO, "user@bare" S, NEUTRAL, MFROM,
	    "bare" S },
	{ "V=SPF1 in capitals", "192.0.2.1", HELO, "user@upper" S, PASS,
	    MFROM, "upper" S },
	{ "none: TXT but no v=spf1 (v=spf10 too)", IN4, HELO, "user@nospf" S,
	    NONE, MFROM, "nospf" S },
	{ "none: no TXT at all", IN4, HELO, "user@notxt" S, NONE, MFROM,
	    "notxt" S },
	{ "none: NXDOMAIN", IN4, HELO, "user@nx" S, NONE, MFROM, "nx" S },
	{ "temperror: REFUSED", IN4, HELO, "user@x.refused.example", TEMP,
	    MFROM, "x.refused.example" },
	{ "temperror: root refused", IN4, HELO, "user@elsewhere.example",
	    TEMP, MFROM, "elsewhere.example" },
	{ "permerror: bad ip4", IN4, HELO, "user@bad" S, PERM, MFROM,
	    "bad" S },
	{ "permerror: unknown mechanism", IN4, HELO, "user@badmech" S, PERM,
	    MFROM, "badmech" S },
	{ "permerror: two v=spf1 records", "192.0.2.1", HELO, "user@two" S,
	    PERM, MFROM, "two" S },
	{ "one v=spf1 among other TXT", "192.0.2.1", HELO, "user@onespf" S,
	    PASS, MFROM, "onespf" S },
	{ "permerror: redirect= twice", IN4, HELO, "user@tworedir" S, PERM,
	    MFROM, "tworedir" S },
	/* include and redirect */
	{ "include: pass", IN4, HELO, "user@inc" S, PASS, MFROM, "inc" S },
	{ "include: fail", OUT4, HELO, "user@inc" S, FAIL, MFROM, "inc" S },
	{ "include of none is permerror", IN4, HELO, "user@incnone" S, PERM,
	    MFROM, "incnone" S },
	{ "include of NXDOMAIN is permerror", IN4, HELO, "user@incnx" S, PERM,
	    MFROM, "incnx" S },
	{ "include of temperror", IN4, HELO, "user@inctemp" S, TEMP, MFROM,
	    "inctemp" S },
	{ "include of permerror", IN4, HELO, "user@incbad" S, PERM, MFROM,
	    "incbad" S },
	{ "redirect: pass", IN4, HELO, "user@redir" S, PASS, MFROM,
	    "redir" S },
	{ "redirect: fail", OUT4, HELO, "user@redir" S, FAIL, MFROM,
	    "redir" S },
	{ "redirect to none is permerror", IN4, HELO, "user@redirnone" S,
	    PERM, MFROM, "redirnone" S },
	/* a, mx, ptr, exists, macros */
	{ "a: pass", "192.0.2.20", HELO, "user@a" S, PASS, MFROM, "a" S },
	{ "a: pass v6 (AAAA)", "2001:db8:a::20", HELO, "user@a" S, PASS,
	    MFROM, "a" S },
	{ "a: fail", "192.0.2.21", HELO, "user@a" S, FAIL, MFROM, "a" S },
	{ "a:host/24: pass", "198.51.100.77", HELO, "user@acidr" S, PASS,
	    MFROM, "acidr" S },
	{ "a:host/24: fail", "192.0.2.1", HELO, "user@acidr" S, FAIL, MFROM,
	    "acidr" S },
	{ "a: temperror", IN4, HELO, "user@atemp" S, TEMP, MFROM, "atemp" S },
	{ "mx: second MX host", "192.0.2.32", HELO, "user@mx" S, PASS, MFROM,
	    "mx" S },
	{ "mx: v6", "2001:db8:2::32", HELO, "user@mx" S, PASS, MFROM,
	    "mx" S },
	{ "mx: fail", "192.0.2.33", HELO, "user@mx" S, FAIL, MFROM, "mx" S },
	{ "mx: 11 MX hosts is permerror", "192.0.2.1", HELO, "user@mxmany" S,
	    PERM, MFROM, "mxmany" S },
	{ "ptr: validated name", "192.0.2.40", HELO, "user@ptr" S, PASS,
	    MFROM, "ptr" S },
	{ "ptr: name without address", "192.0.2.41", HELO, "user@ptr" S,
	    FAIL, MFROM, "ptr" S },
	{ "ptr: no PTR", "192.0.2.42", HELO, "user@ptr" S, FAIL, MFROM,
	    "ptr" S },
	{ "exists:%{i}: pass", "192.0.2.50", HELO, "user@exists" S, PASS,
	    MFROM, "exists" S },
	{ "exists:%{i}: fail", "192.0.2.51", HELO, "user@exists" S, FAIL,
	    MFROM, "exists" S },
	{ "macro %{l}.%{d}: pass", "192.0.2.1", HELO, "alice@macro" S, PASS,
	    MFROM, "macro" S },
	{ "macro %{l}.%{d}: fail", "192.0.2.1", HELO, "bob@macro" S, FAIL,
	    MFROM, "macro" S },
	{ "record over 255 bytes, first string", "198.51.100.2", HELO,
	    "user@long" S, PASS, MFROM, "long" S },
	{ "record over 255 bytes, last string", "203.0.113.77", HELO,
	    "user@long" S, PASS, MFROM, "long" S },
	/* limits */
	{ "10 DNS terms are allowed", "192.0.2.1", HELO, "user@ten" S, FAIL,
	    MFROM, "ten" S },
	{ "11 DNS terms: permerror", "192.0.2.1", HELO, "user@eleven" S,
	    PERM, MFROM, "eleven" S },
	{ "terms add up across include", "192.0.2.1", HELO, "user@chain" S,
	    PERM, MFROM, "chain" S },
	{ "include loop: permerror", IN4, HELO, "user@loopa" S, PERM, MFROM,
	    "loopa" S },
	{ "2 void lookups are allowed", "192.0.2.1", HELO, "user@void2" S,
	    PASS, MFROM, "void2" S },
	{ "3 void lookups: permerror", "192.0.2.1", HELO, "user@void3" S,
	    PERM, MFROM, "void3" S },
	/* HELO scope */
	{ "helo: null sender", "192.0.2.60", "helo" S, NULL, PASS, HSCOPE,
	    "helo" S },
	{ "helo: empty sender", "192.0.2.60", "helo" S, "", PASS, HSCOPE,
	    "helo" S },
	{ "helo: fail", "192.0.2.61", "helo" S, NULL, FAIL, HSCOPE,
	    "helo" S },
	{ "helo: case and trailing dot", "192.0.2.60", "HELO.Spf.Example.",
	    NULL, PASS, HSCOPE, "helo" S },
	{ "helo: none given", "192.0.2.60", NULL, NULL, NONE, HSCOPE, "" },
	{ "helo: address literal", "192.0.2.60", "[192.0.2.60]", "", NONE,
	    HSCOPE, "" },
	/* odd identities and clients */
	{ "sender without @ is a domain", IN4, HELO, "pass" S, PASS, MFROM,
	    "pass" S },
	{ "sender @domain", IN4, HELO, "@pass" S, PASS, MFROM, "pass" S },
	{ "sender domain normalised", IN4, HELO, "User@PASS.SPF.Example.",
	    PASS, MFROM, "pass" S },
	{ "sender single-label domain", IN4, HELO, "root@localhost", NONE,
	    MFROM, "localhost" },
	{ "sender malformed domain", IN4, HELO, "user@bad..example", NONE,
	    MFROM, "" },
	{ "loopback gets no free pass", "127.0.0.1", HELO, "user@pass" S,
	    FAIL, MFROM, "pass" S },
	{ "::1 gets no free pass", "::1", HELO, "user@pass" S, FAIL, MFROM,
	    "pass" S },
	{ "bad client address", "not-an-ip", HELO, "user@pass" S, NONE,
	    MFROM, "pass" S },
	{ "no client address", NULL, HELO, "user@pass" S, NONE, MFROM,
	    "pass" S },
};

#define NROWS	(sizeof(rows) / sizeof(rows[0]))

static void
test_rows(dm_spf *s)
{
	dm_spf_outcome out;
	const char *ident;
	dm_status st;
	size_t i;

	for (i = 0; i < NROWS; i++) {
		st = dm_spf_check(s, rows[i].ip, rows[i].helo,
		    rows[i].mail_from, &out);
		tap_is_str(dm_spf_result_str(out.result),
		    dm_spf_result_str(rows[i].want), "%s: result (status %s, "
		    "comment: %s)", rows[i].name, dm_status_str(st),
		    out.comment);
		tap_is_str(dm_spf_scope_str(out.scope),
		    dm_spf_scope_str(rows[i].scope), "%s: scope",
		    rows[i].name);
		tap_is_str(out.domain, rows[i].domain, "%s: domain",
		    rows[i].name);
		ident = rows[i].scope == DM_SPF_SCOPE_HELO ? rows[i].helo :
		    rows[i].mail_from;
		tap_is_str(out.identity, ident != NULL ? ident : "",
		    "%s: identity", rows[i].name);
	}
}

/* Errors and refusals carry a reason for the logs. */
static void
test_comments(dm_spf *s)
{
	static const char *const senders[] = {
		"user@two" S, "user@eleven" S, "user@void3" S,
		"user@x.refused.example", "user@nospf" S,
	};
	dm_spf_outcome out;
	size_t i;

	for (i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		dm_spf_check(s, IN4, HELO, senders[i], &out);
		tap_ok(out.comment[0] != '\0', "%s: comment \"%s\" not empty",
		    senders[i], out.comment);
	}
}

static void
test_strings(void)
{
	static const struct {
		dm_spf_result r;
		const char *want;
	} res[] = {
		{ NONE, "none" }, { NEUTRAL, "neutral" }, { PASS, "pass" },
		{ FAIL, "fail" }, { SOFT, "softfail" }, { TEMP, "temperror" },
		{ PERM, "permerror" },
	};
	size_t i;

	for (i = 0; i < sizeof(res) / sizeof(res[0]); i++)
		tap_is_str(dm_spf_result_str(res[i].r), res[i].want,
		    "dm_spf_result_str(%d)", (int)res[i].r);
	tap_is_str(dm_spf_scope_str(MFROM), "mfrom", "scope string mfrom");
	tap_is_str(dm_spf_scope_str(HSCOPE), "helo", "scope string helo");
}

/* --- RFC 7208, section by section ------------------------------------ */

#define L63	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define IN6N	"2.0.0.1.0.d.b.8.0.0.0.1.0.0.0.0." \
		"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.5"

struct rfc_row {
	const char *sec;	/* the section of RFC 7208 it reads */
	const char *name;
	const char *ip, *helo, *mail_from;
	dm_spf_result want;
	const char *exp;	/* the explanation wanted; NULL: "" */
};

#define U(d)	"user@" d S
static const struct rfc_row rfc_rows[] = {
	/* 2: identities and results */
	{ "2.3", "HELO identity: postmaster@helo for %{l} %{o}", IN4,
	    "helo2" S, NULL, PASS, NULL },
	{ "2.4", "MAIL FROM identity checked, not HELO", OUT4, "helo" S,
	    U("pass"), FAIL, NULL },
	{ "2.6", "pass", IN4, HELO, U("pass"), PASS, NULL },
	{ "2.6", "fail", OUT4, HELO, U("pass"), FAIL, NULL },
	{ "2.6", "softfail", OUT4, HELO, U("soft"), SOFT, NULL },
	{ "2.6", "neutral", OUT4, HELO, U("neutral"), NEUTRAL, NULL },
	{ "2.6", "none", IN4, HELO, U("nospf"), NONE, NULL },
	{ "2.6", "temperror", IN4, HELO, "u@x.refused.example", TEMP, NULL },
	{ "2.6", "permerror", IN4, HELO, U("badmech"), PERM, NULL },
	/* 3: records */
	{ "3.3", "strings joined without a space", IN4, HELO, U("s33"), PASS,
	    NULL },
	{ "3.3", "over 255 bytes in two strings", "203.0.113.77", HELO,
	    U("long"), PASS, NULL },
	{ "3", "\"v=spf1\" glued to a term is no record", IN4, HELO,
	    U("s3nosp"), NONE, NULL },
	{ "3", "\"v=spf1\" then a tab is no record", IN4, HELO, U("s3tab"),
	    NONE, NULL },
	/* 4.3 */
	{ "4.3", "a label of 64 bytes: none, not looked up", IN4, HELO,
	    "u@a" L63 S, NONE, NULL },
	{ "4.3", "a label of 63 bytes is looked up", IN4, HELO, "u@" L63 S,
	    FAIL, NULL },
	{ "4.3", "empty label: none", IN4, HELO, "u@a..spf.example", NONE,
	    NULL },
	{ "4.3", "single label: none", IN4, HELO, "u@example", NONE, NULL },
	{ "4.3", "no local-part: postmaster", IN4, HELO, "@s43lp" S, PASS,
	    NULL },
	{ "4.3", "NXDOMAIN: none", IN4, HELO, U("nx"), NONE, NULL },
	/* 4.4 */
	{ "4.4", "TXT lookup refused: temperror", IN4, HELO,
	    "u@y.refused.example", TEMP, NULL },
	{ "4.4", "no TXT: none", IN4, HELO, U("noTXT"), NONE, NULL },
	/* 4.5 */
	{ "4.5", "8-bit non-SPF TXT beside the record", IN4, HELO, U("s45a"),
	    PASS, NULL },
	{ "4.5", "version in any case", IN4, HELO, U("s45e"), PASS, NULL },
	{ "4.5", "\"v=spf1\" and \"v=spf1 +all\": two records", IN4, HELO,
	    U("s45f"), PERM, NULL },
	{ "4.5", "two records: permerror", "192.0.2.1", HELO, U("two"), PERM,
	    NULL },
	/* 4.6.1 syntax */
	{ "4.6.1", "an error after a match: permerror", IN4, HELO,
	    U("s461a"), PERM, NULL },
	{ "4.6.1", "'%' not followed by { % _ -", IN4, HELO, U("s461b"), PERM,
	    NULL },
	{ "4.6.1", "redirect: as a mechanism", IN4, HELO, U("s461c"), PERM,
	    NULL },
	{ "4.6.1", "empty exp=", IN4, HELO, U("s461d"), PERM, NULL },
	{ "4.6.1", "empty redirect=", IN4, HELO, U("s461e"), PERM, NULL },
	{ "4.6.1", "bad macro letter in an unknown modifier", IN4, HELO,
	    U("s461f"), PERM, NULL },
	{ "4.6.1", "CIDR length with a leading zero", IN4, HELO, U("s461g"),
	    PERM, NULL },
	{ "4.6.1", "several spaces and a trailing one", IN4, HELO, U("s461h"),
	    PASS, NULL },
	{ "4.6.1", "a term without a name (=a)", IN4, HELO, U("s461i"), PERM,
	    NULL },
	{ "4.6.1", "two qualifiers", IN4, HELO, U("s461j"), PERM, NULL },
	{ "4.6.1", "a modifier name cannot hold a macro", IN4, HELO,
	    U("s461k"), PERM, NULL },
	{ "4.6.1", "8-bit byte in a domain-spec", IN4, HELO, U("s45b"), PERM,
	    NULL },
	{ "4.6.1", "control byte in a domain-spec", IN4, HELO, U("s45c"),
	    PERM, NULL },
	{ "4.6.1", "NUL in the record", IN4, HELO, U("s45d"), PERM, NULL },
	/* 4.6.2, 4.6.3 */
	{ "4.6.2", "the first match wins", IN4, HELO, U("s462a"), FAIL, NULL },
	{ "4.6.3", "redirect= first runs after the mechanisms (no match)",
	    IN4, HELO, U("s463a"), PASS, NULL },
	{ "4.6.3", "redirect= first runs after the mechanisms (match)", OUT4,
	    HELO, U("s463a"), FAIL, NULL },
	{ "4.6.3", "unknown modifiers with . - _ in the name are ignored",
	    IN4, HELO, U("s463b"), PASS, NULL },
	{ "4.6.3", "a modifier name starts with a letter", IN4, HELO,
	    U("s463c"), PERM, NULL },
	{ "4.6.3", "an unknown modifier twice is no error", IN4, HELO,
	    U("s463d"), PASS, NULL },
	/* 4.6.4 limits */
	{ "4.6.4", "10 DNS terms", "192.0.2.1", HELO, U("ten"), FAIL, NULL },
	{ "4.6.4", "a match at the 10th DNS term", "198.51.100.210", HELO,
	    U("ten"), PASS, NULL },
	{ "4.6.4", "11 DNS terms", "192.0.2.1", HELO, U("eleven"), PERM,
	    NULL },
	{ "4.6.4", "redirect= is the 11th term", IN4, HELO, U("s464c"), PERM,
	    NULL },
	{ "4.6.4", "terms of includes count", "192.0.2.1", HELO, U("chain"),
	    PERM, NULL },
	{ "4.6.4", "11 MX names with a match: permerror", "198.51.100.101",
	    HELO, U("mxmany"), PERM, NULL },
	{ "4.6.4", "10 MX names with a match: pass", "198.51.100.110", HELO,
	    U("s464b"), PASS, NULL },
	{ "4.6.4", "redirect to itself after a match: pass", IN4, HELO,
	    U("s464e"), PASS, NULL },
	{ "4.6.4", "redirect to itself, no match: permerror", OUT4, HELO,
	    U("s464e"), PERM, NULL },
	{ "4.6.4", "include loop: permerror", IN4, HELO, U("loopa"), PERM,
	    NULL },
	{ "4.6.4", "12 PTR names: no permerror", "192.0.2.70", HELO,
	    U("s464f"), PASS, NULL },
	{ "4.6.4", "2 void terms", "192.0.2.1", HELO, U("void2"), PASS, NULL },
	{ "4.6.4", "3 void terms", "192.0.2.1", HELO, U("void3"), PERM, NULL },
	{ "4.6.4", "3 void exists", IN4, HELO, U("s464h"), PERM, NULL },
	{ "4.6.4", "MX hosts without address are no void terms", IN4, HELO,
	    U("s464g"), PASS, NULL },
	/* 4.7, 4.8 */
	{ "4.7", "no match, no redirect: neutral", IN4, HELO, U("s47"),
	    NEUTRAL, NULL },
	{ "4.8", "single-label domain-spec", IN4, HELO, U("s48a"), PERM,
	    NULL },
	{ "4.8", "numeric top label", IN4, HELO, U("s48b"), PERM, NULL },
	{ "4.8", "top label starting with '-'", IN4, HELO, U("s48c"), PERM,
	    NULL },
	{ "4.8", "top label ending with '-'", IN4, HELO, U("s48d"), PERM,
	    NULL },
	{ "4.8", "trailing dot", "198.51.100.9", HELO, U("s48e"), PASS, NULL },
	{ "4.8", "empty top label", IN4, HELO, U("s48f"), PERM, NULL },
	{ "4.8", "text after the last macro", IN4, HELO, U("s48g"), PERM,
	    NULL },
	{ "4.8", "expanded label over 63 bytes: no match", IN4, HELO,
	    "a" L63 "@s48h" S, FAIL, NULL },
	{ "4.8", "expansion over 253 bytes cut on the left", IN4, HELO,
	    L63 "@s48i" S, PASS, NULL },
	{ "4.8", "empty label inside: no match", IN4, HELO, U("s48j"), SOFT,
	    NULL },
	/* 5.1 all */
	{ "5.1", "all matches", OUT4, HELO, U("s51a"), PASS, NULL },
	{ "5.1", "redirect= ignored beside all", IN4, HELO, U("s51b"), FAIL,
	    NULL },
	{ "5.1", "all with an argument", IN4, HELO, U("s51d"), PERM, NULL },
	{ "5.1", "all with a CIDR length", IN4, HELO, U("s51e"), PERM, NULL },
	{ "5.1", "terms after all are not tested", IN4, HELO, U("s51f"), SOFT,
	    NULL },
	/* 5.2 include */
	{ "5.2", "include: pass matches", IN4, HELO, U("inc"), PASS, NULL },
	{ "5.2", "include: softfail does not match", OUT4, HELO, U("s52a"),
	    FAIL, NULL },
	{ "5.2", "include: neutral does not match", OUT4, HELO, U("s52b"),
	    SOFT, NULL },
	{ "5.2", "include: none is permerror", IN4, HELO, U("incnone"), PERM,
	    NULL },
	{ "5.2", "include: temperror", IN4, HELO, U("inctemp"), TEMP, NULL },
	{ "5.2", "include: permerror", IN4, HELO, U("incbad"), PERM, NULL },
	{ "5.2", "include with a CIDR length", IN4, HELO, U("s52c"), PERM,
	    NULL },
	{ "5.2", "include: empty", IN4, HELO, U("s52d"), PERM, NULL },
	{ "5.2", "include without domain", IN4, HELO, U("s52e"), PERM, NULL },
	{ "5.2", "%{d} is the included domain, %{o} the sender's", IN4, HELO,
	    U("s52f"), PASS, NULL },
	/* 5.3 a */
	{ "5.3", "a/0 matches any IPv4 host", OUT4, HELO, U("s53a"), PASS,
	    NULL },
	{ "5.3", "a//0 matches any IPv6 host", OUT6, HELO, U("s53b"), PASS,
	    NULL },
	{ "5.3", "dual CIDR, IPv4 side", "198.51.100.200", HELO, U("s53c"),
	    PASS, NULL },
	{ "5.3", "dual CIDR, IPv6 side", "2001:db8:5::ffff", HELO, U("s53c"),
	    PASS, NULL },
	{ "5.3", "dual CIDR, outside the /64", "2001:db8:6::1", HELO,
	    U("s53c"), FAIL, NULL },
	{ "5.3", "a/33", IN4, HELO, U("s53d"), PERM, NULL },
	{ "5.3", "a//129", IN4, HELO, U("s53e"), PERM, NULL },
	{ "5.3", "a/024", IN4, HELO, U("s53f"), PERM, NULL },
	{ "5.3", "IPv6 client asks AAAA only", IN6, HELO, U("acidr"), FAIL,
	    NULL },
	{ "5.3", "a: empty", IN4, HELO, U("s53h"), PERM, NULL },
	{ "5.3", "a:foo:bar.spf.example is a name", IN4, HELO, U("s53i"), SOFT,
	    NULL },
	/* 5.4 mx */
	{ "5.4", "mx with a CIDR length", "192.0.2.99", HELO, U("s54a"), PASS,
	    NULL },
	{ "5.4", "null MX matches nothing", IN4, HELO, U("s54b"), SOFT, NULL },
	{ "5.4", "mx: empty", IN4, HELO, U("s54c"), PERM, NULL },
	{ "5.4", "an MX host's lookup fails: temperror", IN4, HELO, U("s54d"),
	    TEMP, NULL },
	/* 5.5 ptr */
	{ "5.5", "ptr:domain, validated name under it", "192.0.2.40", HELO,
	    U("s55a"), PASS, NULL },
	{ "5.5", "ptr:domain, name elsewhere", "192.0.2.40", HELO, U("s55b"),
	    FAIL, NULL },
	{ "5.5", "PTR lookup fails: no match, no temperror", OUT4, HELO,
	    U("s55c"), SOFT, NULL },
	{ "5.5", "ptr/24", IN4, HELO, U("s55d"), PERM, NULL },
	{ "5.5", "ptr: name without the client's address", "192.0.2.41",
	    HELO, U("ptr"), FAIL, NULL },
	/* 5.6 ip4 ip6 */
	{ "5.6", "ip4:0.0.0.0/0", OUT4, HELO, U("s56a"), PASS, NULL },
	{ "5.6", "ip6:::/0 and an IPv6 client", OUT6, HELO, U("s56b"), PASS,
	    NULL },
	{ "5.6", "ip6:::/0 and an IPv4 client", OUT4, HELO, U("s56b"), FAIL,
	    NULL },
	{ "5.6", "IPv4-mapped client matches ip4", "::ffff:192.0.2.10", HELO,
	    U("s56a"), PASS, NULL },
	{ "5.6", "ip4 with a leading zero", IN4, HELO, U("s56d"), PERM, NULL },
	{ "5.6", "ip4 /33", IN4, HELO, U("s56e"), PERM, NULL },
	{ "5.6", "ip4 dual CIDR", IN4, HELO, U("s56f"), PERM, NULL },
	{ "5.6", "ip6 /129", IN4, HELO, U("s56g"), PERM, NULL },
	{ "5.6", "ip6 dual CIDR", IN4, HELO, U("s56h"), PERM, NULL },
	{ "5.6", "a bare address", IN4, HELO, U("s56i"), PERM, NULL },
	{ "5.6", "ip4 with a port", IN4, HELO, U("s56j"), PERM, NULL },
	/* 5.7 exists */
	{ "5.7", "exists asks A for an IPv6 client", IN6, HELO, U("s57a"),
	    PASS, NULL },
	{ "5.7", "exists: AAAA only is no match", IN6, HELO, U("s57b"), FAIL,
	    NULL },
	{ "5.7", "exists with a CIDR length", IN4, HELO, U("s57c"), PERM,
	    NULL },
	{ "5.7", "exists without domain", IN4, HELO, U("s57d"), PERM, NULL },
	/* 6.1 redirect */
	{ "6.1", "redirect to a malformed name", IN4, HELO,
	    "a" L63 "@s61a" S, PERM, NULL },
	{ "6.1", "redirect to no record", IN4, HELO, U("redirnone"), PERM,
	    NULL },
	{ "6.1", "redirect with a CIDR length", IN4, HELO, U("s61c"), PERM,
	    NULL },
	{ "6.1", "%{d} is the redirect target", IN4, HELO, U("s61d"), PASS,
	    NULL },
	{ "6.1", "redirect= twice", IN4, HELO, U("tworedir"), PERM, NULL },
	/* 6.2 exp */
	{ "6.2", "explanation with macros", IN4, HELO, U("s62a"), FAIL,
	    "192.0.2.10 may not send for user@s62a.spf.example "
	    "(s62a.spf.example, mta.client.example) % %20" },
	{ "6.2", "%{c} %{r} %{v} %{i} %{L}, IPv6", IN6, HELO,
	    "a+b@s62b" S, FAIL, IN6 " unknown ip6 " IN6N " a%2Bb" },
	{ "6.2", "no explanation on softfail", IN4, HELO, U("s62c"), SOFT,
	    NULL },
	{ "6.2", "two TXT records: no explanation", IN4, HELO, U("s62d"),
	    FAIL, NULL },
	{ "6.2", "bad macro: no explanation", IN4, HELO, U("s62e"), FAIL,
	    NULL },
	{ "6.2", "DNS failure: no explanation, still fail", IN4, HELO,
	    U("s62f"), FAIL, NULL },
	{ "6.2", "no such name: no explanation", IN4, HELO, U("s62g"), FAIL,
	    NULL },
	{ "6.2", "8-bit text: no explanation", IN4, HELO, U("s62o"), FAIL,
	    NULL },
	{ "6.2", "redirect: the target's exp, not the first", IN4, HELO,
	    U("s62h"), FAIL, "redirected to s62i.spf.example" },
	{ "6.2", "include: the outer exp, not the inner", IN4, HELO,
	    U("s62j"), FAIL, "outer" },
	{ "6.2", "exp= twice", IN4, HELO, U("s62l"), PERM, NULL },
	{ "6.2", "%{c} outside an explanation", IN4, HELO, U("s62n"), PERM,
	    NULL },
	/* 7 macros through DNS */
	{ "7.3", "%{ir}.%{v}._spf.%{d2}", IN4, HELO, U("s7a"), PASS, NULL },
	{ "7.3", "%{lr-}", IN4, HELO, "a-b@s7b" S, PASS, NULL },
	{ "7.3", "%{L} is URL-escaped", IN4, HELO, "a+b@s7c" S, PASS, NULL },
	{ "7.3", "%{p} validated name", "192.0.2.40", HELO, U("s7d"), PASS,
	    NULL },
	{ "7.3", "%{p} without one: unknown", "192.0.2.41", HELO, U("s7d"),
	    PASS, NULL },
	{ "7.3", "%{h}", IN4, HELO, U("s7e"), PASS, NULL },
	{ "7.3", "%{ir} of an IPv6 client", IN6, HELO, U("s7f"), PASS, NULL },
};
#undef U

#define NRFC	(sizeof(rfc_rows) / sizeof(rfc_rows[0]))

static void
test_rfc_rows(dm_spf *s)
{
	dm_spf_outcome out;
	char exp[512];
	const char *sec = "";
	size_t i, n = 0;

	for (i = 0; i < NRFC; i++) {
		const struct rfc_row *c = &rfc_rows[i];

		dm_spf_check_exp(s, c->ip, c->helo, c->mail_from, exp,
		    sizeof(exp), &out);
		tap_is_str(dm_spf_result_str(out.result),
		    dm_spf_result_str(c->want), "RFC 7208 %s, %s (%s)",
		    c->sec, c->name, out.comment);
		tap_is_str(exp, c->exp != NULL ? c->exp : "",
		    "RFC 7208 %s, %s: explanation", c->sec, c->name);
		if (strcmp(sec, c->sec) != 0) {
			if (n > 0)
				tap_diag("section %s: %zu cases", sec, n);
			sec = c->sec;
			n = 0;
		}
		n++;
	}
	tap_diag("section %s: %zu cases", sec, n);
}

/* --- names in MX and PTR RDATA -------------------------------------------- */

static void
test_wire_names(void)
{
	static const struct {
		const char *what;
		const char *rdata;	/* wire bytes */
		size_t len;
		const char *want;	/* NULL: refused */
	} names[] = {
		{ "three labels", "\4mail\7example\3com", 18,
		  "mail.example.com" },
		{ "one label", "\2mx", 4, "mx" },
		{ "a dot inside a label", "\3a.b\7example", 13, NULL },
		{ "a backslash inside a label", "\3a\\b\7example", 13, NULL },
		{ "a space inside a label", "\3a b\7example", 13, NULL },
		{ "a control byte", "\3a\nb\7example", 13, NULL },
		{ "an 8-bit byte", "\3a\377b\7example", 13, NULL },
		{ "a label past the RDATA", "\011mail", 6, NULL },
		{ "unterminated", "\4mail", 5, NULL },
		{ "the root (null MX)", "", 1, NULL },
		{ "a 64-byte label", "\100", 1, NULL },
		{ "empty RDATA", "", 0, NULL },
	};
	char out[256];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		rc = dm_spf_wire_name((const unsigned char *)names[i].rdata,
		    names[i].len, out, sizeof(out));
		if (names[i].want == NULL)
			tap_is_int(rc, -1, "wire name, %s: refused",
			    names[i].what);
		else
			tap_ok(rc == 0 && strcmp(out, names[i].want) == 0,
			    "wire name, %s: %s", names[i].what, names[i].want);
	}
	rc = dm_spf_wire_name((const unsigned char *)"\4mail\7example", 14,
	    out, 8);
	tap_is_int(rc, -1, "wire name longer than the buffer: refused");
}

/* --- threads ------------------------------------------------------------ */

struct worker {
	dm_spf *s;
	int id, rounds, done, wrong;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	dm_spf_outcome out;
	const struct row *row;
	int k;

	for (k = 0; k < w->rounds; k++) {
		row = &rows[(size_t)(k * 7 + w->id) % NROWS];
		if (dm_spf_check(w->s, row->ip, row->helo, row->mail_from,
		    &out) != DM_OK || out.result != row->want ||
		    strcmp(out.domain, row->domain) != 0)
			w->wrong++;
		w->done++;
	}
	return NULL;
}

static void
test_threads(dm_spf *s, int nthreads, int rounds)
{
	pthread_t tid[8];
	struct worker w[8];
	int i, started = 0, done = 0, wrong = 0;

	for (i = 0; i < nthreads && i < 8; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].s = s;
		w[i].id = i;
		w[i].rounds = rounds;
		if (pthread_create(&tid[i], NULL, worker_run, &w[i]) != 0)
			break;
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		done += w[i].done;
		wrong += w[i].wrong;
	}
	tap_is_int(done, (long)nthreads * rounds, "%d threads x %d checks: "
	    "all done", nthreads, rounds);
	tap_is_int(wrong, 0, "%d threads x %d checks: wrong results",
	    nthreads, rounds);
}

int
main(void)
{
	char path[512], err[256];
	dm_resolver *r;
	dm_spf *s;

	dm_log_set_level(DM_LOG_ERR);
	err[0] = '\0';
	s = dm_spf_new(NULL, err, sizeof(err));
	tap_ok(s == NULL && err[0] != '\0', "dm_spf_new without a resolver: "
	    "NULL and a message (%s)", err);
	dm_spf_free(s);

	snprintf(path, sizeof(path), "%s/spf.conf", tap_fixture_dir());
	if ((r = dm_resolver_new(path, 2000, err, sizeof(err))) == NULL)
		tap_bail("%s: %s", path, err);
	if ((s = dm_spf_new(r, err, sizeof(err))) == NULL)
		tap_bail("dm_spf_new: %s", err);
	test_strings();
	test_wire_names();
	test_rows(s);
	test_rfc_rows(s);
	test_comments(s);
	test_threads(s, 8, 60);
	dm_spf_free(s);
	dm_resolver_free(r);
	return tap_done();
}
