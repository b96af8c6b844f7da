/*
 * tests/unit/test_store.c - the counters' store (dm_store.h): the group
 * commit that makes a count durable before dm_store_put returns, a
 * power-loss stand-in for it, and shipping to a real redis-server (the
 * queue, a full queue replayed from the journal, the fingerprint
 * window, shipped segments removed).
 *
 * The power-loss stand-in is write interception below fdatasync: the
 * program is linked with -Wl,--wrap=fdatasync, so every fdatasync of the
 * store and the journal goes through wrap_fdatasync here, which can make
 * it slow or fail and records, per file, how many bytes the last
 * successful one covered. "Power loss" truncates every segment to that:
 * what was written but never synced is gone, as after a crash of the
 * machine. A count dm_store_put acknowledged must survive it.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>
#include <hiredis/hiredis.h>

#include "dm_journal.h"
#include "dm_store.h"
#include "tap.h"
#include "testredis.h"

#define POLICY "p=reject;sp=none;np=;pct=100"
#define THREADS 8
#define PER_THREAD 40

/* ---- below fdatasync ---------------------------------------------------- */

struct synced {
	dev_t dev;
	ino_t ino;
	off_t size;		/* covered by the last good fdatasync */
};

static pthread_mutex_t wrap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct synced wrap_files[64];
static size_t wrap_nfiles;
static unsigned long wrap_calls;
static int wrap_delay_ms;
static bool wrap_fail;

int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);

static void
wrap_note(const struct stat *sb, off_t size)
{
	size_t i;

	for (i = 0; i < wrap_nfiles; i++)
		if (wrap_files[i].dev == sb->st_dev &&
		    wrap_files[i].ino == sb->st_ino)
			break;
	if (i == wrap_nfiles) {
		if (wrap_nfiles == sizeof(wrap_files) / sizeof(wrap_files[0]))
			tap_bail("too many files synced");
		wrap_files[wrap_nfiles].dev = sb->st_dev;
		wrap_files[wrap_nfiles].ino = sb->st_ino;
		wrap_files[wrap_nfiles++].size = 0;
	}
	if (size > wrap_files[i].size)
		wrap_files[i].size = size;
}

int
__wrap_fdatasync(int fd)
{
	struct timespec ts;
	struct stat sb;
	bool fail;
	int delay, rc;

	if (fstat(fd, &sb) != 0)
		return -1;
	pthread_mutex_lock(&wrap_lock);
	wrap_calls++;
	delay = wrap_delay_ms;
	fail = wrap_fail;
	pthread_mutex_unlock(&wrap_lock);
	ts.tv_sec = delay / 1000;
	ts.tv_nsec = (long)(delay % 1000) * 1000000L;
	if (delay > 0)
		nanosleep(&ts, NULL);
	if (fail) {
		errno = EIO;
		return -1;
	}
	if ((rc = __real_fdatasync(fd)) == 0) {
		pthread_mutex_lock(&wrap_lock);
		wrap_note(&sb, sb.st_size);
		pthread_mutex_unlock(&wrap_lock);
	}
	return rc;
}

static void
wrap_set(int delay_ms, bool fail)
{
	pthread_mutex_lock(&wrap_lock);
	wrap_delay_ms = delay_ms;
	wrap_fail = fail;
	pthread_mutex_unlock(&wrap_lock);
}

static unsigned long
wrap_count(void)
{
	unsigned long n;

	pthread_mutex_lock(&wrap_lock);
	n = wrap_calls;
	pthread_mutex_unlock(&wrap_lock);
	return n;
}

/* The power goes: every segment keeps only what a sync covered. */
static void
power_loss(const char *dir)
{
	char path[4200];
	struct dirent *de;
	struct stat sb;
	off_t keep;
	size_t i;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		tap_bail("%s: %s", dir, strerror(errno));
	pthread_mutex_lock(&wrap_lock);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "seg-", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &sb) != 0)
			continue;
		for (i = 0, keep = 0; i < wrap_nfiles; i++)
			if (wrap_files[i].dev == sb.st_dev &&
			    wrap_files[i].ino == sb.st_ino)
				keep = wrap_files[i].size;
		if (truncate(path, keep) != 0)
			tap_bail("truncate %s: %s", path, strerror(errno));
	}
	pthread_mutex_unlock(&wrap_lock);
	closedir(d);
}

/* ---- helpers ------------------------------------------------------------ */

static char tmpdir[] = "/tmp/test_store.XXXXXX";

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
cleanup(void)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static dm_update
mk(const char *dom, const char *row, const char *fp)
{
	dm_update u;
	time_t now = time(NULL);

	memset(&u, 0, sizeof(u));
	if ((u.domain = strdup(dom)) == NULL ||
	    (u.policy = strdup(POLICY)) == NULL ||
	    (u.row = strdup(row)) == NULL)
		tap_bail("out of memory");
	u.begin = (int64_t)now - (int64_t)now % 86400;
	u.end = u.begin + 86400;
	u.count = 1;
	if (fp != NULL)
		strlcpy(u.fp, fp, sizeof(u.fp));
	return u;
}

static dm_store *
open_store(const char *name, const char *redis, int sync, size_t queue)
{
	dm_store_opts o = { 0 };
	char state[4200], err[256] = "";
	dm_store *s;

	snprintf(state, sizeof(state), "%s/%s", tmpdir, name);
	o.redis_url = redis;
	o.prefix = "t:";
	o.timeout_ms = 2000;
	o.ttl_sec = 86400;
	o.state_dir = state;
	o.queue_max = queue;
	o.sync = sync;
	if ((s = dm_store_new(&o, err, sizeof(err))) == NULL)
		tap_bail("dm_store_new: %s", err);
	return s;
}

/* Rows seen in every segment of a journal, the live one included. */
struct rows {
	char **v;
	size_t n;
};

static int
rows_add(const dm_update *u, void *arg)
{
	struct rows *r = arg;
	char **nv;

	if ((nv = realloc(r->v, (r->n + 1) * sizeof(*nv))) == NULL ||
	    (nv[r->n] = strdup(u->row)) == NULL)
		tap_bail("out of memory");
	r->v = nv;
	r->n++;
	return 0;
}

static void
rows_read(const char *dir, struct rows *r)
{
	char path[4200];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "seg-", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		(void)dm_journal_read(path, rows_add, r, NULL);
	}
	closedir(d);
}

static bool
rows_have(const struct rows *r, const char *row)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->v[i], row) == 0)
			return true;
	return false;
}

static void
rows_free(struct rows *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static size_t
segments_left(const char *dir)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "seg-", 4) == 0;
	closedir(d);
	return n;
}

/* ---- group commit ------------------------------------------------------- */

struct putter {
	dm_store *s;
	int id;
	int failed;
	char (*acked)[64];	/* rows whose put returned DM_OK */
	size_t nacked;
};

static void *
putter_run(void *arg)
{
	struct putter *p = arg;
	char row[64];
	dm_update u;
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		snprintf(row, sizeof(row), "ip=192.0.2.%d;n=%d", p->id, i);
		u = mk("gc.example", row, NULL);
		if (dm_store_put(p->s, &u, 1) != DM_OK) {
			p->failed++;
			continue;
		}
		strlcpy(p->acked[p->nacked++], row, sizeof(p->acked[0]));
	}
	return NULL;
}

/* THREADS threads put PER_THREAD counts each; the acked ones. */
static size_t
put_all(dm_store *s, struct putter *p, double *secs)
{
	pthread_t t[THREADS];
	struct timespec t0;
	size_t acked = 0;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < THREADS; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].s = s;
		p[i].id = i + 1;
		if ((p[i].acked = calloc(PER_THREAD, sizeof(*p[i].acked))) ==
		    NULL)
			tap_bail("out of memory");
		pthread_create(&t[i], NULL, putter_run, &p[i]);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		acked += p[i].nacked;
	}
	*secs = tap_seconds_since(&t0);
	return acked;
}

/* How many acked rows the journal in dir lacks. */
static size_t
acked_missing(const char *dir, struct putter *p)
{
	struct rows r = { 0 };
	size_t miss = 0, k;
	int i;

	rows_read(dir, &r);
	for (i = 0; i < THREADS; i++)
		for (k = 0; k < p[i].nacked; k++)
			miss += !rows_have(&r, p[i].acked[k]);
	rows_free(&r);
	return miss;
}

static void
putters_free(struct putter *p)
{
	int i;

	for (i = 0; i < THREADS; i++)
		free(p[i].acked);
}

static void
test_group_commit(void)
{
	struct putter p[THREADS];
	dm_store_stats st;
	unsigned long before;
	char dir[4200];
	double secs;
	size_t acked;
	dm_store *s;

	snprintf(dir, sizeof(dir), "%s/gc/journal", tmpdir);
	s = open_store("gc", NULL, DM_STORE_SYNC_DISK, 0);
	wrap_set(20, false);
	before = wrap_count();
	acked = put_all(s, p, &secs);
	dm_store_get_stats(s, &st);
	tap_is_int((long)acked, THREADS * PER_THREAD, "group commit: all %d "
	    "puts of %d threads acknowledged", THREADS * PER_THREAD, THREADS);
	tap_ok(st.syncs == wrap_count() - before, "group commit: the store "
	    "counts the fdatasyncs it made (%" PRIu64 ")", st.syncs);
	tap_ok(st.syncs > 0 && st.syncs * 3 <= (uint64_t)acked,
	    "group commit: waiting threads share fdatasyncs: %" PRIu64
	    " for %zu counts (each sync 20 ms)", st.syncs, acked);
	tap_ok(secs >= 0.020 * PER_THREAD * 0.9, "group commit: a put "
	    "waits for its sync: %.2f s for %d rounds of 20 ms", secs,
	    PER_THREAD);
	power_loss(dir);
	tap_is_int((long)acked_missing(dir, p), 0, "power-loss stand-in, "
	    "CounterSync disk: every acknowledged count is in the synced "
	    "part of the journal");
	wrap_set(0, false);
	dm_store_free(s);
	putters_free(p);
}

/*
 * CounterSync written: a put returns after the write, not the sync; a
 * power loss right then loses what it acknowledged (what the option
 * says it does not promise), a killed process would not.
 */
static void
test_written(void)
{
	struct putter p[THREADS];
	struct rows r = { 0 };
	char dir[4200];
	double secs;
	size_t acked, miss;
	dm_store *s;

	snprintf(dir, sizeof(dir), "%s/wr/journal", tmpdir);
	s = open_store("wr", NULL, DM_STORE_SYNC_WRITTEN, 0);
	wrap_set(300, false);
	acked = put_all(s, p, &secs);
	rows_read(dir, &r);
	tap_ok(acked == THREADS * PER_THREAD && r.n == acked, "written: "
	    "%zu puts acknowledged, all written to the journal (%zu)", acked,
	    r.n);
	rows_free(&r);
	tap_ok(secs < 0.25, "written: puts do not wait for a 300 ms sync "
	    "(%.3f s for all)", secs);
	power_loss(dir);
	miss = acked_missing(dir, p);
	tap_ok(miss > 0, "power-loss stand-in, CounterSync written: counts "
	    "not yet synced are lost (%zu of %zu): the stand-in sees the "
	    "difference", miss, acked);
	wrap_set(0, false);
	dm_store_free(s);
	putters_free(p);
}

static void
test_sync_failure(void)
{
	dm_store *s = open_store("fail", NULL, DM_STORE_SYNC_DISK, 0);
	dm_update u = mk("fail.example", "ip=192.0.2.9", NULL);

	wrap_set(0, true);
	tap_is_int(dm_store_put(s, &u, 1), DM_TEMPFAIL, "fdatasync fails "
	    "(EIO): the put is not acknowledged");
	wrap_set(0, false);
	u = mk("fail.example", "ip=192.0.2.10", NULL);
	tap_is_int(dm_store_put(s, &u, 1), DM_OK, "the next sync works: "
	    "acknowledged");
	dm_store_free(s);
}

/* ---- with Redis --------------------------------------------------------- */

static redisContext *
redis_admin(const char *url)
{
	redisContext *c = redisConnectUnix(url + strlen("unix://"));

	if (c == NULL || c->err != 0)
		tap_bail("cannot connect to %s", url);
	return c;
}

static long long
redis_sum(redisContext *c, const char *dom)
{
	redisReply *keys, *vals;
	long long sum = 0;
	size_t i, k;

	keys = redisCommand(c, "KEYS t:{%s}:rows:*", dom);
	for (i = 0; keys != NULL && i < keys->elements; i++) {
		vals = redisCommand(c, "HVALS %s", keys->element[i]->str);
		for (k = 0; vals != NULL && k < vals->elements; k++)
			sum += strtoll(vals->element[k]->str, NULL, 10);
		freeReplyObject(vals);
	}
	freeReplyObject(keys);
	return sum;
}

/* Wait until what the store took is in Redis (or 10 s pass). */
static void
wait_shipped(dm_store *s, uint64_t n)
{
	dm_store_stats st;
	int i;

	for (i = 0; i < 1000; i++) {
		dm_store_get_stats(s, &st);
		if (!st.spooling && st.to_redis + st.replayed >= n)
			return;
		usleep(10000);
	}
}

static void
test_redis(const char *url, redisContext *c)
{
	char dir[4200], row[64], fp[DM_FP_LEN + 1];
	dm_store_stats st;
	dm_update u;
	dm_store *s;
	int i;

	snprintf(dir, sizeof(dir), "%s/rd/journal", tmpdir);
	s = open_store("rd", url, DM_STORE_SYNC_DISK, 0);
	wait_shipped(s, 0);
	for (i = 0; i < 100; i++) {
		snprintf(row, sizeof(row), "ip=192.0.2.%d", i % 7);
		/* messages 90..99 are 0..9 offered again */
		snprintf(fp, sizeof(fp), "%032x", i % 90);
		u = mk("ship.example", row, fp);
		if (dm_store_put(s, &u, 1) != DM_OK)
			tap_bail("put %d", i);
	}
	wait_shipped(s, 100);
	dm_store_get_stats(s, &st);
	tap_ok(st.to_redis + st.replayed == 100 && st.overflow == 0,
	    "redis: 100 counts shipped from the queue (%" PRIu64 " queued, "
	    "%" PRIu64 " shipped, %" PRIu64 " replayed)", st.queued,
	    st.to_redis, st.replayed);
	tap_is_int(redis_sum(c, "ship.example"), 90, "redis: 90 messages, "
	    "the 10 offered again not counted twice");
	dm_store_free(s);
	tap_is_int((long)segments_left(dir), 0, "redis: every segment "
	    "shipped is removed (none left after a clean stop)");
}

/*
 * A queue of 16 and 200 counts in one put: the queue has a hole, the
 * writer falls back to the journal and replays it, exactly once.
 */
static void
test_full_queue(const char *url, redisContext *c)
{
	dm_update u[200];
	dm_store_stats st;
	char dir[4200], row[64];
	dm_store *s;
	size_t i;

	snprintf(dir, sizeof(dir), "%s/fq/journal", tmpdir);
	s = open_store("fq", url, DM_STORE_SYNC_DISK, 16);
	wait_shipped(s, 0);
	for (i = 0; i < 200; i++) {
		snprintf(row, sizeof(row), "ip=192.0.2.%zu", i % 5);
		u[i] = mk("full.example", row, NULL);
	}
	tap_is_int(dm_store_put(s, u, 200), DM_OK, "full queue (16): 200 "
	    "counts in one put, acknowledged");
	for (i = 0; i < 20; i++) {
		u[0] = mk("full.example", "ip=192.0.2.99", NULL);
		(void)dm_store_put(s, u, 1);
	}
	wait_shipped(s, 220);
	dm_store_get_stats(s, &st);
	tap_ok(st.overflow > 0 && st.queued >= 16, "full queue: the queue "
	    "overflowed (%" PRIu64 " times, %" PRIu64 " queued)", st.overflow,
	    st.queued);
	tap_is_int(redis_sum(c, "full.example"), 220, "full queue: all 220 "
	    "counts in Redis exactly once, from the queue and the journal");
	dm_store_free(s);
	tap_is_int((long)segments_left(dir), 0, "full queue: no segment left");
}

int
main(void)
{
	redisContext *c;
	const char *url;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (mkdtemp(tmpdir) == NULL)
		tap_bail("mkdtemp: %s", strerror(errno));
	atexit(cleanup);
	test_group_commit();
	test_written();
	test_sync_failure();
	if (testredis_available()) {
		url = testredis_start();
		c = redis_admin(url);
		test_redis(url, c);
		test_full_queue(url, c);
		redisFree(c);
	} else
		tap_skip(7, "redis-server not installed");
	return tap_done();
}
