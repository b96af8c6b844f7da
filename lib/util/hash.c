/*
 * lib/util/hash.c - FNV-1a, the one hash of the project: the resolver's
 * answer table, the decoded-key table, a report mail's boundary.
 */
#include "config.h"

#include "dm_hash.h"

#define HASH_PRIME	16777619u

uint32_t
dm_hash_add(uint32_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	while (len-- > 0)
		h = (h ^ *b++) * HASH_PRIME;
	return h;
}

uint32_t
dm_hash_str(uint32_t h, const char *s)
{
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * HASH_PRIME;
	return h;
}
