/*
 * tests/unit/test_spfrec.c - the SPF record parser (lib/spfrec.c) and
 * macro-strings (lib/spfmacro.c) alone, no DNS: cases written from the
 * ABNF and the text of RFC 7208 4.5, 4.6.1, 5, 6 and 7, the expansion
 * examples of 7.4 among them. The evaluation over DNS is test_spf's.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dm_spfmacro.h"
#include "dm_spfrec.h"
#include "tap.h"

/* --- 4.5: which TXT records are SPF records ------------------------------ */

static void
test_is_v1(void)
{
	static const struct {
		const char *txt;
		int want;
	} v[] = {
		{ "v=spf1", 1 }, { "v=spf1 ", 1 }, { "V=SpF1 -all", 1 },
		{ "v=spf10", 0 }, { "v=spf1\t-all", 0 }, { "v=spf1-all", 0 },
		{ "v=spf", 0 }, { "", 0 }, { " v=spf1", 0 }, { "spf1", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		tap_is_int(dm_spfrec_is_v1(v[i].txt, strlen(v[i].txt)),
		    v[i].want, "4.5: \"%s\" is%s an SPF record", v[i].txt,
		    v[i].want ? "" : " not");
}

/* --- records ---------------------------------------------------------- */

struct rec_case {
	const char *sec, *txt;
	size_t len;		/* 0: strlen */
	int ok;
	size_t nterms;
	/* the first term, when ok and nterms > 0 */
	dm_spf_mech mech;
	char qual;
	int cidr4, cidr6;
	const char *spec;	/* NULL: none */
	int redirect, exp;	/* present (redirect after 5.1) */
};

#define OK	1
#define BAD	0
#define ALL	DM_SPFM_ALL
#define A	DM_SPFM_A
#define MX	DM_SPFM_MX
#define PTR	DM_SPFM_PTR
#define IP4	DM_SPFM_IP4
#define IP6	DM_SPFM_IP6
#define EXISTS	DM_SPFM_EXISTS
#define INCL	DM_SPFM_INCLUDE

static const struct rec_case recs[] = {
	/* 4.6.1 terms, spaces, qualifiers */
	{ "4.6.1", "v=spf1", 0, OK, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "4.6.1", "v=spf1 ", 0, OK, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "4.6.1", "v=spf1   -all   ", 0, OK, 1, ALL, '-', 32, 128, NULL,
	  0, 0 },
	{ "4.6.1", "v=spf1 ?all", 0, OK, 1, ALL, '?', 32, 128, NULL, 0, 0 },
	{ "4.6.1", "v=spf1 ~ALL", 0, OK, 1, ALL, '~', 32, 128, NULL, 0, 0 },
	{ "4.6.1", "v=spf1 all", 0, OK, 1, ALL, '+', 32, 128, NULL, 0, 0 },
	{ "4.6.1", "v=spf1 -all foobar", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "4.6.1", "v=spf1 ++all", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "4.6.1", "v=spf1 =all", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "4.6.1", "v=spf1 +all\t", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "4.6.1", "v=spf1 +all\0", 12, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	/* a NUL read as a qualifier made this "all" (fuzz_spfrec found it) */
	{ "4.6.1", "v=spf1 \0all", 11, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "4.6.1", "v=spf1mx", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	/* 5.1 all */
	{ "5.1", "v=spf1 all:x", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.1", "v=spf1 all/0", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.1", "v=spf1 all.", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	/* 5.2 include */
	{ "5.2", "v=spf1 include:_spf.example.com", 0, OK, 1, INCL, '+', 32,
	  128, "_spf.example.com", 0, 0 },
	{ "5.2", "v=spf1 include", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.2", "v=spf1 include:", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.2", "v=spf1 include:a.example.com/24", 0, BAD, 0, ALL, 0, 0, 0,
	  NULL, 0, 0 },
	/* 5.3 a, and the CIDR lengths of 5.6 */
	{ "5.3", "v=spf1 a", 0, OK, 1, A, '+', 32, 128, NULL, 0, 0 },
	{ "5.3", "v=spf1 a/0", 0, OK, 1, A, '+', 0, 128, NULL, 0, 0 },
	{ "5.3", "v=spf1 a//0", 0, OK, 1, A, '+', 32, 0, NULL, 0, 0 },
	{ "5.3", "v=spf1 -a:example.com/24//64", 0, OK, 1, A, '-', 24, 64,
	  "example.com", 0, 0 },
	{ "5.3", "v=spf1 a:foo:bar/baz.example.com", 0, OK, 1, A, '+', 32,
	  128, "foo:bar/baz.example.com", 0, 0 },
	{ "5.3", "v=spf1 A:Example.COM.", 0, OK, 1, A, '+', 32, 128,
	  "Example.COM.", 0, 0 },
	{ "5.3", "v=spf1 a:.example.com", 0, OK, 1, A, '+', 32, 128,
	  ".example.com", 0, 0 },
	{ "5.3", "v=spf1 a:example.1-2", 0, OK, 1, A, '+', 32, 128,
	  "example.1-2", 0, 0 },
	{ "5.3", "v=spf1 a/33", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.3", "v=spf1 a//129", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.3", "v=spf1 a/024", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.3", "v=spf1 a//064", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.3", "v=spf1 a/", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.3", "v=spf1 a/24/64", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.3", "v=spf1 a:", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.3", "v=spf1 afoo", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	/* 5.4 mx */
	{ "5.4", "v=spf1 mx:%{d}/16", 0, OK, 1, MX, '+', 16, 128, "%{d}",
	  0, 0 },
	{ "5.4", "v=spf1 mx//48", 0, OK, 1, MX, '+', 32, 48, NULL, 0, 0 },
	{ "5.4", "v=spf1 mx:example.com//", 0, BAD, 0, ALL, 0, 0, 0, NULL,
	  0, 0 },
	/* 5.5 ptr */
	{ "5.5", "v=spf1 ptr", 0, OK, 1, PTR, '+', 32, 128, NULL, 0, 0 },
	{ "5.5", "v=spf1 ?ptr:example.com", 0, OK, 1, PTR, '?', 32, 128,
	  "example.com", 0, 0 },
	{ "5.5", "v=spf1 ptr/24", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.5", "v=spf1 ptr:", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	/* 5.6 ip4 ip6 */
	{ "5.6", "v=spf1 ip4:192.0.2.0/24", 0, OK, 1, IP4, '+', 24, 128, NULL,
	  0, 0 },
	{ "5.6", "v=spf1 ip4:0.0.0.0/0", 0, OK, 1, IP4, '+', 0, 128, NULL,
	  0, 0 },
	{ "5.6", "v=spf1 IP4:192.0.2.1", 0, OK, 1, IP4, '+', 32, 128, NULL,
	  0, 0 },
	{ "5.6", "v=spf1 ip6:2001:db8::/32", 0, OK, 1, IP6, '+', 32, 32, NULL,
	  0, 0 },
	{ "5.6", "v=spf1 ip6:::/0", 0, OK, 1, IP6, '+', 32, 0, NULL, 0, 0 },
	{ "5.6", "v=spf1 ip6:::ffff:192.0.2.1", 0, OK, 1, IP6, '+', 32, 128,
	  NULL, 0, 0 },
	{ "5.6", "v=spf1 ip4:192.0.2.1/33", 0, BAD, 0, ALL, 0, 0, 0, NULL,
	  0, 0 },
	{ "5.6", "v=spf1 ip4:192.0.2.1/032", 0, BAD, 0, ALL, 0, 0, 0, NULL,
	  0, 0 },
	{ "5.6", "v=spf1 ip4:192.0.02.1", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0,
	  0 },
	{ "5.6", "v=spf1 ip4:192.0.2", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.6", "v=spf1 ip4:192.0.2.1.5", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0,
	  0 },
	{ "5.6", "v=spf1 ip4:256.0.2.1", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0,
	  0 },
	{ "5.6", "v=spf1 ip4:11111111111111111111.0.2.1", 0, BAD, 0, ALL, 0,
	  0, 0, NULL, 0, 0 },
	{ "5.6", "v=spf1 ip4:192.0.2.1//8", 0, BAD, 0, ALL, 0, 0, 0, NULL,
	  0, 0 },
	{ "5.6", "v=spf1 ip4:192.0.2.1:25", 0, BAD, 0, ALL, 0, 0, 0, NULL,
	  0, 0 },
	{ "5.6", "v=spf1 ip4", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.6", "v=spf1 ip6:::1/129", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.6", "v=spf1 ip6:::1//64", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.6", "v=spf1 ip6:192.0.2.1", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0,
	  0 },
	{ "5.6", "v=spf1 ip6:gggg::", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.6", "v=spf1 192.0.2.1", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	/* 5.7 exists */
	{ "5.7", "v=spf1 exists:%{i}.x.example.com", 0, OK, 1, EXISTS, '+',
	  32, 128, "%{i}.x.example.com", 0, 0 },
	{ "5.7", "v=spf1 exists:%{ir}.%{v}.%{d}", 0, OK, 1, EXISTS, '+',
	  32, 128, "%{ir}.%{v}.%{d}", 0, 0 },
	{ "5.7", "v=spf1 exists", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "5.7", "v=spf1 exists:x.example.com/24", 0, BAD, 0, ALL, 0, 0, 0,
	  NULL, 0, 0 },
	{ "5.7", "v=spf1 exists:%{i}/24", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0,
	  0 },
	/* 6 modifiers */
	{ "6.1", "v=spf1 redirect=_spf.example.com", 0, OK, 0, ALL, 0, 0, 0,
	  NULL, 1, 0 },
	{ "6.1", "v=spf1 -all redirect=_spf.example.com", 0, OK, 1, ALL, '-',
	  32, 128, NULL, 0, 0 },
	{ "6.1", "v=spf1 REDIRECT=_spf.example.com", 0, OK, 0, ALL, 0, 0, 0,
	  NULL, 1, 0 },
	{ "6.1", "v=spf1 redirect=", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6.1", "v=spf1 redirect=a.example.com redirect=b.example.com", 0,
	  BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6.1", "v=spf1 redirect:a.example.com", 0, BAD, 0, ALL, 0, 0, 0,
	  NULL, 0, 0 },
	{ "6.1", "v=spf1 redirect=a.example.com/24", 0, BAD, 0, ALL, 0, 0,
	  0, NULL, 0, 0 },
	{ "6.2", "v=spf1 -all exp=explain.%{d}", 0, OK, 1, ALL, '-', 32, 128,
	  NULL, 0, 1 },
	{ "6.2", "v=spf1 exp=", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6.2", "v=spf1 exp=a.example.com EXP=b.example.com", 0, BAD, 0,
	  ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6.2", "v=spf1 exp=%{c}.example.com", 0, BAD, 0, ALL, 0, 0, 0,
	  NULL, 0, 0 },
	{ "6", "v=spf1 foo.bar-baz_9=x%{d}", 0, OK, 0, ALL, 0, 0, 0, NULL,
	  0, 0 },
	{ "6", "v=spf1 foo=", 0, OK, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6", "v=spf1 moo=1 moo=2", 0, OK, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6", "v=spf1 v=spf1", 0, OK, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6", "v=spf1 foo=bar=baz", 0, OK, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6", "v=spf1 1up=foo", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6", "v=spf1 -foo=bar", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6", "v=spf1 moo=%{x}", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6", "v=spf1 moo=%", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "6", "v=spf1 moo=%{t}", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	/* 7.1 domain-spec */
	{ "7.1", "v=spf1 a:example", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "7.1", "v=spf1 a:example.", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "7.1", "v=spf1 a:example.123", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0,
	  0 },
	{ "7.1", "v=spf1 a:example.-com", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0,
	  0 },
	{ "7.1", "v=spf1 a:example.com-", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0,
	  0 },
	{ "7.1", "v=spf1 a:example._com", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0,
	  0 },
	{ "7.1", "v=spf1 a:example..", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "7.1", "v=spf1 a:%{d}x", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "7.1", "v=spf1 a:%{d}.", 0, BAD, 0, ALL, 0, 0, 0, NULL, 0, 0 },
	{ "7.1", "v=spf1 a:%{d}", 0, OK, 1, A, '+', 32, 128, "%{d}", 0, 0 },
	{ "7.1", "v=spf1 a:x.%-", 0, OK, 1, A, '+', 32, 128, "x.%-", 0, 0 },
	{ "7.1", "v=spf1 a:%(d).example.com", 0, BAD, 0, ALL, 0, 0, 0, NULL,
	  0, 0 },
	{ "7.1", "v=spf1 a:%{d0}.example.com", 0, BAD, 0, ALL, 0, 0, 0, NULL,
	  0, 0 },
	{ "7.1", "v=spf1 a:%{d.example.com", 0, BAD, 0, ALL, 0, 0, 0, NULL,
	  0, 0 },
	{ "7.1", "v=spf1 a:%{c}.example.com", 0, BAD, 0, ALL, 0, 0, 0, NULL,
	  0, 0 },
	{ "7.1", "v=spf1 a:caf\303\251.example.com", 0, BAD, 0, ALL, 0, 0, 0,
	  NULL, 0, 0 },
	{ "7.1", "v=spf1 a:x\001y.example.com", 0, BAD, 0, ALL, 0, 0, 0,
	  NULL, 0, 0 },
};

static void
test_records(void)
{
	const struct rec_case *c;
	const dm_spf_term *t;
	dm_spfrec *r;
	dm_status st;
	char why[160];
	size_t i, len, rl, el;

	for (i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		c = &recs[i];
		len = c->len ? c->len : strlen(c->txt);
		why[0] = '\0';
		st = dm_spfrec_parse(c->txt, len, &r, why, sizeof(why));
		if (!c->ok) {
			tap_ok(st == DM_PERMFAIL && r == NULL && why[0] != '\0',
			    "%s: \"%s\" is permerror (%s)", c->sec, c->txt,
			    why);
			continue;
		}
		if (!tap_ok(st == DM_OK && r != NULL, "%s: \"%s\" parses (%s)",
		    c->sec, c->txt, why))
			continue;
		tap_is_int((long)dm_spfrec_nterms(r), (long)c->nterms,
		    "%s: \"%s\": terms", c->sec, c->txt);
		if (c->nterms > 0 && (t = dm_spfrec_term(r, 0)) != NULL)
			tap_ok(t->mech == c->mech && t->qual == c->qual &&
			    t->cidr4 == c->cidr4 && t->cidr6 == c->cidr6 &&
			    (c->spec == NULL ? t->spec == NULL :
			    t->spec != NULL && t->speclen == strlen(c->spec) &&
			    memcmp(t->spec, c->spec, t->speclen) == 0),
			    "%s: \"%s\": mechanism %d, '%c', /%d, //%d, %s",
			    c->sec, c->txt, c->mech, c->qual, c->cidr4,
			    c->cidr6, c->spec ? c->spec : "no domain-spec");
		tap_is_int(dm_spfrec_redirect(r, &rl) != NULL, c->redirect,
		    "%s: \"%s\": redirect=", c->sec, c->txt);
		tap_is_int(dm_spfrec_exp(r, &el) != NULL, c->exp,
		    "%s: \"%s\": exp=", c->sec, c->txt);
		dm_spfrec_free(r);
	}
}

static void
test_networks(void)
{
	static const unsigned char v4[4] = { 192, 0, 2, 128 };
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0,
	    0, 0, 0, 0, 0, 0, 0, 0, 0xcb, 0x01 };
	const char *a = "v=spf1 ip4:192.0.2.128/25", *b =
	    "v=spf1 ip6:2001:DB8::CB01";
	dm_spfrec *r;
	char why[160];

	if (dm_spfrec_parse(a, strlen(a), &r, why, sizeof(why)) == DM_OK) {
		tap_ok(memcmp(dm_spfrec_term(r, 0)->net, v4, 4) == 0,
		    "5.6: ip4 network bytes");
		dm_spfrec_free(r);
	} else
		tap_ok(0, "5.6: %s parses (%s)", a, why);
	if (dm_spfrec_parse(b, strlen(b), &r, why, sizeof(why)) == DM_OK) {
		tap_ok(memcmp(dm_spfrec_term(r, 0)->net, v6, 16) == 0,
		    "5.6: ip6 network bytes, upper-case hex");
		dm_spfrec_free(r);
	} else
		tap_ok(0, "5.6: %s parses (%s)", b, why);
}

/* --- 7: macros ------------------------------------------------------------ */

static const char *
p_name(void *arg)
{
	return arg;
}

/* RFC 7208 7.4's example values. */
static void
env_example(dm_spf_menv *e, int six)
{
	memset(e, 0, sizeof(*e));
	e->s = "strong-bad@email.example.com";
	e->l = "strong-bad";
	e->o = "email.example.com";
	e->d = "email.example.com";
	e->h = "mx.example.org";
	e->i = six ? "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.c.b.0.1" : "192.0.2.3";
	e->c = six ? "2001:db8::cb01" : "192.0.2.3";
	e->v = six ? "ip6" : "in-addr";
	e->r = "receiver.example";
	e->t = "1700000000";
	e->p = p_name;
	e->parg = (void *)"mx.example.org";
}

struct macro_case {
	const char *in;
	dm_spf_mctx m;
	int six;
	const char *want;	/* NULL: a syntax error */
};

#define DOM	DM_SPF_MDOMAIN
#define EXP	DM_SPF_MEXP

static const struct macro_case macros[] = {
	/* 7.4 examples */
	{ "%{s}", DOM, 0, "strong-bad@email.example.com" },
	{ "%{o}", DOM, 0, "email.example.com" },
	{ "%{d}", DOM, 0, "email.example.com" },
	{ "%{d4}", DOM, 0, "email.example.com" },
	{ "%{d3}", DOM, 0, "email.example.com" },
	{ "%{d2}", DOM, 0, "example.com" },
	{ "%{d1}", DOM, 0, "com" },
	{ "%{dr}", DOM, 0, "com.example.email" },
	{ "%{d2r}", DOM, 0, "example.email" },
	{ "%{l}", DOM, 0, "strong-bad" },
	{ "%{l-}", DOM, 0, "strong.bad" },
	{ "%{lr}", DOM, 0, "strong-bad" },
	{ "%{lr-}", DOM, 0, "bad.strong" },
	{ "%{l1r-}", DOM, 0, "strong" },
	{ "%{ir}.%{v}._spf.%{d2}", DOM, 0,
	  "3.2.0.192.in-addr._spf.example.com" },
	{ "%{lr-}.lp._spf.%{d2}", DOM, 0, "bad.strong.lp._spf.example.com" },
	{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", DOM, 0,
	  "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
	{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", DOM, 0,
	  "3.2.0.192.in-addr.strong.lp._spf.example.com" },
	{ "%{d2}.trusted-domains.example.net", DOM, 0,
	  "example.com.trusted-domains.example.net" },
	{ "%{ir}.%{v}._spf.%{d2}", DOM, 1, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0."
	  "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com" },
	/* letters, case, transformers, delimiters */
	{ "%{D}", DOM, 0, "email.example.com" },
	{ "%{S}", DOM, 0, "strong-bad%40email.example.com" },
	{ "%{h}", DOM, 0, "mx.example.org" },
	{ "%{p}", DOM, 0, "mx.example.org" },
	{ "%{p2}", DOM, 0, "example.org" },
	{ "%{i}", DOM, 0, "192.0.2.3" },
	{ "%{dR}", DOM, 0, "com.example.email" },
	{ "%{d99999999999999999999}", DOM, 0, "email.example.com" },
	{ "%{s-}", DOM, 0, "strong.bad@email.example.com" },
	{ "%{s2r.-}", DOM, 0, "bad@email.strong" },
	{ "%{s-@}", DOM, 0, NULL },
	{ "%{l+-}", DOM, 0, "strong.bad" },
	{ "%{d=,/_+}", DOM, 0, "email.example.com" },
	{ "%{d0}", DOM, 0, NULL },
	{ "%{d00}", DOM, 0, NULL },
	{ "%{d01}", DOM, 0, "com" },
	{ "%{x}", DOM, 0, NULL },
	{ "%{d", DOM, 0, NULL },
	{ "%{}", DOM, 0, NULL },
	{ "%{d2r2}", DOM, 0, NULL },
	{ "%{d:}", DOM, 0, NULL },
	{ "%d", DOM, 0, NULL },
	{ "x%", DOM, 0, NULL },
	{ "%(d)", DOM, 0, NULL },
	/* %% %_ %- */
	{ "a%%b", DOM, 0, "a%b" },
	{ "a%_b", EXP, 0, "a b" },
	{ "a%-b", EXP, 0, "a%20b" },
	{ "%%%_%-", EXP, 0, "% %20" },
	/* exp-only letters, spaces, bytes */
	{ "%{c}", DOM, 0, NULL },
	{ "%{r}", DOM, 0, NULL },
	{ "%{T}", DOM, 0, NULL },
	{ "%{c} %{r} %{t}", EXP, 0, "192.0.2.3 receiver.example 1700000000" },
	{ "%{c}", EXP, 1, "2001:db8::cb01" },
	{ "%{C}", EXP, 1, "2001%3Adb8%3A%3Acb01" },
	{ "a b", DOM, 0, NULL },
	{ "a\tb", EXP, 0, NULL },
	{ "caf\303\251", EXP, 0, NULL },
	{ "a\177b", EXP, 0, NULL },
	/* a domain's trailing dot; an explanation keeps its own */
	{ "%{d}.", DOM, 0, "email.example.com" },
	{ "end.", EXP, 0, "end." },
};

static void
test_macros(void)
{
	dm_spf_menv env;
	char out[1024];
	size_t i;
	int n;

	for (i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
		const struct macro_case *c = &macros[i];

		env_example(&env, c->six);
		n = dm_spf_macro_expand(c->in, strlen(c->in), c->m, &env, out,
		    sizeof(out));
		if (c->want == NULL)
			tap_is_int(n, -1, "7.1: \"%s\" is a syntax error",
			    c->in);
		else
			tap_is_str(n >= 0 ? out : "(syntax error)", c->want,
			    "7.3: \"%s\"%s", c->in, c->six ? " (IPv6)" : "");
	}
}

/* %{p} with no validated name; the callback asked once per expansion. */
static int p_calls;

static const char *
p_none(void *arg)
{
	p_calls++;
	return NULL;
}

static void
test_macro_p(void)
{
	dm_spf_menv env;
	char out[1024];

	env_example(&env, 0);
	env.p = p_none;
	p_calls = 0;
	dm_spf_macro_expand("%{p}.%{p}.%{p1}", 15, DOM, &env, out,
	    sizeof(out));
	tap_is_str(out, "unknown.unknown.unknown", "7.3: %%{p} without a "
	    "validated name is \"unknown\"");
	tap_is_int(p_calls, 1, "7.3: %%{p} looked up once per expansion");
	p_calls = 0;
	dm_spf_macro_expand("%{d}", 4, DOM, &env, out, sizeof(out));
	tap_is_int(p_calls, 0, "7.3: no %%{p}, no lookup");
}

/* 7.3: over 253 bytes, labels go from the left; memory stays bounded. */
static void
test_macro_cut(void)
{
	char label[64], spec[4096], out[1024], want[300];
	dm_spf_menv env;
	size_t i, o = 0;
	int n;

	memset(label, 'a', 63);
	label[63] = '\0';
	env_example(&env, 0);
	env.l = label;
	n = dm_spf_macro_expand("%{l}.%{l}.%{l}.%{l}.x.example", 29, DOM,
	    &env, out, sizeof(out));
	snprintf(want, sizeof(want), "%s.%s.%s.x.example", label, label,
	    label);
	tap_ok(n == (int)strlen(want) && strcmp(out, want) == 0,
	    "7.3: 269 bytes lose their first label (%d bytes)", n);
	/* a thousand labels of %{l}: only the tail is kept */
	for (i = 0; i < 1000 && o + 5 + 11 < sizeof(spec); i++) {
		memcpy(spec + o, "%{l}.", 5);
		o += 5;
	}
	memcpy(spec + o, "end.example", 11);
	o += 11;
	n = dm_spf_macro_expand(spec, o, DOM, &env, out, sizeof(out));
	snprintf(want, sizeof(want), "%s.%s.%s.end.example", label, label,
	    label);
	tap_ok(n == (int)strlen(want) && strcmp(out, want) == 0,
	    "7.3: 50 KB of expansion cut to its last labels (%d bytes)", n);
	n = dm_spf_macro_expand("%{d}", 4, DOM, &env, out, 100);
	tap_is_int(n, -1, "a buffer under 512 bytes is refused");
	n = dm_spf_macro_expand(spec, o, EXP, &env, out, sizeof(out));
	tap_ok(n == (int)sizeof(out) - 1, "an explanation is cut at the "
	    "buffer (%d bytes)", n);
}

int
main(void)
{
	test_is_v1();
	test_records();
	test_networks();
	test_macros();
	test_macro_p();
	test_macro_cut();
	return tap_done();
}
