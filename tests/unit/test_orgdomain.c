/*
 * tests/unit/test_orgdomain.c - policy discovery and Organizational
 * Domains, by tree walk and by PSL, against the local zones of
 * tests/fixtures/orgdomain.conf (no network).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dm_orgdomain.h"
#include "tap.h"
#include "testdns.h"

#define TW	DM_ORG_TREEWALK
#define PSL	DM_ORG_PSL
#define NOPOL	(-1)	/* no record expected */

static const struct disc_case {
	const char *name;
	dm_org_method m;
	const char *author;
	dm_status st;
	const char *domain;	/* policy domain, "" when none */
	bool exact;
	int p;
} disc_cases[] = {
	{ "exact record", TW, "alpha.example", DM_OK, "alpha.example",
	    true, DM_POLICY_REJECT },
	{ "exact record at a subdomain", TW, "mail.alpha.example", DM_OK,
	    "mail.alpha.example", true, DM_POLICY_NONE },
	{ "organizational domain found by the walk", TW, "x.alpha.example",
	    DM_OK, "alpha.example", false, DM_POLICY_REJECT },
	{ "sub-sub-domain", TW, "a.b.alpha.example", DM_OK, "alpha.example",
	    false, DM_POLICY_REJECT },
	{ "record met on the way is not the org domain's", TW,
	    "y.mail.alpha.example", DM_OK, "alpha.example", false,
	    DM_POLICY_REJECT },
	{ "psd=n stops the walk", TW, "x.dept.beta.example", DM_OK,
	    "dept.beta.example", false, DM_POLICY_QUARANTINE },
	{ "beside a psd=n branch", TW, "other.beta.example", DM_OK,
	    "beta.example", false, DM_POLICY_REJECT },
	{ "psd=y: org domain's own record", TW, "mail.giant.bank.example",
	    DM_OK, "giant.bank.example", false, DM_POLICY_NONE },
	{ "psd=y: PSD policy when the org domain has none", TW,
	    "mail.mega.bank.example", DM_OK, "bank.example", false,
	    DM_POLICY_REJECT },
	{ "psd=y: org domain is the author domain", TW, "mega.bank.example",
	    DM_OK, "bank.example", false, DM_POLICY_REJECT },
	{ "psd=y: record below the org domain is not used", TW,
	    "a.sub.tiny.bank.example", DM_OK, "bank.example", false,
	    DM_POLICY_REJECT },
	{ "psd=y record at the author domain", TW, "bank.example", DM_OK,
	    "bank.example", true, DM_POLICY_REJECT },
	{ "11 labels: shortcut to 7 labels", TW,
	    "a.b.c.d.e.f.g.h.i.deep.example", DM_OK, "e.f.g.h.i.deep.example",
	    false, DM_POLICY_QUARANTINE },
	{ "11 labels: skipped names are not queried", TW,
	    "a.b.c.d.e.f.g.h.x.deep.example", DM_OK, "deep.example", false,
	    DM_POLICY_NONE },
	{ "11 labels: the author domain is queried", TW,
	    "exact.b.c.d.e.f.g.h.x.deep.example", DM_OK,
	    "exact.b.c.d.e.f.g.h.x.deep.example", true, DM_POLICY_QUARANTINE },
	{ "9 labels: the 8-label name is skipped", TW,
	    "q.r.s.t.u.v.w.nine.example", DM_OK, "s.t.u.v.w.nine.example",
	    false, DM_POLICY_QUARANTINE },
	{ "8 labels: exact record", TW, "r.s.t.u.v.w.nine.example", DM_OK,
	    "r.s.t.u.v.w.nine.example", true, DM_POLICY_REJECT },
	{ "8 labels: the walk starts at the parent", TW,
	    "k.s.t.u.v.w.nine.example", DM_OK, "s.t.u.v.w.nine.example",
	    false, DM_POLICY_QUARANTINE },
	{ "two DMARC records at the author: walk on", TW,
	    "dup.gamma.example", DM_OK, "gamma.example", false,
	    DM_POLICY_QUARANTINE },
	{ "two DMARC records with psd=n on the way", TW,
	    "x.dup2.delta.example", DM_OK, "delta.example", false,
	    DM_POLICY_REJECT },
	{ "non-DMARC TXT beside a DMARC record", TW, "mixed.epsilon.example",
	    DM_OK, "mixed.epsilon.example", true, DM_POLICY_REJECT },
	{ "only non-DMARC TXT: walk on", TW, "onlyspf.epsilon.example",
	    DM_OK, "epsilon.example", false, DM_POLICY_NONE },
	{ "unusable record: walk on", TW, "bad.zeta.example", DM_OK,
	    "zeta.example", false, DM_POLICY_QUARANTINE },
	{ "no record anywhere", TW, "a.nothing.example", DM_NOTFOUND, "",
	    false, NOPOL },
	{ "exact record, failing parent not asked", TW, "ok.eta.example",
	    DM_OK, "ok.eta.example", true, DM_POLICY_REJECT },
	{ "SERVFAIL on the walk", TW, "sub.eta.example", DM_TEMPFAIL, "",
	    false, NOPOL },
	{ "SERVFAIL at the author", TW, "x.tf.example", DM_TEMPFAIL, "",
	    false, NOPOL },
	{ "co.uk: org domain below the PSD", TW, "mail.shop.example.co.uk",
	    DM_OK, "example.co.uk", false, DM_POLICY_REJECT },
	{ "co.uk: PSD policy", TW, "nodmarc.co.uk", DM_OK, "co.uk", false,
	    DM_POLICY_QUARANTINE },
	{ "not a domain", TW, "a..example", DM_NOTFOUND, "", false, NOPOL },

	{ "psl: exact record", PSL, "alpha.example", DM_OK, "alpha.example",
	    true, DM_POLICY_REJECT },
	{ "psl: org domain record", PSL, "y.mail.alpha.example", DM_OK,
	    "alpha.example", false, DM_POLICY_REJECT },
	{ "psl: multi-label suffix", PSL, "mail.shop.example.co.uk", DM_OK,
	    "example.co.uk", false, DM_POLICY_REJECT },
	{ "psl: no PSD policy", PSL, "nodmarc.co.uk", DM_NOTFOUND, "", false,
	    NOPOL },
	{ "psl: the public suffix itself", PSL, "co.uk", DM_OK, "co.uk",
	    true, DM_POLICY_QUARANTINE },
	{ "psl: psd=n is not a tree walk", PSL, "x.dept.beta.example", DM_OK,
	    "beta.example", false, DM_POLICY_REJECT },
	{ "psl: two DMARC records: no DMARC", PSL, "dup.gamma.example",
	    DM_NOTFOUND, "", false, NOPOL },
	{ "psl: unusable record: no DMARC", PSL, "bad.zeta.example",
	    DM_NOTFOUND, "", false, NOPOL },
	{ "psl: non-DMARC TXT only", PSL, "onlyspf.epsilon.example", DM_OK,
	    "epsilon.example", false, DM_POLICY_NONE },
	{ "psl: no record anywhere", PSL, "a.nothing.example", DM_NOTFOUND,
	    "", false, NOPOL },
	{ "psl: SERVFAIL at the org domain", PSL, "sub.eta.example",
	    DM_TEMPFAIL, "", false, NOPOL },
};

static const struct org_case {
	const char *name;
	dm_org_method m;
	const char *domain;
	dm_status st;
	const char *org;
} org_cases[] = {
	{ "record at itself and above", TW, "alpha.example", DM_OK,
	    "alpha.example" },
	{ "fewest labels wins (B.4.1)", TW, "mail.alpha.example", DM_OK,
	    "alpha.example" },
	{ "below two records", TW, "x.mail.alpha.example", DM_OK,
	    "alpha.example" },
	{ "psd=n below", TW, "x.dept.beta.example", DM_OK,
	    "dept.beta.example" },
	{ "psd=n at itself", TW, "dept.beta.example", DM_OK,
	    "dept.beta.example" },
	{ "beside psd=n", TW, "other.beta.example", DM_OK, "beta.example" },
	{ "psd=y: own record (B.4.3)", TW, "giant.bank.example", DM_OK,
	    "giant.bank.example" },
	{ "psd=y: below a record (B.4.3)", TW, "mail.giant.bank.example",
	    DM_OK, "giant.bank.example" },
	{ "psd=y: no record (B.4.3)", TW, "mail.mega.bank.example", DM_OK,
	    "mega.bank.example" },
	{ "psd=y: records further down", TW, "a.sub.tiny.bank.example",
	    DM_OK, "tiny.bank.example" },
	{ "psd=y at the start is not a PSD for itself", TW, "bank.example",
	    DM_OK, "bank.example" },
	{ "11 labels", TW, "a.b.c.d.e.f.g.h.i.deep.example", DM_OK,
	    "e.f.g.h.i.deep.example" },
	{ "11 labels, skipped psd=n", TW, "a.b.c.d.e.f.g.h.x.deep.example",
	    DM_OK, "deep.example" },
	{ "9 labels", TW, "q.r.s.t.u.v.w.nine.example", DM_OK,
	    "s.t.u.v.w.nine.example" },
	{ "8 labels with psd=n", TW, "r.s.t.u.v.w.nine.example", DM_OK,
	    "r.s.t.u.v.w.nine.example" },
	{ "duplicate psd=n records discarded", TW, "x.dup2.delta.example",
	    DM_OK, "delta.example" },
	{ "no records: itself", TW, "a.nothing.example", DM_OK,
	    "a.nothing.example" },
	{ "a top-level domain", TW, "example", DM_OK, "example" },
	{ "SERVFAIL above a record", TW, "ok.eta.example", DM_TEMPFAIL, "" },
	{ "SERVFAIL at the start", TW, "x.tf.example", DM_TEMPFAIL, "" },
	{ "co.uk with psd=y", TW, "mail.shop.example.co.uk", DM_OK,
	    "example.co.uk" },
	{ "co.uk itself", TW, "co.uk", DM_OK, "co.uk" },
	{ "not a domain", TW, ".example", DM_PERMFAIL, "" },

	{ "psl: multi-label suffix", PSL, "mail.shop.example.co.uk", DM_OK,
	    "example.co.uk" },
	{ "psl: registrable domain", PSL, "example.co.uk", DM_OK,
	    "example.co.uk" },
	{ "psl: a public suffix is its own", PSL, "co.uk", DM_OK, "co.uk" },
	{ "psl: a top-level domain", PSL, "uk", DM_OK, "uk" },
	{ "psl: unlisted TLD (* rule)", PSL, "a.nothing.example", DM_OK,
	    "nothing.example" },
	{ "psl: psd= is not looked at", PSL, "x.dept.beta.example", DM_OK,
	    "beta.example" },
	{ "psl: wildcard rule", PSL, "a.b.foo.ck", DM_OK, "b.foo.ck" },
	{ "psl: exception rule", PSL, "mail.www.ck", DM_OK, "www.ck" },
	{ "psl: no DNS needed", PSL, "x.tf.example", DM_OK, "tf.example" },
	{ "psl: not a domain", PSL, "a..b", DM_PERMFAIL, "" },
};

static dm_org *orgs[2];

static void
check_discovery(const struct disc_case *c)
{
	dm_discovery d;
	dm_status st;

	st = dm_org_discover(orgs[c->m], c->author, &d);
	tap_is_str(dm_status_str(st), dm_status_str(c->st),
	    "discover %s: %s: status", c->author, c->name);
	tap_is_str(d.record != NULL ? d.policy_domain : "", c->domain,
	    "discover %s: policy domain", c->author);
	tap_is_int(d.record != NULL ? (long)d.record->p : NOPOL, c->p,
	    "discover %s: p", c->author);
	if (st == DM_OK)
		tap_is_int(d.exact, c->exact, "discover %s: exact", c->author);
	else
		tap_ok(d.error[0] != '\0', "discover %s: error text set (%s)",
		    c->author, d.error);
	dm_discovery_clear(&d);
}

static void
check_org(const struct org_case *c)
{
	char out[DM_DOMAIN_MAX];
	dm_status st;

	st = dm_org_domain(orgs[c->m], c->domain, out, sizeof(out));
	tap_is_str(dm_status_str(st), dm_status_str(c->st),
	    "org domain %s (%s): %s: status", c->domain,
	    dm_org_method_str(c->m), c->name);
	if (c->st == DM_OK)
		tap_is_str(out, c->org, "org domain %s (%s)", c->domain,
		    dm_org_method_str(c->m));
}

/* The error text of a temporary failure names the name that failed. */
static void
check_tempfail_text(void)
{
	dm_discovery d;

	dm_org_discover(orgs[TW], "sub.eta.example", &d);
	tap_ok(strstr(d.error, "_dmarc.eta.example") != NULL,
	    "tempfail error names _dmarc.eta.example: '%s'", d.error);
	dm_discovery_clear(&d);
	tap_ok(d.record == NULL && d.policy_domain[0] == '\0',
	    "dm_discovery_clear empties the result");
}

static void
check_names(void)
{
	char small[8];

	tap_is_int(dm_org_method_from_name("treewalk"), DM_ORG_TREEWALK,
	    "method name treewalk");
	tap_is_int(dm_org_method_from_name("PSL"), DM_ORG_PSL,
	    "method name PSL");
	tap_is_int(dm_org_method_from_name("public-suffix"), -1,
	    "unknown method name");
	tap_is_int(dm_org_method_from_name(NULL), -1, "NULL method name");
	tap_is_str(dm_org_method_str(DM_ORG_TREEWALK), "treewalk",
	    "method str treewalk");
	tap_is_str(dm_org_method_str(DM_ORG_PSL), "psl", "method str psl");
	tap_is_int(dm_org_get_method(orgs[PSL]), DM_ORG_PSL,
	    "dm_org_get_method");
	tap_is_str(dm_status_str(dm_org_domain(orgs[PSL], "example.co.uk",
	    small, sizeof(small))), dm_status_str(DM_PERMFAIL),
	    "org domain does not fit the buffer");
}

static void
check_bad_psl(dm_resolver *r)
{
	char err[256] = "";
	dm_org *o;

	o = dm_org_new(DM_ORG_PSL, r, "/nonexistent/psl.dat", err,
	    sizeof(err));
	tap_ok(o == NULL, "missing PSL file fails dm_org_new");
	tap_ok(strstr(err, "/nonexistent/psl.dat") != NULL,
	    "error names the file: '%s'", err);
	dm_org_free(o);
}

int
main(void)
{
	dm_resolver *r;
	size_t i;

	r = testdns_resolver("orgdomain.conf", 2000);
	orgs[TW] = testdns_org(r, DM_ORG_TREEWALK);
	orgs[PSL] = testdns_org(r, DM_ORG_PSL);

	for (i = 0; i < sizeof(disc_cases) / sizeof(disc_cases[0]); i++)
		check_discovery(&disc_cases[i]);
	for (i = 0; i < sizeof(org_cases) / sizeof(org_cases[0]); i++)
		check_org(&org_cases[i]);
	check_tempfail_text();
	check_names();
	check_bad_psl(r);

	dm_org_free(orgs[TW]);
	dm_org_free(orgs[PSL]);
	dm_resolver_free(r);
	return tap_done();
}
