/*
 * lib/ruaverify.c - the rua= destinations an aggregate report may go to
 * (RFC 7489 7.1, RFC 9990 "Verifying External Destinations"): mailto:
 * addresses decoded and checked, hosts outside the policy domain's
 * Organizational Domain authorized through "_report._dmarc" records,
 * and the replacement rua such a record may carry.
 *
 * Readings of the texts, and choices where they leave one:
 * - v=DMARC1 is checked with dm_record_is_dmarc: the tag name in any
 *   case, the value "DMARC1" exactly (RFC 7489 6.4 spells it in %x,
 *   RFC 9989 with %s), a trailing ';' optional (RFC 9990 step 6).
 * - Wildcards: a receiver publishes "*._report._dmarc.<host>" and the
 *   RFCs let DNS do the matching. unbound's local-data does not
 *   synthesize wildcards, so when the exact name is NXDOMAIN the literal
 *   "*" name is asked too: on real DNS that gives the same answer (RFC
 *   4592: a query for the wildcard's own name returns it). Not when the
 *   exact name exists (NODATA, or TXT without v=DMARC1): a wildcard does
 *   not cover an existing name, so neither do we.
 * - A name of more than 253 octets cannot be asked: not authorized
 *   (RFC 9990 step 4).
 * - Replacement: the rua= of the first authorizing record that has valid
 *   URIs (records in answer order) replaces the original URI; each URI
 *   keeps its own !size. If any of its mailto: URIs names another host,
 *   neither the original nor any replacement gets a report (RFC 7489 and
 *   RFC 9990, the paragraph after the steps: "MUST NOT generate a report
 *   to either"). Replacement URIs of other schemes are skipped as
 *   unsupported and do not void the rest. Replacements are not verified
 *   again: they are on the host that just authorized them.
 * - mailto: (RFC 6068) is cut at its first raw '?'; headers that add
 *   recipients (to, cc, bcc) make it several addresses, which gets none
 *   of them, as does a %2C in the address. The rest must be one plain
 *   dot-atom local part (ASCII, at most 64 octets, no '?') and a domain
 *   that dm_domain_normalize accepts: lower case, A-labels.
 * - The limit on URIs is ours (RFC 9990 "up to the Receiver's limits"):
 *   the first DM_RUA_MAX URIs are looked at, DM_RUA_MAX addresses kept.
 * - Duplicates compare case-insensitively as whole addresses; the first
 *   keeps its place and its !size.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/string.h>

#include "dm_domain.h"
#include "dm_hex.h"
#include "dm_from.h"
#include "dm_log.h"
#include "dm_row.h"
#include "dm_ruaverify.h"

#define RUA_SCHEME	"mailto:"
#define RUA_INFIX	"._report._dmarc."
#define RUA_NAME_MAX	253	/* octets of a DNS name in text form */
#define RUA_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define RUA_QNAME_SIZE	(2 * DM_DOMAIN_MAX + sizeof(RUA_INFIX))

struct rua_ctx {
	dm_resolver *r;
	dm_org *org;
	char pdom[DM_DOMAIN_MAX];	/* the policy domain, normalised */
	char porg[DM_DOMAIN_MAX];	/* its Organizational Domain */
	dm_status porg_st;		/* how finding porg went */
	dm_rua_dest *d;			/* DM_RUA_MAX slots */
	size_t nd;
	dm_rua_skip *s;
	size_t ns, scap;
	bool tempfail;
};

/* One decoded mailto: URI. */
struct rua_addr {
	char addr[sizeof(((dm_rua_dest *)0)->addr)];
	char host[DM_DOMAIN_MAX];
};

/* What the authorization names of one host hold. */
struct rua_auth {
	bool ok;		/* a record starting with v=DMARC1 */
	dm_urilist repl;	/* its replacement rua, maybe empty */
};

static dm_status rua_skip(struct rua_ctx *, const char *, const char *, ...)
	__attribute__((format(printf, 3, 4)));

static dm_status
rua_skip(struct rua_ctx *c, const char *uri, const char *fmt, ...)
{
	dm_rua_skip *v;
	va_list ap;
	size_t ncap;

	if (c->ns == c->scap) {
		ncap = c->scap == 0 ? 4 : c->scap * 2;
		if ((v = reallocarray(c->s, ncap, sizeof(*v))) == NULL)
			dm_log_oom();
		c->s = v;
		c->scap = ncap;
	}
	strlcpy(c->s[c->ns].uri, uri, sizeof(c->s[c->ns].uri));
	va_start(ap, fmt);
	vsnprintf(c->s[c->ns].why, sizeof(c->s[c->ns].why), fmt, ap);
	va_end(ap);
	c->ns++;
	return DM_OK;
}

/* Keep addr unless it is already there or the list is full. */
static dm_status
rua_dest(struct rua_ctx *c, const char *uri, const char *addr,
    uint64_t max_size)
{
	size_t i;

	for (i = 0; i < c->nd; i++) {
		if (strcasecmp(c->d[i].addr, addr) == 0)
			return rua_skip(c, uri, "duplicate of %s",
			    c->d[i].addr);
	}
	if (c->nd == DM_RUA_MAX)
		return rua_skip(c, uri, "more than %d URIs", DM_RUA_MAX);
	strlcpy(c->d[c->nd].addr, addr, sizeof(c->d[c->nd].addr));
	c->d[c->nd].max_size = max_size;
	c->nd++;
	return DM_OK;
}

/*
 * %XX-decode s[0..len) into out (dm_urilist_parse checked the escapes).
 * A %00 would cut the address short, so it is refused here.
 */
static bool
rua_unescape(const char *s, size_t len, char *out, size_t outlen)
{
	return memmem(s, len, "%00", 3) == NULL &&
	    dm_hex_decode(s, len, out, outlen);
}

/* Do the hfields after a mailto's '?' add recipients (RFC 6068 2)? */
static bool
rua_more_rcpts(const char *h)
{
	static const char *const rcpt[] = { "to", "cc", "bcc" };
	char name[8];
	size_t n, i;

	for (; *h != '\0'; h += n + (h[n] == '&')) {
		n = strcspn(h, "&");
		if (!rua_unescape(h, strcspn(h, "=&"), name, sizeof(name)))
			continue;	/* too long for any of them */
		for (i = 0; i < sizeof(rcpt) / sizeof(rcpt[0]); i++)
			if (strcasecmp(name, rcpt[i]) == 0)
				return true;
	}
	return false;
}

/* RFC 5322 dot-atom text, less '?' (see above); NULL when fine. */
static const char *
rua_plain(const char *a)
{
	const char *at, *p;

	if (strchr(a, ',') != NULL)
		return "several addresses";
	at = strchr(a, '@');
	if (at == NULL || at == a || at - a > RUA_LOCAL_MAX ||
	    strchr(at + 1, '@') != NULL || a[0] == '.' || at[-1] == '.')
		return "not a plain address";
	for (p = a; p < at; p++) {
		if ((*p == '.' && p[1] == '.') ||
		    (*p != '.' && !((*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("!#$%&'*+-/=^_`{|}~", *p) != NULL)))
			return "not a plain address";
	}
	return NULL;
}

/* A mailto: URI to one address. DM_PERMFAIL sets *why. */
static dm_status
rua_mailto(const char *uri, struct rua_addr *a, const char **why)
{
	char buf[1024], *at;
	const char *p, *q;
	dm_status st;

	*why = "not a plain address";
	if (strncasecmp(uri, RUA_SCHEME, strlen(RUA_SCHEME)) != 0) {
		*why = "scheme not supported";
		return DM_PERMFAIL;
	}
	p = uri + strlen(RUA_SCHEME);
	if ((q = strchr(p, '?')) != NULL && rua_more_rcpts(q + 1)) {
		*why = "several addresses";
		return DM_PERMFAIL;
	}
	if (!rua_unescape(p, q != NULL ? (size_t)(q - p) : strlen(p), buf,
	    sizeof(buf)))
		return DM_PERMFAIL;
	if ((*why = rua_plain(buf)) != NULL)
		return DM_PERMFAIL;
	*why = "not a plain address";
	at = strchr(buf, '@');
	*at++ = '\0';
	st = dm_domain_normalize(at, strlen(at), a->host, sizeof(a->host));
	if (st != DM_OK)
		return DM_PERMFAIL;
	snprintf(a->addr, sizeof(a->addr), "%.*s@%s", RUA_LOCAL_MAX, buf,
	    a->host);
	return DM_OK;
}

/* Is host in the policy domain's Organizational Domain? *which failed. */
static dm_status
rua_internal(struct rua_ctx *c, const char *host, bool *internal,
    const char **which)
{
	char horg[DM_DOMAIN_MAX];
	dm_status st;

	*internal = false;
	*which = c->pdom;
	if (c->porg_st != DM_OK)
		return c->porg_st;
	*which = host;
	if (strcmp(host, c->pdom) == 0) {
		*internal = true;
		return DM_OK;
	}
	if ((st = dm_org_domain(c->org, host, horg, sizeof(horg))) == DM_OK)
		*internal = strcmp(horg, c->porg) == 0;
	return st;
}

/* The authorizing records among one answer, and the first replacement. */
static dm_status
rua_auth_records(const dm_txt *txt, size_t n, struct rua_auth *au)
{
	dm_record *rec;
	dm_status st;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!dm_record_is_dmarc(txt[i].data, txt[i].len))
			continue;
		au->ok = true;
		if (au->repl.n > 0)
			continue;
		/* Only rua matters here; no p= makes it DM_NOTFOUND. */
		st = dm_record_parse(txt[i].data, txt[i].len, &rec, NULL, 0);
		if (st != DM_OK)
			continue;
		au->repl = rec->rua;
		rec->rua.v = NULL;
		rec->rua.n = 0;
		dm_record_free(rec);
	}
	return DM_OK;
}

static dm_status
rua_auth_fetch(struct rua_ctx *c, const char *qname, struct rua_auth *au,
    dm_dns_status *ds)
{
	dm_txt *txt = NULL;
	size_t n = 0;
	dm_status st;

	*ds = dm_resolver_txt(c->r, qname, &txt, &n);
	if (*ds == DM_DNS_TEMPFAIL)
		return DM_TEMPFAIL;
	if (*ds != DM_DNS_OK)
		return DM_OK;
	st = rua_auth_records(txt, n, au);
	dm_txt_free(txt, n);
	return st;
}

/*
 * Ask <policy domain>._report._dmarc.<host> (into qname), then the
 * wildcard name when that does not exist. DM_PERMFAIL: name too long.
 */
static dm_status
rua_authorize(struct rua_ctx *c, const char *host, struct rua_auth *au,
    char *qname, size_t qlen)
{
	char wild[RUA_QNAME_SIZE];
	dm_dns_status ds;
	dm_status st;

	if ((size_t)snprintf(qname, qlen, "%s%s%s", c->pdom, RUA_INFIX,
	    host) > RUA_NAME_MAX)
		return DM_PERMFAIL;
	st = rua_auth_fetch(c, qname, au, &ds);
	if (st != DM_OK || ds != DM_DNS_NXDOMAIN)
		return st;
	snprintf(wild, sizeof(wild), "*%s%s", RUA_INFIX, host);
	return rua_auth_fetch(c, wild, au, &ds);
}

/* An authorized host's replacement URIs for orig, or neither. */
static dm_status
rua_replace(struct rua_ctx *c, const dm_uri *orig, const char *host,
    const dm_urilist *repl, const char *qname)
{
	struct rua_addr a;
	const char *why;
	dm_status st;
	size_t i;

	for (i = 0; i < repl->n; i++) {
		st = rua_mailto(repl->v[i].uri, &a, &why);
		if (st == DM_OK && strcmp(a.host, host) != 0)
			return rua_skip(c, orig->uri, "%s redirects to "
			    "another host (%s): no report to either", qname,
			    a.host);
	}
	dm_debug("rua %s replaced by %zu URI(s) of %s", orig->uri, repl->n,
	    qname);
	for (i = 0, st = DM_OK; i < repl->n && st == DM_OK; i++) {
		st = rua_mailto(repl->v[i].uri, &a, &why);
		if (st == DM_OK)
			st = rua_dest(c, repl->v[i].uri, a.addr,
			    repl->v[i].max_size);
		else if (st == DM_PERMFAIL)
			st = rua_skip(c, repl->v[i].uri, "replacement from "
			    "%s: %s", qname, why);
	}
	return st;
}

static dm_status
rua_external(struct rua_ctx *c, const dm_uri *u, const struct rua_addr *a)
{
	struct rua_auth au = { .ok = false };
	char qname[RUA_QNAME_SIZE];
	dm_status st;

	st = rua_authorize(c, a->host, &au, qname, sizeof(qname));
	if (st == DM_PERMFAIL)
		st = rua_skip(c, u->uri, "authorization name for %s longer "
		    "than %d octets", a->host, RUA_NAME_MAX);
	else if (st == DM_TEMPFAIL) {
		c->tempfail = true;
		st = rua_skip(c, u->uri, "temporary DNS failure at %s", qname);
	} else if (st == DM_OK && !au.ok)
		st = rua_skip(c, u->uri, "no authorization record at %s",
		    qname);
	else if (st == DM_OK && au.repl.n == 0)
		st = rua_dest(c, u->uri, a->addr, u->max_size);
	else if (st == DM_OK)
		st = rua_replace(c, u, a->host, &au.repl, qname);
	dm_urilist_clear(&au.repl);
	return st;
}

static dm_status
rua_one(struct rua_ctx *c, const dm_uri *u)
{
	struct rua_addr a;
	const char *why;
	bool internal;
	dm_status st;

	if ((st = rua_mailto(u->uri, &a, &why)) != DM_OK)
		return rua_skip(c, u->uri, "%s", why);
	st = rua_internal(c, a.host, &internal, &why);
	if (st == DM_TEMPFAIL) {
		c->tempfail = true;
		return rua_skip(c, u->uri, "temporary DNS failure finding the "
		    "organizational domain of %s", why);
	}
	if (st != DM_OK)
		return rua_skip(c, u->uri, "no organizational domain for %s",
		    why);
	if (internal)
		return rua_dest(c, u->uri, a.addr, u->max_size);
	return rua_external(c, u, &a);
}

dm_status
dm_rua_verify(dm_resolver *r, dm_org *org, const char *policy_domain,
    const dm_urilist *rua, dm_rua_dest **dests, size_t *nd,
    dm_rua_skip **skips, size_t *ns)
{
	struct rua_ctx c = { .r = r, .org = org };
	dm_status st;
	size_t i;

	*dests = NULL;
	*skips = NULL;
	*nd = *ns = 0;
	st = dm_domain_normalize(policy_domain, strlen(policy_domain), c.pdom,
	    sizeof(c.pdom));
	if (st != DM_OK || rua == NULL || rua->n == 0)
		return st;
	if ((c.d = calloc(DM_RUA_MAX, sizeof(*c.d))) == NULL)
		dm_log_oom();
	c.porg_st = dm_org_domain(org, c.pdom, c.porg, sizeof(c.porg));
	for (i = 0; i < rua->n && st == DM_OK; i++) {
		if (i < DM_RUA_MAX)
			st = rua_one(&c, &rua->v[i]);
		else
			st = rua_skip(&c, rua->v[i].uri, "more than %d URIs",
			    DM_RUA_MAX);
	}
	if (st != DM_OK || c.nd == 0) {
		free(c.d);
		c.d = NULL;
		c.nd = 0;
	}
	if (st != DM_OK) {
		free(c.s);
		return st;
	}
	*dests = c.d;
	*nd = c.nd;
	*skips = c.s;
	*ns = c.ns;
	return c.tempfail ? DM_TEMPFAIL : DM_OK;
}
