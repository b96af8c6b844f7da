/*
 * tests/unit/test_ruaverify.c - rua destination verification, row by row,
 * against the local zones of tests/fixtures/ruaverify.conf (no network):
 * internal and external hosts, exact and wildcard authorization,
 * replacement rua, temporary failures, mailto: decoding, the URI limit
 * and duplicates.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm_orgdomain.h"
#include "dm_ruaverify.h"
#include "tap.h"
#include "testdns.h"

#define TW	DM_ORG_TREEWALK
#define PSL	DM_ORG_PSL

#define L10	"aaaaaaaaaa"
#define L60	L10 L10 L10 L10 L10 L10
/* 251 octets: fine as a domain, too long under _report._dmarc names */
#define LONGDOM	L60 "." L60 "." L60 "." L60 ".example"

static const struct row {
	const char *name;
	dm_org_method m;
	const char *policy;	/* the policy domain */
	const char *rua;	/* as published */
	dm_status st;
	const char *dests;	/* "addr" or "addr!bytes", space-separated */
	const char *skips;	/* "uri: why", " | "-separated */
} rows[] = {
	{ "internal: the policy domain itself", TW, "alpha.example",
	  "mailto:agg@alpha.example", DM_OK, "agg@alpha.example", "" },
	{ "internal: a host below the policy domain", TW, "alpha.example",
	  "mailto:dmarc@reports.alpha.example", DM_OK,
	  "dmarc@reports.alpha.example", "" },
	{ "internal: policy at a subdomain of the same org", TW,
	  "sub.alpha.example",
	  "mailto:agg@alpha.example,mailto:x@mx.alpha.example", DM_OK,
	  "agg@alpha.example x@mx.alpha.example", "" },
	{ "psd=n: the parent domain is external", TW, "dept.gamma.example",
	  "mailto:r@gamma.example", DM_OK, "",
	  "mailto:r@gamma.example: no authorization record at "
	  "dept.gamma.example._report._dmarc.gamma.example" },
	{ "psl: the same registrable domain is internal", PSL,
	  "dept.gamma.example", "mailto:r@gamma.example", DM_OK,
	  "r@gamma.example", "" },
	{ "psl: external, exact record", PSL, "alpha.example",
	  "mailto:dmarc@rcpt.example", DM_OK, "dmarc@rcpt.example", "" },
	{ "external: exact record, !size kept", TW, "alpha.example",
	  "mailto:dmarc@rcpt.example!10m", DM_OK,
	  "dmarc@rcpt.example!10485760", "" },
	{ "external: wildcard", TW, "alpha.example",
	  "mailto:any@wild.example", DM_OK, "any@wild.example", "" },
	{ "external: wildcard for another policy domain", TW,
	  "sub.alpha.example", "mailto:any@wild.example!1k", DM_OK,
	  "any@wild.example!1024", "" },
	{ "external: existing exact name, no wildcard", TW, "beta.example",
	  "mailto:any@wild.example", DM_OK, "",
	  "mailto:any@wild.example: no authorization record at "
	  "beta.example._report._dmarc.wild.example" },
	{ "external: NXDOMAIN", TW, "alpha.example",
	  "mailto:r@nothing.example,mailto:agg@alpha.example", DM_OK,
	  "agg@alpha.example",
	  "mailto:r@nothing.example: no authorization record at "
	  "alpha.example._report._dmarc.nothing.example" },
	{ "external: TXT without v=DMARC1", TW, "alpha.example",
	  "mailto:r@nodmarc.example", DM_OK, "",
	  "mailto:r@nodmarc.example: no authorization record at "
	  "alpha.example._report._dmarc.nodmarc.example" },
	{ "external: authorized for another domain only", TW, "beta.example",
	  "mailto:dmarc@rcpt.example", DM_OK, "",
	  "mailto:dmarc@rcpt.example: no authorization record at "
	  "beta.example._report._dmarc.rcpt.example" },
	{ "replacement on the same host, sizes its own", TW, "alpha.example",
	  "mailto:old@repl.example!1k,mailto:agg@alpha.example", DM_OK,
	  "in@repl.example!5242880 Copy@repl.example agg@alpha.example",
	  "https://repl.example/r: replacement from "
	  "alpha.example._report._dmarc.repl.example: scheme not supported" },
	{ "replacement to another host: neither", TW, "alpha.example",
	  "mailto:r@away.example,mailto:agg@alpha.example", DM_OK,
	  "agg@alpha.example",
	  "mailto:r@away.example: alpha.example._report._dmarc.away.example "
	  "redirects to another host (other.example): no report to either" },
	{ "replacement without a valid URI: original kept", TW,
	  "alpha.example", "mailto:r@badrua.example!2g", DM_OK,
	  "r@badrua.example!2147483648", "" },
	{ "temporary failure: the rest still verified", TW, "alpha.example",
	  "mailto:r@tf.example,mailto:agg@alpha.example", DM_TEMPFAIL,
	  "agg@alpha.example",
	  "mailto:r@tf.example: temporary DNS failure at "
	  "alpha.example._report._dmarc.tf.example" },
	{ "temporary failure of the org domain walk", TW, "alpha.example",
	  "mailto:r@orgtf.example", DM_TEMPFAIL, "",
	  "mailto:r@orgtf.example: temporary DNS failure finding the "
	  "organizational domain of orgtf.example" },
	{ "non-mailto scheme", TW, "alpha.example",
	  "https://rcpt.example/dmarc,mailto:agg@alpha.example", DM_OK,
	  "agg@alpha.example",
	  "https://rcpt.example/dmarc: scheme not supported" },
	{ "scheme and domain in capitals", TW, "Alpha.Example",
	  "MAILTO:Agg@ALPHA.Example", DM_OK, "Agg@alpha.example", "" },
	{ "more than 10 URIs", TW, "alpha.example",
	  "mailto:a1@alpha.example,mailto:a2@alpha.example,"
	  "mailto:a3@alpha.example,mailto:a4@alpha.example,"
	  "mailto:a5@alpha.example,mailto:a6@alpha.example,"
	  "mailto:a7@alpha.example,mailto:a8@alpha.example,"
	  "mailto:a9@alpha.example,https://alpha.example/10,"
	  "mailto:a11@alpha.example,mailto:a12@alpha.example", DM_OK,
	  "a1@alpha.example a2@alpha.example a3@alpha.example "
	  "a4@alpha.example a5@alpha.example a6@alpha.example "
	  "a7@alpha.example a8@alpha.example a9@alpha.example",
	  "https://alpha.example/10: scheme not supported | "
	  "mailto:a11@alpha.example: more than 10 URIs | "
	  "mailto:a12@alpha.example: more than 10 URIs" },
	{ "replacements count against the limit", TW, "alpha.example",
	  "mailto:a1@alpha.example,mailto:a2@alpha.example,"
	  "mailto:a3@alpha.example,mailto:a4@alpha.example,"
	  "mailto:a5@alpha.example,mailto:a6@alpha.example,"
	  "mailto:a7@alpha.example,mailto:a8@alpha.example,"
	  "mailto:a9@alpha.example,mailto:old@repl.example", DM_OK,
	  "a1@alpha.example a2@alpha.example a3@alpha.example "
	  "a4@alpha.example a5@alpha.example a6@alpha.example "
	  "a7@alpha.example a8@alpha.example a9@alpha.example "
	  "in@repl.example!5242880",
	  "mailto:Copy@REPL.example: more than 10 URIs | "
	  "https://repl.example/r: replacement from "
	  "alpha.example._report._dmarc.repl.example: scheme not supported" },
	{ "duplicates: the first one stays", TW, "alpha.example",
	  "mailto:agg@alpha.example!1k,mailto:b@alpha.example,"
	  "mailto:AGG@ALPHA.EXAMPLE!2k", DM_OK,
	  "agg@alpha.example!1024 b@alpha.example",
	  "mailto:AGG@ALPHA.EXAMPLE: duplicate of agg@alpha.example" },
	{ "duplicate made by a replacement", TW, "alpha.example",
	  "mailto:in@repl.example,mailto:old@repl.example", DM_OK,
	  "in@repl.example!5242880 Copy@repl.example",
	  "https://repl.example/r: replacement from "
	  "alpha.example._report._dmarc.repl.example: scheme not supported | "
	  "mailto:in@repl.example: duplicate of in@repl.example | "
	  "mailto:Copy@REPL.example: duplicate of Copy@repl.example | "
	  "https://repl.example/r: replacement from "
	  "alpha.example._report._dmarc.repl.example: scheme not supported" },
	{ "%XX-encoded address", TW, "alpha.example",
	  "mailto:dmarc%2Breports@%72cpt.example", DM_OK,
	  "dmarc+reports@rcpt.example", "" },
	{ "U-label domain to A-labels", TW, "alpha.example",
	  "mailto:r@b%C3%BCcher.alpha.example", DM_OK,
	  "r@xn--bcher-kva.alpha.example", "" },
	{ "?subject= dropped", TW, "alpha.example",
	  "mailto:agg@alpha.example?subject=DMARC%20report!50k", DM_OK,
	  "agg@alpha.example!51200", "" },
	{ "?cc= adds an address: none", TW, "alpha.example",
	  "mailto:agg@alpha.example?subject=x&CC=y@rcpt.example", DM_OK, "",
	  "mailto:agg@alpha.example?subject=x&CC=y@rcpt.example: "
	  "several addresses" },
	{ "%2C: two addresses in one: none", TW, "alpha.example",
	  "mailto:a@alpha.example%2Cb@alpha.example", DM_OK, "",
	  "mailto:a@alpha.example%2Cb@alpha.example: several addresses" },
	{ "not plain addresses", TW, "alpha.example",
	  "mailto:a%20b@alpha.example,mailto:alpha.example,"
	  "mailto:a@%5B192.0.2.1%5D,mailto:%22a%22@alpha.example,"
	  "mailto:a%00b@alpha.example,mailto:a%3Fb@alpha.example,"
	  "mailto:a..b@alpha.example,mailto:a@b@alpha.example,"
	  "mailto:?to=a@alpha.example", DM_OK, "",
	  "mailto:a%20b@alpha.example: not a plain address | "
	  "mailto:alpha.example: not a plain address | "
	  "mailto:a@%5B192.0.2.1%5D: not a plain address | "
	  "mailto:%22a%22@alpha.example: not a plain address | "
	  "mailto:a%00b@alpha.example: not a plain address | "
	  "mailto:a%3Fb@alpha.example: not a plain address | "
	  "mailto:a..b@alpha.example: not a plain address | "
	  "mailto:a@b@alpha.example: not a plain address | "
	  "mailto:?to=a@alpha.example: several addresses" },
	{ "authorization name too long", TW, LONGDOM,
	  "mailto:r@rcpt.example", DM_OK, "",
	  "mailto:r@rcpt.example: authorization name for rcpt.example "
	  "longer than 253 octets" },
	{ "empty list", TW, "alpha.example", "", DM_OK, "", "" },
	{ "policy domain not a domain", TW, "a..example",
	  "mailto:agg@alpha.example", DM_PERMFAIL, "", "" },
};

static void
render_dests(const dm_rua_dest *d, size_t n, char *buf, size_t len)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < n && o < len; i++) {
		if (d[i].max_size > 0)
			o += (size_t)snprintf(buf + o, len - o, "%s%s!%" PRIu64,
			    i > 0 ? " " : "", d[i].addr, d[i].max_size);
		else
			o += (size_t)snprintf(buf + o, len - o, "%s%s",
			    i > 0 ? " " : "", d[i].addr);
	}
}

static void
render_skips(const dm_rua_skip *s, size_t n, char *buf, size_t len)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s: %s",
		    i > 0 ? " | " : "", s[i].uri, s[i].why);
}

static void
test_row(dm_resolver *r, dm_org *org, const struct row *w)
{
	dm_rua_dest *d = (dm_rua_dest *)1;
	dm_rua_skip *s = (dm_rua_skip *)1;
	dm_urilist rua;
	size_t nd = 99, ns = 99;
	dm_status st;
	char got[8192];

	if (dm_urilist_parse(w->rua, strlen(w->rua), &rua) != DM_OK)
		tap_bail("%s: cannot parse the rua", w->name);
	st = dm_rua_verify(r, org, w->policy, &rua, &d, &nd, &s, &ns);
	tap_is_str(dm_status_str(st), dm_status_str(w->st), "%s: status",
	    w->name);
	render_dests(d, nd, got, sizeof(got));
	tap_is_str(got, w->dests, "%s: destinations", w->name);
	render_skips(s, ns, got, sizeof(got));
	tap_is_str(got, w->skips, "%s: skipped", w->name);
	tap_ok((nd == 0) == (d == NULL) && (ns == 0) == (s == NULL),
	    "%s: arrays NULL exactly when empty (%zu, %zu)", w->name, nd, ns);
	free(d);
	free(s);
	dm_urilist_clear(&rua);
}

/* The same verification twice: answers from the cache agree. */
static void
test_repeat(dm_resolver *r, dm_org *org)
{
	dm_rua_dest *d[2];
	dm_rua_skip *s[2];
	dm_urilist rua;
	size_t nd[2], ns[2];
	char got[2][1024];
	int i;

	if (dm_urilist_parse("mailto:x@repl.example,mailto:y@wild.example",
	    strlen("mailto:x@repl.example,mailto:y@wild.example"), &rua) !=
	    DM_OK)
		tap_bail("repeat: cannot parse the rua");
	for (i = 0; i < 2; i++) {
		dm_rua_verify(r, org, "alpha.example", &rua, &d[i], &nd[i],
		    &s[i], &ns[i]);
		render_dests(d[i], nd[i], got[i], sizeof(got[i]));
		free(d[i]);
		free(s[i]);
	}
	tap_is_str(got[1], got[0], "second verification agrees");
	dm_urilist_clear(&rua);
}

int
main(void)
{
	dm_org *orgs[2];
	dm_resolver *r;
	size_t i;

	r = testdns_resolver("ruaverify.conf", 2000);
	orgs[TW] = testdns_org(r, DM_ORG_TREEWALK);
	orgs[PSL] = testdns_org(r, DM_ORG_PSL);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		test_row(r, orgs[rows[i].m], &rows[i]);
	test_repeat(r, orgs[TW]);
	dm_org_free(orgs[TW]);
	dm_org_free(orgs[PSL]);
	dm_resolver_free(r);
	return tap_done();
}
