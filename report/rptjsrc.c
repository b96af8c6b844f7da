/*
 * report/rptjsrc.c - the embedded store's report groups (rptjsrc.h):
 * folding journal segments into group files, and the group life of
 * rptsrc.h (list, claim, read, done, failed) on those files.
 *
 * A chunk in a group file:
 *   "@ <segment> <lines> <crc32 8 hex> <body bytes>\n" then the body:
 *   "P <policy text>\n", one "R <count> <row text>\n" per row and one
 *   "F <fingerprint>\n" per message counted that had one.
 * A record whose fingerprint a counted chunk of its group holds already
 * is a message offered again after its reply was lost: it is folded as
 * nothing, as Redis's script does (dm_redis.h). The group file is the
 * memory of that, and goes with the group once it is reported.
 * Policy and row texts are the canonical escaped texts of dm_row.h:
 * they hold no space and no control byte, so a line cannot be forged.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bsd/string.h>
#include <zlib.h>

#include "dm_buf.h"
#include "dm_hex.h"
#include "dm_journal.h"
#include "dm_log.h"
#include "rptjsrc.h"
#include "rptkill.h"

#define JS_PATH 4096

struct js_gcache;

struct rpt_jsrc {
	char jdir[JS_PATH];	/* StateDir/journal */
	char gdir[JS_PATH];	/* StateDir/reports/groups */
	int lockfd;
	int gfd;		/* gdir, for syncfs */
	/* during a fold: the groups touched, each file read once */
	struct js_gcache *cache;
	size_t ncache;
};

/* One journal record, owned, while a segment is folded. */
struct js_rec {
	char *domain, *policy, *row;
	int64_t begin, end;
	char polid[17];
	uint64_t count;
	char fp[DM_FP_LEN + 1];
};

/* Fingerprints of one group: an open-addressing set of hex strings. */
struct js_fps {
	char (*v)[DM_FP_LEN + 1];
	size_t n, cap;		/* cap: 0 or a power of two */
};

/*
 * What a fold needs of a group file, read once per fold run: the
 * fingerprints its counted chunks hold and the segments folded into it.
 */
struct js_gcache {
	char path[JS_PATH];
	struct js_fps fps;
	char **seen;
	size_t nseen;
};

struct js_recs {
	struct js_rec *v;
	size_t n, cap;
	size_t skipped;
};

/* ---- names ---------------------------------------------------------------- */

/* A domain as a directory name: %XX outside [a-z0-9-_] and a first '.'. */
static bool
js_escape(const char *dom, char *out, size_t len)
{
	size_t o = 0;
	const unsigned char *p;

	for (p = (const unsigned char *)dom; *p != '\0'; p++) {
		if (o + 4 > len)
			return false;
		if (islower(*p) || isdigit(*p) || *p == '-' || *p == '_' ||
		    (*p == '.' && p != (const unsigned char *)dom))
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, 4, "%%%02X", *p);
	}
	out[o] = '\0';
	return o > 0 && o < 256;
}

static bool
js_unescape(const char *in, char *out, size_t len)
{
	return dm_hex_decode(in, strlen(in), out, len) && out[0] != '\0';
}

/* groups/<domain>/<begin>-<end>-<polid><suffix>; false if too long. */
static bool
js_path(const rpt_jsrc *j, const char *domain, int64_t begin, int64_t end,
    const char *polid, const char *suffix, char *out, size_t len)
{
	char esc[768];

	if (!js_escape(domain, esc, sizeof(esc)))
		return false;
	return (size_t)snprintf(out, len, "%s/%s/%" PRId64 "-%" PRId64 "-%s%s",
	    j->gdir, esc, begin, end, polid, suffix) < len;
}

static bool
js_gpath(const rpt_jsrc *j, const rpt_group *g, const char *suffix,
    char *out, size_t len)
{
	return js_path(j, g->domain, g->begin, g->end, g->polid, suffix, out,
	    len);
}

/* ---- opening -------------------------------------------------------------- */

static int
js_mkdir(const char *path)
{
	return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

dm_status
rpt_jsrc_open(const char *state_dir, rpt_jsrc **out, char *err,
    size_t errlen)
{
	char rdir[JS_PATH], lpath[JS_PATH];
	rpt_jsrc *j;

	*out = NULL;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		dm_log_oom();
	j->lockfd = j->gfd = -1;
	if (strlen(state_dir) > JS_PATH - 64) {
		snprintf(err, errlen, "StateDir is too long");
		rpt_jsrc_close(j);
		return DM_PERMFAIL;
	}
	if (snprintf(j->jdir, sizeof(j->jdir), "%s/journal", state_dir) < 0 ||
	    snprintf(rdir, sizeof(rdir), "%s/reports", state_dir) < 0 ||
	    snprintf(j->gdir, sizeof(j->gdir), "%s/groups", rdir) < 0 ||
	    snprintf(lpath, sizeof(lpath), "%s/lock", rdir) < 0 ||
	    js_mkdir(rdir) != 0 || js_mkdir(j->gdir) != 0 ||
	    (j->lockfd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0
	    || (j->gfd = open(j->gdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) <
	    0) {
		snprintf(err, errlen, "%s: %s", rdir, strerror(errno));
		rpt_jsrc_close(j);
		return DM_TEMPFAIL;
	}
	if (flock(j->lockfd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "%s is held by another dmarc-report",
		    lpath);
		rpt_jsrc_close(j);
		return errno == EWOULDBLOCK ? DM_NOTFOUND : DM_TEMPFAIL;
	}
	*out = j;
	return DM_OK;
}

void
rpt_jsrc_close(rpt_jsrc *j)
{
	if (j == NULL)
		return;
	if (j->lockfd >= 0)
		close(j->lockfd);
	if (j->gfd >= 0)
		close(j->gfd);
	free(j);
}

/* ---- folding -------------------------------------------------------------- */

static int
js_collect(const dm_update *u, void *arg)
{
	struct js_recs *rs = arg;
	struct js_rec *r, *nv;

	if (strpbrk(u->policy, " \n") != NULL || strpbrk(u->row, " \n") !=
	    NULL || strchr(u->domain, '/') != NULL) {
		rs->skipped++;
		return 0;
	}
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 1024;
		if ((nv = realloc(rs->v, rs->cap * sizeof(*nv))) == NULL)
			dm_log_oom();
		rs->v = nv;
	}
	r = &rs->v[rs->n++];
	if ((r->domain = strdup(u->domain)) == NULL ||
	    (r->policy = strdup(u->policy)) == NULL ||
	    (r->row = strdup(u->row)) == NULL)
		dm_log_oom();
	r->begin = u->begin;
	r->end = u->end;
	r->count = u->count;
	memcpy(r->fp, u->fp, sizeof(r->fp));
	dm_update_policy_id(u->policy, r->polid);
	return 0;
}

static size_t
js_fps_slot(const struct js_fps *f, const char *fp)
{
	size_t h = 0, i;

	for (i = 0; i < 16 && fp[i] != '\0'; i++)
		h = h * 31 + (unsigned char)fp[i];
	for (i = h & (f->cap - 1); f->v[i][0] != '\0' &&
	    strcmp(f->v[i], fp) != 0; i = (i + 1) & (f->cap - 1))
		;
	return i;
}

/* Add fp; false when it was there already. */
static bool
js_fps_add(struct js_fps *f, const char *fp)
{
	struct js_fps g;
	size_t i;

	if (2 * (f->n + 1) > f->cap) {
		g.cap = f->cap ? f->cap * 2 : 64;
		g.n = 0;
		if ((g.v = calloc(g.cap, sizeof(*g.v))) == NULL)
			dm_log_oom();
		for (i = 0; i < f->cap; i++)
			if (f->v[i][0] != '\0')
				(void)js_fps_add(&g, f->v[i]);
		free(f->v);
		*f = g;
	}
	i = js_fps_slot(f, fp);
	if (f->v[i][0] != '\0')
		return false;
	strlcpy(f->v[i], fp, sizeof(f->v[i]));
	f->n++;
	return true;
}

static int
js_cmp_group(const struct js_rec *a, const struct js_rec *b)
{
	int c;

	if ((c = strcmp(a->domain, b->domain)) != 0)
		return c;
	if (a->begin != b->begin)
		return a->begin < b->begin ? -1 : 1;
	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	return strcmp(a->polid, b->polid);
}

static int
js_cmp_rec(const void *pa, const void *pb)
{
	const struct js_rec *a = pa, *b = pb;
	int c;

	return (c = js_cmp_group(a, b)) != 0 ? c : strcmp(a->row, b->row);
}

static void
js_recs_free(struct js_recs *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++) {
		free(rs->v[i].domain);
		free(rs->v[i].policy);
		free(rs->v[i].row);
	}
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

/* Is r a message the group counted already? If not, it is now. */
static bool
js_repeat(struct js_fps *fps, const struct js_rec *r, dm_buf *fl,
    size_t *lines)
{
	if (r->fp[0] == '\0')
		return false;
	if (!js_fps_add(fps, r->fp))
		return true;
	dm_buf_printf(fl, "F %s\n", r->fp);
	(*lines)++;
	return false;
}

/*
 * The chunk of one group: header then body, in one buffer; nothing when
 * every record was a repeat (*repeats counts them).
 */
static void
js_chunk(const char *seg, const struct js_rec *r, size_t n,
    struct js_fps *fps, dm_buf *out, size_t *repeats)
{
	dm_buf body = DM_BUF_INIT, fl = DM_BUF_INIT;
	size_t i = 0, lines = 1, rows = 0;
	const char *row;
	uint64_t sum;

	dm_buf_printf(&body, "P %s\n", r[0].policy);
	while (i < n) {
		row = r[i].row;
		for (sum = 0; i < n && strcmp(r[i].row, row) == 0; i++) {
			if (js_repeat(fps, &r[i], &fl, &lines))
				(*repeats)++;
			else
				sum += r[i].count;
		}
		if (sum == 0)
			continue;
		dm_buf_printf(&body, "R %" PRIu64 " %s\n", sum, row);
		lines++;
		rows++;
	}
	if (fl.p != NULL)
		dm_buf_add(&body, fl.p, fl.len);
	dm_buf_free(&fl);
	if (rows == 0) {
		dm_buf_free(&body);
		return;
	}
	dm_buf_printf(out, "@ %s %zu %08lx %zu\n", seg, lines,
	    crc32(0L, (const Bytef *)body.p, (uInt)body.len), body.len);
	dm_buf_add(out, body.p, body.len);
	dm_buf_free(&body);
}

/* Append whole to a group file, after a newline if a torn tail lacks one. */
static int
js_append(const char *path, const char *p, size_t len)
{
	struct stat sb;
	char last = '\n';
	ssize_t w;
	int fd, rc = -1;

	if ((fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600)) < 0)
		return -1;
	if (fstat(fd, &sb) != 0 || (sb.st_size > 0 &&
	    pread(fd, &last, 1, sb.st_size - 1) != 1))
		goto done;
	if (last != '\n' && write(fd, "\n", 1) != 1)
		goto done;
	while (len > 0) {
		if ((w = write(fd, p, len)) < 0 && errno != EINTR)
			goto done;
		if (w > 0) {
			p += w;
			len -= (size_t)w;
		}
	}
	rc = 0;
done:
	close(fd);
	return rc;
}

static struct js_gcache *js_cache_get(rpt_jsrc *j, const char *path);
static void js_cache_forget(rpt_jsrc *j, struct js_gcache *g);
static bool js_cache_seen(struct js_gcache *g, const char *seg, bool add);
static void js_cache_clear(rpt_jsrc *j);

/* One group's records (sorted, same group) into its file. */
static int
js_fold_group(rpt_jsrc *j, const char *seg, const struct js_rec *r,
    size_t n)
{
	dm_buf chunk = DM_BUF_INIT;
	char path[JS_PATH], *slash;
	struct js_gcache *g;
	size_t repeats = 0;
	int rc = -1;

	if (!js_path(j, r->domain, r->begin, r->end, r->polid, ".g", path,
	    sizeof(path))) {
		dm_err("report: %s: a domain name too long for a file name",
		    r->domain);
		return 0;	/* never foldable: dropped with a log line */
	}
	slash = strrchr(path, '/');
	*slash = '\0';
	if (js_mkdir(path) != 0)
		goto done;
	*slash = '/';
	g = js_cache_get(j, path);
	/* Folded already (a crash before the segment's removal)? */
	if (js_cache_seen(g, seg, false)) {
		rc = 0;
		goto done;
	}
	js_chunk(seg, r, n, &g->fps, &chunk, &repeats);
	rc = chunk.p == NULL ? 0 : js_append(path, chunk.p, chunk.len);
	if (rc == 0)
		(void)js_cache_seen(g, seg, true);
	else
		js_cache_forget(j, g);	/* its fingerprints ran ahead */
	if (repeats > 0)
		dm_log(DM_LOG_INFO, "report: %s: %zu messages offered again "
		    "(fingerprint seen) not counted twice", path, repeats);
done:
	if (rc != 0)
		dm_err("report: %s: %s", path, strerror(errno));
	dm_buf_free(&chunk);
	return rc;
}

/* "seg-T-P-N" of ".../seg-T-P-N.log" (or .open): the chunk name. */
static void
js_segname(const char *path, char *out, size_t len)
{
	const char *b = strrchr(path, '/');

	strlcpy(out, b ? b + 1 : path, len);
	if ((b = strrchr(out, '.')) != NULL)
		out[b - out] = '\0';
}

static dm_status
js_fold_segment(rpt_jsrc *j, const char *path, size_t *nrec)
{
	struct js_recs rs = { 0 };
	char seg[256];
	size_t i, k, bad = 0;
	dm_status st = DM_TEMPFAIL;

	if (dm_journal_read(path, js_collect, &rs, &bad) < 0)
		goto done;
	if (rs.skipped > 0)
		dm_err("report: %s: %zu records with a malformed text dropped",
		    path, rs.skipped);
	js_segname(path, seg, sizeof(seg));
	qsort(rs.v, rs.n, sizeof(*rs.v), js_cmp_rec);
	for (i = 0; i < rs.n; i = k) {
		for (k = i + 1; k < rs.n && js_cmp_group(&rs.v[i], &rs.v[k])
		    == 0; k++)
			;
		if (js_fold_group(j, seg, &rs.v[i], k - i) != 0)
			goto done;
		rpt_killpoint("fold-group");
	}
	if (syncfs(j->gfd) != 0 || dm_journal_remove(path) != DM_OK)
		goto done;
	*nrec += rs.n;
	st = DM_OK;
done:
	js_recs_free(&rs);
	return st;
}

dm_status
rpt_jsrc_fold(rpt_jsrc *j, size_t *nseg, size_t *nrec)
{
	dm_journal_seg *segs = NULL;
	size_t n = 0, i, ns = 0, nr = 0;
	dm_status st;

	if ((st = dm_journal_segments(j->jdir, NULL, &segs, &n)) != DM_OK)
		return st;
	for (i = 0; i < n; i++) {
		if ((st = js_fold_segment(j, segs[i].path, &nr)) != DM_OK) {
			dm_err("report: %s could not be folded; it is kept "
			    "for the next run", segs[i].path);
			break;
		}
		ns++;
	}
	free(segs);
	js_cache_clear(j);
	if (nseg != NULL)
		*nseg = ns;
	if (nrec != NULL)
		*nrec = nr;
	return st;
}

/* ---- listing -------------------------------------------------------------- */

struct js_list {
	rpt_group *v;
	size_t n, cap;
};

static void
js_list_add(struct js_list *l, const char *domain, const char *name,
    int64_t upto)
{
	long long b, e;
	char polid[17], tail[4];
	rpt_group *g, *nv;

	if (sscanf(name, "%lld-%lld-%16[0-9a-f]%3s", &b, &e, polid, tail) !=
	    4 || strlen(polid) != 16 || strcmp(tail, ".g") != 0 || e > upto)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		if ((nv = realloc(l->v, l->cap * sizeof(*nv))) == NULL)
			dm_log_oom();
		l->v = nv;
	}
	g = &l->v[l->n++];
	memset(g, 0, sizeof(*g));
	strlcpy(g->domain, domain, sizeof(g->domain));
	g->begin = b;
	g->end = e;
	memcpy(g->polid, polid, sizeof(g->polid));
	snprintf(g->member, sizeof(g->member), "%lld:%s", b, polid);
}

static void
js_list_domain(const rpt_jsrc *j, const char *esc, int64_t upto,
    const char *only, struct js_list *l)
{
	char dom[256], path[JS_PATH];
	struct dirent *de;
	DIR *d;

	if (!js_unescape(esc, dom, sizeof(dom)) ||
	    (only != NULL && strcasecmp(only, dom) != 0))
		return;
	if (snprintf(path, sizeof(path), "%s/%s", j->gdir, esc) >=
	    (int)sizeof(path) || (d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		js_list_add(l, dom, de->d_name, upto);
	closedir(d);
}

static int
js_cmp_listed(const void *pa, const void *pb)
{
	const rpt_group *a = pa, *b = pb;
	int c;

	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	if ((c = strcmp(a->domain, b->domain)) != 0)
		return c;
	return strcmp(a->member, b->member);
}

static dm_status
js_list(void *h, int64_t upto, const char *only, rpt_group **out, size_t *n)
{
	rpt_jsrc *j = h;
	struct js_list l = { 0 };
	struct dirent *de;
	DIR *d;

	if ((d = opendir(j->gdir)) == NULL) {
		dm_err("report: %s: %s", j->gdir, strerror(errno));
		return DM_TEMPFAIL;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			js_list_domain(j, de->d_name, upto, only, &l);
	closedir(d);
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), js_cmp_listed);
	*out = l.v;
	*n = l.n;
	return DM_OK;
}

/* ---- a group's state ------------------------------------------------------ */

struct js_state {
	char id[96];
	long tries;
	int64_t next;
	int sent;
};

/* DM_NOTFOUND when there is none yet. */
static dm_status
js_state_read(const char *path, struct js_state *s)
{
	long long next;
	FILE *fp;
	int n;

	memset(s, 0, sizeof(*s));
	if ((fp = fopen(path, "re")) == NULL)
		return errno == ENOENT ? DM_NOTFOUND : DM_TEMPFAIL;
	n = fscanf(fp, "%95s %ld %lld %d", s->id, &s->tries, &next,
	    &s->sent);
	fclose(fp);
	if (n != 4) {
		dm_err("report: %s: unreadable; the group starts afresh", path);
		memset(s, 0, sizeof(*s));
		return DM_NOTFOUND;
	}
	s->next = next;
	return DM_OK;
}

/* Written to a temporary file, synced, renamed over: never half there. */
static dm_status
js_state_write(const rpt_jsrc *j, const char *path, const struct js_state *s)
{
	char tmp[JS_PATH + 8];
	FILE *fp;
	bool ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fp = fopen(tmp, "we")) == NULL)
		goto fail;
	ok = fprintf(fp, "%s %ld %lld %d\n", s->id, s->tries,
	    (long long)s->next, s->sent) > 0 && fflush(fp) == 0 &&
	    fdatasync(fileno(fp)) == 0;
	if (fclose(fp) != 0 || !ok || rename(tmp, path) != 0)
		goto fail;
	return syncfs(j->gfd) == 0 ? DM_OK : DM_TEMPFAIL;
fail:
	dm_err("report: %s: %s", path, strerror(errno));
	(void)unlink(tmp);
	return DM_TEMPFAIL;
}

/* A sent group's files go; its directory too once empty. */
static void
js_forget(const rpt_jsrc *j, const rpt_group *g)
{
	char path[JS_PATH], *slash;

	if (!js_gpath(j, g, ".g", path, sizeof(path)))
		return;
	(void)unlink(path);
	if (js_gpath(j, g, ".st", path, sizeof(path)))
		(void)unlink(path);
	if ((slash = strrchr(path, '/')) != NULL) {
		*slash = '\0';
		(void)rmdir(path);
	}
}

static dm_status
js_claim(void *h, const rpt_group *g, const char *owner, int64_t now,
    long lease_ms, rpt_claim *c)
{
	rpt_jsrc *j = h;
	struct js_state s;
	char path[JS_PATH];
	dm_status st;

	if (!js_gpath(j, g, ".st", path, sizeof(path)))
		return DM_PERMFAIL;
	if ((st = js_state_read(path, &s)) == DM_TEMPFAIL)
		return st;
	if (s.sent) {		/* a crash after "sent": finish forgetting */
		js_forget(j, g);
		return DM_NOTFOUND;
	}
	if (s.next > now)
		return DM_NOTFOUND;
	if (st == DM_NOTFOUND) {
		rpt_report_id(s.id, sizeof(s.id), g, now);
		if ((st = js_state_write(j, path, &s)) != DM_OK)
			return st;
	}
	strlcpy(c->report_id, s.id, sizeof(c->report_id));
	c->tries = s.tries;
	return DM_OK;
}

static dm_status
js_done(void *h, const rpt_group *g, const char *owner, const char *id,
    long sent_ttl)
{
	rpt_jsrc *j = h;
	struct js_state s;
	char path[JS_PATH];
	dm_status st;

	if (!js_gpath(j, g, ".st", path, sizeof(path)))
		return DM_PERMFAIL;
	(void)js_state_read(path, &s);
	strlcpy(s.id, id, sizeof(s.id));
	s.sent = 1;
	if ((st = js_state_write(j, path, &s)) != DM_OK)
		return st;
	rpt_killpoint("done-marked");
	js_forget(j, g);
	return DM_OK;
}

static dm_status
js_failed(void *h, const rpt_group *g, const char *owner, int64_t now,
    long backoff_sec)
{
	rpt_jsrc *j = h;
	struct js_state s;
	char path[JS_PATH];

	if (!js_gpath(j, g, ".st", path, sizeof(path)))
		return DM_PERMFAIL;
	(void)js_state_read(path, &s);
	s.tries++;
	s.next = now + backoff_sec;
	return js_state_write(j, path, &s);
}

/* The run lock is the claim: it lasts as long as the run. */
static dm_status
js_renew(void *h, const rpt_group *g, const char *owner, long lease_ms)
{
	return DM_OK;
}

static dm_status
js_release(void *h, const rpt_group *g, const char *owner)
{
	return DM_OK;
}

/* ---- reading a group ------------------------------------------------------ */

struct js_rows {
	rpt_rowc *v;
	size_t n, cap;
	char *policy;
	char **seen;		/* segments already counted */
	size_t nseen, bad;
	struct js_fps *fps;	/* NULL, or where the F lines go */
};

/* Was this segment counted already? If not, it is now. */
static bool
js_seen(struct js_rows *r, const char *seg, size_t len)
{
	char **nv;
	size_t i;

	for (i = 0; i < r->nseen; i++)
		if (strlen(r->seen[i]) == len &&
		    memcmp(r->seen[i], seg, len) == 0)
			return true;
	if ((nv = realloc(r->seen, (r->nseen + 1) * sizeof(*nv))) == NULL ||
	    (nv[r->nseen] = strndup(seg, len)) == NULL)
		dm_log_oom();
	r->seen = nv;
	r->nseen++;
	return false;
}

static void
js_row_add(struct js_rows *r, const char *row, size_t len, uint64_t count)
{
	rpt_rowc *nv;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		if ((nv = realloc(r->v, r->cap * sizeof(*nv))) == NULL)
			dm_log_oom();
		r->v = nv;
	}
	if ((r->v[r->n].row = strndup(row, len)) == NULL)
		dm_log_oom();
	r->v[r->n++].count = count;
}

/* The body of one good chunk: its policy and rows. */
static void
js_body(struct js_rows *r, const char *p, const char *end)
{
	const char *nl, *sp;
	char *e;
	uint64_t c;

	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (p[0] == 'P' && p[1] == ' ' && r->policy == NULL) {
			if ((r->policy = strndup(p + 2, (size_t)(nl - p - 2)))
			    == NULL)
				dm_log_oom();
		} else if (p[0] == 'F' && p[1] == ' ' && r->fps != NULL &&
		    nl - p - 2 == DM_FP_LEN) {
			char fp[DM_FP_LEN + 1];

			memcpy(fp, p + 2, DM_FP_LEN);
			fp[DM_FP_LEN] = '\0';
			(void)js_fps_add(r->fps, fp);
		} else if (p[0] == 'R' && p[1] == ' ') {
			c = strtoull(p + 2, &e, 10);
			sp = e;
			if (sp < nl && *sp == ' ')
				js_row_add(r, sp + 1, (size_t)(nl - sp - 1), c);
		}
	}
}

/*
 * One chunk at p (a line starting "@ "): the offset after it when good
 * (counted unless its segment was), 0 when it is not a good chunk.
 */
static size_t
js_chunk_read(struct js_rows *r, const char *p, size_t len)
{
	const char *nl = memchr(p, '\n', len), *body;
	char seg[256];
	size_t lines, blen, i, cnt = 0;
	unsigned long crc;

	if (nl == NULL || sscanf(p, "@ %255s %zu %lx %zu", seg, &lines, &crc,
	    &blen) != 4)
		return 0;
	body = nl + 1;
	if (blen == 0 || blen > len - (size_t)(body - p) ||
	    body[blen - 1] != '\n' ||
	    crc32(0L, (const Bytef *)body, (uInt)blen) != crc)
		return 0;
	for (i = 0; i < blen; i++)
		cnt += body[i] == '\n';
	if (cnt != lines)
		return 0;
	if (!js_seen(r, seg, strlen(seg)))
		js_body(r, body, body + blen);
	return (size_t)(body - p) + blen;
}

static void
js_parse(struct js_rows *r, const char *p, size_t len)
{
	size_t off = 0, used;
	const char *nl;

	while (off < len) {
		if (len - off > 2 && p[off] == '@' && p[off + 1] == ' ' &&
		    (used = js_chunk_read(r, p + off, len - off)) > 0) {
			off += used;
			continue;
		}
		r->bad++;	/* a torn or damaged line: skip it */
		nl = memchr(p + off, '\n', len - off);
		off = nl ? (size_t)(nl - p) + 1 : len;
	}
}

static int
js_cmp_row(const void *pa, const void *pb)
{
	return strcmp(((const rpt_rowc *)pa)->row,
	    ((const rpt_rowc *)pb)->row);
}

/* Equal rows (from several chunks) become one, counts summed. */
static void
js_merge(struct js_rows *r)
{
	size_t i, o = 0;

	if (r->n > 1)
		qsort(r->v, r->n, sizeof(*r->v), js_cmp_row);
	for (i = 0; i < r->n; i++) {
		if (o > 0 && strcmp(r->v[o - 1].row, r->v[i].row) == 0) {
			r->v[o - 1].count += r->v[i].count;
			free(r->v[i].row);
		} else
			r->v[o++] = r->v[i];
	}
	r->n = o;
}

static char *
js_slurp(const char *path, size_t *len)
{
	struct stat sb;
	char *p = NULL;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	if (fstat(fd, &sb) == 0 && (p = malloc((size_t)sb.st_size + 1)) !=
	    NULL && read(fd, p, (size_t)sb.st_size) != sb.st_size) {
		free(p);
		p = NULL;
	}
	if (p != NULL)
		*len = (size_t)sb.st_size;
	close(fd);
	return p;
}

/* A list of segment names and its strings. */
static void
js_seen_free(char **seen, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(seen[i]);
	free(seen);
}

static void
js_rows_free(struct js_rows *r)
{
	js_seen_free(r->seen, r->nseen);
	r->seen = NULL;
	r->nseen = 0;
}

/* Was seg folded into the group? With add, it is now. */
static bool
js_cache_seen(struct js_gcache *g, const char *seg, bool add)
{
	char **nv;
	size_t i;

	for (i = 0; i < g->nseen; i++)
		if (strcmp(g->seen[i], seg) == 0)
			return true;
	if (!add)
		return false;
	if ((nv = realloc(g->seen, (g->nseen + 1) * sizeof(*nv))) == NULL ||
	    (nv[g->nseen] = strdup(seg)) == NULL)
		dm_log_oom();
	g->seen = nv;
	g->nseen++;
	return false;
}

/*
 * The group file at path as the fold needs it, read at its first use in
 * this fold run (a missing file: no fingerprint, no segment).
 */
static struct js_gcache *
js_cache_get(rpt_jsrc *j, const char *path)
{
	struct js_rows r = { 0 };
	struct js_gcache *g, *nv;
	size_t len = 0, i;
	char *buf;

	for (i = 0; i < j->ncache; i++)
		if (strcmp(j->cache[i].path, path) == 0)
			return &j->cache[i];
	if ((nv = realloc(j->cache, (j->ncache + 1) * sizeof(*nv))) == NULL)
		dm_log_oom();
	j->cache = nv;
	g = &j->cache[j->ncache++];
	memset(g, 0, sizeof(*g));
	strlcpy(g->path, path, sizeof(g->path));
	if ((buf = js_slurp(path, &len)) == NULL)
		return g;
	r.fps = &g->fps;
	js_parse(&r, buf, len);
	free(buf);
	g->seen = r.seen;
	g->nseen = r.nseen;
	rpt_src_rows_free(r.v, r.n);
	free(r.policy);
	return g;
}

static void
js_cache_free(struct js_gcache *g)
{
	js_seen_free(g->seen, g->nseen);
	free(g->fps.v);
}

/* Drop one entry: it is read again from its file when next needed. */
static void
js_cache_forget(rpt_jsrc *j, struct js_gcache *g)
{
	js_cache_free(g);
	*g = j->cache[--j->ncache];
}

static void
js_cache_clear(rpt_jsrc *j)
{
	size_t i;

	for (i = 0; i < j->ncache; i++)
		js_cache_free(&j->cache[i]);
	free(j->cache);
	j->cache = NULL;
	j->ncache = 0;
}

static dm_status
js_read(void *h, const rpt_group *g, char **policy, rpt_rowc **rows,
    size_t *n)
{
	rpt_jsrc *j = h;
	struct js_rows r = { 0 };
	char path[JS_PATH], *buf;
	size_t len = 0;

	if (!js_gpath(j, g, ".g", path, sizeof(path)))
		return DM_PERMFAIL;
	if ((buf = js_slurp(path, &len)) == NULL) {
		dm_err("report: %s: %s", path, strerror(errno));
		return errno == ENOENT ? DM_NOTFOUND : DM_TEMPFAIL;
	}
	js_parse(&r, buf, len);
	free(buf);
	if (r.bad > 0)
		dm_warn("report: %s: %zu damaged lines skipped", path, r.bad);
	js_rows_free(&r);
	if (r.policy == NULL) {
		rpt_src_rows_free(r.v, r.n);
		return DM_NOTFOUND;
	}
	js_merge(&r);
	*policy = r.policy;
	*rows = r.v;
	*n = r.n;
	return DM_OK;
}

void
rpt_jsrc_source(rpt_jsrc *j, rpt_source *out)
{
	out->h = j;
	out->list = js_list;
	out->claim = js_claim;
	out->read = js_read;
	out->done = js_done;
	out->failed = js_failed;
	out->renew = js_renew;
	out->release = js_release;
}
