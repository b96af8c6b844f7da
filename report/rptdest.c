/*
 * report/rptdest.c - the table of failing report destinations
 * (rptdest.h). A few hundred lines at most: a linear table is enough.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <bsd/string.h>

#include "dm_log.h"
#include "rptdest.h"

struct rpt_dest {
	char addr[512];
	long fails;
	int64_t until;
};

struct rpt_dests {
	char path[4096];
	struct rpt_dest *v;
	size_t n;
	int changed;
};

static struct rpt_dest *
dest_find(const rpt_dests *d, const char *addr)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (strcasecmp(d->v[i].addr, addr) == 0)
			return &d->v[i];
	return NULL;
}

static struct rpt_dest *
dest_add(rpt_dests *d, const char *addr)
{
	struct rpt_dest *nv;

	if ((nv = realloc(d->v, (d->n + 1) * sizeof(*nv))) == NULL)
		dm_log_oom();
	d->v = nv;
	memset(&nv[d->n], 0, sizeof(*nv));
	strlcpy(nv[d->n].addr, addr, sizeof(nv[d->n].addr));
	return &nv[d->n++];
}

rpt_dests *
rpt_dests_load(const char *path)
{
	rpt_dests *d;
	char addr[512];
	long fails;
	long long until;
	FILE *fp;
	int n;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		dm_log_oom();
	strlcpy(d->path, path, sizeof(d->path));
	if ((fp = fopen(path, "re")) == NULL) {
		if (errno != ENOENT)
			dm_warn("report: %s: %s", path, strerror(errno));
		return d;
	}
	while ((n = fscanf(fp, "%511s %ld %lld", addr, &fails, &until)) == 3)
		if (fails > 0 && dest_find(d, addr) == NULL) {
			struct rpt_dest *e = dest_add(d, addr);

			e->fails = fails;
			e->until = until;
		}
	if (n != EOF)
		dm_warn("report: %s: unreadable from line %zu on", path,
		    d->n + 1);
	fclose(fp);
	return d;
}

void
rpt_dests_free(rpt_dests *d)
{
	if (d == NULL)
		return;
	free(d->v);
	free(d);
}

bool
rpt_dests_suppressed(const rpt_dests *d, const char *addr, int64_t now,
    int64_t *until)
{
	const struct rpt_dest *e = dest_find(d, addr);

	if (e == NULL || e->until <= now)
		return false;
	if (until != NULL)
		*until = e->until;
	return true;
}

void
rpt_dests_result(rpt_dests *d, const char *addr, int ok, int64_t now)
{
	struct rpt_dest *e = dest_find(d, addr);

	if (ok) {
		if (e != NULL && e->fails > 0) {
			e->fails = 0;
			e->until = 0;
			d->changed = 1;
		}
		return;
	}
	if (e == NULL)
		e = dest_add(d, addr);
	e->fails++;
	d->changed = 1;
	if (e->fails >= RPT_DEST_FAILS) {
		e->until = now + RPT_DEST_PAUSE;
		dm_log(DM_LOG_WARNING, "report: %s failed %ld times in a row: "
		    "left out of reports for %d hours", addr, e->fails,
		    RPT_DEST_PAUSE / 3600);
	}
}

int
rpt_dests_save(rpt_dests *d)
{
	char tmp[4200];
	FILE *fp;
	size_t i;
	int ok;

	if (!d->changed)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", d->path);
	if ((fp = fopen(tmp, "we")) == NULL) {
		dm_err("report: %s: %s", tmp, strerror(errno));
		return -1;
	}
	ok = 1;
	for (i = 0; i < d->n; i++)
		if (d->v[i].fails > 0 && fprintf(fp, "%s %ld %lld\n",
		    d->v[i].addr, d->v[i].fails, (long long)d->v[i].until) < 0)
			ok = 0;
	if (fclose(fp) != 0 || !ok || rename(tmp, d->path) != 0) {
		dm_err("report: %s: %s", d->path, strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	d->changed = 0;
	return 0;
}
