/*
 * lib/align.c - identifier alignment (RFC 7489 3.1, RFC 9989 4.4 and
 * 4.10.2): strict alignment compares the domains, relaxed alignment
 * compares their Organizational Domains as dm_orgdomain determines them.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "dm_align.h"
#include "dm_from.h"

/* The last label of a domain: the top-level domain. */
static const char *
align_tld(const char *domain)
{
	const char *dot;

	dot = strrchr(domain, '.');
	return dot != NULL ? dot + 1 : domain;
}

/*
 * Either way of finding it, an Organizational Domain is a suffix of its
 * domain made of whole labels; two domains under different top-level
 * domains cannot share one, and need no lookup to tell.
 */
static bool
align_may_share(const char *a, const char *b)
{
	return strcasecmp(align_tld(a), align_tld(b)) == 0;
}

/* Is id org itself or a name below it? */
static bool
align_under(const char *id, const char *org)
{
	size_t il = strlen(id), ol = strlen(org);

	return il == ol ? strcasecmp(id, org) == 0 : il > ol &&
	    id[il - ol - 1] == '.' && strcasecmp(id + il - ol, org) == 0;
}

dm_status
dm_align_check(dm_org *o, const char *author, const char *id,
    dm_align_mode mode, bool *aligned)
{
	char org_a[DM_DOMAIN_MAX], org_i[DM_DOMAIN_MAX];
	dm_status st;

	*aligned = false;
	if (author == NULL || id == NULL || *author == '\0' || *id == '\0')
		return DM_OK;
	if (strcasecmp(author, id) == 0) {
		*aligned = true;
		return DM_OK;
	}
	if (mode == DM_ALIGN_STRICT || !align_may_share(author, id))
		return DM_OK;
	/*
	 * Only a temporary failure leaves the answer open; a domain that
	 * has no Organizational Domain at all (not a DNS name) aligns with
	 * nothing but itself, which was settled above.
	 */
	st = dm_org_domain(o, author, org_a, sizeof(org_a));
	if (st == DM_TEMPFAIL)
		return DM_TEMPFAIL;
	if (st != DM_OK)
		return DM_OK;
	/*
	 * The id's Organizational Domain is a suffix of the id, so it can
	 * be the author's only when the id lies under that: any other id
	 * is settled unaligned here, without a lookup in DNS that its owner
	 * controls, and so without a temporary failure the attacker can
	 * cause (issue 12: REFUSED for _dmarc of the SPF domain made a
	 * spoof temperror).
	 */
	if (!align_under(id, org_a))
		return DM_OK;
	st = dm_org_domain(o, id, org_i, sizeof(org_i));
	if (st == DM_TEMPFAIL)
		return DM_TEMPFAIL;
	if (st != DM_OK)
		return DM_OK;
	*aligned = strcasecmp(org_a, org_i) == 0;
	return DM_OK;
}
