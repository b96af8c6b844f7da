/*
 * tests/unit/test_spf.c - SPF through libspf2 and our resolver: the seven
 * results, both scopes, IPv4 and IPv6 clients, include/redirect, a/mx/
 * ptr/exists, macros, the RFC 7208 4.6.4 limits (also across includes),
 * identities without a local-part or a valid domain, and many threads
 * on one dm_spf. DNS comes from tests/fixtures/spf.conf, never the
 * network.
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
	test_comments(s);
	test_threads(s, 8, 60);
	dm_spf_free(s);
	dm_resolver_free(r);
	return tap_done();
}
