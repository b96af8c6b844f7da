/*
 * dm_domain.h - one normal form for every domain the project compares
 * (lib/domain.c): lower case, no trailing dot, A-labels, so that author
 * domains, DKIM d=, SPF identities and DNS names compare byte for byte.
 */
#ifndef DM_DOMAIN_H
#define DM_DOMAIN_H

#include <stddef.h>

#include "dm_status.h"

#define DM_DOMAIN_MAX 254	/* 253 octets and the NUL */

/*
 * Normalise one domain: lower case, trailing dot removed, U-labels to
 * A-labels, LDH syntax checked. DM_PERMFAIL when it is not a domain.
 */
dm_status dm_domain_normalize(const char *in, size_t len, char *out,
    size_t outlen);

#endif
