/*
 * dm_from.h - the RFC5322.From field: bytes of the field body in, the
 * author domains out.
 *
 * Display names, quoted strings, comments, angle addresses, groups,
 * folding. Domains come out lower-case, without a trailing dot, and as
 * A-labels (IDNA), so that they compare with DNS names byte for byte.
 */
#ifndef DM_FROM_H
#define DM_FROM_H

#include <stddef.h>

#include "dm_status.h"

#define DM_DOMAIN_MAX 254	/* 253 octets and the NUL */

typedef struct dm_from_addrs {
	char (*domain)[DM_DOMAIN_MAX];	/* one per mailbox, in order */
	size_t n;
	size_t nbad;	/* mailboxes with no usable domain */
} dm_from_addrs;

/*
 * Parse one From field body (what follows "From:", folding included).
 * DM_OK: at least one mailbox (domains in out; n may be 0 when every
 * mailbox was unusable, then nbad > 0). DM_PERMFAIL: not a mailbox-list.
 */
dm_status dm_from_parse(const char *value, size_t len, dm_from_addrs *out);
void dm_from_addrs_clear(dm_from_addrs *a);

/*
 * Normalise one domain: lower case, trailing dot removed, U-labels to
 * A-labels, LDH syntax checked. DM_PERMFAIL when it is not a domain.
 */
dm_status dm_domain_normalize(const char *in, size_t len, char *out,
    size_t outlen);

#endif
