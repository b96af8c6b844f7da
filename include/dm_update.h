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
#define DM_FP_LEN 32		/* hex digits of a message fingerprint */

typedef struct dm_update {
	char writer[DM_WRITER_MAX];	/* [A-Za-z0-9._:-], no spaces */
	uint64_t seq;			/* > 0, increasing per writer */
	char *domain;		/* policy domain (normalised, no spaces) */
	int64_t begin, end;	/* the report period, UTC seconds [begin, end) */
	char *policy;		/* canonical published policy (dm_row.h) */
	char *row;		/* canonical row identity (dm_row.h) */
	uint32_t count;		/* how many messages (1 from the milter) */
	char fp[DM_FP_LEN + 1];	/* "" or the message's fingerprint */
} dm_update;

/*
 * Deep copy / free of the strings (the struct itself is the caller's).
 * NULL strings stay NULL; out of memory ends the process (dm_log_oom).
 * dm_update_clear leaves *u zeroed.
 */
void dm_update_copy(dm_update *dst, const dm_update *src);
void dm_update_clear(dm_update *u);

/* 16 hex digits naming a policy text (FNV-1a 64): the group's key part. */
void dm_update_policy_id(const char *policy, char out[17]);

/*
 * A message's fingerprint: what identifies the same message offered
 * again after a reply was lost (the milter died between making the
 * count durable and answering, and the client retried). The stores
 * count an update whose fingerprint they saw already in the same group
 * (policy domain, period, policy) zero times. Fed with what a retry
 * repeats (client address, envelope, the header fields but Received,
 * the body); never with what the MTA adds per attempt (its Received
 * field, the queue id). SHA-256, the first DM_FP_LEN hex digits.
 */
typedef struct dm_fp dm_fp;

dm_fp *dm_fp_new(void);		/* NULL when out of memory */
void dm_fp_free(dm_fp *f);
void dm_fp_reset(dm_fp *f);
/* One field: its tag keeps "a" "bc" apart from "ab" "c". */
void dm_fp_field(dm_fp *f, char tag, const char *value);
/* Body bytes, in order; only the first DM_FP_BODY_MAX count. */
#define DM_FP_BODY_MAX (256u << 10)
void dm_fp_body(dm_fp *f, const unsigned char *p, size_t len);
/* The hex digits into out; f is reset for the next message. */
void dm_fp_final(dm_fp *f, char out[DM_FP_LEN + 1]);

#endif
