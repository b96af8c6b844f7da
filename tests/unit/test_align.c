/*
 * tests/unit/test_align.c - strict and relaxed identifier alignment with
 * both Organizational Domain methods, against the local zones of
 * tests/fixtures/orgdomain.conf (no network).
 */
#include "config.h"

#include <stdio.h>

#include "dm_align.h"
#include "tap.h"
#include "testdns.h"

#define TW	DM_ORG_TREEWALK
#define PSL	DM_ORG_PSL
#define S	DM_ALIGN_STRICT
#define R	DM_ALIGN_RELAXED

static const struct align_case {
	const char *name;
	dm_org_method m;
	const char *author;
	const char *id;
	dm_align_mode mode;
	dm_status st;
	bool aligned;
} cases[] = {
	{ "same domain", TW, "alpha.example", "alpha.example", S, DM_OK,
	    true },
	{ "same domain, other case", TW, "alpha.example", "ALPHA.Example", S,
	    DM_OK, true },
	{ "author parent of id", TW, "alpha.example", "mail.alpha.example", S,
	    DM_OK, false },
	{ "id parent of author", TW, "mail.alpha.example", "alpha.example", S,
	    DM_OK, false },
	{ "author parent of id", TW, "alpha.example", "mail.alpha.example", R,
	    DM_OK, true },
	{ "id parent of author", TW, "mail.alpha.example", "alpha.example", R,
	    DM_OK, true },
	{ "siblings under one org domain", TW, "x.y.alpha.example",
	    "mail.alpha.example", R, DM_OK, true },
	{ "different org domains", TW, "alpha.example", "beta.example", R,
	    DM_OK, false },
	{ "different top-level domains", TW, "alpha.example", "alpha.other",
	    R, DM_OK, false },
	{ "empty id", TW, "alpha.example", "", R, DM_OK, false },
	{ "empty id, strict", TW, "alpha.example", "", S, DM_OK, false },
	{ "psd=n splits the tree", TW, "x.dept.beta.example", "beta.example",
	    R, DM_OK, false },
	{ "under the psd=n domain", TW, "x.dept.beta.example",
	    "dept.beta.example", R, DM_OK, true },
	{ "psd=y: same org (B.4.3)", TW, "giant.bank.example",
	    "mail.giant.bank.example", R, DM_OK, true },
	{ "psd=y: other org (B.4.3)", TW, "giant.bank.example",
	    "mail.mega.bank.example", R, DM_OK, false },
	{ "no records: each its own org", TW, "a.nothing.example",
	    "b.nothing.example", R, DM_OK, false },
	{ "deep author, shortcut org", TW, "a.b.c.d.e.f.g.h.i.deep.example",
	    "e.f.g.h.i.deep.example", R, DM_OK, true },
	{ "deep author, not the apex", TW, "a.b.c.d.e.f.g.h.i.deep.example",
	    "deep.example", R, DM_OK, false },
	{ "co.uk below the PSD", TW, "mail.shop.example.co.uk",
	    "example.co.uk", R, DM_OK, true },
	{ "co.uk neighbours", TW, "example.co.uk", "other.co.uk", R, DM_OK,
	    false },
	/* Issue 12: the id's own DNS cannot make it temperror. */
	{ "SERVFAIL on the walk of an id that cannot align", TW,
	    "alpha.example", "x.tf.example", R, DM_OK, false },
	{ "SERVFAIL on the walk of an id under the author's org", TW,
	    "alpha.example", "x.tf.alpha.example", R, DM_TEMPFAIL, false },
	{ "an id that only ends like the org domain", TW, "alpha.example",
	    "x.tfalpha.example", R, DM_OK, false },
	{ "SERVFAIL on the author's walk", TW, "ok.eta.example",
	    "alpha.example", R, DM_TEMPFAIL, false },
	{ "strict needs no DNS", TW, "alpha.example", "x.tf.example", S,
	    DM_OK, false },

	{ "psl: same domain", PSL, "example.co.uk", "example.co.uk", S, DM_OK,
	    true },
	{ "psl: author parent of id, strict", PSL, "example.co.uk",
	    "mail.shop.example.co.uk", S, DM_OK, false },
	{ "psl: author parent of id", PSL, "example.co.uk",
	    "mail.shop.example.co.uk", R, DM_OK, true },
	{ "psl: id parent of author", PSL, "mail.shop.example.co.uk",
	    "example.co.uk", R, DM_OK, true },
	{ "psl: public suffix vs registrable", PSL, "co.uk", "example.co.uk",
	    R, DM_OK, false },
	{ "psl: neighbours under co.uk", PSL, "example.co.uk", "other.co.uk",
	    R, DM_OK, false },
	{ "psl: no records needed", PSL, "a.nothing.example",
	    "b.nothing.example", R, DM_OK, true },
	{ "psl: psd=n not looked at", PSL, "x.dept.beta.example",
	    "beta.example", R, DM_OK, true },
	{ "psl: psd=y not looked at", PSL, "giant.bank.example",
	    "mail.mega.bank.example", R, DM_OK, true },
	{ "psl: different org domains", PSL, "alpha.example", "beta.example",
	    R, DM_OK, false },
	{ "psl: no DNS, no SERVFAIL", PSL, "tf.example", "x.tf.example", R,
	    DM_OK, true },
	{ "psl: empty id", PSL, "alpha.example", "", R, DM_OK, false },
};

int
main(void)
{
	const struct align_case *c;
	dm_org *orgs[2];
	dm_resolver *r;
	dm_status st;
	bool aligned;
	size_t i;

	r = testdns_resolver("orgdomain.conf", 2000);
	orgs[TW] = testdns_org(r, DM_ORG_TREEWALK);
	orgs[PSL] = testdns_org(r, DM_ORG_PSL);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = &cases[i];
		aligned = !c->aligned;
		st = dm_align_check(orgs[c->m], c->author, c->id, c->mode,
		    &aligned);
		tap_is_str(dm_status_str(st), dm_status_str(c->st),
		    "%s (%s, %s): %s / %s: status", c->name,
		    dm_org_method_str(c->m), dm_align_mode_str(c->mode),
		    c->author, c->id);
		tap_is_int(aligned, c->aligned, "%s (%s, %s): aligned",
		    c->name, dm_org_method_str(c->m),
		    dm_align_mode_str(c->mode));
	}

	dm_org_free(orgs[TW]);
	dm_org_free(orgs[PSL]);
	dm_resolver_free(r);
	return tap_done();
}
