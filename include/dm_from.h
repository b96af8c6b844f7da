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

#include "dm_domain.h"
#include "dm_status.h"

/* Distinct domains kept; more means "truncated" (the caller refuses). */
#define DM_FROM_MAX_DOMAINS 64

typedef struct dm_from_addrs {
	char (*domain)[DM_DOMAIN_MAX];	/* distinct, in order of appearance */
	size_t n;
	size_t nmailboxes;	/* every mailbox seen, usable or not */
	size_t nbad;	/* mailboxes with no usable domain */
	int truncated;	/* more than DM_FROM_MAX_DOMAINS distinct domains */
	int malformed;	/* not RFC 5322: a reader's view was added */
	size_t ndeceptive;	/* shown domains that are no domain name */
	const char *deceptive;	/* why the first one is not (static text) */
} dm_from_addrs;

/*
 * Parse one From field body (what follows "From:", folding included).
 * Linear in len; comments nest at most 32 deep.
 *
 * A field we cannot read must never mean "no author": the domain a mail
 * reader shows is the domain evaluated. So where the field is not clean
 * RFC 5322 (a lexical fault, a mailbox without a usable domain, folding
 * inside a domain), malformed is set and the field is read once more the
 * way readers do: every '@' and the run of bytes after it up to a
 * delimiter (outside quotes and comments while those are balanced,
 * everywhere once they are not). A run that is a domain name is one more
 * author domain; a run that is not (control, invisible or bidi
 * characters, an empty label, bytes no domain has) counts in ndeceptive,
 * with the reason in deceptive: a reader shows a domain there that no
 * policy can be looked up for, so the field is there to deceive.
 *
 * DM_OK: some mailbox or shown domain (domains in out; n may be 0, then
 * nbad or ndeceptive > 0). DM_PERMFAIL: the field shows no author at all
 * (empty, only comments, an empty group, no '@' and no mailbox).
 *
 * An addr-spec written bare in a display name ("ceo@bank.example"
 * <x@evil.example>, unquoted) is not RFC 5322 syntax, but readers show
 * it: its domain is counted as one more author, so that the strictest
 * policy of the two applies. A quoted display name is only a name.
 */
dm_status dm_from_parse(const char *value, size_t len, dm_from_addrs *out);
void dm_from_addrs_clear(dm_from_addrs *a);

#endif
