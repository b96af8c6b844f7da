/*
 * lib/spf.c - SPF (RFC 7208) with libspf2, every DNS query through
 * dm_resolver (so through one libunbound cache, with real timeouts, and
 * never through libresolv).
 *
 * libspf2 does the record syntax and the mechanism logic. What it gets
 * wrong or leaves out is done here, in a DNS layer of our own
 * (SPF_dns_server_t) and in the query sequence:
 *  - record selection (RFC 7208 4.5): libspf2's own wants "v=spf1 " with
 *    a space (so a bare "v=spf1" would be "none"), asks the obsolete type
 *    99 first, leaves the result unset on a DNS failure and accepts a
 *    second redirect= or exp=. Our get_spf hook selects, and says none,
 *    temperror or permerror itself.
 *  - the limits of RFC 7208 4.6.4: libspf2 counts DNS terms per record,
 *    afresh in every include, so includes multiply them, and it has no
 *    void-lookup limit. The layer counts terms and void lookups over the
 *    whole evaluation, in a per-check state the evaluating thread points
 *    to (libspf2 runs a check synchronously in the caller's thread).
 *    Past a limit every further query is answered "no such name" without
 *    asking, and the result is permerror.
 *  - explanations (exp=) are never fetched: DMARC has no use for them,
 *    and libspf2's fetch path leaks the DNS answer.
 *  - libspf2's SPF_request_query_mailfrom() lets 127/8 and ::1 pass for
 *    any domain; that would let a local user pass SPF as anybody, so the
 *    record is fetched and interpreted here with the same public calls,
 *    minus that shortcut.
 *
 * Threads: one SPF_server_t serves all of them. During checks it is only
 * read; requests, responses and DNS answers are per check; the layer
 * keeps no state but the thread-local accounting. The libspf2 paths used
 * (compile, interpret, macro expansion, get_client_dom) keep their
 * buffers on the stack or the heap. So no lock. The log handlers are
 * process globals, set once in dm_spf_new().
 */
#include "config.h"

#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <spf2/spf.h>

#include "dm_from.h"
#include "dm_log.h"
#include "dm_resolver.h"
#include "dm_spf.h"

#define SPF_TERMS_MAX	10	/* DNS-querying terms, RFC 7208 4.6.4 */
#define SPF_VOIDS_MAX	2	/* terms with an empty answer, idem */
#define SPF_QUERIES_MAX	150	/* every query of a check: a backstop */
#define SPF_HOSTS_MAX	10	/* libspf2 resolves at most 10 MX/PTR names */

struct dm_spf {
	dm_resolver *r;
	SPF_server_t *server;
	SPF_dns_server_t *layer;
};

/* The accounting of one evaluation; lives on dm_spf_check()'s stack. */
struct spf_eval {
	int records;	/* SPF records fetched; all but the first are terms */
	int terms;
	int voids;
	int queries;
	const char *over;	/* the limit passed, or NULL */
	/* names of the last MX/PTR answer, whose addresses are no terms */
	char hosts[SPF_HOSTS_MAX][DM_DOMAIN_MAX];
	int nhosts, nexthost;
};

static __thread struct spf_eval *spf_cur;

/* --- libspf2's log, into ours ----------------------------------------- */

static void spf_log_error(const char *, int, const char *)
	__attribute__((noreturn));

static void
spf_log_error(const char *file, int line, const char *msg)
{
	dm_err("libspf2: %s (%s:%d)", msg, file != NULL ? file : "?", line);
	/* libspf2 aborts after this handler returns anyway */
	abort();
}

static void
spf_log_warning(const char *file, int line, const char *msg)
{
	dm_warn("libspf2: %s", msg);
}

static void
spf_log_debug(const char *file, int line, const char *msg)
{
	dm_debug("libspf2: %s", msg);
}

/* --- accounting --------------------------------------------------------- */

/*
 * Is this lookup a term of its own (a, mx, ptr, exists), or the address
 * of a name from the MX/PTR answer just before it? libspf2 resolves those
 * names at once and in answer order, so they are recognised by name.
 */
static int
spf_is_term(struct spf_eval *ev, const char *domain, ns_type type,
    int cache)
{
	switch (type) {
	case ns_t_mx:
		return 1;
	case ns_t_ptr:
		/* the ptr mechanism asks cached; %{p} expansion uncached */
		return cache;
	case ns_t_a:
	case ns_t_aaaa:
		if (ev->nexthost < ev->nhosts &&
		    strcasecmp(domain, ev->hosts[ev->nexthost]) == 0) {
			ev->nexthost++;
			return 0;
		}
		ev->nhosts = ev->nexthost = 0;
		return 1;
	default:
		return 0;
	}
}

/* Count one query; returns -1 when a limit is (or was) passed. */
static int
spf_account(struct spf_eval *ev, int term)
{
	if (ev->over == NULL && ++ev->queries > SPF_QUERIES_MAX)
		ev->over = "too many DNS queries";
	if (ev->over == NULL && term && ++ev->terms > SPF_TERMS_MAX)
		ev->over = "more than 10 DNS-querying terms (RFC 7208 4.6.4)";
	return ev->over != NULL ? -1 : 0;
}

static void
spf_account_void(struct spf_eval *ev, int term, dm_dns_status st)
{
	if (!term || (st != DM_DNS_NXDOMAIN && st != DM_DNS_NODATA))
		return;
	if (++ev->voids > SPF_VOIDS_MAX && ev->over == NULL)
		ev->over = "more than 2 void lookups (RFC 7208 4.6.4)";
}

/* --- the DNS layer ------------------------------------------------------ */

static SPF_dns_rr_t *
spf_rr_new(SPF_dns_server_t *ds, const char *domain, ns_type type,
    int herrno)
{
	SPF_dns_rr_t *rr;

	/* libspf2 aborts on a NULL answer: fail the way we choose */
	if ((rr = SPF_dns_rr_new_init(ds, domain, type, 0, herrno)) == NULL)
		dm_log_oom();
	return rr;
}

static int
spf_herrno(dm_dns_status st)
{
	switch (st) {
	case DM_DNS_OK:		return NETDB_SUCCESS;
	case DM_DNS_NODATA:	return NO_DATA;
	case DM_DNS_TEMPFAIL:	return TRY_AGAIN;
	case DM_DNS_NXDOMAIN:
	case DM_DNS_PERMFAIL:
		break;
	}
	return HOST_NOT_FOUND;
}

/*
 * Names with bytes that cannot be written plainly are refused: they are
 * no host names, and an escaped form would not look up the same name.
 */
int
dm_spf_wire_name(const unsigned char *p, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0, lab, k;

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

static int
spf_rr_put(SPF_dns_rr_t *rr, int idx, const void *data, size_t len)
{
	if (SPF_dns_rr_buf_realloc(rr, idx, len) != SPF_E_SUCCESS)
		return -1;
	memcpy(rr->rr[idx], data, len);
	return 0;
}

/* One RDATA into slot idx; 1 when stored, 0 when skipped, -1 on ENOMEM. */
static int
spf_rr_add(SPF_dns_rr_t *rr, int idx, ns_type type, const dm_rr *d)
{
	char name[DM_DOMAIN_MAX];

	switch (type) {
	case ns_t_a:
		if (d->len != sizeof(struct in_addr))
			return 0;
		return spf_rr_put(rr, idx, d->data, d->len) == 0 ? 1 : -1;
	case ns_t_aaaa:
		if (d->len != sizeof(struct in6_addr))
			return 0;
		return spf_rr_put(rr, idx, d->data, d->len) == 0 ? 1 : -1;
	case ns_t_mx:
		if (d->len < 3 || dm_spf_wire_name(d->data + 2, d->len - 2,
		    name, sizeof(name)) != 0)
			return 0;
		break;
	case ns_t_ptr:
		if (dm_spf_wire_name(d->data, d->len, name, sizeof(name)) != 0)
			return 0;
		break;
	default:
		return 0;
	}
	return spf_rr_put(rr, idx, name, strlen(name) + 1) == 0 ? 1 : -1;
}

static void
spf_remember_hosts(struct spf_eval *ev, const SPF_dns_rr_t *rr)
{
	int i;

	ev->nhosts = ev->nexthost = 0;
	/* mx and ptr are the same bytes of libspf2's RDATA union */
	for (i = 0; i < rr->num_rr && i < SPF_HOSTS_MAX; i++)
		snprintf(ev->hosts[ev->nhosts++], DM_DOMAIN_MAX, "%s",
		    rr->rr[i]->mx);
}

static SPF_dns_rr_t *
spf_query_txt(dm_spf *s, SPF_dns_server_t *ds, const char *domain,
    dm_dns_status *st)
{
	SPF_dns_rr_t *rr;
	dm_txt *txt;
	size_t i, n;

	*st = dm_resolver_txt(s->r, domain, &txt, &n);
	rr = spf_rr_new(ds, domain, ns_t_txt, spf_herrno(*st));
	for (i = 0; i < n; i++)
		if (spf_rr_put(rr, (int)i, txt[i].data, txt[i].len + 1) != 0) {
			rr->herrno = TRY_AGAIN;
			break;
		}
	rr->num_rr = (int)i;
	dm_txt_free(txt, n);
	return rr;
}

static SPF_dns_rr_t *
spf_query(dm_spf *s, SPF_dns_server_t *ds, const char *domain,
    ns_type type, dm_dns_status *st)
{
	SPF_dns_rr_t *rr;
	dm_rr *rrs;
	size_t i, n;
	int cnt = 0, rc;

	if (type == ns_t_txt)
		return spf_query_txt(s, ds, domain, st);
	*st = dm_resolver_lookup(s->r, domain, (int)type, &rrs, &n);
	rr = spf_rr_new(ds, domain, type, spf_herrno(*st));
	for (i = 0; i < n; i++) {
		if ((rc = spf_rr_add(rr, cnt, type, &rrs[i])) < 0) {
			rr->herrno = TRY_AGAIN;
			break;
		}
		cnt += rc;
	}
	rr->num_rr = cnt;
	if (cnt == 0 && rr->herrno == NETDB_SUCCESS)
		rr->herrno = NO_DATA;
	dm_rr_free(rrs, n);
	return rr;
}

/* The layer's lookup: libspf2 asks A, AAAA, MX, PTR here. */
static SPF_dns_rr_t *
spf_layer_lookup(SPF_dns_server_t *ds, const char *domain, ns_type type,
    int should_cache)
{
	dm_spf *s = ds->hook;
	struct spf_eval *ev = spf_cur;
	SPF_dns_rr_t *rr;
	dm_dns_status st;
	int term = 0;

	/* type 99 is obsolete (RFC 7208 3.1): not worth a query */
	if (type == ns_t_spf)
		return spf_rr_new(ds, domain, type, NO_DATA);
	if (ev != NULL) {
		term = spf_is_term(ev, domain, type, should_cache);
		if (spf_account(ev, term) != 0)
			return spf_rr_new(ds, domain, type, HOST_NOT_FOUND);
	}
	rr = spf_query(s, ds, domain, type, &st);
	if (ev != NULL) {
		spf_account_void(ev, term, st);
		if (type == ns_t_mx || type == ns_t_ptr)
			spf_remember_hosts(ev, rr);
	}
	return rr;
}

/* --- record selection (the get_spf hook) -------------------------------- */

static int
spf_is_v1(const char *txt, size_t len)
{
	return len >= 6 && strncasecmp(txt, "v=spf1", 6) == 0 &&
	    (len == 6 || txt[6] == ' ');
}

/* RFC 7208 6: redirect= and exp= at most once each. */
static int
spf_modifier_twice(const char *txt)
{
	const char *p = txt;
	int redirect = 0, exp = 0;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (strncasecmp(p, "redirect=", 9) == 0)
			redirect++;
		else if (strncasecmp(p, "exp=", 4) == 0)
			exp++;
		while (*p != '\0' && *p != ' ')
			p++;
	}
	return redirect > 1 || exp > 1;
}

/* Say the verdict on a record fetch: "<what> <domain>" for the logs. */
static SPF_errcode_t
spf_give(SPF_response_t *resp, SPF_result_t result, SPF_errcode_t err,
    const char *what, const char *domain)
{
	resp->result = result;
	resp->reason = SPF_REASON_FAILURE;
	resp->err = err;
	return SPF_response_add_error(resp, err, "%s %s", what, domain);
}

/* Exactly one "v=spf1" record among the TXT records, compiled. */
static SPF_errcode_t
spf_select(SPF_server_t *server, SPF_response_t *resp, const char *domain,
    const dm_txt *txt, size_t n, SPF_record_t **recp)
{
	SPF_errcode_t err;
	size_t i, found = 0, count = 0;

	for (i = 0; i < n; i++)
		if (spf_is_v1(txt[i].data, txt[i].len)) {
			found = i;
			count++;
		}
	if (count == 0)
		return spf_give(resp, SPF_RESULT_NONE, SPF_E_NOT_SPF,
		    "no SPF record at", domain);
	if (count > 1)
		return spf_give(resp, SPF_RESULT_PERMERROR,
		    SPF_E_MULTIPLE_RECORDS, "several SPF records at",
		    domain);
	if (strlen(txt[found].data) != txt[found].len ||
	    spf_modifier_twice(txt[found].data))
		return spf_give(resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX,
		    "malformed SPF record at", domain);
	err = SPF_record_compile(server, resp, recp, txt[found].data);
	if (err == SPF_E_NO_MEMORY)
		return spf_give(resp, SPF_RESULT_TEMPERROR, err,
		    "out of memory compiling the record of", domain);
	if (err != SPF_E_SUCCESS) {
		if (*recp != NULL)
			SPF_record_free(*recp);
		*recp = NULL;
		return spf_give(resp, SPF_RESULT_PERMERROR, err,
		    "syntax error in the SPF record of", domain);
	}
	return SPF_E_SUCCESS;
}

/*
 * libspf2 calls this for check_host()'s own record and for every include
 * and redirect. On failure it must say why: SPF_E_DNS_ERROR makes an
 * include temperror, anything else permerror (RFC 7208 5.2, 6.1).
 */
static SPF_errcode_t
spf_get_record(SPF_server_t *server, SPF_request_t *req,
    SPF_response_t *resp, SPF_record_t **recp)
{
	dm_spf *s = server->resolver->hook;
	struct spf_eval *ev = spf_cur;
	const char *domain = req->cur_dom;
	SPF_errcode_t err;
	dm_dns_status st;
	dm_txt *txt;
	size_t n;
	int term = 0;

	*recp = NULL;
	if (ev != NULL) {
		term = ev->records++ > 0;
		if (spf_account(ev, term) != 0)
			return spf_give(resp, SPF_RESULT_PERMERROR,
			    SPF_E_BIG_DNS, "DNS limit passed before",
			    domain);
	}
	st = dm_resolver_txt(s->r, domain, &txt, &n);
	if (ev != NULL)
		spf_account_void(ev, term, st);
	if (st == DM_DNS_TEMPFAIL)
		err = spf_give(resp, SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR,
		    "temporary DNS failure at", domain);
	else if (st != DM_DNS_OK)
		err = spf_give(resp, SPF_RESULT_NONE, SPF_E_NOT_SPF,
		    "no SPF record (no such name or no TXT) at",
		    domain);
	else
		err = spf_select(server, resp, domain, txt, n, recp);
	dm_txt_free(txt, n);
	return err;
}

/* The get_exp hook: a fixed text instead of a DNS query. */
static SPF_errcode_t
spf_get_exp(SPF_server_t *server, const char *domain, char **buf,
    size_t *buflen)
{
	static const char text[] = "explanation not fetched";
	char *p;

	if (*buf == NULL || *buflen < sizeof(text)) {
		if ((p = realloc(*buf, sizeof(text))) == NULL)
			return SPF_E_NO_MEMORY;
		*buf = p;
		*buflen = sizeof(text);
	}
	memcpy(*buf, text, sizeof(text));
	return SPF_E_SUCCESS;
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
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->layer = calloc(1, sizeof(*s->layer))) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	SPF_error_handler = spf_log_error;
	SPF_warning_handler = spf_log_warning;
	SPF_info_handler = spf_log_debug;
	SPF_debug_handler = spf_log_debug;
	s->r = r;
	/* destroy stays NULL: the layer is ours to free, after the server */
	s->layer->lookup = spf_layer_lookup;
	s->layer->get_spf = spf_get_record;
	s->layer->get_exp = spf_get_exp;
	s->layer->name = "dm_resolver";
	s->layer->hook = s;
	if ((s->server = SPF_server_new_dns(s->layer, 0)) == NULL) {
		snprintf(err, errlen, "SPF_server_new_dns failed");
		dm_spf_free(s);
		return NULL;
	}
	return s;
}

void
dm_spf_free(dm_spf *s)
{
	if (s == NULL)
		return;
	if (s->server != NULL)
		SPF_server_free(s->server);
	free(s->layer);
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

/* The client address; an IPv4-mapped IPv6 address is the IPv4 host. */
static int
spf_set_ip(SPF_request_t *req, const char *ip)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (ip == NULL)
		return -1;
	if (strncasecmp(ip, "IPv6:", 5) == 0)
		ip += 5;
	if (inet_pton(AF_INET, ip, &a4) == 1)
		return SPF_request_set_ipv4(req, a4) == SPF_E_SUCCESS ? 0 : -1;
	if (inet_pton(AF_INET6, ip, &a6) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[12], sizeof(a4));
		return SPF_request_set_ipv4(req, a4) == SPF_E_SUCCESS ? 0 : -1;
	}
	return SPF_request_set_ipv6(req, a6) == SPF_E_SUCCESS ? 0 : -1;
}

/* <sender> for the macros: local-part@domain. */
static int
spf_set_sender(SPF_request_t *req, const char *lp, size_t lplen,
    const char *domain)
{
	char *sender;
	size_t len = lplen + strlen(domain) + 2;
	int rc;

	if ((sender = malloc(len)) == NULL)
		return -1;
	snprintf(sender, len, "%.*s@%s", (int)lplen, lp, domain);
	rc = SPF_request_set_env_from(req, sender);
	free(sender);
	return rc == SPF_E_SUCCESS ? 0 : -1;
}

/*
 * check_host() without libspf2's free pass for loopback clients:
 * what SPF_request_query_mailfrom() does, minus that shortcut.
 */
static SPF_errcode_t
spf_run(dm_spf *s, SPF_request_t *req, SPF_response_t *resp)
{
	SPF_record_t *rec = NULL;
	SPF_errcode_t err;

	req->cur_dom = req->use_helo ? req->helo_dom : req->env_from_dp;
	err = SPF_server_get_record(s->server, req, resp, &rec);
	if (err != SPF_E_SUCCESS) {
		if (rec != NULL)
			SPF_record_free(rec);
		return err;
	}
	resp->spf_record_exp = rec;
	err = SPF_record_interpret(rec, req, resp, 0);
	SPF_record_free(rec);
	resp->spf_record_exp = NULL;
	return err;
}

static dm_spf_result
spf_result(SPF_result_t r, SPF_errcode_t err)
{
	switch (r) {
	case SPF_RESULT_NEUTRAL:	return DM_SPF_NEUTRAL;
	case SPF_RESULT_PASS:		return DM_SPF_PASS;
	case SPF_RESULT_FAIL:		return DM_SPF_FAIL;
	case SPF_RESULT_SOFTFAIL:	return DM_SPF_SOFTFAIL;
	case SPF_RESULT_NONE:		return DM_SPF_NONE;
	case SPF_RESULT_TEMPERROR:	return DM_SPF_TEMPERROR;
	case SPF_RESULT_PERMERROR:	return DM_SPF_PERMERROR;
	case SPF_RESULT_INVALID:
		break;
	}
	/* no verdict: a DNS failure is temporary, anything else is not */
	return err == SPF_E_DNS_ERROR || err == SPF_E_NO_MEMORY ?
	    DM_SPF_TEMPERROR : DM_SPF_PERMERROR;
}

/* For logs: the first error libspf2 noted, else its header comment. */
static void
spf_comment(dm_spf_outcome *out, SPF_request_t *req, SPF_response_t *resp)
{
	const char *c, *rec_dom;
	size_t len;
	int i;

	for (i = 0; i < SPF_response_messages(resp); i++)
		if (SPF_error_errorp(SPF_response_message(resp, i))) {
			snprintf(out->comment, sizeof(out->comment), "%s",
			    SPF_error_message(SPF_response_message(resp, i)));
			return;
		}
	if ((c = SPF_response_get_header_comment(resp)) == NULL)
		return;
	rec_dom = SPF_request_get_rec_dom(req);
	len = rec_dom != NULL ? strlen(rec_dom) : 0;
	if (len > 0 && strncmp(c, rec_dom, len) == 0 &&
	    strncmp(c + len, ": ", 2) == 0)
		c += len + 2;
	snprintf(out->comment, sizeof(out->comment), "%s", c);
}

static dm_status
spf_evaluate(dm_spf *s, SPF_request_t *req, dm_spf_outcome *out)
{
	struct spf_eval *ev;
	SPF_response_t *resp;
	SPF_errcode_t err;

	if ((ev = calloc(1, sizeof(*ev))) == NULL)
		return DM_NOMEM;
	if ((resp = SPF_response_new(req)) == NULL) {
		free(ev);
		return DM_NOMEM;
	}
	spf_cur = ev;
	err = spf_run(s, req, resp);
	spf_cur = NULL;
	if (ev->over != NULL) {
		out->result = DM_SPF_PERMERROR;
		snprintf(out->comment, sizeof(out->comment), "%s", ev->over);
	} else {
		out->result = spf_result(SPF_response_result(resp), err);
		spf_comment(out, req, resp);
	}
	if (err == SPF_E_NO_MEMORY || resp->err == SPF_E_NO_MEMORY)
		err = SPF_E_NO_MEMORY;
	SPF_response_free(resp);
	free(ev);
	return err == SPF_E_NO_MEMORY ? DM_NOMEM : DM_OK;
}

dm_status
dm_spf_check(dm_spf *s, const char *ip, const char *helo,
    const char *mail_from, dm_spf_outcome *out)
{
	SPF_request_t *req;
	const char *lp;
	size_t lplen;
	dm_status st = DM_NOMEM;

	memset(out, 0, sizeof(*out));
	out->result = DM_SPF_NONE;
	if ((lp = spf_identity(out, helo, mail_from, &lplen)) == NULL)
		return DM_OK;
	if ((req = SPF_request_new(s->server)) == NULL)
		return DM_NOMEM;
	if (spf_set_ip(req, ip) != 0) {
		dm_warn("spf: client address \"%s\" is not an IP address",
		    ip != NULL ? ip : "(null)");
		spf_none(out, "no usable client address");
		st = DM_OK;
		goto done;
	}
	if (spf_set_sender(req, lp, lplen, out->domain) != 0)
		goto done;
	/* the helo_dom is the HELO identity's domain, or %{h} as given */
	if (out->scope == DM_SPF_SCOPE_HELO || (helo != NULL && *helo != '\0'))
		if (SPF_request_set_helo_dom(req, out->scope ==
		    DM_SPF_SCOPE_HELO ? out->domain : helo) != SPF_E_SUCCESS)
			goto done;
	req->use_helo = out->scope == DM_SPF_SCOPE_HELO;
	st = spf_evaluate(s, req, out);
done:
	SPF_request_free(req);
	return st;
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
