/*
 * lib/policy.c - the DMARC verdict for one author domain, from what was
 * authenticated and what was published (RFC 7489 6.6, RFC 9989 4.7-4.8).
 *
 * Pure: no DNS, no clock, the random source is injected. Records in the
 * wild still carry pct= for staged roll-outs, so it is honoured by
 * default (a failing message not sampled steps the policy down one level,
 * reason sampled_out); t=y (RFC 9989) steps down one level with reason
 * policy_test_mode. A record with both steps down once: t=y is the newer
 * expression of the same wish, and stepping twice would turn a staged
 * "reject" into acceptance.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>
#include <bsd/stdlib.h>

#include "dm_policy.h"

static dm_disposition
policy_disposition(dm_policy p)
{
	switch (p) {
	case DM_POLICY_REJECT:		return DM_DISP_REJECT;
	case DM_POLICY_QUARANTINE:	return DM_DISP_QUARANTINE;
	case DM_POLICY_NONE:		break;
	}
	return DM_DISP_NONE;
}

static dm_disposition
policy_step_down(dm_disposition d)
{
	return d == DM_DISP_REJECT ? DM_DISP_QUARANTINE : DM_DISP_NONE;
}

bool
dm_policy_add_reason(dm_policy_verdict *v, dm_reason_type t,
    const char *comment)
{
	dm_reason *r;

	if (v->nreasons >= DM_MAX_REASONS)
		return false;
	r = &v->reasons[v->nreasons++];
	r->type = t;
	strlcpy(r->comment, comment != NULL ? comment : "",
	    sizeof(r->comment));
	return true;
}

/*
 * Which tag applies: np for a non-existent author domain below the policy
 * domain, sp for any other subdomain, p at the policy domain itself.
 */
static dm_policy_tag
policy_choose_tag(const dm_policy_input *in)
{
	if (in->exact)
		return DM_TAG_P;
	if (in->author_nxdomain)
		return DM_TAG_NP;
	return DM_TAG_SP;
}

static dm_policy
policy_tag_value(const dm_record *rec, dm_policy_tag tag)
{
	switch (tag) {
	case DM_TAG_NP:	return rec->np;
	case DM_TAG_SP:	return rec->sp;
	case DM_TAG_P:	break;
	}
	return rec->p;
}

static bool
policy_sampled_out(const dm_record *rec, const dm_policy_opts *o)
{
	uint32_t r;

	if (!o->honor_pct || rec->pct >= 100)
		return false;
	r = o->random != NULL ? o->random(o->random_arg) :
	    dm_policy_random(NULL);
	return (int)(r % 100) >= rec->pct;
}

static void
policy_apply_failure(const dm_policy_input *in, const dm_policy_opts *o,
    dm_policy_verdict *out)
{
	const dm_record *rec = in->record;
	char comment[64];

	out->disposition = policy_disposition(out->requested);
	if (out->disposition == DM_DISP_NONE)
		return;
	if (rec->testing) {
		out->disposition = policy_step_down(out->disposition);
		dm_policy_add_reason(out, DM_REASON_POLICY_TEST_MODE, "t=y");
	} else if (policy_sampled_out(rec, o)) {
		out->disposition = policy_step_down(out->disposition);
		snprintf(comment, sizeof(comment), "pct=%d", rec->pct);
		dm_policy_add_reason(out, DM_REASON_SAMPLED_OUT, comment);
	}
}

void
dm_policy_evaluate(const dm_policy_input *in, const dm_policy_opts *o,
    dm_policy_verdict *out)
{
	memset(out, 0, sizeof(*out));
	if (in->discovery == DM_TEMPFAIL) {
		out->result = DM_DMARC_TEMPERROR;
		return;
	}
	if (in->discovery != DM_OK || in->record == NULL) {
		out->result = DM_DMARC_NONE;
		return;
	}
	out->tag = policy_choose_tag(in);
	out->requested = policy_tag_value(in->record, out->tag);
	if (in->dkim_aligned_pass || in->spf_aligned_pass) {
		out->result = DM_DMARC_PASS;
		return;
	}
	/*
	 * An aligned identifier that could not be checked might have
	 * passed: no policy is applied to what we could not judge.
	 */
	if (in->aligned_tempfail) {
		out->result = DM_DMARC_TEMPERROR;
		return;
	}
	out->result = DM_DMARC_FAIL;
	policy_apply_failure(in, o, out);
}

/*
 * Strictness: a larger disposition is stricter; at equal disposition a
 * failure outranks temperror, which outranks none and pass, so that the
 * header shows the author domain that decided.
 */
static int
policy_result_rank(dm_dmarc_result r)
{
	switch (r) {
	case DM_DMARC_FAIL:		return 4;
	case DM_DMARC_TEMPERROR:	return 3;
	case DM_DMARC_PERMERROR:	return 2;
	case DM_DMARC_NONE:		return 1;
	case DM_DMARC_PASS:		return 0;
	}
	return 0;
}

int
dm_policy_compare(const dm_policy_verdict *a, const dm_policy_verdict *b)
{
	if (a->disposition != b->disposition)
		return a->disposition > b->disposition ? 1 : -1;
	return policy_result_rank(a->result) - policy_result_rank(b->result);
}

uint32_t
dm_policy_random(void *arg)
{
	return arc4random();
}

const char *
dm_dmarc_result_str(dm_dmarc_result r)
{
	static const char *const names[] = { "none", "pass", "fail",
	    "temperror", "permerror" };

	return (size_t)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

const char *
dm_disposition_str(dm_disposition d)
{
	static const char *const names[] = { "none", "quarantine", "reject" };

	return (size_t)d < sizeof(names) / sizeof(names[0]) ? names[d] : "?";
}

const char *
dm_reason_type_str(dm_reason_type t)
{
	static const char *const names[] = { "forwarded", "sampled_out",
	    "trusted_forwarder", "mailing_list", "local_policy", "other",
	    "policy_test_mode" };

	return (size_t)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

const char *
dm_policy_tag_str(dm_policy_tag t)
{
	static const char *const names[] = { "p", "sp", "np" };

	return (size_t)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}
