/*
 * tests/unit/test_rptsrc.c - report groups in a real Redis: listing by
 * period end, exclusive claims, report ids kept across retries and
 * crashes (lease expiry), backoff, done and release. The counts are put
 * there by the milter's own writer path (dm_redis_apply).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bsd/string.h>
#include <hiredis/hiredis.h>

#include "dm_redis.h"
#include "rptsrc.h"
#include "tap.h"
#include "testredis.h"

#define DAY 86400
#define D0 (DAY * 20000LL)

static const struct put {
	const char *domain;
	int64_t begin;
	const char *row;
	uint32_t count;
} puts_[] = {
	{ "a.example", D0, "ip=192.0.2.1;hf=a.example;", 3 },
	{ "a.example", D0, "ip=192.0.2.2;hf=a.example;", 2 },
	{ "b.example", D0, "ip=192.0.2.3;hf=b.example;", 1 },
	{ "b.example", D0 + DAY, "ip=192.0.2.3;hf=b.example;", 1 },
	{ "c.example", D0, "ip=192.0.2.4;hf=c.example;", 5 },
	{ "d.example", D0, "ip=192.0.2.5;hf=d.example;", 7 },
};

static void
fill(dm_redis *r)
{
	dm_update u[sizeof(puts_) / sizeof(puts_[0])];
	size_t i, done = 0;

	for (i = 0; i < sizeof(puts_) / sizeof(puts_[0]); i++) {
		memset(&u[i], 0, sizeof(u[i]));
		strlcpy(u[i].writer, "test:1", sizeof(u[i].writer));
		u[i].seq = i + 1;
		u[i].domain = (char *)puts_[i].domain;
		u[i].begin = puts_[i].begin;
		u[i].end = puts_[i].begin + DAY;
		u[i].policy = (char *)"p=reject;";
		u[i].row = (char *)puts_[i].row;
		u[i].count = puts_[i].count;
	}
	if (dm_redis_apply(r, u, i, &done) != DM_OK || done != i)
		tap_bail("filling Redis failed");
}

static const rpt_group *
find(const rpt_group *g, size_t n, const char *domain)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(g[i].domain, domain) == 0)
			return &g[i];
	return NULL;
}

static void
test_list(dm_redis *r)
{
	rpt_group *g;
	size_t n;

	tap_is_int(rpt_src_list(r, D0 + DAY, NULL, &g, &n), DM_OK, "list");
	tap_is_int((long)n, 4, "the four groups that ended are listed");
	tap_ok(find(g, n, "b.example") != NULL &&
	    find(g, n, "b.example")->begin == D0, "b's open day is not listed");
	free(g);
	tap_is_int(rpt_src_list(r, D0 + DAY - 1, NULL, &g, &n), DM_OK,
	    "list before the day ends");
	tap_is_int((long)n, 0, "nothing has ended a second before midnight");
	free(g);
	tap_is_int(rpt_src_list(r, D0 + 2 * DAY, "b.example", &g, &n), DM_OK,
	    "list one domain");
	tap_is_int((long)n, 2, "both of b's days");
	free(g);
}

static void
test_claims(dm_redis *r)
{
	rpt_group *g;
	const rpt_group *a;
	rpt_claim c1, c2;
	rpt_rowc *rows;
	char *policy;
	size_t n, nr;
	uint64_t sum = 0;

	if (rpt_src_list(r, D0 + DAY, "a.example", &g, &n) != DM_OK || n != 1)
		tap_bail("a.example not listed");
	a = &g[0];
	tap_is_int(rpt_src_claim(r, a, "A", D0 + DAY, 60000, &c1), DM_OK,
	    "A claims");
	tap_is_int(rpt_src_claim(r, a, "B", D0 + DAY, 60000, &c2),
	    DM_NOTFOUND, "B cannot claim what A holds");
	tap_is_int(rpt_src_read(r, a, &policy, &rows, &nr), DM_OK, "read");
	tap_is_str(policy, "p=reject;", "the policy text");
	tap_is_int((long)nr, 2, "two rows");
	for (size_t i = 0; i < nr; i++)
		sum += rows[i].count;
	tap_is_int((long)sum, 5, "their counts");
	free(policy);
	rpt_src_rows_free(rows, nr);
	tap_is_int(rpt_src_failed(r, a, "B", D0 + DAY, 100), DM_NOTFOUND,
	    "B cannot fail A's claim");
	tap_is_int(rpt_src_failed(r, a, "A", D0 + DAY, 100), DM_OK,
	    "A's send failed: backoff");
	tap_is_int(rpt_src_claim(r, a, "B", D0 + DAY + 50, 60000, &c2),
	    DM_NOTFOUND, "nobody claims during the backoff");
	tap_is_int(rpt_src_claim(r, a, "B", D0 + DAY + 100, 60000, &c2),
	    DM_OK, "B claims once the backoff ended");
	tap_is_str(c2.report_id, c1.report_id, "the retry keeps the report id");
	tap_is_int(c2.tries, 1, "one failed attempt counted");
	tap_is_int(rpt_src_done(r, a, "A", c2.report_id, 3600), DM_NOTFOUND,
	    "A cannot mark B's claim done");
	tap_is_int(rpt_src_done(r, a, "B", c2.report_id, 3600), DM_OK,
	    "B marks it done");
	tap_is_int(rpt_src_read(r, a, &policy, &rows, &nr), DM_NOTFOUND,
	    "its data is gone");
	free(g);
	tap_is_int(rpt_src_list(r, D0 + DAY, "a.example", &g, &n), DM_OK,
	    "list again");
	tap_is_int((long)n, 0, "the group left the index");
	free(g);
}

/* A generator that dies holding a claim: the lease ends, the id stays. */
static void
test_crash(dm_redis *r)
{
	struct timespec pause = { 0, 300000000 };
	rpt_group *g;
	rpt_claim c1, c2;
	size_t n;

	if (rpt_src_list(r, D0 + DAY, "c.example", &g, &n) != DM_OK || n != 1)
		tap_bail("c.example not listed");
	tap_is_int(rpt_src_claim(r, g, "A", D0 + DAY, 100, &c1), DM_OK,
	    "A claims with a 100 ms lease, then dies");
	nanosleep(&pause, NULL);
	tap_is_int(rpt_src_claim(r, g, "B", D0 + DAY + 5, 60000, &c2), DM_OK,
	    "B claims after the lease ran out");
	tap_is_str(c2.report_id, c1.report_id, "with the same report id");
	tap_is_int(c2.tries, 0, "a crash is not a failed attempt");
	tap_is_int(rpt_src_release(r, g, "A"), DM_NOTFOUND,
	    "A cannot release B's claim");
	tap_is_int(rpt_src_release(r, g, "B"), DM_OK, "B releases it");
	tap_is_int(rpt_src_claim(r, g, "A", D0 + DAY + 6, 60000, &c1), DM_OK,
	    "after a release it can be claimed at once");
	free(g);
}

/* A slow send renews its lease: nobody else gets in meanwhile. */
static void
test_renew(dm_redis *r)
{
	struct timespec part = { 0, 200000000 }, rest = { 0, 300000000 };
	rpt_group *g;
	rpt_claim c1, c2;
	size_t n;

	if (rpt_src_list(r, D0 + DAY, "c.example", &g, &n) != DM_OK || n != 1)
		tap_bail("c.example not listed");
	(void)rpt_src_release(r, g, "A");
	tap_is_int(rpt_src_claim(r, g, "A", D0 + DAY + 7, 300, &c1), DM_OK,
	    "A claims with a 300 ms lease");
	nanosleep(&part, NULL);
	tap_is_int(rpt_src_renew(r, g, "B", 300), DM_NOTFOUND,
	    "B cannot renew A's lease");
	tap_is_int(rpt_src_renew(r, g, "A", 300), DM_OK,
	    "A renews it after 200 ms, for 300 ms more");
	nanosleep(&part, NULL);
	tap_is_int(rpt_src_claim(r, g, "B", D0 + DAY + 8, 60000, &c2),
	    DM_NOTFOUND, "400 ms after the claim, A still holds it");
	nanosleep(&rest, NULL);
	tap_is_int(rpt_src_renew(r, g, "A", 300), DM_NOTFOUND,
	    "once it ran out, A cannot renew it: A must not send");
	tap_is_int(rpt_src_claim(r, g, "B", D0 + DAY + 9, 60000, &c2), DM_OK,
	    "and B claims it");
	free(g);
}

int
main(void)
{
	char err[256];
	dm_redis *r;

	if (!testredis_available())
		return 0;
	r = dm_redis_new(testredis_start(), "t:", 2000, 0,
	    err, sizeof(err));
	if (r == NULL)
		tap_bail("dm_redis_new: %s", err);
	fill(r);
	test_list(r);
	test_claims(r);
	test_crash(r);
	test_renew(r);
	dm_redis_free(r);
	return tap_done();
}
