/*
 * dm_update.h - one count for one aggregate-report row: what the milter
 * hands to the store, what the journal keeps, what Redis applies.
 *
 * Identity for exactly-once: every update carries the id of the writer
 * (one process incarnation) and a sequence number that only grows. A
 * writer applies its updates to a backend strictly in sequence order, so
 * "the highest sequence applied" per (writer, policy domain) tells what
 * is committed; replaying anything at or below it is a no-op.
 */
#ifndef DM_UPDATE_H
#define DM_UPDATE_H

#include <stddef.h>
#include <stdint.h>

#define DM_WRITER_MAX 64

typedef struct dm_update {
	char writer[DM_WRITER_MAX];	/* [A-Za-z0-9._:-], no spaces */
	uint64_t seq;			/* > 0, increasing per writer */
	char *domain;		/* policy domain (normalised, no spaces) */
	int64_t begin, end;	/* the report period, UTC seconds [begin, end) */
	char *policy;		/* canonical published policy (dm_row.h) */
	char *row;		/* canonical row identity (dm_row.h) */
	uint32_t count;		/* how many messages (1 from the milter) */
} dm_update;

/*
 * Deep copy / free of the strings (the struct itself is the caller's).
 * dm_update_copy: 0, or -1 when out of memory (dst then cleared); NULL
 * strings stay NULL. dm_update_clear leaves *u zeroed.
 */
int dm_update_copy(dm_update *dst, const dm_update *src);
void dm_update_clear(dm_update *u);

/* 16 hex digits naming a policy text (FNV-1a 64): the group's key part. */
void dm_update_policy_id(const char *policy, char out[17]);

#endif
