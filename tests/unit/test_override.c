/*
 * tests/unit/test_override.c - local policy overrides, one row each:
 * which setting, which message, what disposition and reason result.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dm_override.h"
#include "tap.h"

static const struct row {
	const char *name;
	const char *opt, *val;	/* one config setting, or NULL */
	const char *ip;
	bool list;
	const char *domain;
	dm_disposition in;
	dm_disposition want;
	int want_reason;	/* -1: none added */
} rows[] = {
	{ "no override: reject stays", NULL, NULL, "192.0.2.1", false,
	  "bank.example", DM_DISP_REJECT, DM_DISP_REJECT, -1 },
	{ "trusted forwarder: reject becomes quarantine",
	  "TrustedForwarders", "192.0.2.0/24", "192.0.2.1", false,
	  "bank.example", DM_DISP_REJECT, DM_DISP_QUARANTINE,
	  DM_REASON_TRUSTED_FORWARDER },
	{ "trusted forwarder: quarantine stays", "TrustedForwarders",
	  "192.0.2.0/24", "192.0.2.1", false, "bank.example",
	  DM_DISP_QUARANTINE, DM_DISP_QUARANTINE, -1 },
	{ "other client is not a forwarder", "TrustedForwarders",
	  "192.0.2.0/24", "198.51.100.1", false, "bank.example",
	  DM_DISP_REJECT, DM_DISP_REJECT, -1 },
	{ "mailing list: reject becomes quarantine", NULL, NULL, "192.0.2.1",
	  true, "bank.example", DM_DISP_REJECT, DM_DISP_QUARANTINE,
	  DM_REASON_MAILING_LIST },
	{ "mailing list with MailingListAction none", "MailingListAction",
	  "none", "192.0.2.1", true, "bank.example", DM_DISP_REJECT,
	  DM_DISP_REJECT, -1 },
	{ "RejectPolicy quarantine", "RejectPolicy", "quarantine",
	  "192.0.2.1", false, "bank.example", DM_DISP_REJECT,
	  DM_DISP_QUARANTINE, DM_REASON_LOCAL_POLICY },
	{ "IgnoreDomains: none", "IgnoreDomains", "x.example, Bank.Example.",
	  "192.0.2.1", false, "bank.example", DM_DISP_REJECT, DM_DISP_NONE,
	  DM_REASON_LOCAL_POLICY },
	{ "IgnoreDomains: other domain untouched", "IgnoreDomains",
	  "x.example", "192.0.2.1", false, "bank.example",
	  DM_DISP_QUARANTINE, DM_DISP_QUARANTINE, -1 },
	{ "monitor: quarantine becomes none", "Mode", "monitor", "192.0.2.1",
	  false, "bank.example", DM_DISP_QUARANTINE, DM_DISP_NONE,
	  DM_REASON_LOCAL_POLICY },
	{ "none stays none without a reason", "Mode", "monitor",
	  "192.0.2.1", false, "bank.example", DM_DISP_NONE, DM_DISP_NONE,
	  -1 },
};

static void
run_row(const struct row *w)
{
	dm_override_ctx ctx = { w->ip, w->list };
	dm_policy_verdict v;
	dm_override *o;
	dm_config *c = dm_config_new();
	char err[256];

	if (c == NULL)
		tap_bail("dm_config_new");
	if (w->opt != NULL && dm_config_set(c, w->opt, w->val, err,
	    sizeof(err)) != DM_OK)
		tap_bail("%s: %s", w->name, err);
	if ((o = dm_override_new(c, err, sizeof(err))) == NULL)
		tap_bail("%s: %s", w->name, err);
	memset(&v, 0, sizeof(v));
	v.result = DM_DMARC_FAIL;
	v.requested = DM_POLICY_REJECT;
	v.disposition = w->in;
	dm_override_apply(o, &ctx, w->domain, &v);
	tap_is_str(dm_disposition_str(v.disposition),
	    dm_disposition_str(w->want), "%s: disposition", w->name);
	if (w->want_reason < 0)
		tap_is_int((long)v.nreasons, 0, "%s: no reason", w->name);
	else
		tap_ok(v.nreasons == 1 && (int)v.reasons[0].type ==
		    w->want_reason, "%s: reason %s", w->name,
		    dm_reason_type_str(w->want_reason));
	dm_override_free(o);
	dm_config_unref(c);
}

int
main(void)
{
	dm_config *c = dm_config_new();
	dm_override *o;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(&rows[i]);
	o = dm_override_new(c, err, sizeof(err));
	tap_ok(o != NULL && dm_override_ignored_host(o, "127.0.0.1") &&
	    dm_override_ignored_host(o, "::1") &&
	    !dm_override_ignored_host(o, "192.0.2.1"),
	    "IgnoreHosts default: loopback only");
	dm_override_free(o);
	dm_config_set(c, "TrustedForwarders", "10.0.0.0/40", err, sizeof(err));
	tap_ok(dm_override_new(c, err, sizeof(err)) == NULL &&
	    strstr(err, "10.0.0.0/40") != NULL,
	    "a bad list is refused naming the item: %s", err);
	dm_config_unref(c);
	return tap_done();
}
