/*
 * lib/action.c - from verdict to SMTP: accept, quarantine, 550 5.7.1 or
 * 451 4.7.1. A temporary DNS failure defers only mail whose domain is
 * known to ask for quarantine or reject (TemporaryErrorAction auto):
 * deferring mail of domains with no or unknown policy would let a DNS
 * outage hold up all inbound mail.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <bsd/string.h>

#include "dm_action.h"

static void
action_reply(dm_action *out, dm_action_kind k, const char *rcode,
    const char *xcode)
{
	out->kind = k;
	strlcpy(out->rcode, rcode, sizeof(out->rcode));
	strlcpy(out->xcode, xcode, sizeof(out->xcode));
}

/*
 * RejectText with %d replaced by the domain. Only printable ASCII goes
 * out, and no '%': libmilter reads it as a format character.
 */
static void
action_text(char *out, size_t len, const char *tmpl, const char *domain)
{
	size_t o = 0;
	const char *p, *s;

	for (p = tmpl; *p != '\0' && o + 1 < len; p++) {
		s = NULL;
		if (p[0] == '%' && p[1] == 'd') {
			s = domain;
			p++;
		}
		for (; s != NULL && *s != '\0' && o + 1 < len; s++)
			if (*s > 32 && *s < 127 && *s != '%')
				out[o++] = *s;
		if (s == NULL && *p >= 32 && *p < 127 && *p != '%')
			out[o++] = *p;
	}
	out[o] = '\0';
}

static const dm_author *
action_author(const dm_verdict *v)
{
	return v->nauthors > 0 ? &v->authors[v->decisive] : NULL;
}

/* Is the policy of the domain that failed temporarily known to bite? */
static bool
action_policy_known(const dm_author *a)
{
	return a != NULL && a->discovery == DM_OK &&
	    a->pv.requested != DM_POLICY_NONE;
}

static void
action_tempfail(const dm_config *c, const dm_verdict *v, dm_action *out)
{
	long how = dm_config_int(c, DM_OPT_TEMP_ERROR_ACTION);
	const dm_author *a = action_author(v);

	if (dm_config_int(c, DM_OPT_MODE) == DM_MODE_MONITOR ||
	    how == DM_TEMPACT_ACCEPT ||
	    (how == DM_TEMPACT_AUTO && !action_policy_known(a)))
		return;
	action_reply(out, DM_ACT_TEMPFAIL, "451", "4.7.1");
	snprintf(out->text, sizeof(out->text), "DMARC policy of %s could not "
	    "be checked, try again later", a != NULL ? a->domain : "sender");
}

void
dm_action_decide(const dm_config *c, const dm_verdict *v, dm_action *out)
{
	const dm_author *a = action_author(v);
	long q;

	memset(out, 0, sizeof(*out));
	out->kind = DM_ACT_ACCEPT;
	if (v->disposition == DM_DISP_REJECT) {
		action_reply(out, DM_ACT_REJECT, "550", "5.7.1");
		/* Not the policy of a domain: the From field's own fault. */
		action_text(out->text, sizeof(out->text),
		    v->from_refused != NULL ? v->from_refused :
		    dm_config_str(c, DM_OPT_REJECT_TEXT),
		    a != NULL ? a->domain : "");
	} else if (v->disposition == DM_DISP_QUARANTINE) {
		q = dm_config_int(c, DM_OPT_QUARANTINE_ACTION);
		out->kind = DM_ACT_QUARANTINE;
		out->add_header = q == DM_QACT_HEADER || q == DM_QACT_BOTH;
		out->hold = q == DM_QACT_HOLD || q == DM_QACT_BOTH;
		snprintf(out->text, sizeof(out->text), "DMARC policy of %s",
		    a != NULL ? a->domain : "sender");
	} else if (v->result == DM_DMARC_TEMPERROR)
		action_tempfail(c, v, out);
}

void
dm_action_internal_error(const dm_config *c, dm_action *out)
{
	memset(out, 0, sizeof(*out));
	switch (dm_config_int(c, DM_OPT_ON_INTERNAL_ERROR)) {
	case DM_INTERR_TEMPFAIL:
		action_reply(out, DM_ACT_TEMPFAIL, "451", "4.3.0");
		strlcpy(out->text, "internal error, try again later",
		    sizeof(out->text));
		break;
	case DM_INTERR_REJECT:
		action_reply(out, DM_ACT_REJECT, "550", "5.3.0");
		strlcpy(out->text, "internal error", sizeof(out->text));
		break;
	default:
		out->kind = DM_ACT_ACCEPT;
	}
}

const char *
dm_action_kind_str(dm_action_kind k)
{
	static const char *const names[] = { "accept", "quarantine", "reject",
	    "tempfail" };

	return (size_t)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}
