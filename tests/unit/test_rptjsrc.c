/*
 * tests/unit/test_rptjsrc.c - the embedded store's report groups
 * (report/rptjsrc.c) and the table of failing destinations
 * (report/rptdest.c): journal segments written with dm_journal fold
 * into group files with every count once, also when a segment is folded
 * again after a crash and when a chunk was torn; listing by period end
 * and domain; claim, backoff, done; one run at a time. All in a mkdtemp
 * directory removed at the end.
 */
#include "config.h"

#include <dirent.h>
#include <ftw.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dm_journal.h"
#include "dm_log.h"
#include "rptdest.h"
#include "rptjsrc.h"
#include "tap.h"

#define DAY	INT64_C(1767225600)	/* 2026-01-01 UTC */
#define POLICY	"p=none;sp=none;np=none;pct=100;t=n;adkim=r;aspf=r;fo=0;" \
	"psd=u;rua=mailto%3Ar@a.example;ruf=;dm=treewalk;"

static char base[] = "/tmp/test_rptjsrc.XXXXXX";
static char state[512], jdir[600];

/* One update of a table row: domain, day offset, row, count. */
struct up {
	const char *domain;
	int day;
	const char *row;
	unsigned count;
};

/* fps: NULL, or a fingerprint tag letter per update (' ': none). */
static void
write_segment_fp(const struct up *u, size_t n, unsigned long long seq0,
    const char *fps)
{
	char err[256];
	dm_journal *j = dm_journal_open(jdir, 0, 0, 0, err, sizeof(err));
	dm_update x;
	size_t i;

	if (j == NULL)
		tap_bail("journal: %s", err);
	for (i = 0; i < n; i++) {
		memset(&x, 0, sizeof(x));
		strcpy(x.writer, "test:1:1");
		x.seq = seq0 + i;
		x.domain = (char *)u[i].domain;
		x.begin = DAY + u[i].day * 86400;
		x.end = x.begin + 86400;
		x.policy = (char *)POLICY;
		x.row = (char *)u[i].row;
		x.count = u[i].count;
		if (fps != NULL && fps[i] != ' ')
			memset(x.fp, fps[i], DM_FP_LEN);
		if (dm_journal_append(j, &x) != DM_OK)
			tap_bail("journal append");
	}
	dm_journal_close(j);
}

static void
write_segment(const struct up *u, size_t n, unsigned long long seq0)
{
	write_segment_fp(u, n, seq0, NULL);
}

static const struct up seg1[] = {
	{ "a.example", 0, "ip=192.0.2.1;disp=none;", 1 },
	{ "a.example", 0, "ip=192.0.2.2;disp=none;", 1 },
	{ "a.example", 0, "ip=192.0.2.1;disp=none;", 1 },
	{ "b.example", 0, "ip=192.0.2.9;disp=reject;", 1 },
	{ "a.example", 1, "ip=192.0.2.1;disp=none;", 1 },
};
static const struct up seg2[] = {
	{ "a.example", 0, "ip=192.0.2.2;disp=none;", 5 },
	{ "b.example", 0, "ip=192.0.2.9;disp=reject;", 2 },
};

/* The count of a row in a read group, or -1. */
static long
row_count(const rpt_rowc *rows, size_t n, const char *row)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(rows[i].row, row) == 0)
			return (long)rows[i].count;
	return -1;
}

/* Sum of a group's counts; -1 when it cannot be read. */
static long
group_total(rpt_source *src, const rpt_group *g)
{
	rpt_rowc *rows = NULL;
	char *policy = NULL;
	size_t n = 0, i;
	long t = 0;

	if (src->read(src->h, g, &policy, &rows, &n) != DM_OK)
		return -1;
	for (i = 0; i < n; i++)
		t += (long)rows[i].count;
	free(policy);
	rpt_src_rows_free(rows, n);
	return t;
}

static const rpt_group *
find(const rpt_group *g, size_t n, const char *domain, int day)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(g[i].domain, domain) == 0 &&
		    g[i].begin == DAY + day * 86400)
			return &g[i];
	return NULL;
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
test_fold_and_read(rpt_jsrc *j, rpt_source *src)
{
	rpt_group *g = NULL;
	rpt_rowc *rows = NULL;
	char *policy = NULL;
	const rpt_group *a;
	size_t n = 0, nseg = 0, nrec = 0, nr = 0;

	write_segment(seg1, 5, 1);
	write_segment(seg2, 2, 6);
	tap_is_int(rpt_jsrc_fold(j, &nseg, &nrec), DM_OK, "fold: DM_OK");
	tap_is_int((long)nseg, 2, "fold: two segments");
	tap_is_int((long)nrec, 7, "fold: seven records");
	tap_ok(src->list(src->h, DAY + 86400, NULL, &g, &n) == DM_OK &&
	    n == 2, "list: the two groups of day 0 (day 1 has not ended)");
	a = find(g, n, "a.example", 0);
	tap_ok(a != NULL && src->read(src->h, a, &policy, &rows, &nr) == DM_OK,
	    "read a.example day 0");
	tap_is_str(policy, POLICY, "read: the policy text");
	tap_is_int((long)nr, 2, "read: two distinct rows");
	tap_is_int(row_count(rows, nr, "ip=192.0.2.1;disp=none;"), 2,
	    "read: a row counted in one segment twice: 2");
	tap_is_int(row_count(rows, nr, "ip=192.0.2.2;disp=none;"), 6,
	    "read: a row in both segments: 1 + 5");
	free(policy);
	rpt_src_rows_free(rows, nr);
	free(g);
	g = NULL;
	tap_ok(src->list(src->h, DAY + 2 * 86400, "b.example", &g, &n) ==
	    DM_OK && n == 1 && strcmp(g[0].domain, "b.example") == 0 &&
	    group_total(src, &g[0]) == 3, "list one domain: b.example, 3");
	free(g);
}

/* A segment folded again (a crash before its removal) adds nothing. */
static void
test_refold(rpt_jsrc *j, rpt_source *src)
{
	char path[900], copy[900];
	rpt_group *g = NULL;
	glob_t gl;
	size_t n = 0;
	FILE *in, *out;
	int c;

	write_segment(seg2, 2, 8);
	snprintf(path, sizeof(path), "%s/seg-*", jdir);
	if (glob(path, 0, NULL, &gl) != 0 || gl.gl_pathc != 1)
		tap_bail("one segment expected");
	snprintf(copy, sizeof(copy), "%s.keep", gl.gl_pathv[0]);
	in = fopen(gl.gl_pathv[0], "r");
	out = fopen(copy, "w");
	while (in && out && (c = getc(in)) != EOF)
		putc(c, out);
	fclose(in);
	fclose(out);
	(void)rpt_jsrc_fold(j, NULL, NULL);
	rename(copy, gl.gl_pathv[0]);	/* as if never removed */
	(void)rpt_jsrc_fold(j, NULL, NULL);
	globfree(&gl);
	(void)src->list(src->h, DAY + 86400, "a.example", &g, &n);
	tap_ok(n == 1 && group_total(src, &g[0]) == 8 + 5,
	    "a segment folded twice counts once (a.example day 0: 13)");
	free(g);
}

/*
 * The fingerprint window in the fold (issue 16): a message counted in
 * one segment and offered again (its reply lost, the milter restarted)
 * in a later one, or twice in one, is folded once; a segment folded
 * again after a crash still adds nothing.
 */
static const struct up fpseg1[] = {
	{ "fp.example", 0, "ip=192.0.2.1;disp=none;", 1 },
	{ "fp.example", 0, "ip=192.0.2.1;disp=none;", 1 },
	{ "fp.example", 0, "ip=192.0.2.2;disp=none;", 1 },
};
static const struct up fpseg2[] = {
	{ "fp.example", 0, "ip=192.0.2.2;disp=none;", 1 },
	{ "fp.example", 0, "ip=192.0.2.1;disp=none;", 1 },
	{ "fp.example", 0, "ip=192.0.2.1;disp=none;", 1 },
	{ "fp.example", 0, "ip=192.0.2.2;disp=none;", 1 },
	{ "fp.example", 1, "ip=192.0.2.2;disp=none;", 1 },
};

static void
test_fingerprint(rpt_jsrc *j, rpt_source *src)
{
	char path[900], copy[900], *text;
	rpt_group *g = NULL;
	size_t n = 0, len = 0;
	glob_t gl;

	write_segment_fp(fpseg1, 3, 100, "ab ");
	(void)rpt_jsrc_fold(j, NULL, NULL);
	/* a: again, other row; c twice; one without; a on day 1 */
	write_segment_fp(fpseg2, 5, 200, "acc a");
	snprintf(path, sizeof(path), "%s/seg-*", jdir);
	if (glob(path, 0, NULL, &gl) != 0 || gl.gl_pathc != 1)
		tap_bail("one segment expected");
	snprintf(copy, sizeof(copy), "%s.keep", gl.gl_pathv[0]);
	if (link(gl.gl_pathv[0], copy) != 0)
		tap_bail("link %s", copy);
	(void)rpt_jsrc_fold(j, NULL, NULL);
	(void)src->list(src->h, DAY + 2 * 86400, "fp.example", &g, &n);
	tap_ok(n == 2 && group_total(src, find(g, n, "fp.example", 0)) == 5,
	    "fingerprints: day 0 folds a, b, c and two without (5), not a's "
	    "retry nor c twice");
	tap_ok(n == 2 && group_total(src, find(g, n, "fp.example", 1)) == 1,
	    "fingerprints: a on the next day counts there (the window is "
	    "the group)");
	rename(copy, gl.gl_pathv[0]);	/* as if never removed */
	(void)rpt_jsrc_fold(j, NULL, NULL);
	globfree(&gl);
	tap_ok(n == 2 && group_total(src, find(g, n, "fp.example", 0)) == 5,
	    "fingerprints: the segment folded again adds nothing");
	snprintf(path, sizeof(path), "%s/reports/groups/fp.example/"
	    "%lld-%lld-%s.g", state, (long long)DAY, (long long)DAY + 86400,
	    g[0].polid);
	text = tap_slurp(path, &len);
	tap_ok(text != NULL && strstr(text, "\nF aaaaaaaaaaaaaaaa") != NULL &&
	    strstr(text, "\nF cccccccccccccccc") != NULL, "fingerprints: the "
	    "group file keeps them (F lines)");
	free(text);
	free(g);
}

/* A torn chunk (a crash mid-write) is skipped; the next one counts. */
static void
test_torn(rpt_jsrc *j, rpt_source *src)
{
	char path[900];
	rpt_group *g = NULL;
	size_t n = 0;
	FILE *fp;

	(void)src->list(src->h, DAY + 86400, "b.example", &g, &n);
	snprintf(path, sizeof(path), "%s/reports/groups/b.example/"
	    "%lld-%lld-%s.g", state, (long long)g[0].begin,
	    (long long)g[0].end, g[0].polid);
	if ((fp = fopen(path, "a")) == NULL)
		tap_bail("%s", path);
	fputs("@ seg-torn 3 0badc0de 80\nP " POLICY "\nR 100 ip=19", fp);
	fclose(fp);
	write_segment(seg2 + 1, 1, 20);
	(void)rpt_jsrc_fold(j, NULL, NULL);
	tap_is_int(group_total(src, &g[0]), 3 + 2 + 2,
	    "a torn chunk is skipped, the chunk after it counts (b.example: 7)");
	free(g);
}

static void
test_claim(rpt_source *src)
{
	rpt_group *g = NULL;
	rpt_claim c1, c2;
	size_t n = 0;
	const char *o = "owner";

	(void)src->list(src->h, DAY + 86400, "a.example", &g, &n);
	tap_ok(n == 1 && src->claim(src->h, &g[0], o, DAY + 90000, 0, &c1)
	    == DM_OK && c1.tries == 0, "claim: ours, no tries yet");
	tap_ok(strncmp(c1.report_id, "b1767225600p", 12) == 0,
	    "claim: report id b<begin>p<policy id>t<time>: %s", c1.report_id);
	tap_ok(src->failed(src->h, &g[0], o, DAY + 90000, 3600) == DM_OK &&
	    src->claim(src->h, &g[0], o, DAY + 90000 + 60, 0, &c2) ==
	    DM_NOTFOUND, "failed: no claim within the backoff");
	tap_ok(src->claim(src->h, &g[0], o, DAY + 90000 + 3600, 0, &c2) ==
	    DM_OK && c2.tries == 1 && strcmp(c2.report_id, c1.report_id) ==
	    0, "after the backoff: the same report id, one try");
	tap_ok(src->done(src->h, &g[0], o, c2.report_id, 0) == DM_OK,
	    "done");
	free(g);
	g = NULL;
	tap_ok(src->list(src->h, DAY + 86400, "a.example", &g, &n) == DM_OK &&
	    n == 0, "done: the group is gone from the list");
	free(g);
}

static void
test_lock(void)
{
	rpt_jsrc *k = NULL;
	char err[256];

	tap_is_int(rpt_jsrc_open(state, &k, err, sizeof(err)), DM_NOTFOUND,
	    "a second run while the first holds the lock: DM_NOTFOUND");
	tap_ok(k == NULL && strstr(err, "held by another") != NULL,
	    "and says why: %s", err);
}

static void
test_dests(void)
{
	char path[700];
	rpt_dests *d;
	int64_t until = 0;
	int i;

	snprintf(path, sizeof(path), "%s/destinations", base);
	d = rpt_dests_load(path);
	for (i = 0; i < RPT_DEST_FAILS - 1; i++)
		rpt_dests_result(d, "x@a.example", 0, 1000);
	tap_ok(!rpt_dests_suppressed(d, "x@a.example", 1000, NULL),
	    "dests: %d failures: still used", RPT_DEST_FAILS - 1);
	rpt_dests_result(d, "x@a.example", 0, 1000);
	tap_ok(rpt_dests_suppressed(d, "X@A.example", 1001, &until) &&
	    until == 1000 + RPT_DEST_PAUSE, "dests: %d failures: left out "
	    "for a day (case-insensitive)", RPT_DEST_FAILS);
	rpt_dests_result(d, "y@a.example", 0, 1000);
	tap_is_int(rpt_dests_save(d), 0, "dests: saved");
	rpt_dests_free(d);
	d = rpt_dests_load(path);
	tap_ok(rpt_dests_suppressed(d, "x@a.example", 2000, NULL) &&
	    !rpt_dests_suppressed(d, "x@a.example", 1000 + RPT_DEST_PAUSE,
	    NULL), "dests: reloaded: left out until the pause ends");
	rpt_dests_result(d, "x@a.example", 1, 3000);
	tap_ok(!rpt_dests_suppressed(d, "x@a.example", 3001, NULL),
	    "dests: a success forgets the failures");
	rpt_dests_free(d);
}

int
main(void)
{
	rpt_jsrc *j = NULL;
	rpt_source src;
	char err[256];

	dm_log_open("test_rptjsrc", NULL, DM_LOG_TO_STDERR);
	if (mkdtemp(base) == NULL)
		tap_bail("mkdtemp");
	snprintf(state, sizeof(state), "%s/state", base);
	snprintf(jdir, sizeof(jdir), "%s/journal", state);
	if (mkdir(state, 0700) != 0 ||
	    rpt_jsrc_open(state, &j, err, sizeof(err)) != DM_OK)
		tap_bail("open: %s", err);
	rpt_jsrc_source(j, &src);
	test_fold_and_read(j, &src);
	test_refold(j, &src);
	test_torn(j, &src);
	test_fingerprint(j, &src);
	test_claim(&src);
	test_lock();
	rpt_jsrc_close(j);
	test_dests();
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
