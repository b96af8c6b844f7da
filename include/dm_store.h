/*
 * dm_store.h - where counts go: a bounded queue that mail threads fill
 * without ever waiting on Redis, and one writer thread that pipelines it
 * into Redis, or into the local journal while Redis is away (and always,
 * without a RedisURL: the embedded store). The journal is replayed into
 * Redis in the background when it answers again, exactly once (see
 * dm_update.h), oldest first.
 */
#ifndef DM_STORE_H
#define DM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "dm_status.h"
#include "dm_update.h"

typedef struct dm_store dm_store;

typedef struct dm_store_opts {
	const char *redis_url;	/* NULL or "": the journal is the store */
	const char *prefix;	/* RedisKeyPrefix */
	int timeout_ms;		/* RedisTimeout */
	long ttl_sec;		/* safety TTL after a period ends */
	const char *state_dir;	/* the journal is StateDir/journal */
	size_t queue_max;	/* updates held in memory at most */
} dm_store_opts;

typedef struct dm_store_stats {
	uint64_t queued, to_redis, to_journal, overflow, replayed, skipped;
	int spooling;		/* Redis away, the journal in use */
} dm_store_stats;

dm_store *dm_store_new(const dm_store_opts *o, char *err, size_t errlen);
/*
 * Hand over n updates (their strings now belong to the store; writer
 * and seq are set here). Never waits on Redis; when the queue is full
 * they are appended to the journal at once. DM_TEMPFAIL only when even
 * the journal cannot take them (logged).
 */
dm_status dm_store_put(dm_store *s, dm_update *u, size_t n);
/* Stop the writer: what is queued goes to Redis or to the journal. */
void dm_store_free(dm_store *s);
void dm_store_get_stats(dm_store *s, dm_store_stats *out);

#endif
