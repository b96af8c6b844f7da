/*
 * dm_orgdomain.h - Organizational Domain and DMARC policy discovery.
 *
 * Two methods (OrgDomainMethod): "treewalk" (RFC 9989 4.10, the default:
 * DNS tree walk with the 8-label shortcut and psd=) and "psl" (RFC 7489
 * 3.2 with libpsl and Debian's public suffix list). Both use dm_resolver.
 */
#ifndef DM_ORGDOMAIN_H
#define DM_ORGDOMAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "dm_from.h"
#include "dm_record.h"
#include "dm_resolver.h"
#include "dm_status.h"

typedef struct dm_org dm_org;

typedef enum dm_org_method {
	DM_ORG_TREEWALK = 0,
	DM_ORG_PSL
} dm_org_method;

typedef struct dm_discovery {
	char policy_domain[DM_DOMAIN_MAX];	/* where the record was found */
	dm_record *record;	/* the record used, or NULL */
	bool exact;		/* found at the author domain itself */
	char error[512];	/* why not found / temporary failure, for logs */
} dm_discovery;

/* psl_file: NULL for the configured default (DM_PSL_FILE). */
dm_org *dm_org_new(dm_org_method m, dm_resolver *r, const char *psl_file,
    char *err, size_t errlen);
void dm_org_free(dm_org *o);
dm_org_method dm_org_get_method(const dm_org *o);

/*
 * DMARC policy discovery for an author domain (normalised). DM_OK: a
 * record (out->record, owned by out). DM_NOTFOUND: no DMARC policy.
 * DM_TEMPFAIL: a lookup failed temporarily, so the answer is unknown.
 */
dm_status dm_org_discover(dm_org *o, const char *author_domain,
    dm_discovery *out);
void dm_discovery_clear(dm_discovery *d);

/*
 * The Organizational Domain of a (normalised) domain, into out.
 * DM_OK or DM_TEMPFAIL (tree walk lookups failed).
 */
dm_status dm_org_domain(dm_org *o, const char *domain, char *out,
    size_t outlen);

/* Parse "treewalk" / "psl"; -1 when unknown. */
int dm_org_method_from_name(const char *name);
const char *dm_org_method_str(dm_org_method m);

#endif
