/*
 * dm_dkimsig.h - the syntax of a DKIM-Signature field (RFC 6376 3.2 and
 * 3.5), checked before libopendkim verifies it.
 *
 * libopendkim 2.11 lets a later duplicate tag replace an earlier one and
 * never checks d=, s= or i= against the domain-name grammar, so a
 * malformed signature can verify against a key at an odd name. A field
 * this module refuses is permerror, whatever the library makes of it.
 */
#ifndef DM_DKIMSIG_H
#define DM_DKIMSIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dm_dkimsig_info {
	bool has_l;		/* an l= tag: the body may be signed in part */
} dm_dkimsig_info;

/*
 * value: the field's value (after "DKIM-Signature:"), folding included.
 * Returns NULL when it is a well-formed signature, else a fixed text
 * saying what is wrong (for the Authentication-Results reason). info may
 * be NULL.
 */
const char *dm_dkimsig_check(const char *value, size_t len,
    dm_dkimsig_info *info);

#endif
