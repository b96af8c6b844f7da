/*
 * tests/bench/report_fill.c - fills the counters' store through the
 * milter's own path (dm_store) with many messages over many policy
 * domains, for the dmarc-report benchmark (report_bench.sh). Every
 * count falls in today's UTC day. Prints what it wrote and how fast.
 *
 * Usage: report_fill REDIS_URL|- STATE_DIR messages domains rows
 * ("-": no Redis, the embedded journal in STATE_DIR). Each domain gets
 * messages/domains counts spread over `rows` distinct rows.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dm_log.h"
#include "dm_store.h"

static double
now_sec(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Message i of domain d: a row among `rows`, pass or fail alike. */
static void
fill_one(dm_update *u, long d, long i, long rows, int64_t day)
{
	long r = i % rows;

	memset(u, 0, sizeof(*u));
	if (asprintf(&u->domain, "d%ld.example", d) < 0 ||
	    asprintf(&u->policy, "p=reject;sp=reject;np=reject;pct=100;t=n;"
	    "adkim=r;aspf=r;fo=0;psd=u;rua=mailto%%3Admarc@d%ld.example;ruf=;"
	    "dm=treewalk;", d) < 0 ||
	    asprintf(&u->row, "ip=198.51.%ld.%ld;hf=d%ld.example;ef=mx%ld."
	    "sender.example;disp=%s;r=;ad=d%ld.example/s%ld/%s;dkim=%s;spf=%s;"
	    "as=mx%ld.sender.example/mfrom/%s;", r / 250, r % 250, d, r,
	    r % 3 ? "none" : "reject", d, r % 2, r % 3 ? "pass" : "fail",
	    r % 3 ? "pass" : "fail", r % 3 ? "pass" : "fail", r,
	    r % 2 ? "pass" : "softfail") < 0)
		dm_log_oom();
	u->begin = day;
	u->end = day + 86400;
	u->count = 1;
}

int
main(int argc, char **argv)
{
	dm_store_opts o = { 0 };
	dm_store_stats st;
	dm_store *s;
	dm_update u;
	long n, domains, rows, per, d, i;
	int64_t day = (int64_t)time(NULL) / 86400 * 86400;
	char err[512];
	double t0, t1;

	if (argc != 6) {
		fputs("usage: report_fill REDIS_URL|- STATE_DIR messages "
		    "domains rows\n", stderr);
		return 2;
	}
	n = atol(argv[3]);
	domains = atol(argv[4]) > 0 ? atol(argv[4]) : 1;
	rows = atol(argv[5]) > 0 ? atol(argv[5]) : 1;
	per = n / domains;
	dm_log_open("report_fill", NULL, DM_LOG_TO_STDERR);
	o.redis_url = strcmp(argv[1], "-") == 0 ? NULL : argv[1];
	o.prefix = "dmarc:";
	o.timeout_ms = 5000;
	o.ttl_sec = 604800;
	o.state_dir = argv[2];
	o.queue_max = 65536;
	/* filling, not measuring durability: no fdatasync per count */
	o.sync = DM_STORE_SYNC_WRITTEN;
	if ((s = dm_store_new(&o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "report_fill: %s\n", err);
		return 1;
	}
	t0 = now_sec();
	/* interleaved, as mail arrives: domain after domain */
	for (i = 0; i < per; i++)
		for (d = 0; d < domains; d++) {
			fill_one(&u, d, i, rows, day);
			(void)dm_store_put(s, &u, 1);
		}
	dm_store_get_stats(s, &st);
	dm_store_free(s);
	t1 = now_sec();
	printf("filled %ld counts over %ld domains (%ld rows each) into %s "
	    "in %.1f s (%.0f/s); queue overflow %llu\n", per * domains,
	    domains, rows < per ? rows : per, o.redis_url ? "Redis" :
	    "the journal", t1 - t0, (double)(per * domains) / (t1 - t0),
	    (unsigned long long)st.overflow);
	return 0;
}
