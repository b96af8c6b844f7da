/*
 * tests/bench/store_bench.c - counts per second through the milter's
 * counters path (dm_store: journal group commit, queue, writer thread,
 * Redis script) into a running Redis, the latency a put adds to end of
 * data (p50/p99: the group commit's wait), and Redis memory per distinct
 * row. Prints figures; it asserts nothing (make bench, or by hand).
 *
 * Usage: store_bench REDIS_URL STATE_DIR [updates [threads [rows
 *        [disk|written]]]]
 * STATE_DIR's filesystem is the one measured (a disk, or a tmpfs).
 * The Redis should be private: its memory figure is read from INFO.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "dm_log.h"
#include "dm_store.h"

struct bench {
	dm_store *st;
	long per_thread, rows;
	int id;
	double *lat;		/* seconds per put */
};

static double
now_sec(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *
bench_thread(void *arg)
{
	struct bench *b = arg;
	dm_update u;
	double t;
	long i;

	for (i = 0; i < b->per_thread; i++) {
		memset(&u, 0, sizeof(u));
		if (asprintf(&u.domain, "d%ld.example", i % 10) < 0 ||
		    asprintf(&u.policy, "p=reject;sp=reject;np=reject;pct=100;"
		    "t=n;adkim=r;aspf=r;fo=0;psd=u;rua=mailto%%3Ar@d.example;"
		    "ruf=;dm=treewalk;") < 0 ||
		    asprintf(&u.row, "ip=192.0.2.%ld;hf=d%ld.example;ef=;disp="
		    "reject;r=;ad=;dkim=fail;spf=fail;as=x.example/mfrom/fail;",
		    (i / 10) % b->rows, i % 10) < 0)
			dm_log_oom();
		/* today: a period already expired would be dropped */
		u.begin = (int64_t)time(NULL) - (int64_t)time(NULL) % 86400;
		u.end = u.begin + 86400;
		u.count = 1;
		snprintf(u.fp, sizeof(u.fp), "%08x%024lx", b->id, i);
		t = now_sec();
		(void)dm_store_put(b->st, &u, 1);
		b->lat[i] = now_sec() - t;
	}
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* p50, p99 and max of every thread's put latencies, in microseconds. */
static void
print_latency(struct bench *b, int threads)
{
	long n = b[0].per_thread * threads, i, k = 0;
	double *all = malloc((size_t)n * sizeof(*all));
	int t;

	if (all == NULL)
		dm_log_oom();
	for (t = 0; t < threads; t++)
		for (i = 0; i < b[t].per_thread; i++)
			all[k++] = b[t].lat[i];
	qsort(all, (size_t)n, sizeof(*all), cmp_double);
	printf("put latency (the wait at end of data): p50 %.1f us, p99 %.1f "
	    "us, max %.1f us\n", all[n / 2] * 1e6, all[n * 99 / 100] * 1e6,
	    all[n - 1] * 1e6);
	free(all);
}

/* The sum of every rows hash, through SCAN; -1 on error. */
static long long
redis_total(redisContext *c, long long *mem)
{
	redisReply *r, *h;
	long long total = 0;
	char cursor[32] = "0";
	size_t i, j;

	do {
		r = redisCommand(c, "SCAN %s MATCH *:rows:* COUNT 1000", cursor);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
			return -1;
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (i = 0; i < r->element[1]->elements; i++) {
			h = redisCommand(c, "HVALS %s",
			    r->element[1]->element[i]->str);
			for (j = 0; h != NULL && j < h->elements; j++)
				total += atoll(h->element[j]->str);
			freeReplyObject(h);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	r = redisCommand(c, "INFO memory");
	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    strstr(r->str, "used_memory:") != NULL)
		*mem = atoll(strstr(r->str, "used_memory:") + 12);
	freeReplyObject(r);
	return total;
}

int
main(int argc, char **argv)
{
	dm_store_opts o = { 0 };
	struct bench b[16];
	pthread_t t[16];
	long n = 200000, rows = 1000, i;
	int threads = 4;
	long long mem0 = 0, mem1 = 0, got = 0;
	char err[512];
	dm_store_stats sst;
	redisContext *c;
	double t0, t1, t2;

	if (argc < 3) {
		fputs("usage: store_bench REDIS_URL STATE_DIR [updates "
		    "[threads [rows]]]\n", stderr);
		return 2;
	}
	if (argc > 3)
		n = atol(argv[3]);
	if (argc > 4)
		threads = atoi(argv[4]) < 1 ? 1 : atoi(argv[4]) > 16 ? 16 :
		    atoi(argv[4]);
	if (argc > 5)
		rows = atol(argv[5]) < 1 ? 1 : atol(argv[5]);
	if (argc > 6 && strcmp(argv[6], "written") == 0)
		o.sync = DM_STORE_SYNC_WRITTEN;
	dm_log_open("store_bench", NULL, DM_LOG_TO_STDERR);
	if (strncmp(argv[1], "unix://", 7) != 0 ||
	    (c = redisConnectUnix(argv[1] + 7)) == NULL || c->err) {
		fputs("store_bench: a unix:///path Redis URL, please\n", stderr);
		return 2;
	}
	redis_total(c, &mem0);
	o.redis_url = argv[1];
	o.prefix = "bench:";
	o.timeout_ms = 1000;
	o.ttl_sec = 86400;
	o.state_dir = argv[2];
	o.queue_max = 65536;
	if ((b[0].st = dm_store_new(&o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "store_bench: %s\n", err);
		return 1;
	}
	t0 = now_sec();
	for (i = 0; i < threads; i++) {
		b[i].st = b[0].st;
		b[i].per_thread = n / threads;
		b[i].rows = rows;
		b[i].id = (int)i;
		if ((b[i].lat = calloc((size_t)b[i].per_thread,
		    sizeof(double))) == NULL)
			dm_log_oom();
		pthread_create(&t[i], NULL, bench_thread, &b[i]);
	}
	for (i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	t1 = now_sec();
	while ((got = redis_total(c, &mem1)) >= 0 &&
	    got < (n / threads) * threads && now_sec() - t0 < 600)
		;
	t2 = now_sec();
	dm_store_get_stats(b[0].st, &sst);
	dm_store_free(b[0].st);
	printf("updates: %ld from %d threads, %ld distinct rows x 10 domains\n",
	    (n / threads) * threads, threads, rows);
	printf("put (%s): %.0f updates/s from the mail threads, %" PRIu64
	    " fdatasyncs (%.1f counts each)\n", o.sync == DM_STORE_SYNC_WRITTEN
	    ? "written" : "disk", (double)n / (t1 - t0), sst.syncs,
	    sst.syncs ? (double)n / (double)sst.syncs : 0.0);
	print_latency(b, threads);
	printf("in Redis: %lld counted, %.0f updates/s end to end\n", got,
	    (double)got / (t2 - t0));
	printf("Redis used_memory per distinct row: %.0f bytes\n",
	    (double)(mem1 - mem0) / (double)(rows * 10));
	redisFree(c);
	for (i = 0; i < threads; i++)
		free(b[i].lat);
	return got == (n / threads) * threads ? 0 : 1;
}
