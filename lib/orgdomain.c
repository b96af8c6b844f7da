/*
 * lib/orgdomain.c - Organizational Domain determination and DMARC policy
 * discovery, by the DNS Tree Walk (RFC 9989 4.10) or by the Public Suffix
 * List (RFC 7489 3.2 and 6.6.3).
 *
 * Every DNS lookup goes through dm_resolver, whose cache is what keeps
 * repeated walks (alignment checks ask for the same names again and again)
 * cheap: this module keeps no cache of its own. A dm_org is read-only
 * once made, so threads share one.
 *
 * Readings of the texts that are not spelled out word for word:
 * - A name holding a single DMARC record that dm_record_parse does not
 *   accept holds no "valid DMARC Policy Record"; the tree walk goes on
 *   past it (RFC 9989 4.10.1: "If no valid DMARC Policy Record is found
 *   by the first query, then perform a DNS Tree Walk"). In PSL mode it
 *   ends discovery instead (RFC 7489 6.6.3 steps 5 and 6).
 * - Several DMARC records at one name: the tree walk discards them all
 *   and goes on (RFC 9989 4.10 steps 2 and 6); PSL mode ends discovery
 *   with DM_NOTFOUND (RFC 7489 6.6.3 step 5: DMARC is not applied).
 * - Tree walk discovery applies the record of the Author Domain, else that
 *   of its Organizational Domain (4.10.2, which may lie above records met
 *   on the way: B.4.2 says the policy domain is "the highest element in
 *   the DNS tree with a DMARC Policy Record"), else that of its Public
 *   Suffix Domain (the psd=y record that ended the walk).
 * - A name that cannot be queried because "_dmarc." makes it longer than
 *   a DNS name may be holds no record.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/string.h>
#include <libpsl.h>

#include "dm_log.h"
#include "dm_orgdomain.h"

#define ORG_PREFIX	"_dmarc."
#define ORG_NAME_MAX	253	/* octets of a DNS name in text form */
#define ORG_LABEL_MAX	63
#define ORG_LABELS_MAX	127	/* 253 octets hold at most 127 labels */
#define ORG_SHORTCUT	8	/* RFC 9989 4.10: at most eight queries */

struct dm_org {
	dm_org_method method;
	dm_resolver *resolver;
	psl_ctx_t *psl;		/* PSL mode only */
};

/*
 * A domain cut into labels: name + off[i] is its suffix of n - i labels,
 * so every name of a walk is a pointer into the one string.
 */
struct org_labels {
	const char *name;
	size_t off[ORG_LABELS_MAX];
	size_t n;
};

/* A valid DMARC record met on a walk, at suffix idx. */
struct org_hit {
	size_t idx;
	dm_record *rec;
};

/* A walk queries at most ORG_SHORTCUT names, so it meets at most that. */
struct org_walk {
	struct org_hit hit[ORG_SHORTCUT];
	size_t n;
};

/* What one name holds: the fetch result beyond its status. */
struct org_fetch {
	dm_record *rec;		/* DM_OK: the one usable DMARC record */
	size_t ndmarc;		/* records that claim to be DMARC */
};

dm_org *
dm_org_new(dm_org_method m, dm_resolver *r, const char *psl_file,
    char *err, size_t errlen)
{
	dm_org *o;

	if (m != DM_ORG_TREEWALK && m != DM_ORG_PSL) {
		snprintf(err, errlen, "unknown organizational domain method %d",
		    (int)m);
		return NULL;
	}
	if (r == NULL) {
		snprintf(err, errlen, "organizational domain: no resolver");
		return NULL;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o->method = m;
	o->resolver = r;
	if (m == DM_ORG_PSL) {
		if (psl_file == NULL)
			psl_file = DM_PSL_FILE;
		/*
		 * No fallback to libpsl's built-in list: an operator who
		 * chose the PSL method wants the list the system keeps
		 * current, and a stale silent substitute would be worse.
		 */
		o->psl = psl_load_file(psl_file);
		if (o->psl == NULL || psl_suffix_count(o->psl) == 0) {
			snprintf(err, errlen,
			    "cannot load public suffix list %s", psl_file);
			dm_org_free(o);
			return NULL;
		}
	}
	return o;
}

void
dm_org_free(dm_org *o)
{
	if (o == NULL)
		return;
	if (o->psl != NULL)
		psl_free(o->psl);
	free(o);
}

dm_org_method
dm_org_get_method(const dm_org *o)
{
	return o->method;
}

void
dm_discovery_clear(dm_discovery *d)
{
	if (d == NULL)
		return;
	dm_record_free(d->record);
	memset(d, 0, sizeof(*d));
}

int
dm_org_method_from_name(const char *name)
{
	if (name == NULL)
		return -1;
	if (strcasecmp(name, "treewalk") == 0)
		return DM_ORG_TREEWALK;
	if (strcasecmp(name, "psl") == 0)
		return DM_ORG_PSL;
	return -1;
}

const char *
dm_org_method_str(dm_org_method m)
{
	switch (m) {
	case DM_ORG_TREEWALK:	return "treewalk";
	case DM_ORG_PSL:	return "psl";
	}
	return "unknown";
}

/*
 * Cut a normalised domain into labels. Fails on what no DNS name can be
 * (empty labels, over-long labels or names), so a walk never loops on
 * garbage.
 */
static bool
org_split(const char *name, struct org_labels *l)
{
	size_t len, i, start;

	l->name = name;
	l->n = 0;
	len = strnlen(name, ORG_NAME_MAX + 1);
	if (len == 0 || len > ORG_NAME_MAX)
		return false;
	for (i = start = 0; i <= len; i++) {
		if (i < len && name[i] != '.')
			continue;
		if (i == start || i - start > ORG_LABEL_MAX ||
		    l->n == ORG_LABELS_MAX)
			return false;
		l->off[l->n++] = start;
		start = i + 1;
	}
	return true;
}

static const char *
org_suffix(const struct org_labels *l, size_t idx)
{
	return l->name + l->off[idx];
}

/*
 * The next name of a walk (RFC 9989 4.10 steps 4 and 7): from the start,
 * one label off, or down to seven labels when there are eight or more;
 * after that, one label at a time, down to the top-level domain.
 */
static size_t
org_next(const struct org_labels *l, size_t idx)
{
	if (idx == 0 && l->n >= ORG_SHORTCUT)
		return l->n - (ORG_SHORTCUT - 1);
	return idx + 1;
}

/*
 * Fetch the DMARC record of one name. DM_OK: exactly one record claims
 * to be DMARC and it parses (f->rec). DM_NOTFOUND: no usable record there
 * (f->ndmarc tells none from several or unusable; why says which).
 * DM_TEMPFAIL: the lookup failed, or memory ran out.
 */
static dm_status
org_fetch(dm_org *o, const char *domain, struct org_fetch *f, char *why,
    size_t whylen)
{
	char qname[ORG_NAME_MAX + 1], perr[128];
	dm_txt *txt = NULL;
	size_t ntxt = 0, i, pick = 0;
	dm_dns_status ds;
	dm_status st;

	f->rec = NULL;
	f->ndmarc = 0;
	if (strlen(ORG_PREFIX) + strlen(domain) > ORG_NAME_MAX) {
		snprintf(why, whylen, "%s%s: name too long", ORG_PREFIX,
		    domain);
		return DM_NOTFOUND;
	}
	snprintf(qname, sizeof(qname), "%s%s", ORG_PREFIX, domain);
	ds = dm_resolver_txt(o->resolver, qname, &txt, &ntxt);
	if (ds == DM_DNS_TEMPFAIL) {
		snprintf(why, whylen, "%s: temporary DNS failure", qname);
		return DM_TEMPFAIL;
	}
	if (ds != DM_DNS_OK) {
		snprintf(why, whylen, "%s: %s", qname, dm_dns_status_str(ds));
		return DM_NOTFOUND;
	}
	for (i = 0; i < ntxt; i++) {
		if (dm_record_is_dmarc(txt[i].data, txt[i].len)) {
			f->ndmarc++;
			pick = i;
		}
	}
	if (f->ndmarc == 0) {
		snprintf(why, whylen, "%s: no DMARC record", qname);
		st = DM_NOTFOUND;
	} else if (f->ndmarc > 1) {
		snprintf(why, whylen, "%s: %zu DMARC records", qname,
		    f->ndmarc);
		st = DM_NOTFOUND;
	} else {
		perr[0] = '\0';
		st = dm_record_parse(txt[pick].data, txt[pick].len, &f->rec,
		    perr, sizeof(perr));
		if (st != DM_OK) {
			snprintf(why, whylen, "%s: unusable DMARC record: %s",
			    qname, perr);
			f->rec = NULL;
			st = DM_NOTFOUND;
		}
	}
	dm_txt_free(txt, ntxt);
	return st;
}

static void
org_walk_clear(struct org_walk *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		dm_record_free(w->hit[i].rec);
	w->n = 0;
}

/*
 * The DNS Tree Walk (RFC 9989 4.10) from suffix idx: collect the valid
 * records on the way, stop after one that carries psd=y or psd=n. On
 * DM_TEMPFAIL the walk is unfinished and its answer unknown.
 */
static dm_status
org_walk(dm_org *o, const struct org_labels *l, size_t idx,
    struct org_walk *w, char *why, size_t whylen)
{
	struct org_fetch f;
	dm_status st;

	for (; idx < l->n && w->n < ORG_SHORTCUT; idx = org_next(l, idx)) {
		st = org_fetch(o, org_suffix(l, idx), &f, why, whylen);
		if (st == DM_TEMPFAIL)
			return DM_TEMPFAIL;
		if (st != DM_OK)
			continue;
		w->hit[w->n].idx = idx;
		w->hit[w->n].rec = f.rec;
		w->n++;
		if (f.rec->psd != DM_PSD_UNSET)
			break;
	}
	return DM_OK;
}

/*
 * The Organizational Domain from a finished walk (RFC 9989 4.10.2). The
 * walk stops at the first psd=n or psd=y record, so only its last record
 * can carry one, and the record "at the name with the fewest number of
 * labels" is that last one too.
 */
static size_t
org_pick(const struct org_walk *w)
{
	const struct org_hit *last;

	if (w->n == 0)
		return 0;	/* nothing found: the start is its own */
	last = &w->hit[w->n - 1];
	if (last->rec->psd == DM_PSD_YES && last->idx > 0)
		return last->idx - 1;
	return last->idx;
}

static void
org_found(dm_discovery *out, const char *domain, dm_record *rec, bool exact)
{
	strlcpy(out->policy_domain, domain, sizeof(out->policy_domain));
	out->record = rec;
	out->exact = exact;
	out->error[0] = '\0';
}

/*
 * Tree walk discovery (RFC 9989 4.10.1) once the Author Domain itself
 * had no valid record: the record of its Organizational Domain if the
 * walk met one, else that of its Public Suffix Domain.
 */
static dm_status
org_discover_walk(dm_org *o, const struct org_labels *l, dm_discovery *out)
{
	struct org_walk w = { .n = 0 };
	struct org_hit *use = NULL;
	size_t org, i;
	dm_status st;

	st = org_walk(o, l, org_next(l, 0), &w, out->error,
	    sizeof(out->error));
	if (st != DM_OK)
		goto done;
	org = org_pick(&w);
	for (i = 0; i < w.n; i++)
		if (w.hit[i].idx == org)
			use = &w.hit[i];
	if (use == NULL && w.n > 0 && w.hit[w.n - 1].rec->psd == DM_PSD_YES)
		use = &w.hit[w.n - 1];
	if (use == NULL) {
		snprintf(out->error, sizeof(out->error),
		    "no DMARC record for %s or its parents", l->name);
		st = DM_NOTFOUND;
		goto done;
	}
	org_found(out, org_suffix(l, use->idx), use->rec, false);
	use->rec = NULL;
done:
	org_walk_clear(&w);
	return st;
}

static dm_status
org_discover_treewalk(dm_org *o, const struct org_labels *l,
    dm_discovery *out)
{
	struct org_fetch f;
	dm_status st;

	st = org_fetch(o, l->name, &f, out->error, sizeof(out->error));
	if (st == DM_OK) {
		org_found(out, l->name, f.rec, true);
		return DM_OK;
	}
	if (st == DM_TEMPFAIL)
		return DM_TEMPFAIL;
	return org_discover_walk(o, l, out);
}

/* The registrable domain, or the domain itself when it is a suffix. */
static const char *
org_psl_domain(const dm_org *o, const char *domain)
{
	const char *reg;

	reg = psl_registrable_domain(o->psl, domain);
	return reg != NULL ? reg : domain;
}

/* RFC 7489 6.6.3: the Author Domain, then its Organizational Domain. */
static dm_status
org_discover_psl(dm_org *o, const struct org_labels *l, dm_discovery *out)
{
	struct org_fetch f;
	const char *org;
	dm_status st;

	st = org_fetch(o, l->name, &f, out->error, sizeof(out->error));
	if (st == DM_OK) {
		org_found(out, l->name, f.rec, true);
		return DM_OK;
	}
	if (st == DM_TEMPFAIL || f.ndmarc > 0)
		return st;	/* several or unusable: steps 5 and 6 */
	org = org_psl_domain(o, l->name);
	if (strcmp(org, l->name) == 0)
		return DM_NOTFOUND;
	st = org_fetch(o, org, &f, out->error, sizeof(out->error));
	if (st == DM_OK)
		org_found(out, org, f.rec, false);
	return st;
}

dm_status
dm_org_discover(dm_org *o, const char *author_domain, dm_discovery *out)
{
	struct org_labels l;
	dm_status st;

	memset(out, 0, sizeof(*out));
	if (!org_split(author_domain, &l)) {
		snprintf(out->error, sizeof(out->error),
		    "not a domain name: %.100s", author_domain);
		return DM_NOTFOUND;
	}
	if (o->method == DM_ORG_PSL)
		st = org_discover_psl(o, &l, out);
	else
		st = org_discover_treewalk(o, &l, out);
	if (st == DM_OK)
		dm_debug("dmarc policy for %s at %s%s", author_domain,
		    out->policy_domain, out->exact ? "" : " (inherited)");
	else
		dm_debug("dmarc policy for %s: %s: %s", author_domain,
		    dm_status_str(st), out->error);
	return st;
}

static dm_status
org_domain_treewalk(dm_org *o, const struct org_labels *l, const char **org)
{
	struct org_walk w = { .n = 0 };
	char why[160];
	dm_status st;

	st = org_walk(o, l, 0, &w, why, sizeof(why));
	if (st == DM_OK)
		*org = org_suffix(l, org_pick(&w));
	else
		dm_debug("organizational domain of %s: %s", l->name, why);
	org_walk_clear(&w);
	return st;
}

dm_status
dm_org_domain(dm_org *o, const char *domain, char *out, size_t outlen)
{
	struct org_labels l;
	const char *org = NULL;
	dm_status st;

	if (outlen > 0)
		out[0] = '\0';
	if (!org_split(domain, &l))
		return DM_PERMFAIL;
	if (o->method == DM_ORG_PSL) {
		org = org_psl_domain(o, domain);
		st = DM_OK;
	} else
		st = org_domain_treewalk(o, &l, &org);
	if (st != DM_OK)
		return st;
	if (strlcpy(out, org, outlen) >= outlen)
		return DM_PERMFAIL;
	return DM_OK;
}
