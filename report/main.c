/*
 * report/main.c - dmarc-report(8): mails the aggregate reports of every
 * closed period, once.
 *
 * The store is Redis (RedisURL) or, without it, the milter's journal in
 * StateDir, folded first (rptjsrc.h). Per group: claim -> read the rows
 * -> verify the rua destinations (dm_rua_verify) -> XML (rptxml) ->
 * gzip and mail (rptmail) -> sendmail (rptsend) or SMTPRelay (rptrelay)
 * -> done, or failed with a backoff until the data's retention ends.
 * --dry-run claims nothing and writes the .xml.gz and .eml into a
 * directory instead of sending.
 *
 * Usage: dmarc-report [-c FILE] [--dry-run DIR] [--day YYYY-MM-DD]
 *        [--domain D] [--format rfc7489|rfc9990] [-v]
 * Exit: 0 when every report due was sent (or written); 1 when one could
 * not be built or sent; 2 on bad usage or configuration.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "dm_hex.h"
#include "dm_config.h"
#include "dm_log.h"
#include "dm_orgdomain.h"
#include "dm_record.h"
#include "dm_redis.h"
#include "dm_resolver.h"
#include "dm_row.h"
#include "dm_ruaverify.h"
#include "rptdest.h"
#include "rptjsrc.h"
#include "rptkill.h"
#include "rptmetrics.h"
#include "rptmail.h"
#include "rptrelay.h"
#include "rptsend.h"
#include "rptsrc.h"
#include "rptxml.h"

#define REPORT_LEASE_MS		(10 * 60 * 1000)
#define REPORT_SEND_TIMEOUT	300
#define REPORT_BACKOFF_MAX	86400
/*
 * A period is reported this long after it ended: its last counts may
 * still wait in a journal segment the milter has not closed yet
 * (STORE_ROTATE_MS) or in its Redis writer's queue. A count that comes
 * later still (a spool replayed after a Redis outage) goes out in a
 * report of its own for the same period, with its own report id: late,
 * but neither lost nor counted twice.
 */
#define REPORT_GRACE		120
/* attempts before a report goes to the destinations that could be
 * verified, without those whose verification kept failing (DNS) */
#define REPORT_DNS_TRIES	3
/* destinations of one report: ruaverify gives at most DM_RUA_MAX */
#define REPORT_DEST_MAX		16
_Static_assert(DM_RUA_MAX <= REPORT_DEST_MAX, "REPORT_DEST_MAX too small");

struct args {
	const char *conf, *dry_dir, *domain, *format, *metrics_file;
	int64_t day;		/* -1: every closed period */
	bool verbose;
};

/* What one run needs, built once. */
struct run {
	const struct args *a;
	const dm_config *cfg;
	rpt_source src;
	dm_redis *redis;
	rpt_jsrc *js;
	rpt_dests *dests;
	dm_resolver *resolver;
	dm_org *org;
	rpt_relay relay;
	bool use_relay;
	char relay_pw[512];
	const char *from;
	char owner[128], submitter[256], org_name[256];
	enum rpt_format format;
	int64_t now, grace;
	unsigned sent, retried, skipped, dropped, errors;
	rpt_figures fig;	/* built, bytes, refusals (--metrics-file) */
};

/* What became of one group's report. */
enum rg_result {
	RG_SENT,	/* handed over (or written, in a dry run) */
	RG_NOTHING,	/* nothing can ever be sent: done without a report */
	RG_RETRY,	/* not now: the data stays, tried after a backoff */
	RG_LOST		/* the lease went to another run: its business now */
};

/* One group's report while it is built. */
struct report {
	const rpt_group *g;
	const char *id;
	char *policy;
	rpt_rowc *rows;
	size_t n;
	dm_rua_dest *d;
	size_t nd;
	size_t nsuppressed;	/* left out: they kept failing */
	long tries;		/* failed attempts before this one */
	unsigned char *gz;
	size_t gzlen;
	uint64_t size;		/* as transported: base64 with line ends */
	char fname[512];
};

static int
usage(void)
{
	fputs("usage: dmarc-report [-c FILE] [--dry-run DIR] "
	    "[--day YYYY-MM-DD] [--domain D]\n"
	    "                    [--format rfc7489|rfc9990] "
	    "[--metrics-file FILE] [-v]\n", stderr);
	return 2;
}

static bool
parse_day(const char *s, int64_t *out)
{
	struct tm tm;
	char *end;

	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL || *end != '\0')
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}

static int
parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "dry-run", required_argument, NULL, 'D' },
		{ "day", required_argument, NULL, 'd' },
		{ "domain", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'F' },
		{ "metrics-file", required_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	a->conf = "/etc/dmarc-milter.conf";	/* as dmarc-milter's */
	a->day = -1;
	while ((c = getopt_long(argc, argv, "c:v", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->conf = optarg; break;
		case 'D': a->dry_dir = optarg; break;
		case 'o': a->domain = optarg; break;
		case 'F': a->format = optarg; break;
		case 'M': a->metrics_file = optarg; break;
		case 'v': a->verbose = true; break;
		case 'd':
			if (!parse_day(optarg, &a->day))
				return -1;
			break;
		default: return -1;
		}
	}
	if (a->format != NULL && strcmp(a->format, "rfc7489") != 0 &&
	    strcmp(a->format, "rfc9990") != 0)
		return -1;
	return optind == argc ? 0 : -1;
}

/* Is the domain in NoReportDomains? */
static bool
no_report(const struct run *r, const char *domain)
{
	const char *l = dm_config_str(r->cfg, DM_OPT_NO_REPORT_DOMAINS);
	size_t n, dl = strlen(domain);

	for (; l != NULL && *l != '\0'; l += n) {
		l += strspn(l, " ,\t");
		n = strcspn(l, " ,\t");
		if (n == dl && strncasecmp(l, domain, n) == 0)
			return true;
	}
	return false;
}

/* ---- destinations --------------------------------------------------------- */

/* The rua= of a canonical policy text, as a URI list. */
static dm_status
policy_rua(const char *policy, dm_urilist *out)
{
	char raw[4096], plain[4096];

	memset(out, 0, sizeof(*out));
	if (!dm_row_get(policy, "rua", raw, sizeof(raw)) ||
	    !dm_hex_decode(raw, strlen(raw), plain, sizeof(plain)))
		return DM_PERMFAIL;
	return dm_urilist_parse(plain, strlen(plain), out);
}

/* Leave out the destinations that keep failing. */
static void
drop_suppressed(struct run *r, struct report *rp)
{
	size_t i, o = 0;
	int64_t until;

	for (i = 0; i < rp->nd; i++) {
		if (rpt_dests_suppressed(r->dests, rp->d[i].addr, r->now,
		    &until)) {
			dm_log(DM_LOG_NOTICE, "report %s for %s: %s left out "
			    "until %lld (it kept failing)", rp->id,
			    rp->g->domain, rp->d[i].addr, (long long)until);
			rp->nsuppressed++;
			continue;
		}
		rp->d[o++] = rp->d[i];
	}
	rp->nd = o;
}

/* The verified addresses of the group's rua; -1: retry later. */
static int
destinations(struct run *r, struct report *rp)
{
	dm_rua_skip *skips = NULL;
	dm_urilist rua;
	size_t ns = 0, i;
	dm_status st;

	if (policy_rua(rp->policy, &rua) != DM_OK) {
		dm_err("report for %s: no readable rua in its policy",
		    rp->g->domain);
		return -1;
	}
	st = dm_rua_verify(r->resolver, r->org, rp->g->domain, &rua, &rp->d,
	    &rp->nd, &skips, &ns);
	for (i = 0; i < ns; i++)
		dm_log(DM_LOG_NOTICE, "report for %s: %s skipped: %s",
		    rp->g->domain, skips[i].uri, skips[i].why);
	free(skips);
	dm_urilist_clear(&rua);
	/*
	 * A destination whose check keeps failing must not hold back the
	 * report from the verified ones for ever: after a few attempts
	 * they get it without it.
	 */
	if (st == DM_TEMPFAIL && (rp->nd == 0 ||
	    rp->tries + 1 < REPORT_DNS_TRIES)) {
		dm_err("report for %s: its destinations cannot be verified "
		    "now (DNS); retried later", rp->g->domain);
		return -1;
	}
	if (st == DM_TEMPFAIL)
		dm_log(DM_LOG_NOTICE, "report for %s: goes to the %zu verified "
		    "destinations; the others could not be verified (DNS) in "
		    "%ld attempts", rp->g->domain, rp->nd, rp->tries + 1);
	else if (st != DM_OK) {
		dm_err("report for %s: its rua cannot be checked",
		    rp->g->domain);
		return -1;
	}
	drop_suppressed(r, rp);
	return 0;
}

/* ---- building --------------------------------------------------------------- */

/* The XML, gzip'ed, its attachment name and transported size. */
static int
build_report(struct run *r, struct report *rp)
{
	rpt_meta m = { 0 };
	rpt_mail mail = { 0 };
	char *xml = NULL, err[512];
	size_t xmllen;
	int rc = -1;

	m.org_name = r->org_name;
	m.email = dm_config_str(r->cfg, DM_OPT_REPORT_EMAIL);
	m.extra_contact = dm_config_str(r->cfg, DM_OPT_REPORT_CONTACT_INFO);
	m.report_id = rp->id;
	m.generator = "dmarc-milter " PACKAGE_VERSION;
	m.begin = rp->g->begin;
	m.end = rp->g->end;
	m.domain = rp->g->domain;
	m.policy = rp->policy;
	m.format = r->format;
	/* rpt_rowc and rpt_row have the same members */
	if (rpt_xml_write(&m, (const rpt_row *)(const void *)rp->rows, rp->n,
	    &xml, &xmllen, NULL, err, sizeof(err)) != 0) {
		dm_err("report %s for %s: %s", rp->id, rp->g->domain, err);
		return -1;
	}
	mail.submitter = r->submitter;
	mail.domain = rp->g->domain;
	mail.report_id = rp->id;
	mail.begin = rp->g->begin;
	mail.end = rp->g->end;
	if (rpt_mail_filename(&mail, rp->fname, sizeof(rp->fname)) != 0 ||
	    rpt_gzip(xml, xmllen, rp->fname, &rp->gz, &rp->gzlen) != 0)
		dm_err("report %s for %s: cannot be compressed: %s", rp->id,
		    rp->g->domain, strerror(errno));
	else
		rc = 0;
	rp->size = rpt_mail_b64_size(rp->gzlen);
	free(xml);
	return rc;
}

static void
mail_init(struct run *r, const struct report *rp, rpt_mail *m)
{
	memset(m, 0, sizeof(*m));
	m->from = r->from;
	m->submitter = r->submitter;
	m->domain = rp->g->domain;
	m->report_id = rp->id;
	m->begin = rp->g->begin;
	m->end = rp->g->end;
	m->date = r->now;
	m->message_id_domain = r->submitter;
	m->gz = rp->gz;
	m->gzlen = rp->gzlen;
}

/*
 * The mail to send: the report to the destinations it fits (RFC 7489
 * 7.1: a URI whose limit the report exceeds must not be used), or, when
 * it fits none, the 7.2.2 error report to all of them.
 */
static int
build_mail(struct run *r, struct report *rp, const char **to, size_t *nto,
    char **eml, size_t *emllen)
{
	const char *uris[REPORT_DEST_MAX];
	char ubuf[REPORT_DEST_MAX][560];
	rpt_mail m;
	size_t i;

	mail_init(r, rp, &m);
	for (*nto = 0, i = 0; i < rp->nd && i < REPORT_DEST_MAX; i++)
		if (rp->d[i].max_size == 0 || rp->d[i].max_size >= rp->size)
			to[(*nto)++] = rp->d[i].addr;
		else
			dm_log(DM_LOG_NOTICE, "report %s for %s: %s skipped: "
			    "its limit %llu is below the report's %llu bytes",
			    rp->id, rp->g->domain, rp->d[i].addr,
			    (unsigned long long)rp->d[i].max_size,
			    (unsigned long long)rp->size);
	m.to = to;
	m.nto = *nto;
	if (*nto > 0)
		return rpt_mail_build(&m, eml, emllen);
	for (i = 0; i < rp->nd && i < REPORT_DEST_MAX; i++) {
		to[i] = rp->d[i].addr;
		snprintf(ubuf[i], sizeof(ubuf[i]), "mailto:%s!%llu",
		    rp->d[i].addr, (unsigned long long)rp->d[i].max_size);
		uris[i] = ubuf[i];
	}
	*nto = m.nto = i;
	dm_log(DM_LOG_NOTICE, "report %s for %s: fits no destination: the "
	    "error report (RFC 7489 7.2.2) goes instead", rp->id,
	    rp->g->domain);
	return rpt_mail_error_build(&m, rp->size, uris, i, eml, emllen);
}

/* ---- sending ---------------------------------------------------------------- */

static int
write_file(const char *dir, const char *name, const void *p, size_t len)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL ||
	    fwrite(p, 1, len, fp) != len || fclose(fp) != 0) {
		dm_err("dry run: %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* --dry-run: the .xml.gz and the .eml side by side. */
static int
dry_write(const struct run *r, const struct report *rp, const char *eml,
    size_t emllen)
{
	char name[1024];
	size_t n = strlen(rp->fname);

	snprintf(name, sizeof(name), "%.*s.eml", (int)(n > 7 ? n - 7 : n),
	    rp->fname);
	if (write_file(r->a->dry_dir, rp->fname, rp->gz, rp->gzlen) != 0 ||
	    write_file(r->a->dry_dir, name, eml, emllen) != 0)
		return -1;
	return 0;
}

/* One hand-over: DM_OK, DM_TEMPFAIL, or DM_PERMFAIL (relay only). */
static dm_status
send_once(struct run *r, const struct report *rp, const char *const *to,
    size_t nto, const char *eml, size_t emllen)
{
	char err[1024] = "";
	size_t i;
	dm_status rc;

	if (r->use_relay)
		rc = rpt_send_relay(&r->relay, r->from, to, nto, eml, emllen,
		    REPORT_SEND_TIMEOUT, err, sizeof(err));
	else
		rc = rpt_send_sendmail(dm_config_str(r->cfg,
		    DM_OPT_SENDMAIL_PATH), r->from, to, nto, eml, emllen,
		    REPORT_SEND_TIMEOUT, err, sizeof(err)) == DM_OK ? DM_OK :
		    DM_TEMPFAIL;
	if (rc != DM_OK)
		dm_err("report %s for %s: not sent to %s%s: %s", rp->id,
		    rp->g->domain, to[0], nto > 1 ? " and others" : "", err);
	/*
	 * Only a relay's refusal of one address is about that destination.
	 * A local MTA or a relay that fails, fails for everyone: counting
	 * that against the destinations would suppress them all and drop
	 * reports during an outage of our own.
	 */
	for (i = 0; i < nto; i++)
		if (rc == DM_OK || (r->use_relay && rc == DM_PERMFAIL &&
		    nto == 1))
			rpt_dests_result(r->dests, to[i], rc == DM_OK, r->now);
	if (r->use_relay && rc == DM_PERMFAIL && nto == 1)
		rpt_figures_refused(&r->fig, to[0]);
	return rc;
}

/*
 * The lease runs its full length again before each hand-over, which
 * takes at most REPORT_SEND_TIMEOUT: a slow relay never lets it expire
 * while we send. False when another run holds the group now.
 */
static bool
lease_kept(struct run *r, const struct report *rp)
{
	if (r->src.renew(r->src.h, rp->g, r->owner, REPORT_LEASE_MS) == DM_OK)
		return true;
	dm_err("report %s for %s: its claim was lost (held too long); left "
	    "to the run that holds it now", rp->id, rp->g->domain);
	return false;
}

/*
 * To the MTA or the relay. A relay's permanent refusal of a mail to
 * several addresses delivered it to none of them: then each address is
 * tried alone, so that one refusing rua does not hold back the others
 * (and is counted towards its suppression).
 */
static enum rg_result
send_mail(struct run *r, const struct report *rp, const char *const *to,
    size_t nto, const char *eml, size_t emllen)
{
	size_t i, took = 0;
	dm_status rc;

	if (!lease_kept(r, rp))
		return RG_LOST;
	rc = send_once(r, rp, to, nto, eml, emllen);
	if (rc != DM_PERMFAIL || nto < 2)
		return rc == DM_OK ? RG_SENT : RG_RETRY;
	for (i = 0; i < nto; i++) {
		if (!lease_kept(r, rp))
			return took > 0 ? RG_SENT : RG_LOST;
		if (send_once(r, rp, &to[i], 1, eml, emllen) == DM_OK)
			took++;
	}
	return took > 0 ? RG_SENT : RG_RETRY;
}

static void
report_free(struct report *rp)
{
	free(rp->policy);
	rpt_src_rows_free(rp->rows, rp->n);
	free(rp->d);
	free(rp->gz);
}

/* Nobody to send it to: for now (all suppressed) or for good. */
static enum rg_result
no_destination(const struct report *rp)
{
	if (rp->nsuppressed > 0) {
		dm_log(DM_LOG_NOTICE, "report %s for %s: every destination is "
		    "left out for now; retried later", rp->id, rp->g->domain);
		return RG_RETRY;
	}
	dm_log(DM_LOG_NOTICE, "report %s for %s: no destination left",
	    rp->id, rp->g->domain);
	return RG_NOTHING;
}

/* Build and hand over (or, in a dry run, write) one group's report. */
static enum rg_result
report_group(struct run *r, const rpt_group *g, const char *report_id,
    long tries)
{
	struct report rp = { .g = g, .id = report_id, .tries = tries };
	const char *to[REPORT_DEST_MAX];
	char *eml = NULL;
	size_t nto = 0, emllen = 0;
	dm_status st;
	enum rg_result rc = RG_RETRY;

	st = r->src.read(r->src.h, g, &rp.policy, &rp.rows, &rp.n);
	if (st == DM_NOTFOUND) {
		dm_log(DM_LOG_NOTICE, "report %s for %s: its counts are gone "
		    "(past their retention): nothing to send", report_id,
		    g->domain);
		rc = RG_NOTHING;
		goto done;
	}
	if (st != DM_OK || destinations(r, &rp) != 0)
		goto done;
	if (rp.nd == 0) {
		rc = no_destination(&rp);
		goto done;
	}
	if (build_report(r, &rp) != 0 || build_mail(r, &rp, to, &nto, &eml,
	    &emllen) != 0)
		goto done;
	rpt_killpoint("built");
	r->fig.built++;
	if (r->a->dry_dir != NULL)
		rc = dry_write(r, &rp, eml, emllen) == 0 ? RG_SENT : RG_RETRY;
	else
		rc = send_mail(r, &rp, to, nto, eml, emllen);
	if (rc == RG_SENT)
		r->fig.bytes += emllen;
	if (rc == RG_SENT && r->a->verbose)
		dm_log(DM_LOG_INFO, "report %s for %s: %zu rows, %zu bytes, "
		    "to %zu destinations", report_id, g->domain, rp.n, emllen,
		    nto);
done:
	free(eml);
	report_free(&rp);
	return rc;
}

/* ---- one group's life ------------------------------------------------------ */

static long
backoff(long tries)
{
	long b = 3600;

	while (tries-- > 0 && b < REPORT_BACKOFF_MAX)
		b *= 2;
	return b < REPORT_BACKOFF_MAX ? b : REPORT_BACKOFF_MAX;
}

/* Its data is kept RedisTTL after the period (Redis expires it then). */
static bool
retention_over(const struct run *r, const rpt_group *g, long wait)
{
	return r->now + wait >= g->end + dm_config_int(r->cfg,
	    DM_OPT_REDIS_TTL);
}

static void
dry_group(struct run *r, const rpt_group *g)
{
	char id[96];

	snprintf(id, sizeof(id), "b%lldp%sdry", (long long)g->begin,
	    g->polid);
	switch (report_group(r, g, id, 0)) {
	case RG_SENT: r->sent++; break;
	case RG_NOTHING: r->dropped++; break;
	default: r->errors++; break;
	}
}

/* Done: the data goes; the lease must still have been ours. */
static void
mark_done(struct run *r, const rpt_group *g, const char *id, long ttl)
{
	if (r->src.done(r->src.h, g, r->owner, id, ttl) != DM_OK)
		dm_err("report %s for %s: its claim was lost before it was "
		    "marked sent; it may go again, with the same report id",
		    id, g->domain);
}

/* Not sent: try again after a backoff, or give up when the data goes. */
static void
group_failed(struct run *r, const rpt_group *g, const rpt_claim *c)
{
	long b = backoff(c->tries);

	if (retention_over(r, g, b)) {
		dm_err("report %s for %s: given up after %ld attempts: its "
		    "data's retention ends before the next one", c->report_id,
		    g->domain, c->tries + 1);
		(void)r->src.done(r->src.h, g, r->owner, "given-up",
		    dm_config_int(r->cfg, DM_OPT_REDIS_TTL));
		r->errors++;
		return;
	}
	(void)r->src.failed(r->src.h, g, r->owner, r->now, b);
	r->retried++;
}

/* Claim, report, then done or failed. */
static void
one_group(struct run *r, const rpt_group *g)
{
	long ttl = dm_config_int(r->cfg, DM_OPT_REDIS_TTL);
	rpt_claim c;

	if (r->a->dry_dir != NULL) {
		if (no_report(r, g->domain))
			r->dropped++;
		else
			dry_group(r, g);
		return;
	}
	if (r->src.claim(r->src.h, g, r->owner, r->now, REPORT_LEASE_MS, &c)
	    != DM_OK) {
		r->skipped++;	/* another generator, or backing off */
		return;
	}
	rpt_killpoint("claimed");
	if (no_report(r, g->domain)) {
		mark_done(r, g, "no-report", ttl);
		r->dropped++;
		return;
	}
	switch (report_group(r, g, c.report_id, c.tries)) {
	case RG_SENT:
		rpt_killpoint("sent");
		mark_done(r, g, c.report_id, ttl);
		r->sent++;
		break;
	case RG_NOTHING:
		mark_done(r, g, "nothing-to-send", ttl);
		r->dropped++;
		break;
	case RG_RETRY:
		group_failed(r, g, &c);
		break;
	case RG_LOST:
		r->skipped++;
		break;
	}
}

static bool
in_scope(const struct run *r, const rpt_group *g)
{
	return r->a->day < 0 || (g->begin >= r->a->day &&
	    g->begin < r->a->day + 86400);
}

static int
run_all(struct run *r)
{
	rpt_group *g = NULL;
	size_t n = 0, i;
	int64_t upto = r->a->day >= 0 ? r->a->day + 86400 : r->now - r->grace;

	if (r->src.list(r->src.h, upto, r->a->domain, &g, &n) != DM_OK) {
		dm_err("report: the counters cannot be read");
		return 1;
	}
	for (i = 0; i < n; i++)
		if (in_scope(r, &g[i]))
			one_group(r, &g[i]);
	free(g);
	if (r->a->dry_dir == NULL)
		(void)rpt_dests_save(r->dests);
	dm_log(DM_LOG_NOTICE, "%s: %u reports %s, %u to be retried, %u "
	    "failed, %u skipped (held elsewhere or backing off), %u dropped "
	    "(NoReportDomains or nothing to send)",
	    r->a->dry_dir ? "dry run" : "run", r->sent,
	    r->a->dry_dir ? "written" : "sent", r->retried, r->errors,
	    r->skipped, r->dropped);
	return r->retried + r->errors > 0 ? 1 : 0;
}

/* ---- set-up ------------------------------------------------------------------ */

/* SMTPRelay's settings; the password comes from its own file. */
static int
setup_relay(struct run *r, char *err, size_t errlen)
{
	const dm_config *c = r->cfg;
	const char *pwf = dm_config_str(c, DM_OPT_SMTP_RELAY_PASSWORD_FILE);
	FILE *fp;

	rpt_relay_defaults(&r->relay);
	r->relay.hostport = dm_config_str(c, DM_OPT_SMTP_RELAY);
	if ((r->use_relay = r->relay.hostport != NULL) == false)
		return 0;
	if (rpt_relay_global_init() != 0) {
		snprintf(err, errlen, "libcurl cannot be initialised");
		return 2;
	}
	r->relay.tls = dm_config_int(c, DM_OPT_SMTP_RELAY_TLS) ==
	    DM_RELAY_SMTPS ? RPT_TLS_SMTPS : dm_config_int(c,
	    DM_OPT_SMTP_RELAY_TLS) == DM_RELAY_NONE ? RPT_TLS_NONE :
	    RPT_TLS_STARTTLS;
	r->relay.user = dm_config_str(c, DM_OPT_SMTP_RELAY_USER);
	r->relay.ca_file = dm_config_str(c, DM_OPT_SMTP_RELAY_CA_FILE);
	if (r->relay.user == NULL)
		return 0;
	if (pwf == NULL || (fp = fopen(pwf, "re")) == NULL) {
		snprintf(err, errlen, "SMTPRelayUser needs a readable "
		    "SMTPRelayPasswordFile%s%s", pwf ? ": " : "",
		    pwf ? strerror(errno) : "");
		return 2;
	}
	if (fgets(r->relay_pw, sizeof(r->relay_pw), fp) != NULL)
		r->relay_pw[strcspn(r->relay_pw, "\r\n")] = '\0';
	fclose(fp);
	r->relay.password = r->relay_pw;
	return 0;
}

/* Redis, or the journal folded into group files. */
static int
setup_store(struct run *r, char *err, size_t errlen)
{
	const dm_config *c = r->cfg;
	size_t nseg = 0, nrec = 0;
	dm_status st;

	if (dm_config_str(c, DM_OPT_REDIS_URL) != NULL) {
		if ((r->redis = dm_redis_new(dm_config_str(c,
		    DM_OPT_REDIS_URL), dm_config_str(c,
		    DM_OPT_REDIS_KEY_PREFIX), (int)dm_config_int(c,
		    DM_OPT_REDIS_TIMEOUT), 0, err, errlen)) == NULL)
			return 2;
		rpt_src_redis(r->redis, &r->src);
		return 0;
	}
	st = rpt_jsrc_open(dm_config_str(c, DM_OPT_STATE_DIR), &r->js, err,
	    errlen);
	if (st == DM_NOTFOUND)
		return 3;	/* another run is at it: nothing to do */
	if (st != DM_OK)
		return 2;
	if (rpt_jsrc_fold(r->js, &nseg, &nrec) != DM_OK)
		r->errors++;
	if (r->a->verbose)
		dm_log(DM_LOG_INFO, "journal: %zu segments, %zu counts folded",
		    nseg, nrec);
	rpt_jsrc_source(r->js, &r->src);
	return 0;
}

static void
setup_names(struct run *r, const char *email)
{
	char host[256] = "";

	strlcpy(r->submitter, strrchr(email, '@') + 1, sizeof(r->submitter));
	(void)gethostname(host, sizeof(host) - 1);
	strlcpy(r->org_name, dm_config_str(r->cfg, DM_OPT_REPORT_ORG_NAME) ?
	    dm_config_str(r->cfg, DM_OPT_REPORT_ORG_NAME) : host,
	    sizeof(r->org_name));
	snprintf(r->owner, sizeof(r->owner), "%s:%ld:%lld", host,
	    (long)getpid(), (long long)r->now);
	r->from = dm_config_str(r->cfg, DM_OPT_REPORT_FROM) ?
	    dm_config_str(r->cfg, DM_OPT_REPORT_FROM) : email;
}

/* Everything a run needs from the config; 2 on a problem. */
static int
setup(struct run *r, char *err, size_t errlen)
{
	const dm_config *c = r->cfg;
	const char *email = dm_config_str(c, DM_OPT_REPORT_EMAIL);
	char path[4200];
	int rc;

	if (email == NULL || strrchr(email, '@') == NULL) {
		snprintf(err, errlen, "ReportEmail is not set (an address)");
		return 2;
	}
	setup_names(r, email);
	r->format = (r->a->format != NULL ? strcmp(r->a->format, "rfc9990")
	    == 0 : dm_config_int(c, DM_OPT_REPORT_FORMAT) == 1) ?
	    RPT_RFC9990 : RPT_RFC7489;
	if ((rc = setup_relay(r, err, errlen)) != 0 ||
	    (rc = setup_store(r, err, errlen)) != 0)
		return rc;
	snprintf(path, sizeof(path), "%s/reports", dm_config_str(c,
	    DM_OPT_STATE_DIR));
	(void)mkdir(path, 0700);
	strlcat(path, "/destinations", sizeof(path));
	r->dests = rpt_dests_load(path);
	if ((r->resolver = dm_resolver_new(dm_config_str(c, DM_OPT_DNS_CONFIG),
	    (int)dm_config_int(c, DM_OPT_DNS_TIMEOUT) * 1000, err,
	    errlen)) == NULL)
		return 2;
	r->org = dm_org_new(dm_config_int(c, DM_OPT_ORG_DOMAIN_METHOD) == 1 ?
	    DM_ORG_PSL : DM_ORG_TREEWALK, r->resolver,
	    dm_config_str(c, DM_OPT_PSL_FILE), err, errlen);
	return r->org == NULL ? 2 : 0;
}

static void
teardown(struct run *r)
{
	dm_org_free(r->org);
	dm_resolver_free(r->resolver);
	rpt_dests_free(r->dests);
	rpt_jsrc_close(r->js);
	dm_redis_free(r->redis);
	explicit_bzero(r->relay_pw, sizeof(r->relay_pw));
}

/* --metrics-file: this run's figures; a failed run keeps the last
 * success the previous file recorded. */
static void
write_metrics(struct run *r, int rc)
{
	char err[1024];

	r->fig.sent = r->sent;
	r->fig.retried = r->retried;
	r->fig.failed = r->errors;
	r->fig.skipped = r->skipped;
	r->fig.dropped = r->dropped;
	r->fig.run_at = r->now;
	r->fig.last_success = rc == 0 ? r->now :
	    rpt_metrics_last_success(r->a->metrics_file);
	if (rpt_metrics_write(r->a->metrics_file, &r->fig, err,
	    sizeof(err)) != 0)
		dm_err("--metrics-file %s", err);
}

int
main(int argc, char **argv)
{
	struct args a = { 0 };
	struct run r = { 0 };
	dm_config *cfg = NULL;
	char err[1024] = "";
	int rc;

	if (parse_args(argc, argv, &a) != 0)
		return usage();
	dm_log_open("dmarc-report", NULL, DM_LOG_TO_STDERR);
	if (dm_config_load(a.conf, &cfg, err, sizeof(err)) != DM_OK) {
		dm_err("%s", err);
		return 2;
	}
	r.a = &a;
	r.cfg = cfg;
	r.now = (int64_t)time(NULL);
	r.grace = REPORT_GRACE;
	if ((rc = setup(&r, err, sizeof(err))) == 0)
		rc = run_all(&r);
	else if (rc != 3)
		dm_err("%s", err);
	/* 3: another run holds the journal; this one did nothing. */
	if (a.metrics_file != NULL && rc != 3)
		write_metrics(&r, rc);
	if (rc == 3) {
		dm_log(DM_LOG_NOTICE, "%s: nothing done", err);
		rc = 0;
	}
	rpt_figures_free(&r.fig);
	teardown(&r);
	dm_config_unref(cfg);
	return rc;
}
