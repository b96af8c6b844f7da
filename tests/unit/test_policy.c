/*
 * tests/unit/test_policy.c - the pure policy evaluation, row by row:
 * which tag applies, pass/fail/temperror, pct sampling with a fixed
 * random source, t=y, and how several author domains are ranked.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dm_policy.h"
#include "tap.h"

static uint32_t
fixed_random(void *arg)
{
	return *(const uint32_t *)arg;
}

/* A record built by hand: this test is about policy, not parsing. */
static dm_record
rec(dm_policy p, dm_policy sp, dm_policy np, int pct, bool t)
{
	dm_record r;

	memset(&r, 0, sizeof(r));
	r.p = p;
	r.sp = sp;
	r.np = np;
	r.pct = pct;
	r.has_pct = pct != 100;
	r.testing = t;
	return r;
}

#define N DM_POLICY_NONE
#define Q DM_POLICY_QUARANTINE
#define R DM_POLICY_REJECT

static const struct row {
	const char *name;
	dm_status discovery;
	dm_policy p, sp, np;
	int pct;
	bool t;
	bool exact, nx, dkim, spf, tempfail, honor;
	uint32_t rnd;
	dm_dmarc_result want_result;
	dm_policy_tag want_tag;
	dm_disposition want_disp;
	int want_reason;	/* -1: none */
} rows[] = {
	{ "no record", DM_NOTFOUND, N, N, N, 100, 0, 1, 0, 0, 0, 0, 1, 0,
	  DM_DMARC_NONE, DM_TAG_P, DM_DISP_NONE, -1 },
	{ "discovery tempfail", DM_TEMPFAIL, N, N, N, 100, 0, 1, 0, 0, 0, 0,
	  1, 0, DM_DMARC_TEMPERROR, DM_TAG_P, DM_DISP_NONE, -1 },
	{ "aligned dkim pass, p=reject", DM_OK, R, R, R, 100, 0, 1, 0, 1, 0,
	  0, 1, 0, DM_DMARC_PASS, DM_TAG_P, DM_DISP_NONE, -1 },
	{ "aligned spf pass, p=reject", DM_OK, R, R, R, 100, 0, 1, 0, 0, 1,
	  0, 1, 0, DM_DMARC_PASS, DM_TAG_P, DM_DISP_NONE, -1 },
	{ "fail p=reject", DM_OK, R, R, R, 100, 0, 1, 0, 0, 0, 0, 1, 0,
	  DM_DMARC_FAIL, DM_TAG_P, DM_DISP_REJECT, -1 },
	{ "fail p=quarantine", DM_OK, Q, Q, Q, 100, 0, 1, 0, 0, 0, 0, 1, 0,
	  DM_DMARC_FAIL, DM_TAG_P, DM_DISP_QUARANTINE, -1 },
	{ "fail p=none", DM_OK, N, N, N, 100, 0, 1, 0, 0, 0, 0, 1, 0,
	  DM_DMARC_FAIL, DM_TAG_P, DM_DISP_NONE, -1 },
	{ "subdomain takes sp", DM_OK, R, N, N, 100, 0, 0, 0, 0, 0, 0, 1, 0,
	  DM_DMARC_FAIL, DM_TAG_SP, DM_DISP_NONE, -1 },
	{ "subdomain sp=quarantine", DM_OK, N, Q, Q, 100, 0, 0, 0, 0, 0, 0,
	  1, 0, DM_DMARC_FAIL, DM_TAG_SP, DM_DISP_QUARANTINE, -1 },
	{ "non-existent subdomain takes np", DM_OK, N, N, R, 100, 0, 0, 1, 0,
	  0, 0, 1, 0, DM_DMARC_FAIL, DM_TAG_NP, DM_DISP_REJECT, -1 },
	{ "non-existent exact domain takes p", DM_OK, Q, N, R, 100, 0, 1, 1,
	  0, 0, 0, 1, 0, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_QUARANTINE, -1 },
	{ "aligned tempfail, no pass: temperror", DM_OK, R, R, R, 100, 0, 1,
	  0, 0, 0, 1, 1, 0, DM_DMARC_TEMPERROR, DM_TAG_P, DM_DISP_NONE, -1 },
	{ "aligned tempfail with dkim pass: pass", DM_OK, R, R, R, 100, 0, 1,
	  0, 1, 0, 1, 1, 0, DM_DMARC_PASS, DM_TAG_P, DM_DISP_NONE, -1 },
	{ "pct=0 steps reject down", DM_OK, R, R, R, 0, 0, 1, 0, 0, 0, 0, 1,
	  0, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_QUARANTINE, DM_REASON_SAMPLED_OUT },
	{ "pct=0 steps quarantine down", DM_OK, Q, Q, Q, 0, 0, 1, 0, 0, 0, 0,
	  1, 99, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_NONE, DM_REASON_SAMPLED_OUT },
	{ "pct=50 random 10: sampled in", DM_OK, R, R, R, 50, 0, 1, 0, 0, 0,
	  0, 1, 10, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_REJECT, -1 },
	{ "pct=50 random 49: sampled in", DM_OK, R, R, R, 50, 0, 1, 0, 0, 0,
	  0, 1, 49, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_REJECT, -1 },
	{ "pct=50 random 50: sampled out", DM_OK, R, R, R, 50, 0, 1, 0, 0, 0,
	  0, 1, 50, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_QUARANTINE,
	  DM_REASON_SAMPLED_OUT },
	{ "pct=50 random 160: sampled out", DM_OK, R, R, R, 50, 0, 1, 0, 0,
	  0, 0, 1, 160, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_QUARANTINE,
	  DM_REASON_SAMPLED_OUT },
	{ "pct=100 random 99: sampled in", DM_OK, R, R, R, 100, 0, 1, 0, 0,
	  0, 0, 1, 99, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_REJECT, -1 },
	{ "pct=0 with HonorPct no: full policy", DM_OK, R, R, R, 0, 0, 1, 0,
	  0, 0, 0, 0, 99, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_REJECT, -1 },
	{ "pct=0 on a pass: nothing to step", DM_OK, R, R, R, 0, 0, 1, 0, 1,
	  0, 0, 1, 99, DM_DMARC_PASS, DM_TAG_P, DM_DISP_NONE, -1 },
	{ "pct=0 with p=none: no reason", DM_OK, N, N, N, 0, 0, 1, 0, 0, 0,
	  0, 1, 99, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_NONE, -1 },
	{ "t=y steps reject down", DM_OK, R, R, R, 100, 1, 1, 0, 0, 0, 0, 1,
	  0, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_QUARANTINE,
	  DM_REASON_POLICY_TEST_MODE },
	{ "t=y steps quarantine down", DM_OK, Q, Q, Q, 100, 1, 1, 0, 0, 0, 0,
	  1, 0, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_NONE,
	  DM_REASON_POLICY_TEST_MODE },
	{ "t=y and pct=0 step down once", DM_OK, R, R, R, 0, 1, 1, 0, 0, 0, 0,
	  1, 99, DM_DMARC_FAIL, DM_TAG_P, DM_DISP_QUARANTINE,
	  DM_REASON_POLICY_TEST_MODE },
	{ "t=y on sp", DM_OK, N, R, R, 100, 1, 0, 0, 0, 0, 0, 1, 0,
	  DM_DMARC_FAIL, DM_TAG_SP, DM_DISP_QUARANTINE,
	  DM_REASON_POLICY_TEST_MODE },
};

static void
run_row(const struct row *w)
{
	dm_record r = rec(w->p, w->sp, w->np, w->pct, w->t);
	dm_policy_input in = {
		.discovery = w->discovery, .record = &r, .exact = w->exact,
		.author_nxdomain = w->nx, .dkim_aligned_pass = w->dkim,
		.spf_aligned_pass = w->spf, .aligned_tempfail = w->tempfail,
	};
	uint32_t rnd = w->rnd;
	dm_policy_opts o = { .honor_pct = w->honor, .random = fixed_random,
	    .random_arg = &rnd };
	dm_policy_verdict v;

	dm_policy_evaluate(&in, &o, &v);
	tap_is_str(dm_dmarc_result_str(v.result),
	    dm_dmarc_result_str(w->want_result), "%s: result", w->name);
	tap_is_str(dm_disposition_str(v.disposition),
	    dm_disposition_str(w->want_disp), "%s: disposition", w->name);
	if (w->discovery == DM_OK)
		tap_is_str(dm_policy_tag_str(v.tag),
		    dm_policy_tag_str(w->want_tag), "%s: tag", w->name);
	if (w->want_reason < 0)
		tap_is_int((long)v.nreasons, 0, "%s: no reason", w->name);
	else
		tap_ok(v.nreasons == 1 && (int)v.reasons[0].type ==
		    w->want_reason, "%s: reason %s", w->name,
		    dm_reason_type_str(w->want_reason));
}

/* Ranking decides which of several author domains is shown. */
static void
test_compare(void)
{
	dm_policy_verdict a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.disposition = DM_DISP_REJECT;
	b.disposition = DM_DISP_QUARANTINE;
	tap_ok(dm_policy_compare(&a, &b) > 0, "reject outranks quarantine");
	a.disposition = b.disposition = DM_DISP_NONE;
	a.result = DM_DMARC_FAIL;
	b.result = DM_DMARC_PASS;
	tap_ok(dm_policy_compare(&a, &b) > 0, "fail outranks pass at none");
	a.result = DM_DMARC_TEMPERROR;
	b.result = DM_DMARC_NONE;
	tap_ok(dm_policy_compare(&a, &b) > 0, "temperror outranks none");
	tap_ok(dm_policy_compare(&a, &a) == 0, "equal verdicts compare 0");
}

static void
test_reasons_bounded(void)
{
	dm_policy_verdict v;
	int i, added = 0;

	memset(&v, 0, sizeof(v));
	for (i = 0; i < DM_MAX_REASONS + 3; i++)
		added += dm_policy_add_reason(&v, DM_REASON_OTHER, "x");
	tap_is_int(added, DM_MAX_REASONS, "reasons list is bounded");
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(&rows[i]);
	test_compare();
	test_reasons_bounded();
	tap_is_str(dm_reason_type_str(DM_REASON_POLICY_TEST_MODE),
	    "policy_test_mode", "schema name of policy_test_mode");
	tap_is_str(dm_reason_type_str(DM_REASON_SAMPLED_OUT), "sampled_out",
	    "schema name of sampled_out");
	return tap_done();
}
