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

/* Distinct domains kept; more means "truncated" (the caller refuses). */
#define DM_FROM_MAX_DOMAINS 64

typedef struct dm_from_addrs {
	char (*domain)[DM_DOMAIN_MAX];	/* distinct, in order of appearance */
	size_t n;
	size_t nmailboxes;	/* every mailbox seen, usable or not */
	size_t nbad;	/* mailboxes with no usable domain */
	int truncated;	/* more than DM_FROM_MAX_DOMAINS distinct domains */
} dm_from_addrs;

/*
 * Parse one From field body (what follows "From:", folding included).
 * DM_OK: at least one mailbox (domains in out; n may be 0 when every
 * mailbox was unusable, then nbad > 0). DM_PERMFAIL: not a mailbox-list
 * (unbalanced quotes, comments or literals, control characters, no
 * mailbox at all). Linear in len; comments nest at most 32 deep.
 *
 * An addr-spec written bare in a display name ("ceo@bank.example"
 * <x@evil.example>, unquoted) is not RFC 5322 syntax, but readers show
 * it: its domain is counted as one more author, so that the strictest
 * policy of the two applies. A quoted display name is only a name.
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
