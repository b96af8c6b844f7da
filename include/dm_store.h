/*
 * dm_store.h - where counts go: first the local journal, durable before
 * dm_store_put returns (group commit), so that a count the MTA was
 * answered for survives a killed milter; then, with a RedisURL, a
 * bounded queue that one writer thread pipelines into Redis, never
 * making mail wait on it. Without a RedisURL the journal is the store
 * (the embedded store). What Redis has not got from the queue is
 * replayed from the journal in the background, exactly once (see
 * dm_update.h), oldest first.
 */
#ifndef DM_STORE_H
#define DM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "dm_status.h"
#include "dm_update.h"

typedef struct dm_store dm_store;

/* CounterSync: what dm_store_put's return promises. */
enum {
	DM_STORE_SYNC_DISK = 0,	/* fdatasync'd: survives a power loss */
	DM_STORE_SYNC_WRITTEN	/* write(2) done: survives a process kill */
};

typedef struct dm_store_opts {
	const char *redis_url;	/* NULL or "": the journal is the store */
	const char *prefix;	/* RedisKeyPrefix */
	int timeout_ms;		/* RedisTimeout */
	long ttl_sec;		/* safety TTL after a period ends */
	const char *state_dir;	/* the journal is StateDir/journal */
	size_t queue_max;	/* updates held in memory at most */
	int sync;		/* DM_STORE_SYNC_* */
} dm_store_opts;

typedef struct dm_store_stats {
	uint64_t queued, to_redis, to_journal, overflow, replayed, skipped;
	uint64_t syncs;		/* fdatasync calls (group commits) */
	int spooling;		/* Redis away, the journal in use */
} dm_store_stats;

dm_store *dm_store_new(const dm_store_opts *o, char *err, size_t errlen);
/*
 * Hand over n updates (their strings now belong to the store; writer
 * and seq are set here). Returns once they are in the journal and, with
 * DM_STORE_SYNC_DISK, synced: threads calling at the same time share one
 * fdatasync. Never waits on Redis; a full queue only means the writer
 * ships them from the journal later. DM_TEMPFAIL when the journal could
 * not write or sync them (logged).
 */
dm_status dm_store_put(dm_store *s, dm_update *u, size_t n);
/* Stop the writer: what is queued goes to Redis or to the journal. */
void dm_store_free(dm_store *s);
void dm_store_get_stats(dm_store *s, dm_store_stats *out);

#endif
