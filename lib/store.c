/*
 * lib/store.c - the counters' journal-first path and its writer thread
 * (dm_store.h).
 *
 * Every count goes to the local journal first, in the mail thread, and
 * is durable before dm_store_put returns (group commit: the threads
 * waiting together share one fdatasync; the first of them to find none
 * running starts it, outside the lock, so the next group writes its
 * records meanwhile). The MTA hears the reply only after that, so a
 * killed milter never loses a count it answered for.
 *
 * With Redis, a copy of each record also goes into a bounded queue, in
 * sequence order, and the writer thread ships it. Order is what makes
 * shipping and replay exactly-once: Redis skips an update whose
 * sequence is not above the highest it applied for that writer, so a
 * later update must never reach Redis before an earlier one. Hence two
 * modes. Direct: the queue holds every record since the last rotation
 * with no hole, and is shipped; a closed segment of ours is removed
 * once everything in it is shipped. Spool (Redis failed, or the queue
 * was full once and has a hole): the queue is dropped, the journal alone
 * holds the counts, and the thread replays closed segments, oldest
 * first; it rotates first and turns the queue on again under the lock,
 * so that the queue then holds exactly what the replay does not.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "dm_journal.h"
#include "dm_log.h"
#include "dm_redis.h"
#include "dm_store.h"

#define STORE_BATCH		256
#define STORE_SEG_BYTES		(16u << 20)
#define STORE_TICK_MS		100
#define STORE_RETRY_MS		1000
/* direct mode: how long a segment collects records before it is closed
 * and, once shipped, removed */
#define STORE_SHIP_ROTATE_MS	10000
/* embedded: how long counts may wait in an open segment, unseen by
 * dmarc-report (which folds only closed ones) */
#define STORE_ROTATE_MS		60000

/* A closed segment of ours, removable once last is shipped. */
struct store_seg {
	char path[4096];
	uint64_t last;
};

struct dm_store {
	pthread_mutex_t lock;	/* all below up to the writer's own */
	pthread_cond_t cond;	/* to the writer: queued, or stop */
	pthread_cond_t synced;	/* to the mail threads: a commit done */
	pthread_t thread;
	bool stop;
	dm_journal *journal;
	char writer[DM_WRITER_MAX];
	uint64_t seq;		/* the last one appended */
	uint64_t durable;	/* everything up to it is synced */
	uint64_t failed;	/* a failed sync covered up to it */
	bool syncing;		/* a group commit is under way */
	bool on_disk;		/* CounterSync disk */
	/* the queue to Redis: copies of records, a ring, owned */
	dm_update *ring;
	size_t cap, head, len;
	bool queueing;		/* records go into the queue */
	bool hole;		/* one did not fit: spool mode needed */
	dm_store_stats st;
	/* the writer thread's own */
	dm_redis *redis;	/* NULL: embedded */
	char dir[4096];
	bool spooling;
	uint64_t shipped;	/* the last sequence of ours in Redis */
	struct store_seg *segs;	/* closed in direct mode, not removed */
	size_t nsegs, capsegs;
};

static void
store_writer_id(char *out, size_t len)
{
	char host[256] = "host";
	size_t i;

	(void)gethostname(host, sizeof(host) - 1);
	for (i = 0; host[i] != '\0'; i++)
		if (!((host[i] >= 'a' && host[i] <= 'z') ||
		    (host[i] >= 'A' && host[i] <= 'Z') ||
		    (host[i] >= '0' && host[i] <= '9') || host[i] == '.' ||
		    host[i] == '-'))
			host[i] = '_';
	snprintf(out, len, "%.40s:%ld:%lld", host, (long)getpid(),
	    (long long)time(NULL));
}

static void
store_count(dm_store *s, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&s->lock);
	*field += n;
	pthread_mutex_unlock(&s->lock);
}

/* ---- group commit ------------------------------------------------------ */

/*
 * Under the lock: wait until everything up to seq is synced. One thread
 * at a time syncs, unlocked, what was appended when it started; the
 * others wait for it, and one of them starts the next sync if theirs
 * came later. DM_TEMPFAIL when a failed sync covered seq.
 */
static dm_status
store_commit(dm_store *s, uint64_t seq)
{
	uint64_t upto;
	int fd, rc, e;

	while (s->durable < seq && s->failed < seq) {
		if (s->syncing) {
			pthread_cond_wait(&s->synced, &s->lock);
			continue;
		}
		s->syncing = true;
		upto = s->seq;
		fd = dm_journal_sync_fd(s->journal);
		pthread_mutex_unlock(&s->lock);
		rc = fd < 0 ? -1 : fdatasync(fd);
		e = errno;
		if (fd >= 0)
			close(fd);
		pthread_mutex_lock(&s->lock);
		s->syncing = false;
		s->st.syncs++;
		if (rc == 0 && upto > s->durable)
			s->durable = upto;
		else if (rc != 0) {
			dm_err("counters: %s: fdatasync: %s", s->dir,
			    strerror(e));
			s->failed = upto;
		}
		pthread_cond_broadcast(&s->synced);
	}
	return s->durable >= seq ? DM_OK : DM_TEMPFAIL;
}

/* ---- the writer thread ------------------------------------------------ */

static void
store_set_spooling(dm_store *s, bool on, const char *why)
{
	if (s->spooling != on && on)
		dm_log(DM_LOG_WARNING, "counters: %s, keeping counts in %s",
		    why, s->dir);
	else if (s->spooling != on)
		dm_log(DM_LOG_NOTICE, "counters: journal replayed, counting "
		    "into Redis again");
	s->spooling = on;
	pthread_mutex_lock(&s->lock);
	s->st.spooling = on;
	pthread_mutex_unlock(&s->lock);
}

/* Spool mode: the queue off and emptied; the journal has it all. */
static void
store_spool(dm_store *s, const char *why)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	s->queueing = false;
	s->hole = false;
	for (i = 0; i < s->len; i++)
		dm_update_clear(&s->ring[(s->head + i) % s->cap]);
	s->len = 0;
	pthread_mutex_unlock(&s->lock);
	/* The replay takes care of our closed segments now. */
	s->nsegs = 0;
	store_set_spooling(s, true, why);
}

/* Our closed segments whose records are all in Redis go. */
static void
store_remove_shipped(dm_store *s)
{
	size_t i, o = 0;

	for (i = 0; i < s->nsegs; i++) {
		if (s->segs[i].last <= s->shipped)
			(void)dm_journal_remove(s->segs[i].path);
		else
			s->segs[o++] = s->segs[i];
	}
	s->nsegs = o;
}

/* One batch taken off the queue: to Redis, else spool mode. */
static void
store_ship(dm_store *s, dm_update *u, size_t n)
{
	size_t done = 0;

	if (s->spooling)
		return;
	if (dm_redis_apply(s->redis, u, n, &done) != DM_OK) {
		store_count(s, &s->st.to_redis, done);
		store_spool(s, "Redis unavailable");
		return;
	}
	store_count(s, &s->st.to_redis, n);
	s->shipped = u[n - 1].seq;
	store_remove_shipped(s);
}

struct replay {
	dm_store *s;
	dm_update batch[STORE_BATCH];
	size_t n;
	bool failed;
};

static bool
replay_flush(struct replay *r)
{
	size_t done = 0, i;
	bool ok = r->n == 0 ||
	    dm_redis_apply(r->s->redis, r->batch, r->n, &done) == DM_OK;

	store_count(r->s, &r->s->st.replayed, ok ? r->n : done);
	for (i = 0; i < r->n; i++)
		dm_update_clear(&r->batch[i]);
	r->n = 0;
	return ok;
}

static int
replay_one(const dm_update *u, void *arg)
{
	struct replay *r = arg;

	dm_update_copy(&r->batch[r->n], u);
	if (++r->n == STORE_BATCH && !replay_flush(r)) {
		r->failed = true;
		return 1;
	}
	return 0;
}

/*
 * Replay every closed segment (ours and those dead writers left; never
 * a live writer's, by its lock); true when all are in Redis and gone.
 */
static bool
store_replay_segments(dm_store *s)
{
	struct replay *r;
	dm_journal_seg *segs = NULL;
	size_t nseg = 0, i, bad = 0;
	bool ok = true;

	if (dm_journal_segments(s->dir, NULL, &segs, &nseg) != DM_OK)
		return false;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		dm_log_oom();
	r->s = s;
	for (i = 0; i < nseg && ok; i++) {
		/* Unreadable (not merely gone: another replayer took it)? */
		if (dm_journal_read(segs[i].path, replay_one, r, &bad) == -1 &&
		    errno != ENOENT) {
			dm_err("counters: %s: %s: kept for a later replay",
			    segs[i].path, strerror(errno));
			ok = false;
			break;
		}
		ok = !r->failed && replay_flush(r);
		if (ok)
			(void)dm_journal_remove(segs[i].path);
	}
	store_count(s, &s->st.skipped, bad);
	free(r);
	free(segs);
	return ok;
}

/*
 * Spool mode: is Redis back? Then close the segment being written and
 * turn the queue on, in one step under the lock, and replay.
 */
static void
store_try_replay(dm_store *s)
{
	uint64_t upto;

	if (dm_redis_ping(s->redis) != DM_OK)
		return;
	pthread_mutex_lock(&s->lock);
	(void)dm_journal_rotate(s->journal);
	s->queueing = true;
	s->hole = false;
	upto = s->seq;
	pthread_mutex_unlock(&s->lock);
	if (!store_replay_segments(s)) {
		store_spool(s, "Redis unavailable");
		return;
	}
	s->shipped = upto;
	store_set_spooling(s, false, NULL);
}

/*
 * Take up to STORE_BATCH updates, waiting at most ms for the first.
 * *hole: the queue lost one; spool mode is due once these are shipped.
 */
static size_t
store_take(dm_store *s, dm_update *out, int ms, bool *hole)
{
	struct timespec until;
	size_t n = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)ms * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&s->lock);
	while (s->len == 0 && !s->stop && !s->hole &&
	    pthread_cond_timedwait(&s->cond, &s->lock, &until) == 0)
		;
	while (s->len > 0 && n < STORE_BATCH) {
		out[n++] = s->ring[s->head];
		s->head = (s->head + 1) % s->cap;
		s->len--;
	}
	*hole = s->hole && s->len == 0;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static bool
store_stopping(dm_store *s)
{
	bool stop;

	pthread_mutex_lock(&s->lock);
	stop = s->stop && s->len == 0;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

static void
store_seg_add(dm_store *s, const char *path, uint64_t last)
{
	struct store_seg *nv;

	if (s->nsegs == s->capsegs) {
		s->capsegs = s->capsegs ? s->capsegs * 2 : 8;
		nv = reallocarray(s->segs, s->capsegs, sizeof(*nv));
		if (nv == NULL)
			dm_log_oom();
		s->segs = nv;
	}
	strlcpy(s->segs[s->nsegs].path, path, sizeof(s->segs[0].path));
	s->segs[s->nsegs++].last = last;
}

/*
 * Close the segment being written: for dmarc-report to fold (embedded),
 * or, in direct mode, to be removed once what is in it is shipped.
 */
static void
store_rotate(dm_store *s)
{
	char path[4096];
	uint64_t last;
	bool keep;

	pthread_mutex_lock(&s->lock);
	keep = dm_journal_closed_path(s->journal, path, sizeof(path)) &&
	    s->queueing && !s->hole;
	last = s->seq;
	(void)dm_journal_rotate(s->journal);
	pthread_mutex_unlock(&s->lock);
	if (keep && s->redis != NULL && !s->spooling) {
		store_seg_add(s, path, last);
		store_remove_shipped(s);
	}
}

/* CounterSync written: the thread syncs what the mail threads wrote. */
static void
store_sync_written(dm_store *s)
{
	pthread_mutex_lock(&s->lock);
	if (!s->on_disk && s->durable < s->seq)
		(void)store_commit(s, s->seq);
	pthread_mutex_unlock(&s->lock);
}

static long
store_ms_since(const struct timespec *then, const struct timespec *now)
{
	return (now->tv_sec - then->tv_sec) * 1000 +
	    (now->tv_nsec - then->tv_nsec) / 1000000;
}

/* What the thread does besides shipping, when it is due. */
static void
store_chores(dm_store *s, struct timespec *retried, struct timespec *rotated)
{
	struct timespec now;
	long every = s->redis != NULL ? STORE_SHIP_ROTATE_MS : STORE_ROTATE_MS;
	size_t bytes;

	store_sync_written(s);
	pthread_mutex_lock(&s->lock);
	bytes = dm_journal_bytes(s->journal);
	pthread_mutex_unlock(&s->lock);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (s->redis != NULL && s->spooling &&
	    store_ms_since(retried, &now) >= STORE_RETRY_MS) {
		*retried = now;
		store_try_replay(s);
	}
	if (store_ms_since(rotated, &now) >= every ||
	    bytes >= STORE_SEG_BYTES) {
		*rotated = now;
		if (s->redis == NULL || !s->spooling)
			store_rotate(s);
	}
}

static void *
store_thread(void *arg)
{
	dm_store *s = arg;
	dm_update *batch;
	struct timespec retried = { 0, 0 }, rotated;
	size_t n, i;
	bool hole;

	if ((batch = calloc(STORE_BATCH, sizeof(*batch))) == NULL)
		dm_log_oom();
	clock_gettime(CLOCK_MONOTONIC, &rotated);
	for (;;) {
		n = store_take(s, batch, STORE_TICK_MS, &hole);
		if (n > 0)
			store_ship(s, batch, n);
		for (i = 0; i < n; i++)
			dm_update_clear(&batch[i]);
		if (hole && !s->spooling)
			store_spool(s, "queue full (CounterQueueSize)");
		store_chores(s, &retried, &rotated);
		if (store_stopping(s))
			break;
	}
	/* Stopping with everything shipped: our journal holds nothing new. */
	if (s->redis != NULL && !s->spooling)
		store_rotate(s);
	free(batch);
	return NULL;
}

/* ---- the mail threads' side ------------------------------------------- */

/* Under the lock: u (appended) into the queue, or the queue has a hole. */
static void
store_enqueue(dm_store *s, dm_update *u)
{
	if (!s->queueing) {
		dm_update_clear(u);
		return;
	}
	if (s->len == s->cap) {
		s->queueing = false;
		s->hole = true;
		s->st.overflow++;
		dm_update_clear(u);
		return;
	}
	s->ring[(s->head + s->len) % s->cap] = *u;
	s->len++;
	s->st.queued++;
	memset(u, 0, sizeof(*u));
}

dm_status
dm_store_put(dm_store *s, dm_update *u, size_t n)
{
	dm_status st = DM_OK;
	uint64_t mine = 0;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < n; i++) {
		strlcpy(u[i].writer, s->writer, sizeof(u[i].writer));
		u[i].seq = s->seq + 1;
		if (dm_journal_append(s->journal, &u[i]) != DM_OK) {
			st = DM_TEMPFAIL;	/* logged */
			dm_update_clear(&u[i]);
			continue;
		}
		mine = ++s->seq;
		s->st.to_journal++;
		store_enqueue(s, &u[i]);
	}
	pthread_cond_signal(&s->cond);
	if (mine > 0 && s->on_disk && store_commit(s, mine) != DM_OK)
		st = DM_TEMPFAIL;
	pthread_mutex_unlock(&s->lock);
	return st;
}

void
dm_store_get_stats(dm_store *s, dm_store_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	pthread_mutex_unlock(&s->lock);
}

/* ---- life cycle ------------------------------------------------------- */

static int
store_open(dm_store *s, const dm_store_opts *o, char *err, size_t errlen)
{
	snprintf(s->dir, sizeof(s->dir), "%s/journal", o->state_dir);
	/*
	 * No sync of its own: store_commit does it, for every group. No
	 * rotation of its own either: the writer rotates (store_chores), so
	 * that it knows every segment it may remove once shipped.
	 */
	s->journal = dm_journal_open(s->dir, 0, 0, 0, err, errlen);
	if (s->journal == NULL)
		return -1;
	if (o->redis_url != NULL && *o->redis_url != '\0') {
		s->redis = dm_redis_new(o->redis_url, o->prefix, o->timeout_ms,
		    o->ttl_sec, err, errlen);
		if (s->redis == NULL)
			return -1;
		s->spooling = true;	/* replay what an earlier run left */
	}
	return 0;
}

static void
store_release(dm_store *s)
{
	size_t i;

	for (i = 0; i < s->len; i++)
		dm_update_clear(&s->ring[(s->head + i) % s->cap]);
	free(s->ring);
	dm_journal_close(s->journal);
	store_remove_shipped(s);
	free(s->segs);
	dm_redis_free(s->redis);
	pthread_cond_destroy(&s->synced);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

dm_store *
dm_store_new(const dm_store_opts *o, char *err, size_t errlen)
{
	dm_store *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		dm_log_oom();
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	pthread_cond_init(&s->synced, NULL);
	s->cap = o->queue_max > 0 ? o->queue_max : 65536;
	if ((s->ring = calloc(s->cap, sizeof(*s->ring))) == NULL)
		dm_log_oom();
	s->on_disk = o->sync != DM_STORE_SYNC_WRITTEN;
	store_writer_id(s->writer, sizeof(s->writer));
	if (store_open(s, o, err, errlen) != 0)
		goto fail;
	s->st.spooling = s->spooling;
	if (pthread_create(&s->thread, NULL, store_thread, s) != 0) {
		snprintf(err, errlen, "counters: cannot start the writer");
		goto fail;
	}
	return s;
fail:
	store_release(s);
	return NULL;
}

void
dm_store_free(dm_store *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	store_release(s);
}
