/*
 * dm_hash.h - the one hash of the project (lib/util/hash.c): FNV-1a,
 * 32 bits, for the slots of in-memory tables and stable names. Not for
 * anything an attacker must not be able to collide on purpose: the
 * tables that use it are bounded and compare their keys in full.
 */
#ifndef DM_HASH_H
#define DM_HASH_H

#include <stddef.h>
#include <stdint.h>

#define DM_HASH_INIT	2166136261u	/* the FNV-1a offset basis */

/* h updated with len bytes at p (start from DM_HASH_INIT). */
uint32_t dm_hash_add(uint32_t h, const void *p, size_t len);
/* The same over a NUL-terminated string. */
uint32_t dm_hash_str(uint32_t h, const char *s);

#endif
