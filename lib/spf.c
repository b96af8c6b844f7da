/*
 * lib/spf.c - SPF (RFC 7208): check_host() of sections 4 and 5, with
 * every DNS query through dm_resolver (one libunbound cache, real
 * timeouts). The record's syntax is lib/spfrec.c's, macro expansion
 * lib/spfmacro.c's; this file owns the evaluation: the identity (2.3,
 * 2.4, 4.3), record lookup and selection (4.4, 4.5), the mechanisms (5),
 * redirect= and exp= (6), and the limits of 4.6.4.
 *
 * It replaced libspf2 (1.2.10, 2012), which disagreed with RFC 7208 in
 * ways that needed the records rewritten to correct: a /0 CIDR length
 * made the record permerror, domain-specs went unchecked and were looked
 * up, a redirect to the record's own domain was refused before the
 * mechanisms ahead of it ran, more than 10 MX names passed on a match.
 *
 * The limits count over the whole evaluation, includes and redirects
 * together: 10 terms that query DNS (include, a, mx, ptr, exists,
 * redirect), 2 of those whose lookup is void (NXDOMAIN or no answer),
 * 10 names of an MX answer (more is permerror) and of a PTR answer (the
 * rest is ignored). Include and redirect loops end at the first limit.
 *
 * A check keeps its state in one spf_ctx; dm_spf itself is read-only
 * once made, so threads share it without a lock.
 */
#include "config.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dm_domain.h"
#include "dm_from.h"
#include "dm_log.h"
#include "dm_resolver.h"
#include "dm_spf.h"
#include "dm_spfmacro.h"
#include "dm_spfrec.h"

#define SPF_TERMS_MAX	10	/* DNS-querying terms, RFC 7208 4.6.4 */
#define SPF_VOIDS_MAX	2	/* terms with a void answer, idem */
#define SPF_NAMES_MAX	10	/* names of one MX or PTR answer, idem */
#define SPF_SCRATCH	1024	/* a macro expansion in progress */

struct dm_spf {
	dm_resolver *r;
	char receiver[DM_DOMAIN_MAX];
};

enum { SPF_ERROR = -1, SPF_NOMATCH = 0, SPF_MATCH = 1 };

/* One check_host() evaluation and everything it has counted. */
struct spf_ctx {
	dm_resolver *r;
	const dm_spf *s;
	int v6;
	unsigned char ip[16];
	char ipi[72];		/* %{i} */
	char ipc[INET6_ADDRSTRLEN];
	char rev[80];		/* the reverse-mapping name */
	char now[24];		/* %{t} */
	const char *sender, *lp, *odom, *helo;
	int terms, voids;
	dm_spf_result err;	/* the result when a term says SPF_ERROR */
	char *comment;
	size_t commentlen;
	char *exp;		/* NULL: no explanation wanted */
	size_t explen;
	/* %{p}: the validated names of the client, found once */
	int pdone, np;
	char pnames[SPF_NAMES_MAX][DM_DOMAIN_MAX];
	const char *pdom;
	char pval[DM_DOMAIN_MAX];
	char scratch[SPF_SCRATCH];
};

static dm_spf_result spf_check_host(struct spf_ctx *, const char *, int);

/* The first note of an evaluation explains its result, for the logs. */
static void
spf_note(struct spf_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
spf_note(struct spf_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->comment[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(c->comment, c->commentlen, fmt, ap);
	va_end(ap);
}

static int
spf_fail(struct spf_ctx *c, dm_spf_result r, const char *why,
    const char *domain)
{
	c->err = r;
	spf_note(c, "%s (%s)", why, domain);
	return SPF_ERROR;
}

/* --- names ------------------------------------------------------------ */

/*
 * Names with bytes that cannot be written plainly are refused: they are
 * no host names, and an escaped form would not look up the same name.
 */
int
dm_spf_wire_name(const unsigned char *p, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0, lab = 0, k;

	while (i < len) {
		lab = p[i++];
		if (lab == 0)
			break;
		if (lab > 63 || lab > len - i || o + lab + 2 > outlen)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (k = 0; k < lab; k++) {
			if (p[i + k] <= ' ' || p[i + k] >= 0x7f ||
			    p[i + k] == '.' || p[i + k] == '\\')
				return -1;
			out[o++] = (char)p[i + k];
		}
		i += lab;
	}
	if (lab != 0 || o == 0)	/* unterminated, or the root (null MX) */
		return -1;
	out[o] = '\0';
	return 0;
}

/*
 * A name we may ask for: 1..253 bytes of labels of 1..63 printable
 * bytes (no '\', which libunbound would read as an escape). multi: it
 * must have two labels at least (RFC 7208 4.3).
 */
static int
spf_name_ok(const char *n, int multi)
{
	size_t len = strlen(n), i, lab = 0;
	int dots = 0;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		if (n[i] == '.') {
			if (lab == 0)
				return 0;
			lab = 0;
			dots++;
		} else if (n[i] <= ' ' || n[i] >= 0x7f || n[i] == '\\' ||
		    ++lab > 63) {
			return 0;
		}
	}
	return lab > 0 && (!multi || dots > 0);
}

/* --- macros ------------------------------------------------------------- */

static int
spf_addr_in(const struct spf_ctx *c, const unsigned char *a, size_t alen,
    int bits)
{
	size_t full = (size_t)bits / 8;
	unsigned char mask;

	if (alen != (c->v6 ? 16u : 4u))
		return 0;
	if (memcmp(a, c->ip, full) != 0)
		return 0;
	if (bits % 8 == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - bits % 8));
	return (a[full] & mask) == (c->ip[full] & mask);
}

/* Is one of the A/AAAA records of name the client? 0, 1, or a status. */
static int
spf_host_is_client(struct spf_ctx *c, const char *name, int bits,
    dm_dns_status *st)
{
	dm_rr *rrs;
	size_t n, i;
	int hit = 0;

	*st = dm_resolver_lookup(c->r, name, c->v6 ? ns_t_aaaa : ns_t_a,
	    &rrs, &n);
	for (i = 0; i < n && !hit; i++)
		hit = spf_addr_in(c, rrs[i].data, rrs[i].len, bits);
	dm_rr_free(rrs, n);
	return hit;
}

/* The client's PTR names, at most SPF_NAMES_MAX of them. */
static dm_dns_status
spf_ptr_names(struct spf_ctx *c, char names[][DM_DOMAIN_MAX], int *np)
{
	dm_dns_status st;
	dm_rr *rrs;
	size_t n, i;

	*np = 0;
	st = dm_resolver_lookup(c->r, c->rev, ns_t_ptr, &rrs, &n);
	for (i = 0; i < n && i < SPF_NAMES_MAX; i++)
		if (dm_spf_wire_name(rrs[i].data, rrs[i].len, names[*np],
		    DM_DOMAIN_MAX) == 0)
			(*np)++;
	dm_rr_free(rrs, n);
	return st;
}

/* name is domain or under it (RFC 7208 5.5), in any case. */
static int
spf_under(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (n < d || strcasecmp(name + n - d, domain) != 0)
		return 0;
	return n == d || name[n - d - 1] == '.';
}

/*
 * %{p} (7.3): a validated name of the client; the <domain> itself if it
 * is one, else one under it, else any; "unknown" when there is none or
 * DNS fails. Its lookups are not terms and count toward no limit.
 */
static const char *
spf_macro_p(void *arg)
{
	struct spf_ctx *c = arg;
	char names[SPF_NAMES_MAX][DM_DOMAIN_MAX];
	dm_dns_status st;
	int i, n;

	if (!c->pdone) {
		c->pdone = 1;
		(void)spf_ptr_names(c, names, &n);
		for (i = 0; i < n; i++)
			if (spf_host_is_client(c, names[i], c->v6 ? 128 : 32,
			    &st) == 1)
				memcpy(c->pnames[c->np++], names[i],
				    DM_DOMAIN_MAX);
	}
	for (i = 0; i < c->np; i++)
		if (strcasecmp(c->pnames[i], c->pdom) == 0)
			return c->pnames[i];
	for (i = 0; i < c->np; i++)
		if (spf_under(c->pnames[i], c->pdom))
			return c->pnames[i];
	return c->np > 0 ? c->pnames[0] : NULL;
}

static void
spf_env(struct spf_ctx *c, const char *domain, dm_spf_menv *env)
{
	memset(env, 0, sizeof(*env));
	env->s = c->sender;
	env->l = c->lp;
	env->o = c->odom;
	env->d = domain;
	env->h = c->helo;
	env->i = c->ipi;
	env->c = c->ipc;
	env->v = c->v6 ? "ip6" : "in-addr";
	env->r = c->s->receiver;
	env->t = c->now;
	env->p = spf_macro_p;
	env->parg = c;
	c->pdom = domain;
}

/*
 * The <target-name> of a term (4.8): its domain-spec expanded, or the
 * current domain. 1 and the name in out; 0 when it is no name that can
 * be asked for (a label over 63 bytes, an empty label...).
 */
static int
spf_target(struct spf_ctx *c, const char *spec, size_t len,
    const char *domain, char out[DM_DOMAIN_MAX])
{
	dm_spf_menv env;

	if (spec == NULL) {
		snprintf(out, DM_DOMAIN_MAX, "%s", domain);
		return 1;
	}
	spf_env(c, domain, &env);
	if (dm_spf_macro_expand(spec, len, DM_SPF_MDOMAIN, &env, c->scratch,
	    sizeof(c->scratch)) < 0 || !spf_name_ok(c->scratch, 0))
		return 0;
	/* spf_name_ok: at most 253 bytes */
	memcpy(out, c->scratch, strlen(c->scratch) + 1);
	return 1;
}

/* --- limits --------------------------------------------------------------- */

static int
spf_count_term(struct spf_ctx *c, const char *domain)
{
	if (++c->terms <= SPF_TERMS_MAX)
		return 0;
	return spf_fail(c, DM_SPF_PERMERROR,
	    "more than 10 DNS-querying terms (RFC 7208 4.6.4)", domain);
}

/* A term's own lookup: temperror, a void to count, or on. */
static int
spf_lookup_status(struct spf_ctx *c, dm_dns_status st, const char *name)
{
	if (st == DM_DNS_TEMPFAIL)
		return spf_fail(c, DM_SPF_TEMPERROR, "DNS failure", name);
	if ((st == DM_DNS_NXDOMAIN || st == DM_DNS_NODATA) &&
	    ++c->voids > SPF_VOIDS_MAX)
		return spf_fail(c, DM_SPF_PERMERROR,
		    "more than 2 void lookups (RFC 7208 4.6.4)", name);
	return 0;
}

/* --- mechanisms ----------------------------------------------------------- */

static int
spf_bits(const struct spf_ctx *c, const dm_spf_term *t)
{
	return c->v6 ? t->cidr6 : t->cidr4;
}

/* a (5.3) */
static int
spf_mech_a(struct spf_ctx *c, const dm_spf_term *t, const char *name)
{
	dm_dns_status st;
	int hit = spf_host_is_client(c, name, spf_bits(c, t), &st);

	if (spf_lookup_status(c, st, name) != 0)
		return SPF_ERROR;
	return hit ? SPF_MATCH : SPF_NOMATCH;
}

/* mx (5.4): every name is looked up, more than 10 is permerror. */
static int
spf_mech_mx(struct spf_ctx *c, const dm_spf_term *t, const char *name)
{
	char host[DM_DOMAIN_MAX];
	dm_dns_status st;
	dm_rr *rrs;
	size_t n, i;
	int hit = 0, rc = SPF_ERROR;

	st = dm_resolver_lookup(c->r, name, ns_t_mx, &rrs, &n);
	if (spf_lookup_status(c, st, name) != 0)
		goto done;
	if (n > SPF_NAMES_MAX) {
		spf_fail(c, DM_SPF_PERMERROR, "more than 10 MX names "
		    "(RFC 7208 4.6.4)", name);
		goto done;
	}
	for (i = 0; i < n; i++) {
		if (rrs[i].len < 3 || dm_spf_wire_name(rrs[i].data + 2,
		    rrs[i].len - 2, host, sizeof(host)) != 0)
			continue;
		hit |= spf_host_is_client(c, host, spf_bits(c, t), &st);
		if (st == DM_DNS_TEMPFAIL) {
			spf_fail(c, DM_SPF_TEMPERROR, "DNS failure", host);
			goto done;
		}
	}
	rc = hit ? SPF_MATCH : SPF_NOMATCH;
done:
	dm_rr_free(rrs, n);
	return rc;
}

/* ptr (5.5): DNS errors make it no match, never an error. */
static int
spf_mech_ptr(struct spf_ctx *c, const char *name)
{
	char names[SPF_NAMES_MAX][DM_DOMAIN_MAX];
	dm_dns_status st;
	int i, n;

	st = spf_ptr_names(c, names, &n);
	if ((st == DM_DNS_NXDOMAIN || st == DM_DNS_NODATA) &&
	    spf_lookup_status(c, st, c->rev) != 0)
		return SPF_ERROR;
	for (i = 0; i < n; i++)
		if (spf_under(names[i], name) && spf_host_is_client(c,
		    names[i], c->v6 ? 128 : 32, &st) == 1)
			return SPF_MATCH;
	return SPF_NOMATCH;
}

/* exists (5.7): an A query, whatever the client's family. */
static int
spf_mech_exists(struct spf_ctx *c, const char *name)
{
	dm_dns_status st;
	dm_rr *rrs;
	size_t n;

	st = dm_resolver_lookup(c->r, name, ns_t_a, &rrs, &n);
	dm_rr_free(rrs, n);
	if (spf_lookup_status(c, st, name) != 0)
		return SPF_ERROR;
	return n > 0 ? SPF_MATCH : SPF_NOMATCH;
}

/* include (5.2): the table of its results. */
static int
spf_mech_include(struct spf_ctx *c, const char *name)
{
	switch (spf_check_host(c, name, 1)) {
	case DM_SPF_PASS:
		return SPF_MATCH;
	case DM_SPF_FAIL:
	case DM_SPF_SOFTFAIL:
	case DM_SPF_NEUTRAL:
		return SPF_NOMATCH;
	case DM_SPF_TEMPERROR:
		c->err = DM_SPF_TEMPERROR;
		return SPF_ERROR;
	case DM_SPF_NONE:
		return spf_fail(c, DM_SPF_PERMERROR, "include of a domain "
		    "without SPF record", name);
	case DM_SPF_PERMERROR:
		break;
	}
	c->err = DM_SPF_PERMERROR;
	return SPF_ERROR;
}

static int
spf_ip_match(const struct spf_ctx *c, const dm_spf_term *t)
{
	if ((t->mech == DM_SPFM_IP6) != c->v6)
		return SPF_NOMATCH;
	return spf_addr_in(c, t->net, c->v6 ? 16 : 4, spf_bits(c, t)) ?
	    SPF_MATCH : SPF_NOMATCH;
}

static int
spf_term(struct spf_ctx *c, const dm_spf_term *t, const char *domain)
{
	char name[DM_DOMAIN_MAX];

	switch (t->mech) {
	case DM_SPFM_ALL:
		return SPF_MATCH;
	case DM_SPFM_IP4:
	case DM_SPFM_IP6:
		return spf_ip_match(c, t);
	default:
		break;
	}
	if (spf_count_term(c, domain) != 0)
		return SPF_ERROR;
	if (!spf_target(c, t->spec, t->speclen, domain, name)) {
		/* a malformed include target has no record: permerror */
		if (t->mech == DM_SPFM_INCLUDE)
			return spf_fail(c, DM_SPF_PERMERROR, "include of a "
			    "malformed name", domain);
		return SPF_NOMATCH;
	}
	switch (t->mech) {
	case DM_SPFM_A:		return spf_mech_a(c, t, name);
	case DM_SPFM_MX:	return spf_mech_mx(c, t, name);
	case DM_SPFM_PTR:	return spf_mech_ptr(c, name);
	case DM_SPFM_EXISTS:	return spf_mech_exists(c, name);
	default:		return spf_mech_include(c, name);
	}
}

/* --- records -------------------------------------------------------------- */

static dm_spf_result
spf_qual(char q)
{
	switch (q) {
	case '-':	return DM_SPF_FAIL;
	case '~':	return DM_SPF_SOFTFAIL;
	case '?':	return DM_SPF_NEUTRAL;
	default:	return DM_SPF_PASS;
	}
}

/*
 * exp= (6.2): on fail, the explanation of the record that failed. Any
 * trouble (DNS, not exactly one TXT record, bad syntax) only means
 * there is none; the result stays what it is.
 */
static void
spf_explain(struct spf_ctx *c, const dm_spfrec *rec, const char *domain)
{
	char name[DM_DOMAIN_MAX];
	dm_spf_menv env;
	const char *spec;
	dm_txt *txt;
	size_t len, n;

	if (c->exp == NULL || (spec = dm_spfrec_exp(rec, &len)) == NULL ||
	    !spf_target(c, spec, len, domain, name))
		return;
	if (dm_resolver_txt(c->r, name, &txt, &n) == DM_DNS_OK && n == 1) {
		spf_env(c, domain, &env);
		if (dm_spf_macro_expand(txt[0].data, txt[0].len, DM_SPF_MEXP,
		    &env, c->scratch, sizeof(c->scratch)) >= 0)
			snprintf(c->exp, c->explen, "%s", c->scratch);
	}
	dm_txt_free(txt, n);
}

/* 4.4, 4.5: the one "v=spf1" record of domain, parsed. */
static dm_spf_result
spf_fetch(struct spf_ctx *c, const char *domain, dm_spfrec **rec)
{
	char why[160];
	dm_txt *txt;
	size_t n, i, found = 0, count = 0;
	dm_dns_status st;
	dm_spf_result res = DM_SPF_NONE;

	*rec = NULL;
	st = dm_resolver_txt(c->r, domain, &txt, &n);
	if (st == DM_DNS_TEMPFAIL) {
		spf_fail(c, DM_SPF_TEMPERROR, "DNS failure on the SPF record",
		    domain);
		return DM_SPF_TEMPERROR;
	}
	for (i = 0; i < n; i++)
		if (dm_spfrec_is_v1(txt[i].data, txt[i].len)) {
			found = i;
			count++;
		}
	if (count == 0) {
		spf_note(c, "no SPF record at %s", domain);
	} else if (count > 1) {
		spf_fail(c, DM_SPF_PERMERROR, "several SPF records", domain);
		res = DM_SPF_PERMERROR;
	} else {
		switch (dm_spfrec_parse(txt[found].data, txt[found].len, rec,
		    why, sizeof(why))) {
		case DM_OK:
			res = DM_SPF_PASS;	/* a record to evaluate */
			break;
		default:
			spf_fail(c, DM_SPF_PERMERROR, why, domain);
			res = DM_SPF_PERMERROR;
			break;
		}
	}
	dm_txt_free(txt, n);
	return res;
}

/* After the mechanisms: redirect= (6.1), else the default (4.7). */
static dm_spf_result
spf_redirect(struct spf_ctx *c, const dm_spfrec *rec, const char *domain,
    int in_include)
{
	char name[DM_DOMAIN_MAX];
	const char *spec;
	dm_spf_result res;
	size_t len;

	if ((spec = dm_spfrec_redirect(rec, &len)) == NULL) {
		if (!in_include)
			spf_note(c, "no mechanism matched in %s", domain);
		return DM_SPF_NEUTRAL;
	}
	if (spf_count_term(c, domain) != 0)
		return DM_SPF_PERMERROR;
	if (!spf_target(c, spec, len, domain, name)) {
		spf_fail(c, DM_SPF_PERMERROR, "redirect= to a malformed name",
		    domain);
		return DM_SPF_PERMERROR;
	}
	res = spf_check_host(c, name, in_include);
	if (res == DM_SPF_NONE) {
		spf_fail(c, DM_SPF_PERMERROR, "redirect= to a domain without "
		    "SPF record", name);
		return DM_SPF_PERMERROR;
	}
	return res;
}

static dm_spf_result
spf_check_host(struct spf_ctx *c, const char *domain, int in_include)
{
	dm_spfrec *rec;
	const dm_spf_term *t = NULL;
	dm_spf_result res;
	size_t i, n;
	int rc = SPF_NOMATCH;

	if (!spf_name_ok(domain, 1)) {
		spf_note(c, "no SPF record: malformed name %s", domain);
		return DM_SPF_NONE;
	}
	if ((res = spf_fetch(c, domain, &rec)) != DM_SPF_PASS)
		return res;
	n = dm_spfrec_nterms(rec);
	for (i = 0; i < n && rc == SPF_NOMATCH; i++) {
		t = dm_spfrec_term(rec, i);
		rc = spf_term(c, t, domain);
	}
	if (rc == SPF_ERROR) {
		res = c->err;
	} else if (rc == SPF_MATCH) {
		res = spf_qual(t->qual);
		if (!in_include)
			spf_note(c, "term %zu of %s matched", i, domain);
		if (res == DM_SPF_FAIL && !in_include)
			spf_explain(c, rec, domain);
	} else {
		res = spf_redirect(c, rec, domain, in_include);
	}
	dm_spfrec_free(rec);
	return res;
}

/* --- the check ---------------------------------------------------------- */

dm_spf *
dm_spf_new(dm_resolver *r, char *err, size_t errlen)
{
	dm_spf *s;

	if (r == NULL) {
		snprintf(err, errlen, "SPF needs a resolver");
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->r = r;
	snprintf(s->receiver, sizeof(s->receiver), "unknown");
	return s;
}

void
dm_spf_set_receiver(dm_spf *s, const char *name)
{
	snprintf(s->receiver, sizeof(s->receiver), "%s",
	    name != NULL && *name != '\0' ? name : "unknown");
}

void
dm_spf_free(dm_spf *s)
{
	free(s);
}

static void
spf_none(dm_spf_outcome *out, const char *why)
{
	out->result = DM_SPF_NONE;
	snprintf(out->comment, sizeof(out->comment), "%s", why);
}

/*
 * Scope, identity and domain (RFC 7208 2.3, 2.4, 4.3). Returns the
 * local-part to use ("postmaster" when there is none), or NULL when
 * there is nothing to check (result none, said in the comment).
 */
static const char spf_postmaster[] = "postmaster";

static const char *
spf_identity(dm_spf_outcome *out, const char *helo, const char *mail_from,
    size_t *lplen)
{
	const char *at, *dom;

	*lplen = sizeof(spf_postmaster) - 1;
	if (mail_from == NULL || *mail_from == '\0') {
		out->scope = DM_SPF_SCOPE_HELO;
		if (helo == NULL || *helo == '\0') {
			spf_none(out, "null sender and no HELO name");
			return NULL;
		}
		snprintf(out->identity, sizeof(out->identity), "%s", helo);
		dom = helo;
		at = NULL;
	} else {
		out->scope = DM_SPF_SCOPE_MFROM;
		snprintf(out->identity, sizeof(out->identity), "%s",
		    mail_from);
		at = strrchr(mail_from, '@');
		dom = at != NULL ? at + 1 : mail_from;
	}
	if (dm_domain_normalize(dom, strlen(dom), out->domain,
	    sizeof(out->domain)) != DM_OK) {
		out->domain[0] = '\0';
		spf_none(out, "the identity has no valid domain");
		return NULL;
	}
	if (strchr(out->domain, '.') == NULL) {
		spf_none(out, "the identity's domain is a single label");
		return NULL;
	}
	if (at != NULL && at > mail_from) {
		*lplen = (size_t)(at - mail_from);
		return mail_from;
	}
	return spf_postmaster;
}

/* The client address and its %{i} %{c} and reverse forms. */
static int
spf_set_ip(struct spf_ctx *c, const char *ip)
{
	static const char hex[] = "0123456789abcdef";
	struct in6_addr a6;
	int k;
	char *p;

	if (ip == NULL)
		return -1;
	if (strncasecmp(ip, "IPv6:", 5) == 0)
		ip += 5;
	if (inet_pton(AF_INET, ip, c->ip) == 1) {
		c->v6 = 0;
	} else if (inet_pton(AF_INET6, ip, &a6) == 1) {
		/* an IPv4-mapped IPv6 address is the IPv4 host (5) */
		c->v6 = !IN6_IS_ADDR_V4MAPPED(&a6);
		memcpy(c->ip, c->v6 ? a6.s6_addr : a6.s6_addr + 12,
		    c->v6 ? 16 : 4);
	} else {
		return -1;
	}
	inet_ntop(c->v6 ? AF_INET6 : AF_INET, c->ip, c->ipc, sizeof(c->ipc));
	if (!c->v6) {
		snprintf(c->ipi, sizeof(c->ipi), "%s", c->ipc);
		snprintf(c->rev, sizeof(c->rev), "%u.%u.%u.%u.in-addr.arpa",
		    c->ip[3], c->ip[2], c->ip[1], c->ip[0]);
		return 0;
	}
	for (k = 0, p = c->ipi; k < 16; k++) {
		*p++ = hex[c->ip[k] >> 4];
		*p++ = '.';
		*p++ = hex[c->ip[k] & 15];
		*p++ = '.';
	}
	p[-1] = '\0';
	for (k = 15, p = c->rev; k >= 0; k--) {
		*p++ = hex[c->ip[k] & 15];
		*p++ = '.';
		*p++ = hex[c->ip[k] >> 4];
		*p++ = '.';
	}
	memcpy(p, "ip6.arpa", sizeof("ip6.arpa"));
	return 0;
}

static dm_status
spf_run(dm_spf *s, struct spf_ctx *c, const char *ip, const char *helo,
    const char *mail_from, dm_spf_outcome *out)
{
	const char *lp;
	size_t lplen, len;
	char *sender;

	if ((lp = spf_identity(out, helo, mail_from, &lplen)) == NULL)
		return DM_OK;
	if (spf_set_ip(c, ip) != 0) {
		dm_warn("spf: client address \"%s\" is not an IP address",
		    ip != NULL ? ip : "(null)");
		spf_none(out, "no usable client address");
		return DM_OK;
	}
	/* <sender> for the macros: local-part@domain */
	len = lplen + strlen(out->domain) + 2;
	if ((sender = malloc(len * 2)) == NULL)
		dm_log_oom();
	snprintf(sender, len, "%.*s@%s", (int)lplen, lp, out->domain);
	memcpy(sender + len, sender, lplen);
	sender[len + lplen] = '\0';
	c->r = s->r;
	c->s = s;
	c->sender = sender;
	c->lp = sender + len;
	c->odom = out->domain;
	/* %{h}: the HELO identity's domain, or the HELO name as given */
	c->helo = out->scope == DM_SPF_SCOPE_HELO ? out->domain :
	    helo != NULL ? helo : "";
	snprintf(c->now, sizeof(c->now), "%lld", (long long)time(NULL));
	c->comment = out->comment;
	c->commentlen = sizeof(out->comment);
	out->result = spf_check_host(c, out->domain, 0);
	free(sender);
	return DM_OK;
}

dm_status
dm_spf_check_exp(dm_spf *s, const char *ip, const char *helo,
    const char *mail_from, char *exp, size_t explen, dm_spf_outcome *out)
{
	struct spf_ctx *c;
	dm_status st;

	memset(out, 0, sizeof(*out));
	out->result = DM_SPF_NONE;
	if (exp != NULL && explen > 0)
		exp[0] = '\0';
	if ((c = malloc(sizeof(*c))) == NULL)
		dm_log_oom();
	/* the big buffers need no clearing */
	memset(c, 0, offsetof(struct spf_ctx, pnames));
	c->exp = explen > 0 ? exp : NULL;
	c->explen = explen;
	st = spf_run(s, c, ip, helo, mail_from, out);
	free(c);
	return st;
}

dm_status
dm_spf_check(dm_spf *s, const char *ip, const char *helo,
    const char *mail_from, dm_spf_outcome *out)
{
	return dm_spf_check_exp(s, ip, helo, mail_from, NULL, 0, out);
}

const char *
dm_spf_result_str(dm_spf_result r)
{
	switch (r) {
	case DM_SPF_NONE:	return "none";
	case DM_SPF_NEUTRAL:	return "neutral";
	case DM_SPF_PASS:	return "pass";
	case DM_SPF_FAIL:	return "fail";
	case DM_SPF_SOFTFAIL:	return "softfail";
	case DM_SPF_TEMPERROR:	return "temperror";
	case DM_SPF_PERMERROR:	return "permerror";
	}
	return "unknown";
}

const char *
dm_spf_scope_str(dm_spf_scope sc)
{
	return sc == DM_SPF_SCOPE_HELO ? "helo" : "mfrom";
}
