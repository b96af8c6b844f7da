/*
 * lib/update.c - the update record every store backend handles: deep
 * copy and release of its strings, and the short id of a policy text
 * (FNV-1a 64) that names a group in the stores.
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm_update.h"

#define FNV64_OFFSET	UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME	UINT64_C(0x100000001b3)

/* NULL stays NULL; false only when out of memory. */
static bool
update_strdup(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return true;
	return (*dst = strdup(src)) != NULL;
}

int
dm_update_copy(dm_update *dst, const dm_update *src)
{
	*dst = *src;
	dst->domain = dst->policy = dst->row = NULL;
	if (!update_strdup(&dst->domain, src->domain) ||
	    !update_strdup(&dst->policy, src->policy) ||
	    !update_strdup(&dst->row, src->row)) {
		dm_update_clear(dst);
		return -1;
	}
	return 0;
}

void
dm_update_clear(dm_update *u)
{
	if (u == NULL)
		return;
	free(u->domain);
	free(u->policy);
	free(u->row);
	memset(u, 0, sizeof(*u));
}

void
dm_update_policy_id(const char *policy, char out[17])
{
	const unsigned char *p = (const unsigned char *)(policy ? policy : "");
	uint64_t h = FNV64_OFFSET;

	for (; *p != '\0'; p++) {
		h ^= *p;
		h *= FNV64_PRIME;
	}
	snprintf(out, 17, "%016" PRIx64, h);
}
