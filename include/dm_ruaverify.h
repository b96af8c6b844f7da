/*
 * dm_ruaverify.h - which rua= destinations of a policy domain may get its
 * aggregate report: mailto: URIs only, each external one authorized by a
 * "_report._dmarc" record of its host (RFC 7489 7.1, RFC 9990 "Verifying
 * External Destinations"), with the host's replacement rua applied.
 *
 * Only the first DM_RUA_MAX URIs of the list are considered, and at most
 * DM_RUA_MAX addresses come out: RFC 9990 lets a receiver limit the URIs
 * it supports, RFC 7489 asks for at least two.
 */
#ifndef DM_RUAVERIFY_H
#define DM_RUAVERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "dm_orgdomain.h"
#include "dm_record.h"
#include "dm_resolver.h"
#include "dm_status.h"

#define DM_RUA_MAX	10

/* A verified destination: a plain local@domain, domain in A-labels. */
typedef struct dm_rua_dest {
	char addr[512];		/* no "mailto:" */
	uint64_t max_size;	/* the !size limit in bytes, 0 = none */
} dm_rua_dest;

/* A URI that gets no report, and why (for the log). */
typedef struct dm_rua_skip {
	char uri[512];		/* as published, without its !size */
	char why[256];
} dm_rua_skip;

/*
 * Verify the rua of policy_domain (the domain its record was found at).
 * *dests and *skips are malloc'ed (NULL when the count is 0), caller
 * frees; destinations keep the order of the list, duplicates dropped.
 * DM_OK even when no destination remains. DM_TEMPFAIL: a lookup failed
 * temporarily, the lists hold what could be decided (retry later).
 * DM_PERMFAIL: policy_domain is not a domain (nothing out).
 */
dm_status dm_rua_verify(dm_resolver *r, dm_org *org, const char *policy_domain,
    const dm_urilist *rua, dm_rua_dest **dests, size_t *nd,
    dm_rua_skip **skips, size_t *ns);

#endif
