/*
 * lib/override.c - local policy: the overrides a receiver applies on top
 * of the published policy, each recorded with the reason the aggregate
 * report will carry, so domain owners see why their policy was not
 * applied as published.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/stdlib.h>

#include "dm_cidr.h"
#include "dm_log.h"
#include "dm_override.h"

struct dm_override {
	dm_cidrlist *ignore_hosts;
	dm_cidrlist *forwarders;
	char **ignore_domains;
	size_t nignore;
	bool list_quarantine;
	bool never_reject;
	bool monitor;
};

static dm_status
override_domains(dm_override *o, const char *spec)
{
	const char *p = spec, *q;
	char **v;

	while (p != NULL && *(p += strspn(p, " \t,")) != '\0') {
		q = p + strcspn(p, " \t,");
		v = reallocarray(o->ignore_domains, o->nignore + 1,
		    sizeof(*v));
		if (v == NULL)
			dm_log_oom();
		o->ignore_domains = v;
		if ((v[o->nignore] = strndup(p, (size_t)(q - p))) == NULL)
			dm_log_oom();
		/* Domains compare like DNS names: no trailing dot. */
		if (q - p > 1 && v[o->nignore][q - p - 1] == '.')
			v[o->nignore][q - p - 1] = '\0';
		o->nignore++;
		p = q;
	}
	return DM_OK;
}

dm_override *
dm_override_new(const dm_config *c, char *err, size_t errlen)
{
	dm_override *o;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return NULL;
	if (dm_cidrlist_parse(dm_config_str(c, DM_OPT_IGNORE_HOSTS),
	    &o->ignore_hosts, err, errlen) != DM_OK ||
	    dm_cidrlist_parse(dm_config_str(c, DM_OPT_TRUSTED_FORWARDERS),
	    &o->forwarders, err, errlen) != DM_OK ||
	    override_domains(o, dm_config_str(c, DM_OPT_IGNORE_DOMAINS)) !=
	    DM_OK) {
		dm_override_free(o);
		return NULL;
	}
	o->list_quarantine = dm_config_int(c, DM_OPT_MAILING_LIST_ACTION) ==
	    DM_LISTACT_QUARANTINE;
	o->never_reject = dm_config_int(c, DM_OPT_REJECT_POLICY) ==
	    DM_REJPOL_QUARANTINE;
	o->monitor = dm_config_int(c, DM_OPT_MODE) == DM_MODE_MONITOR;
	return o;
}

void
dm_override_free(dm_override *o)
{
	size_t i;

	if (o == NULL)
		return;
	dm_cidrlist_free(o->ignore_hosts);
	dm_cidrlist_free(o->forwarders);
	for (i = 0; i < o->nignore; i++)
		free(o->ignore_domains[i]);
	free(o->ignore_domains);
	free(o);
}

static bool
override_domain_ignored(const dm_override *o, const char *domain)
{
	size_t i;

	for (i = 0; i < o->nignore; i++)
		if (strcasecmp(o->ignore_domains[i], domain) == 0)
			return true;
	return false;
}

static void
override_set(dm_policy_verdict *v, dm_disposition d, dm_reason_type t,
    const char *comment)
{
	v->disposition = d;
	dm_policy_add_reason(v, t, comment);
}

void
dm_override_apply(const dm_override *o, const dm_override_ctx *ctx,
    const char *author_domain, dm_policy_verdict *v)
{
	if (v->disposition == DM_DISP_NONE)
		return;
	if (override_domain_ignored(o, author_domain)) {
		override_set(v, DM_DISP_NONE, DM_REASON_LOCAL_POLICY,
		    "IgnoreDomains");
		return;
	}
	if (o->monitor) {
		override_set(v, DM_DISP_NONE, DM_REASON_LOCAL_POLICY,
		    "monitor mode");
		return;
	}
	if (v->disposition != DM_DISP_REJECT)
		return;
	if (dm_cidrlist_match(o->forwarders, ctx->client_ip))
		override_set(v, DM_DISP_QUARANTINE,
		    DM_REASON_TRUSTED_FORWARDER, "TrustedForwarders");
	else if (ctx->mailing_list && o->list_quarantine)
		override_set(v, DM_DISP_QUARANTINE, DM_REASON_MAILING_LIST,
		    "List-Id or List-Post");
	else if (o->never_reject)
		override_set(v, DM_DISP_QUARANTINE, DM_REASON_LOCAL_POLICY,
		    "RejectPolicy quarantine");
}

bool
dm_override_ignored_host(const dm_override *o, const char *ip)
{
	return dm_cidrlist_match(o->ignore_hosts, ip);
}
