/*
 * lib/engine.c - one message evaluated end to end: SPF, every DKIM
 * signature, the author domain(s), policy discovery, alignment, and the
 * pure policy verdict per author domain, combined into one dm_verdict.
 *
 * The engine owns the shared, thread-safe parts (resolver, SPF server,
 * DKIM library, org-domain method); a dm_msg belongs to one thread.
 * Several From fields or mailboxes are never a bypass: by default every
 * distinct author domain is evaluated and the strictest outcome wins.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/string.h>

#include "dm_align.h"
#include "dm_authres.h"
#include "dm_engine.h"
#include "dm_log.h"
#include "dm_override.h"

/* Bounds the DNS work one message can cause through its From fields. */
#define ENGINE_MAX_AUTHORS 16

struct dm_engine {
	dm_config *cfg;
	dm_resolver *resolver;
	dm_spf *spf;
	dm_dkim *dkim;
	dm_org *org;
	dm_override *ovr;
	dm_policy_opts popts;
};

struct dm_msg {
	dm_engine *e;
	char qid[64];
	char *ip, *helo, *mail_from;
	dm_dkim_msg *dkim;
	char **from;		/* raw From field bodies */
	size_t nfrom;
	dm_verdict v;
	const dm_dkim_sig **sigs;
	size_t from_bad;	/* mailboxes or fields with no usable domain */
	size_t deceptive;	/* domains shown that are no domain names */
	const char *deceptive_why;
	bool from_malformed;	/* some field was read the reader's way */
	bool too_many;		/* more author domains than evaluated */
	bool mailing_list;	/* List-Id or List-Post seen */
	bool trusted_spf;	/* SPF comes from a trusted upstream: */
	dm_spf_outcome tspf;	/* this one */
	uint64_t trusted_seen;	/* trusted ids whose topmost field was read */
	bool evaluated;
};

dm_engine *
dm_engine_new(dm_config *cfg, char *err, size_t errlen)
{
	dm_engine *e;
	int timeout = (int)dm_config_int(cfg, DM_OPT_DNS_TIMEOUT) * 1000;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		strlcpy(err, "out of memory", errlen);
		return NULL;
	}
	e->cfg = dm_config_ref(cfg);
	e->popts.honor_pct = dm_config_bool(cfg, DM_OPT_HONOR_PCT);
	e->popts.random = dm_policy_random;
	e->resolver = dm_resolver_new(dm_config_str(cfg, DM_OPT_DNS_CONFIG),
	    timeout, err, errlen);
	if (e->resolver == NULL)
		goto fail;
	if ((e->spf = dm_spf_new(e->resolver, err, errlen)) == NULL)
		goto fail;
	if ((e->dkim = dm_dkim_new(e->resolver, err, errlen)) == NULL)
		goto fail;
	dm_dkim_set_partial_pass(e->dkim,
	    dm_config_bool(cfg, DM_OPT_DKIM_PARTIAL_BODY));
	e->org = dm_org_new(dm_config_int(cfg, DM_OPT_ORG_DOMAIN_METHOD),
	    e->resolver, dm_config_str(cfg, DM_OPT_PSL_FILE), err, errlen);
	if (e->org == NULL)
		goto fail;
	if ((e->ovr = dm_override_new(cfg, err, errlen)) == NULL)
		goto fail;
	return e;
fail:
	dm_engine_free(e);
	return NULL;
}

void
dm_engine_free(dm_engine *e)
{
	if (e == NULL)
		return;
	dm_override_free(e->ovr);
	dm_org_free(e->org);
	dm_dkim_free(e->dkim);
	dm_spf_free(e->spf);
	dm_resolver_free(e->resolver);
	dm_config_unref(e->cfg);
	free(e);
}

const dm_config *
dm_engine_config(const dm_engine *e)
{
	return e->cfg;
}

void
dm_engine_set_random(dm_engine *e, uint32_t (*fn)(void *), void *arg)
{
	e->popts.random = fn;
	e->popts.random_arg = arg;
}

dm_msg *
dm_msg_new(dm_engine *e, const char *qid)
{
	dm_msg *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->e = e;
	strlcpy(m->qid, qid != NULL ? qid : "", sizeof(m->qid));
	if ((m->dkim = dm_dkim_msg_new(e->dkim, qid)) == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

static void
msg_clear_verdict(dm_msg *m)
{
	size_t i;

	for (i = 0; i < m->v.nauthors; i++) {
		dm_discovery_clear(&m->v.authors[i].disc);
		free(m->v.authors[i].dkim_aligned);
	}
	free(m->v.authors);
	free(m->sigs);
	memset(&m->v, 0, sizeof(m->v));
	m->sigs = NULL;
}

void
dm_msg_free(dm_msg *m)
{
	size_t i;

	if (m == NULL)
		return;
	msg_clear_verdict(m);
	for (i = 0; i < m->nfrom; i++)
		free(m->from[i]);
	free(m->from);
	dm_dkim_msg_free(m->dkim);
	free(m->ip);
	free(m->helo);
	free(m->mail_from);
	free(m);
}

static dm_status
msg_strdup(char **dst, const char *src)
{
	free(*dst);
	*dst = NULL;
	if (src != NULL && (*dst = strdup(src)) == NULL)
		dm_log_oom();
	return DM_OK;
}

dm_status
dm_msg_client(dm_msg *m, const char *ip, const char *helo)
{
	(void)msg_strdup(&m->ip, ip);
	return msg_strdup(&m->helo, helo);
}

dm_status
dm_msg_mail_from(dm_msg *m, const char *addr)
{
	size_t n = addr != NULL ? strlen(addr) : 0;

	/* The MTA's "<addr>" and "<>" as they come, so no caller strips. */
	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>') {
		addr++;
		n -= 2;
	}
	free(m->mail_from);
	if ((m->mail_from = strndup(addr != NULL ? addr : "", n)) == NULL)
		dm_log_oom();
	return DM_OK;
}

/*
 * "Name:value" for the DKIM verifier, line breaks made CRLF: the milter
 * may hand folding over as bare LF, and the signature covers CRLF.
 */
static char *
msg_dkim_field(const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value), i, o = 0;
	char *f;

	if ((f = malloc(nl + 1 + 2 * vl + 1)) == NULL)
		return NULL;
	memcpy(f, name, nl);
	o = nl;
	f[o++] = ':';
	for (i = 0; i < vl; i++) {
		if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
			f[o++] = '\r';
		f[o++] = value[i];
	}
	f[o] = '\0';
	return f;
}

static dm_status
msg_keep_from(dm_msg *m, const char *value)
{
	char **v;

	if ((v = reallocarray(m->from, m->nfrom + 1, sizeof(*v))) == NULL)
		dm_log_oom();
	m->from = v;
	if ((v[m->nfrom] = strdup(value)) == NULL)
		dm_log_oom();
	m->nfrom++;
	return DM_OK;
}

/*
 * The index of id among TrustedAuthservIDs, or -1. Our own is never
 * trusted: a field with it that reaches us was written by somebody
 * else, so it is a forgery.
 */
static int
msg_trusted_id(const dm_msg *m, const char *id)
{
	const char *list = dm_config_str(m->e->cfg, DM_OPT_TRUSTED_AUTHSERV_IDS);
	const char *ours = dm_config_str(m->e->cfg, DM_OPT_AUTHSERV_ID);
	size_t n, idlen = strlen(id);
	int i;

	if (list == NULL || (ours != NULL && strcasecmp(id, ours) == 0))
		return -1;
	for (i = 0; *list != '\0'; list += n, i++) {
		list += strspn(list, " ,\t");
		n = strcspn(list, " ,\t");
		if (n == idlen && n > 0 && strncasecmp(list, id, n) == 0)
			return i < 64 ? i : -1;
	}
	return -1;
}

/*
 * Only the topmost field of each trusted id is what that host wrote:
 * the ones below it came with the message, from anybody. So the first
 * field of a trusted id decides for that id, whatever it holds, and an
 * SPF result it does not give is not looked for further down.
 */
static void
msg_read_authres(dm_msg *m, const char *value)
{
	char id[256];
	dm_spf_outcome o;
	int i;

	if (dm_authres_servid(value, id, sizeof(id)) != DM_OK ||
	    (i = msg_trusted_id(m, id)) < 0 ||
	    (m->trusted_seen & (UINT64_C(1) << i)) != 0)
		return;
	m->trusted_seen |= UINT64_C(1) << i;
	if (!m->trusted_spf && dm_authres_read_spf(value, &o) == DM_OK) {
		m->tspf = o;
		m->trusted_spf = true;
	}
}

dm_status
dm_msg_header(dm_msg *m, const char *name, const char *value)
{
	dm_status st = DM_OK;
	char *field;

	if (strcasecmp(name, "From") == 0 &&
	    (st = msg_keep_from(m, value)) != DM_OK)
		return st;
	if (strcasecmp(name, "List-Id") == 0 ||
	    strcasecmp(name, "List-Post") == 0)
		m->mailing_list = true;
	if (strcasecmp(name, "Authentication-Results") == 0)
		msg_read_authres(m, value);
	if ((field = msg_dkim_field(name, value)) == NULL)
		dm_log_oom();
	(void)dm_dkim_header(m->dkim, field, strlen(field));
	free(field);
	/* A header the verifier rejects must not stop the evaluation. */
	return DM_OK;
}

dm_status
dm_msg_eoh(dm_msg *m)
{
	(void)dm_dkim_eoh(m->dkim);
	return DM_OK;
}

dm_status
dm_msg_body(dm_msg *m, const unsigned char *p, size_t len)
{
	(void)dm_dkim_body(m->dkim, p, len);
	return DM_OK;
}

static void __attribute__((format(printf, 2, 3)))
msg_error(dm_msg *m, const char *fmt, ...)
{
	va_list ap;

	if (m->v.nerrors >= sizeof(m->v.errors) / sizeof(m->v.errors[0]))
		return;
	va_start(ap, fmt);
	vsnprintf(m->v.errors[m->v.nerrors++], sizeof(m->v.errors[0]), fmt,
	    ap);
	va_end(ap);
}

/* Add an author domain once; false when the bound is reached. */
static bool
msg_add_author(dm_msg *m, const char *domain, size_t *cap)
{
	dm_author *a;
	size_t i;

	for (i = 0; i < m->v.nauthors; i++)
		if (strcmp(m->v.authors[i].domain, domain) == 0)
			return true;
	if (m->v.nauthors >= ENGINE_MAX_AUTHORS)
		return false;
	if (m->v.nauthors == *cap) {
		*cap = *cap ? *cap * 2 : 2;
		a = reallocarray(m->v.authors, *cap, sizeof(*a));
		if (a == NULL)
			dm_log_oom();
		m->v.authors = a;
	}
	a = &m->v.authors[m->v.nauthors++];
	memset(a, 0, sizeof(*a));
	strlcpy(a->domain, domain, sizeof(a->domain));
	return true;
}

/* One From field's authors; false when the field shows none at all. */
static bool
msg_from_field(dm_msg *m, const char *field, bool first_only, size_t *cap,
    size_t *mailboxes)
{
	dm_from_addrs a;
	size_t j;

	if (dm_from_parse(field, strlen(field), &a) != DM_OK)
		return false;
	*mailboxes += a.nmailboxes;
	m->from_bad += a.nbad;
	m->from_malformed |= a.malformed != 0;
	if (a.ndeceptive > 0 && m->deceptive == 0)
		m->deceptive_why = a.deceptive;
	m->deceptive += a.ndeceptive;
	if (a.truncated)
		m->too_many = true;
	for (j = 0; j < a.n; j++) {
		if (first_only && m->v.nauthors > 0)
			break;
		if (!msg_add_author(m, a.domain[j], cap))
			m->too_many = true;
	}
	dm_from_addrs_clear(&a);
	return true;
}

/*
 * Collect the author domains and the From state. The "first" setting of
 * MultipleFrom keeps only the first mailbox; otherwise all are kept.
 */
static void
msg_collect_authors(dm_msg *m)
{
	bool first_only = dm_config_int(m->e->cfg, DM_OPT_MULTIPLE_FROM) ==
	    DM_MULTIFROM_FIRST;
	size_t i, cap = 0, mailboxes = 0;

	for (i = 0; i < m->nfrom; i++)
		if (!msg_from_field(m, m->from[i], first_only, &cap,
		    &mailboxes)) {
			msg_error(m, "From field shows no author: %.100s",
			    m->from[i]);
			m->from_bad++;
		}
	if (m->nfrom == 0)
		m->v.from_state = DM_FROM_MISSING;
	else if (m->nfrom > 1)
		m->v.from_state = DM_FROM_SEVERAL_FIELDS;
	else if (mailboxes > 1)
		m->v.from_state = DM_FROM_SEVERAL_MAILBOXES;
	else if (m->v.nauthors == 0)
		m->v.from_state = DM_FROM_UNUSABLE;
	if (m->v.nauthors == 0 && m->from_bad + m->deceptive > 0)
		m->v.from_state = DM_FROM_UNUSABLE;
	if (m->deceptive > 0) {
		m->v.from_fault = DM_FROMFAULT_DECEPTIVE;
		m->v.from_why = m->deceptive_why;
	} else if (m->from_malformed) {
		m->v.from_fault = DM_FROMFAULT_MALFORMED;
		m->v.from_why = "From field malformed, its domains recovered";
	}
}

static void
msg_collect_sigs(dm_msg *m)
{
	size_t i, n = dm_dkim_nsigs(m->dkim);

	if (n == 0)
		return;
	if ((m->sigs = calloc(n, sizeof(*m->sigs))) == NULL)
		dm_log_oom();
	for (i = 0; i < n; i++)
		m->sigs[i] = dm_dkim_sig_at(m->dkim, i);
	m->v.sigs = m->sigs;
	m->v.nsigs = n;
}

/*
 * Alignment of every identifier with one author domain. An identifier
 * whose alignment cannot be decided (DNS) counts as aligned for the
 * temporary-failure test only if it passed or failed temporarily.
 */
static void
msg_align(dm_msg *m, dm_author *a, const dm_record *rec, dm_policy_input *in)
{
	const dm_spf_outcome *spf = &m->v.spf;
	bool al;
	size_t i;
	dm_status st;

	if ((a->dkim_aligned = calloc(m->v.nsigs + 1, sizeof(bool))) == NULL)
		dm_log_oom();
	for (i = 0; i < m->v.nsigs; i++) {
		const dm_dkim_sig *s = m->v.sigs[i];
		bool relevant = s->result == DM_DKIM_PASS ||
		    s->result == DM_DKIM_TEMPERROR;

		al = false;
		st = dm_align_check(m->e->org, a->domain, s->domain,
		    rec->adkim, &al);
		a->dkim_aligned[i] = st == DM_OK && al;
		if (st == DM_TEMPFAIL && relevant)
			in->aligned_tempfail = true;
		if (a->dkim_aligned[i] && s->result == DM_DKIM_PASS)
			in->dkim_aligned_pass = true;
		if (a->dkim_aligned[i] && s->result == DM_DKIM_TEMPERROR)
			in->aligned_tempfail = true;
	}
	al = false;
	st = dm_align_check(m->e->org, a->domain, spf->domain, rec->aspf, &al);
	a->spf_aligned = st == DM_OK && al;
	if (st == DM_TEMPFAIL && (spf->result == DM_SPF_PASS ||
	    spf->result == DM_SPF_TEMPERROR))
		in->aligned_tempfail = true;
	if (a->spf_aligned && spf->result == DM_SPF_PASS)
		in->spf_aligned_pass = true;
	if (a->spf_aligned && spf->result == DM_SPF_TEMPERROR)
		in->aligned_tempfail = true;
}

static void
msg_eval_author(dm_msg *m, dm_author *a)
{
	dm_override_ctx ctx = { m->ip, m->mailing_list };
	dm_policy_input in;

	memset(&in, 0, sizeof(in));
	a->discovery = dm_org_discover(m->e->org, a->domain, &a->disc);
	in.discovery = a->discovery;
	if (a->discovery == DM_TEMPFAIL)
		msg_error(m, "DMARC policy lookup failed: %s", a->disc.error);
	if (a->discovery == DM_OK) {
		in.record = a->disc.record;
		in.exact = a->disc.exact;
		/* np only matters below the policy domain. */
		if (!in.exact && dm_resolver_exists(m->e->resolver,
		    a->domain) == DM_DNS_NXDOMAIN)
			in.author_nxdomain = true;
		msg_align(m, a, in.record, &in);
	}
	dm_policy_evaluate(&in, &m->e->popts, &a->pv);
	dm_override_apply(m->e->ovr, &ctx, a->domain, &a->pv);
}

static void
msg_combine(dm_msg *m)
{
	size_t i, best = 0;

	for (i = 1; i < m->v.nauthors; i++)
		if (dm_policy_compare(&m->v.authors[i].pv,
		    &m->v.authors[best].pv) > 0)
			best = i;
	m->v.decisive = best;
	m->v.result = m->v.authors[best].pv.result;
	m->v.disposition = m->v.authors[best].pv.disposition;
	/*
	 * Authors beyond the bound were not evaluated, so the message could
	 * hide a spoofed domain behind them: it is refused, not trusted.
	 */
	if (m->too_many) {
		msg_error(m, "%s", "too many author domains");
		m->v.disposition = DM_DISP_REJECT;
		dm_policy_add_reason(&m->v.authors[best].pv,
		    DM_REASON_LOCAL_POLICY, "too many author domains");
	} else if (dm_config_int(m->e->cfg, DM_OPT_MULTIPLE_FROM) ==
	    DM_MULTIFROM_REJECT && (m->v.from_state ==
	    DM_FROM_SEVERAL_FIELDS || m->v.from_state ==
	    DM_FROM_SEVERAL_MAILBOXES)) {
		m->v.disposition = DM_DISP_REJECT;
		dm_policy_add_reason(&m->v.authors[best].pv,
		    DM_REASON_LOCAL_POLICY, "several authors");
	}
}

/* A local rule refuses the message; the decisive author carries why. */
static void
msg_refuse(dm_msg *m, const char *why, const char *reply)
{
	m->v.disposition = DM_DISP_REJECT;
	m->v.from_refused = reply;
	if (m->v.nauthors > 0)
		dm_policy_add_reason(&m->v.authors[m->v.decisive].pv,
		    DM_REASON_LOCAL_POLICY, why);
}

/*
 * The From rules of local policy: a field that shows a reader a domain
 * no policy can be found for is there to deceive, whatever the other
 * authors' results; a message with no author at all impersonates
 * nobody, and is refused only where the site asks for RFC 5322's rule.
 */
static void
msg_from_policy(dm_msg *m)
{
	const dm_config *c = m->e->cfg;

	if (m->deceptive > 0 && dm_config_int(c, DM_OPT_MALFORMED_FROM_ACTION)
	    == DM_MALFROM_REJECT)
		msg_refuse(m, m->deceptive_why, "From header field is "
		    "malformed");
	else if (m->v.nauthors == 0 && dm_config_int(c,
	    DM_OPT_NO_AUTHOR_ACTION) == DM_NOAUTHOR_REJECT)
		msg_refuse(m, "no author domain", "message has no usable From "
		    "header field");
}

/* Mode monitor: the verdict stands, nothing is refused. */
static void
msg_monitor(dm_msg *m)
{
	if (m->v.disposition == DM_DISP_NONE ||
	    dm_config_int(m->e->cfg, DM_OPT_MODE) != DM_MODE_MONITOR)
		return;
	m->v.disposition = DM_DISP_NONE;
	m->v.from_refused = NULL;
	if (m->v.nauthors > 0)
		dm_policy_add_reason(&m->v.authors[m->v.decisive].pv,
		    DM_REASON_LOCAL_POLICY, "monitor mode");
}

dm_status
dm_msg_eom(dm_msg *m, const dm_verdict **out)
{
	size_t i;

	if (!m->evaluated) {
		msg_clear_verdict(m);
		(void)dm_dkim_eom(m->dkim);
		msg_collect_sigs(m);
		if (m->trusted_spf)
			m->v.spf = m->tspf;
		else
			(void)dm_spf_check(m->e->spf, m->ip ? m->ip : "0.0.0.0",
			    m->helo, m->mail_from, &m->v.spf);
		msg_collect_authors(m);
		for (i = 0; i < m->v.nauthors; i++)
			msg_eval_author(m, &m->v.authors[i]);
		if (m->v.nauthors > 0)
			msg_combine(m);
		else if (m->from_bad + m->deceptive > 0)
			m->v.result = DM_DMARC_PERMERROR;
		msg_from_policy(m);
		msg_monitor(m);
		m->evaluated = true;
	}
	*out = &m->v;
	return DM_OK;
}

bool
dm_engine_ignored_host(const dm_engine *e, const char *ip)
{
	return dm_override_ignored_host(e->ovr, ip);
}

const char *
dm_from_state_str(dm_from_state s)
{
	static const char *const names[] = { "one", "missing",
	    "several-fields", "several-mailboxes", "unusable" };

	return (size_t)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

const char *
dm_from_fault_str(dm_from_fault f)
{
	static const char *const names[] = { "none", "malformed",
	    "deceptive" };

	return (size_t)f < sizeof(names) / sizeof(names[0]) ? names[f] : "?";
}
