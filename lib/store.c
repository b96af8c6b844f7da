/*
 * lib/store.c - the counters' queue and writer thread (dm_store.h).
 *
 * Order is what makes replay exactly-once: Redis skips an update whose
 * sequence is not above the highest it applied for that writer, so the
 * writer must never let a later update reach Redis before an earlier
 * one. Hence two modes. Direct: batches go from the queue to Redis. Spool
 * (Redis failed once): everything goes to the journal, and the thread
 * replays closed segments, oldest first, until a rotation leaves nothing
 * behind; only then back to direct.
 *
 * A full queue does not wait either: those updates go to a second
 * journal with a writer id of its own ("...:o"), so their sequence
 * numbers never race the queue's.
 */
#include "config.h"

#include <errno.h>
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
#define STORE_SYNC_MS		100
#define STORE_SYNC_RECORDS	256
#define STORE_RETRY_MS		1000
/* embedded: how long counts may wait in an open segment, unseen by
 * dmarc-report (which folds only closed ones) */
#define STORE_ROTATE_MS		60000

struct dm_store {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool stop;
	/* the queue: a ring of updates, owned */
	dm_update *ring;
	size_t cap, head, len;
	char writer[DM_WRITER_MAX];
	uint64_t seq;
	/* the overflow journal, under ovf_lock */
	pthread_mutex_t ovf_lock;
	dm_journal *ovf;
	char ovf_writer[DM_WRITER_MAX];
	uint64_t ovf_seq, ovf_pending;
	/* the writer thread's own */
	dm_redis *redis;	/* NULL: embedded */
	dm_journal *journal;
	char dir[4096];
	bool spooling;
	uint64_t spooled;	/* appended since the last rotation */
	dm_store_stats st;	/* under lock */
};

static void
store_writer_id(char *out, size_t len, const char *suffix)
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
	snprintf(out, len, "%.40s:%ld:%lld%s", host, (long)getpid(),
	    (long long)time(NULL), suffix);
}

static void
store_count(dm_store *s, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&s->lock);
	*field += n;
	pthread_mutex_unlock(&s->lock);
}

/* ---- the writer thread ------------------------------------------------ */

/* Append updates to the journal in order; false on a disk failure. */
static bool
store_spool(dm_store *s, const dm_update *u, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (dm_journal_append(s->journal, &u[i]) != DM_OK)
			return false;
	s->spooled += n;
	store_count(s, &s->st.to_journal, n);
	return true;
}

static void
store_set_spooling(dm_store *s, bool on)
{
	if (s->spooling != on)
		dm_log(on ? DM_LOG_WARNING : DM_LOG_NOTICE, on ?
		    "counters: Redis unavailable, keeping counts in %s" :
		    "counters: journal replayed, counting into Redis again",
		    s->dir);
	s->spooling = on;
	pthread_mutex_lock(&s->lock);
	s->st.spooling = on;
	pthread_mutex_unlock(&s->lock);
}

/* One batch taken off the queue: to Redis, else to the journal. */
static void
store_write(dm_store *s, dm_update *u, size_t n)
{
	size_t done = 0;

	if (s->redis != NULL && !s->spooling) {
		if (dm_redis_apply(s->redis, u, n, &done) == DM_OK) {
			store_count(s, &s->st.to_redis, n);
			return;
		}
		store_count(s, &s->st.to_redis, done);
		store_set_spooling(s, true);
	}
	if (!store_spool(s, u + done, n - done))
		dm_err("counters: %zu counts lost: the journal in %s cannot "
		    "be written", n - done, s->dir);
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

	if (dm_update_copy(&r->batch[r->n], u) != 0)
		dm_log_oom();
	if (++r->n == STORE_BATCH && !replay_flush(r)) {
		r->failed = true;
		return 1;
	}
	return 0;
}

/* Replay every closed segment; true when all are in Redis and removed. */
static bool
store_replay_segments(dm_store *s)
{
	struct replay *r;
	dm_journal_seg *segs = NULL;
	size_t nseg = 0, i, bad = 0;
	bool ok = true;

	if (dm_journal_segments(s->dir, s->journal, &segs, &nseg) != DM_OK)
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

/* Spool mode: is Redis back, and is everything spooled now in it? */
static void
store_try_replay(dm_store *s)
{
	if (dm_redis_ping(s->redis) != DM_OK)
		return;
	pthread_mutex_lock(&s->ovf_lock);
	if (s->ovf_pending > 0) {
		(void)dm_journal_rotate(s->ovf);
		s->ovf_pending = 0;
	}
	pthread_mutex_unlock(&s->ovf_lock);
	if (s->spooled > 0) {
		(void)dm_journal_sync(s->journal);
		(void)dm_journal_rotate(s->journal);
		s->spooled = 0;
	}
	if (store_replay_segments(s) && s->spooled == 0)
		store_set_spooling(s, false);
}

/* Take up to STORE_BATCH updates, waiting at most ms for the first. */
static size_t
store_take(dm_store *s, dm_update *out, int ms)
{
	struct timespec until;
	size_t n = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)ms * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&s->lock);
	while (s->len == 0 && !s->stop &&
	    pthread_cond_timedwait(&s->cond, &s->lock, &until) == 0)
		;
	while (s->len > 0 && n < STORE_BATCH) {
		out[n++] = s->ring[s->head];
		s->head = (s->head + 1) % s->cap;
		s->len--;
	}
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

static bool
store_ovf_pending(dm_store *s)
{
	bool p;

	pthread_mutex_lock(&s->ovf_lock);
	p = s->ovf_pending > 0;
	pthread_mutex_unlock(&s->ovf_lock);
	return p;
}

/* Embedded store: close the segments so that dmarc-report can fold them. */
static void
store_rotate_embedded(dm_store *s)
{
	pthread_mutex_lock(&s->ovf_lock);
	if (s->ovf_pending > 0) {
		(void)dm_journal_rotate(s->ovf);
		s->ovf_pending = 0;
	}
	pthread_mutex_unlock(&s->ovf_lock);
	if (s->spooled > 0) {
		(void)dm_journal_rotate(s->journal);
		s->spooled = 0;
	}
}

static long
store_ms_since(const struct timespec *then, const struct timespec *now)
{
	return (now->tv_sec - then->tv_sec) * 1000 +
	    (now->tv_nsec - then->tv_nsec) / 1000000;
}

static void *
store_thread(void *arg)
{
	dm_store *s = arg;
	dm_update *batch;
	struct timespec last = { 0, 0 }, rotated, now;
	size_t n, i;

	if ((batch = calloc(STORE_BATCH, sizeof(*batch))) == NULL)
		dm_log_oom();
	clock_gettime(CLOCK_MONOTONIC, &rotated);
	for (;;) {
		n = store_take(s, batch, STORE_SYNC_MS);
		if (n > 0)
			store_write(s, batch, n);
		for (i = 0; i < n; i++)
			dm_update_clear(&batch[i]);
		if (n < STORE_BATCH)
			(void)dm_journal_sync(s->journal);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (s->redis != NULL && (s->spooling || store_ovf_pending(s)) &&
		    store_ms_since(&last, &now) >= STORE_RETRY_MS) {
			last = now;
			store_try_replay(s);
		}
		if (s->redis == NULL &&
		    store_ms_since(&rotated, &now) >= STORE_ROTATE_MS) {
			rotated = now;
			store_rotate_embedded(s);
		}
		if (store_stopping(s))
			break;
	}
	free(batch);
	return NULL;
}

/* ---- the mail threads' side ------------------------------------------- */

/* Queue full: straight to the overflow journal, in its own order. */
static dm_status
store_overflow(dm_store *s, dm_update *u)
{
	dm_status st;

	pthread_mutex_lock(&s->ovf_lock);
	if (s->ovf_pending == 0)
		dm_warn("counters: queue full (%zu), counts go to the journal "
		    "directly", s->cap);
	strlcpy(u->writer, s->ovf_writer, sizeof(u->writer));
	u->seq = ++s->ovf_seq;
	st = dm_journal_append(s->ovf, u);
	if (st == DM_OK)
		s->ovf_pending++;
	pthread_mutex_unlock(&s->ovf_lock);
	store_count(s, &s->st.overflow, 1);
	dm_update_clear(u);
	return st;
}

dm_status
dm_store_put(dm_store *s, dm_update *u, size_t n)
{
	dm_status st = DM_OK;
	size_t i;

	for (i = 0; i < n; i++) {
		pthread_mutex_lock(&s->lock);
		if (s->len < s->cap) {
			strlcpy(u[i].writer, s->writer, sizeof(u[i].writer));
			u[i].seq = ++s->seq;
			s->ring[(s->head + s->len) % s->cap] = u[i];
			s->len++;
			s->st.queued++;
			pthread_cond_signal(&s->cond);
			pthread_mutex_unlock(&s->lock);
			memset(&u[i], 0, sizeof(u[i]));
			continue;
		}
		pthread_mutex_unlock(&s->lock);
		if (store_overflow(s, &u[i]) != DM_OK)
			st = DM_TEMPFAIL;
	}
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
	s->journal = dm_journal_open(s->dir, STORE_SEG_BYTES, STORE_SYNC_MS,
	    STORE_SYNC_RECORDS, err, errlen);
	if (s->journal == NULL)
		return -1;
	s->ovf = dm_journal_open(s->dir, STORE_SEG_BYTES, STORE_SYNC_MS,
	    STORE_SYNC_RECORDS, err, errlen);
	if (s->ovf == NULL)
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
	dm_journal_close(s->ovf);
	dm_journal_close(s->journal);
	dm_redis_free(s->redis);
	pthread_mutex_destroy(&s->ovf_lock);
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
	pthread_mutex_init(&s->ovf_lock, NULL);
	s->cap = o->queue_max > 0 ? o->queue_max : 65536;
	if ((s->ring = calloc(s->cap, sizeof(*s->ring))) == NULL)
		dm_log_oom();
	store_writer_id(s->writer, sizeof(s->writer), "");
	store_writer_id(s->ovf_writer, sizeof(s->ovf_writer), ":o");
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
