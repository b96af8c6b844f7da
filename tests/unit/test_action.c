/*
 * tests/unit/test_action.c - verdict and configuration to SMTP action:
 * each disposition, each QuarantineAction, TemporaryErrorAction with the
 * policy known and unknown, monitor mode, RejectText, internal errors.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dm_action.h"
#include "tap.h"

static const struct row {
	const char *name;
	const char *opt, *val;
	dm_dmarc_result result;
	dm_disposition disp;
	dm_status discovery;
	dm_policy requested;
	dm_action_kind want;
	const char *want_code;	/* rcode and xcode, or "" */
	bool hdr, hold;
} rows[] = {
	{ "pass accepts", NULL, NULL, DM_DMARC_PASS, DM_DISP_NONE, DM_OK,
	  DM_POLICY_REJECT, DM_ACT_ACCEPT, "", 0, 0 },
	{ "reject is 550 5.7.1", NULL, NULL, DM_DMARC_FAIL, DM_DISP_REJECT,
	  DM_OK, DM_POLICY_REJECT, DM_ACT_REJECT, "550 5.7.1", 0, 0 },
	{ "quarantine adds a header by default", NULL, NULL, DM_DMARC_FAIL,
	  DM_DISP_QUARANTINE, DM_OK, DM_POLICY_QUARANTINE,
	  DM_ACT_QUARANTINE, "", 1, 0 },
	{ "QuarantineAction hold", "QuarantineAction", "hold", DM_DMARC_FAIL,
	  DM_DISP_QUARANTINE, DM_OK, DM_POLICY_QUARANTINE,
	  DM_ACT_QUARANTINE, "", 0, 1 },
	{ "QuarantineAction both", "QuarantineAction", "both", DM_DMARC_FAIL,
	  DM_DISP_QUARANTINE, DM_OK, DM_POLICY_QUARANTINE,
	  DM_ACT_QUARANTINE, "", 1, 1 },
	{ "temperror, policy reject known: 451", NULL, NULL,
	  DM_DMARC_TEMPERROR, DM_DISP_NONE, DM_OK, DM_POLICY_REJECT,
	  DM_ACT_TEMPFAIL, "451 4.7.1", 0, 0 },
	{ "temperror, policy none: accept", NULL, NULL, DM_DMARC_TEMPERROR,
	  DM_DISP_NONE, DM_OK, DM_POLICY_NONE, DM_ACT_ACCEPT, "", 0, 0 },
	{ "temperror, policy unknown: accept", NULL, NULL,
	  DM_DMARC_TEMPERROR, DM_DISP_NONE, DM_TEMPFAIL, DM_POLICY_NONE,
	  DM_ACT_ACCEPT, "", 0, 0 },
	{ "TemporaryErrorAction tempfail, policy unknown", "TemporaryErrorAction",
	  "tempfail", DM_DMARC_TEMPERROR, DM_DISP_NONE, DM_TEMPFAIL,
	  DM_POLICY_NONE, DM_ACT_TEMPFAIL, "451 4.7.1", 0, 0 },
	{ "TemporaryErrorAction accept", "TemporaryErrorAction", "accept",
	  DM_DMARC_TEMPERROR, DM_DISP_NONE, DM_OK, DM_POLICY_REJECT,
	  DM_ACT_ACCEPT, "", 0, 0 },
	{ "monitor never defers", "Mode", "monitor", DM_DMARC_TEMPERROR,
	  DM_DISP_NONE, DM_OK, DM_POLICY_REJECT, DM_ACT_ACCEPT, "", 0, 0 },
	{ "no DMARC record accepts", NULL, NULL, DM_DMARC_NONE, DM_DISP_NONE,
	  DM_NOTFOUND, DM_POLICY_NONE, DM_ACT_ACCEPT, "", 0, 0 },
};

static void
run_row(const struct row *w)
{
	dm_config *c = dm_config_new();
	dm_author a;
	dm_verdict v;
	dm_action act;
	char err[256], code[16];

	if (w->opt != NULL && dm_config_set(c, w->opt, w->val, err,
	    sizeof(err)) != DM_OK)
		tap_bail("%s: %s", w->name, err);
	memset(&a, 0, sizeof(a));
	memset(&v, 0, sizeof(v));
	strcpy(a.domain, "bank.example");
	a.discovery = w->discovery;
	a.pv.result = w->result;
	a.pv.requested = w->requested;
	a.pv.disposition = w->disp;
	v.authors = &a;
	v.nauthors = 1;
	v.result = w->result;
	v.disposition = w->disp;
	dm_action_decide(c, &v, &act);
	tap_is_str(dm_action_kind_str(act.kind), dm_action_kind_str(w->want),
	    "%s: action", w->name);
	snprintf(code, sizeof(code), "%s%s%s", act.rcode, act.rcode[0] ?
	    " " : "", act.xcode);
	tap_is_str(code, w->want_code, "%s: reply code", w->name);
	tap_ok(act.add_header == w->hdr && act.hold == w->hold,
	    "%s: header %d hold %d", w->name, act.add_header, act.hold);
	dm_config_unref(c);
}

static void
test_texts(void)
{
	dm_config *c = dm_config_new();
	dm_author a;
	dm_verdict v;
	dm_action act;
	char err[256];

	memset(&a, 0, sizeof(a));
	memset(&v, 0, sizeof(v));
	strcpy(a.domain, "bank.example");
	v.authors = &a;
	v.nauthors = 1;
	v.disposition = DM_DISP_REJECT;
	dm_action_decide(c, &v, &act);
	tap_is_str(act.text, "Message rejected by the DMARC policy of "
	    "bank.example", "default RejectText names the domain");
	dm_config_set(c, "RejectText", "100% refused: %d\x01 fails DMARC",
	    err, sizeof(err));
	dm_action_decide(c, &v, &act);
	tap_is_str(act.text, "100 refused: bank.example fails DMARC",
	    "no '%%' and no control characters reach the reply");
	dm_config_set(c, "OnInternalError", "tempfail", err, sizeof(err));
	dm_action_internal_error(c, &act);
	tap_ok(act.kind == DM_ACT_TEMPFAIL && strcmp(act.rcode, "451") == 0,
	    "OnInternalError tempfail is a 451");
	dm_config_set(c, "OnInternalError", "accept", err, sizeof(err));
	dm_action_internal_error(c, &act);
	tap_ok(act.kind == DM_ACT_ACCEPT, "OnInternalError accept");
	dm_config_unref(c);
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(&rows[i]);
	test_texts();
	return tap_done();
}
