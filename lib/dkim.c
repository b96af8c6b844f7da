/*
 * lib/dkim.c - DKIM verification (RFC 6376, RFC 8463, RFC 8301) with
 * libopendkim. Owns the one DKIM_LIB of the process, the glue that sends
 * every key query of libopendkim through dm_resolver, and the mapping of
 * libopendkim's per-signature outcome to the result words of RFC 8601.
 *
 * Every signature of a message is verified and reported, in header
 * order, not only the first good one: DMARC needs the aligned one, which
 * need not be the first.
 *
 * What libopendkim gets wrong or leaves open is settled here: each
 * DKIM-Signature is checked against RFC 6376's syntax first
 * (dm_dkimsig.h; a malformed one is permerror and its key is never
 * fetched), a body without a final CRLF gets one, and a signature whose
 * l= leaves body unsigned is not a pass unless configured.
 */
#include "config.h"

#include <sys/types.h>
#include <arpa/nameser.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/string.h>
#include <opendkim/dkim.h>

#include "dm_dkim.h"
#include "dm_dkimkey.h"
#include "dm_dkimsig.h"
#include "dm_domain.h"
#include "dm_log.h"

/*
 * At most this many signatures of one message are verified: each costs a
 * key lookup and a public-key operation, and a sender can add as many
 * DKIM-Signature fields as it likes. Signatures beyond the cap are still
 * reported, as "policy". Signatures already refused for their syntax do
 * not count: they cost nothing.
 */
#define DKIM_MAX_VERIFY	16

/* RFC 8301 3.2: shorter RSA keys MUST NOT be considered valid. */
#define DKIM_MIN_RSA_BITS 1024

#define DKIM_SIGHDR	"DKIM-Signature"

struct dm_dkim {
	DKIM_LIB *lib;
	dm_resolver *resolver;
	bool partial_pass;	/* an l= that leaves body out may pass */
};

/*
 * The length of the body under each canonicalization (RFC 6376 3.4.3,
 * 3.4.4), counted as it streams past: an l= shorter than that leaves
 * part of the body unsigned. Kept only when a signature has l=.
 */
struct dkim_bodylen {
	uint64_t pos;		/* raw bytes so far */
	uint64_t simple_end;	/* simple: through the last non-empty line */
	uint64_t rel_acc;	/* relaxed: through the last CRLF */
	uint64_t rel_end;	/* relaxed: through the last non-empty line */
	uint64_t rel_cur;	/* relaxed: the current line so far */
	uint64_t linelen;	/* raw bytes of the current line */
	bool rel_ws;		/* WSP not yet written in the current line */
	bool cr;		/* the last byte was a CR */
};

enum dkim_msg_state { MSG_HEADERS, MSG_BODY, MSG_DONE };

struct dm_dkim_msg {
	dm_dkim *d;
	DKIM *dkim;
	char qid[64];		/* libopendkim keeps a pointer to it */
	enum dkim_msg_state state;
	bool unsigned_msg;	/* no DKIM-Signature at all */
	bool noverify;		/* signed, but none is to be verified */
	dm_status failed;	/* the library handle broke: sticky */
	dm_status status;	/* what dm_dkim_eom returned */
	size_t nsighdr;		/* DKIM-Signature fields seen */
	const char **sigwhy;	/* per field: what dm_dkimsig_check refused */
	size_t nsigwhy;		/* fields the library kept */
	size_t capwhy;
	bool sigwhy_lost;	/* sigwhy could not grow: do not match */
	bool any_l;		/* some signature has l= */
	bool body_seen;		/* at least one body byte */
	bool body_crlf;		/* the body so far ends in CRLF */
	unsigned char body_last; /* its last byte */
	struct dkim_bodylen blen;
	dm_dkim_sig *sigs;
	size_t nsigs;
	dm_dkim_sig fallback;	/* reported when the handle broke early */
};

/*
 * One key query of libopendkim. The lookup is done synchronously when it
 * starts; libopendkim then asks for the outcome stored here.
 */
struct dkim_query {
	int status;		/* DKIM_DNS_SUCCESS or DKIM_DNS_ERROR */
	size_t len;		/* reply bytes in libopendkim's buffer */
};

/*
 * libopendkim's sigerror codes other than "it verified". Anything not
 * listed is a signature the verifier cannot even read (a missing or bad
 * tag, an unknown algorithm or version): RFC 6376 6.1.1 makes that a
 * PERMFAIL, "permerror" in RFC 8601 terms, and never anything better.
 */
static const struct {
	int error;
	dm_dkim_result result;
} dkim_errmap[] = {
	/* the signature or the body hash does not match the message */
	{ DKIM_SIGERROR_BADSIG, DM_DKIM_FAIL },
	{ DKIM_SIGERROR_TOOLARGE_L, DM_DKIM_FAIL },
	/* the key could not be fetched now: a later attempt may succeed */
	{ DKIM_SIGERROR_KEYFAIL, DM_DKIM_TEMPERROR },
	/* no usable key: asking again gives the same answer */
	{ DKIM_SIGERROR_NOKEY, DM_DKIM_PERMERROR },
	{ DKIM_SIGERROR_KEYREVOKED, DM_DKIM_PERMERROR },
	{ DKIM_SIGERROR_DNSSYNTAX, DM_DKIM_PERMERROR },
	{ DKIM_SIGERROR_MULTIREPLY, DM_DKIM_PERMERROR },
	{ DKIM_SIGERROR_KEYVERSION, DM_DKIM_PERMERROR },
	{ DKIM_SIGERROR_KEYUNKNOWNHASH, DM_DKIM_PERMERROR },
	{ DKIM_SIGERROR_KEYHASHMISMATCH, DM_DKIM_PERMERROR },
	{ DKIM_SIGERROR_NOTEMAILKEY, DM_DKIM_PERMERROR },
	{ DKIM_SIGERROR_KEYTYPEMISSING, DM_DKIM_PERMERROR },
	{ DKIM_SIGERROR_KEYTYPEUNKNOWN, DM_DKIM_PERMERROR },
	{ DKIM_SIGERROR_KEYDECODE, DM_DKIM_PERMERROR },
	{ DKIM_SIGERROR_SUBDOMAIN, DM_DKIM_PERMERROR },
	/* readable and perhaps correct, but not acceptable here */
	{ DKIM_SIGERROR_EXPIRED, DM_DKIM_POLICY },
	{ DKIM_SIGERROR_FUTURE, DM_DKIM_POLICY },
	{ DKIM_SIGERROR_KEYTOOSMALL, DM_DKIM_POLICY },
	{ DKIM_SIGERROR_MBSFAILED, DM_DKIM_POLICY },
};

/* ---- DNS through dm_resolver ------------------------------------------ */

/*
 * Encode name as the question name of a reply packet (RFC 1035 3.1).
 * Returns the bytes written, or 0 when it cannot be encoded.
 */
static size_t
dkim_dns_put_name(unsigned char *p, size_t room, const char *name)
{
	const char *s = name, *dot;
	size_t n = 0, lab;

	while (*s != '\0') {
		dot = strchr(s, '.');
		lab = dot != NULL ? (size_t)(dot - s) : strlen(s);
		if (lab == 0 || lab > NS_MAXLABEL || n + lab + 2 > NS_MAXCDNAME ||
		    n + lab + 2 > room)
			return 0;
		p[n++] = (unsigned char)lab;
		memcpy(p + n, s, lab);
		n += lab;
		s += lab;
		if (*s == '.')
			s++;
	}
	if (n + 1 > room)
		return 0;
	p[n++] = 0;
	return n;
}

/*
 * An answer without records, with rcode (NXDOMAIN or NOERROR/NODATA):
 * libopendkim reads "no key" from it. Made here rather than taken from the
 * resolver so that the outcome does not depend on what a negative answer
 * left in the buffer. Returns its length, 0 if it does not fit.
 */
static size_t
dkim_dns_negative(unsigned char *buf, size_t buflen, const char *name,
    int type, int rcode)
{
	unsigned char *p;
	size_t n;

	if (buflen < NS_HFIXEDSZ + 1 + NS_QFIXEDSZ)
		return 0;
	memset(buf, 0, NS_HFIXEDSZ);
	buf[2] = 0x81;				/* QR, RD */
	buf[3] = 0x80 | (rcode & 0x0f);		/* RA, rcode */
	buf[5] = 1;				/* QDCOUNT */
	n = dkim_dns_put_name(buf + NS_HFIXEDSZ,
	    buflen - NS_HFIXEDSZ - NS_QFIXEDSZ, name);
	if (n == 0) {
		/* the question name only labels libopendkim's messages */
		buf[NS_HFIXEDSZ] = 0;
		n = 1;
	}
	p = buf + NS_HFIXEDSZ + n;
	p[0] = (unsigned char)((type >> 8) & 0xff);
	p[1] = (unsigned char)(type & 0xff);
	p[2] = 0;
	p[3] = ns_c_in;
	return NS_HFIXEDSZ + n + NS_QFIXEDSZ;
}

/*
 * libopendkim's query start: the whole lookup happens here, into its
 * buffer, because libopendkim parses the reply packet itself.
 */
static int
dkim_dns_start(void *srv, int type, unsigned char *query, unsigned char *buf,
    size_t buflen, void **qh)
{
	dm_resolver *r = srv;
	struct dkim_query *q;
	dm_dns_status st;
	size_t len = 0;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return DKIM_DNS_ERROR;	/* libopendkim: key retrieval failed */
	st = dm_resolver_packet(r, (const char *)query, type, buf, buflen,
	    &len);
	switch (st) {
	case DM_DNS_OK:
		q->status = DKIM_DNS_SUCCESS;
		q->len = len;
		break;
	case DM_DNS_NXDOMAIN:
	case DM_DNS_PERMFAIL:
		/* an invalid name or an oversized reply holds no key either */
		q->len = dkim_dns_negative(buf, buflen, (const char *)query,
		    type, ns_r_nxdomain);
		q->status = q->len > 0 ? DKIM_DNS_SUCCESS : DKIM_DNS_ERROR;
		break;
	case DM_DNS_NODATA:
		q->len = dkim_dns_negative(buf, buflen, (const char *)query,
		    type, ns_r_noerror);
		q->status = q->len > 0 ? DKIM_DNS_SUCCESS : DKIM_DNS_ERROR;
		break;
	case DM_DNS_TEMPFAIL:
	default:
		/* libopendkim turns this into DKIM_SIGERROR_KEYFAIL */
		q->status = DKIM_DNS_ERROR;
		break;
	}
	*qh = q;
	return 0;
}

static int
dkim_dns_waitreply(void *srv, void *qh, struct timeval *timeout,
    size_t *bytes, int *error, int *dnssec)
{
	struct dkim_query *q = qh;

	if (bytes != NULL)
		*bytes = q->len;
	if (error != NULL)
		*error = 0;
	if (dnssec != NULL)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	return q->status;
}

/* Called once for every query, finished or not. */
static int
dkim_dns_cancel(void *srv, void *qh)
{
	free(qh);
	return DKIM_DNS_SUCCESS;
}

/* ---- the library handle ------------------------------------------------ */

/*
 * What dm_dkimsig_check said of the i-th of n signatures, or NULL. The
 * library lists the DKIM-Signature fields it kept in field order, as
 * dm_dkim_header saw them; if the counts differ the fields cannot be
 * matched, and no signature may pass (dkim_sig_outcome).
 */
static const char *
dkim_syntax_of(const dm_dkim_msg *m, int i, int n)
{
	if (m->sigwhy_lost || m->nsigwhy != (size_t)n)
		return "signature fields could not be checked";
	return m->sigwhy[i];
}

/*
 * Enforces the cap on verified signatures (see DKIM_MAX_VERIFY), and
 * keeps the library from looking up the key of a signature whose syntax
 * is wrong: its d= may be any string.
 */
static DKIM_CBSTAT
dkim_prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	const dm_dkim_msg *m = dkim_get_user_context(dkim);
	int i, live = 0;

	for (i = 0; i < nsigs; i++) {
		if (dkim_sig_geterror(sigs[i]) != DKIM_SIGERROR_UNKNOWN)
			continue;
		if (m == NULL || dkim_syntax_of(m, i, nsigs) != NULL) {
			dkim_sig_ignore(sigs[i]);
			continue;
		}
		if (++live > DKIM_MAX_VERIFY)
			dkim_sig_ignore(sigs[i]);
	}
	return DKIM_CBSTAT_CONTINUE;
}

static bool
dkim_lib_setup(DKIM_LIB *lib, dm_resolver *r)
{
	/*
	 * BADSIGHANDLES: a DKIM-Signature the library cannot parse still
	 * gets a handle, so that it is reported rather than dropped. No
	 * VERIFYONE (every signature is verified), no EOHCHECK, no
	 * STRICTHDRS (duplicate fields are DMARC's business, not a reason to
	 * stop verifying). libopendkim honours l=; whether a signature
	 * over part of the body may pass is decided here
	 * (dkim_partial_body). No FIXCRLF: see dm_dkim_eom.
	 */
	unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES;
	unsigned int minbits = DKIM_MIN_RSA_BITS;
	dkim_query_t qm = DKIM_QUERY_DNS;

	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
	    sizeof(flags)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &minbits,
	    sizeof(minbits)) != DKIM_STAT_OK ||
	    /* q= of a signature must not select anything but DNS */
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm,
	    sizeof(qm)) != DKIM_STAT_OK)
		return false;
	if (dkim_set_prescreen(lib, dkim_prescreen) != DKIM_STAT_OK)
		return false;
	(void)dkim_dns_set_query_service(lib, r);
	dkim_dns_set_query_start(lib, dkim_dns_start);
	dkim_dns_set_query_waitreply(lib, dkim_dns_waitreply);
	dkim_dns_set_query_cancel(lib, dkim_dns_cancel);
	/* our resolver is not libresolv's: never res_init/res_close it */
	dkim_dns_set_init(lib, NULL);
	dkim_dns_set_close(lib, NULL);
	return true;
}

dm_dkim *
dm_dkim_new(dm_resolver *r, char *err, size_t errlen)
{
	dm_dkim *d;

	if (r == NULL) {
		snprintf(err, errlen, "dkim: no resolver");
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "dkim: out of memory");
		return NULL;
	}
	d->resolver = r;
	if (dm_dkimkey_init(err, errlen) != DM_OK)
		goto fail;
	if ((d->lib = dkim_init(NULL, NULL)) == NULL) {
		snprintf(err, errlen, "dkim: dkim_init failed");
		goto fail;
	}
	if (!dkim_lib_setup(d->lib, r)) {
		snprintf(err, errlen, "dkim: cannot set libopendkim options");
		goto fail;
	}
	if (!dkim_libfeature(d->lib, DKIM_FEATURE_ED25519))
		dm_warn("dkim: libopendkim has no Ed25519: ed25519-sha256 "
		    "signatures will be permerror");
	return d;
fail:
	dm_dkim_free(d);
	return NULL;
}

void
dm_dkim_set_partial_pass(dm_dkim *d, bool accept)
{
	d->partial_pass = accept;
}

void
dm_dkim_free(dm_dkim *d)
{
	if (d == NULL)
		return;
	if (d->lib != NULL)
		dkim_close(d->lib);
	free(d);
}

/* ---- one message ------------------------------------------------------- */

static const char *
dkim_stat_str(DKIM_STAT st)
{
	const char *s = dkim_getresultstr(st);

	return s != NULL ? s : "unknown status";
}

dm_dkim_msg *
dm_dkim_msg_new(dm_dkim *d, const char *qid)
{
	dm_dkim_msg *m;
	DKIM_STAT st = DKIM_STAT_OK;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->d = d;
	strlcpy(m->qid, qid != NULL ? qid : "", sizeof(m->qid));
	m->dkim = dkim_verify(d->lib, (const unsigned char *)m->qid, NULL,
	    &st);
	if (m->dkim == NULL) {
		dm_log_qid(DM_LOG_ERR, m->qid, "dkim: dkim_verify: %s",
		    dkim_stat_str(st));
		free(m);
		return NULL;
	}
	m->body_crlf = true;	/* an empty body needs no CRLF added */
	(void)dkim_set_user_context(m->dkim, m);
	return m;
}

void
dm_dkim_msg_free(dm_dkim_msg *m)
{
	if (m == NULL)
		return;
	if (m->dkim != NULL)
		dkim_free(m->dkim);
	free(m->sigs);
	free(m->sigwhy);
	free(m);
}

/* The library handle is unusable from now on; remember why. */
static dm_status
dkim_broken(dm_dkim_msg *m, const char *where, DKIM_STAT st)
{
	const char *why = dkim_geterror(m->dkim);

	if (st == DKIM_STAT_NORESOURCE)
		dm_log_oom();	/* libopendkim's word for out of memory */
	m->failed = DM_TEMPFAIL;
	dm_log_qid(DM_LOG_WARNING, m->qid, "dkim: %s: %s%s%s", where,
	    dkim_stat_str(st), why != NULL ? ": " : "",
	    why != NULL ? why : "");
	return m->failed;
}

/* The value of a DKIM-Signature field, or NULL for any other field. */
static const char *
dkim_sighdr_value(const char *field, size_t len)
{
	const char *colon = memchr(field, ':', len);
	size_t n;

	if (colon == NULL)
		return NULL;
	n = (size_t)(colon - field);
	while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\t'))
		n--;
	if (n != sizeof(DKIM_SIGHDR) - 1 ||
	    strncasecmp(field, DKIM_SIGHDR, n) != 0)
		return NULL;
	return colon + 1;
}

/* Remember the syntax verdict of a DKIM-Signature the library kept. */
static void
dkim_note_sighdr(dm_dkim_msg *m, const char *value, size_t len)
{
	dm_dkimsig_info info;
	const char **n;
	size_t cap;

	if (m->sigwhy_lost)
		return;
	if (m->nsigwhy == m->capwhy) {
		cap = m->capwhy == 0 ? 4 : m->capwhy * 2;
		if ((n = reallocarray(m->sigwhy, cap, sizeof(*n))) == NULL) {
			m->sigwhy_lost = true;
			return;
		}
		m->sigwhy = n;
		m->capwhy = cap;
	}
	m->sigwhy[m->nsigwhy++] = dm_dkimsig_check(value, len, &info);
	m->any_l |= info.has_l;
}

dm_status
dm_dkim_header(dm_dkim_msg *m, const char *field, size_t len)
{
	const char *value;
	DKIM_STAT st;

	if (m->state != MSG_HEADERS)
		return DM_PERMFAIL;
	if (m->failed != DM_OK)
		return m->failed;
	if (len == 0)
		return DM_PERMFAIL;
	if ((value = dkim_sighdr_value(field, len)) != NULL)
		m->nsighdr++;
	st = dkim_header(m->dkim, (unsigned char *)field, len);
	if (value != NULL && (st == DKIM_STAT_OK || st == DKIM_STAT_SYNTAX))
		dkim_note_sighdr(m, value, len - (size_t)(value - field));
	switch (st) {
	case DKIM_STAT_OK:
		return DM_OK;
	case DKIM_STAT_SYNTAX:
		/*
		 * A field name the library refuses (the field is left out,
		 * as no signature can cover it), or a DKIM-Signature it
		 * cannot parse: that one stays listed (BADSIGHANDLES) and
		 * is reported.
		 */
		return DM_PERMFAIL;
	default:
		return dkim_broken(m, "dkim_header", st);
	}
}

dm_status
dm_dkim_eoh(dm_dkim_msg *m)
{
	DKIM_STAT st;

	if (m->state != MSG_HEADERS)
		return DM_PERMFAIL;
	m->state = MSG_BODY;
	if (m->failed != DM_OK)
		return m->failed;
	/* with the signatures known, the key lookups happen here */
	st = dkim_eoh(m->dkim);
	switch (st) {
	case DKIM_STAT_OK:
		return DM_OK;
	case DKIM_STAT_NOSIG:
		/*
		 * Also what the library says when dkim_prescreen set every
		 * signature aside: they are still listed and reported.
		 */
		if (m->nsighdr == 0)
			m->unsigned_msg = true;
		else
			m->noverify = true;
		return DM_OK;
	default:
		return dkim_broken(m, "dkim_eoh", st);
	}
}

static void
dkim_bodylen_add(struct dkim_bodylen *b, const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++, b->pos++) {
		if (b->cr && p[i] == '\n') {
			if (b->linelen > 0)
				b->simple_end = b->pos + 1;
			b->rel_acc += b->rel_cur + 2;
			if (b->rel_cur > 0)
				b->rel_end = b->rel_acc;
			b->linelen = b->rel_cur = 0;
			b->rel_ws = b->cr = false;
			continue;
		}
		if (b->cr) {
			/* a CR not before LF is part of the line */
			b->linelen++;
			b->rel_cur += b->rel_ws ? 2 : 1;
			b->rel_ws = b->cr = false;
		}
		if (p[i] == '\r') {
			b->cr = true;
			continue;
		}
		b->linelen++;
		if (p[i] == ' ' || p[i] == '\t')
			b->rel_ws = true;
		else {
			b->rel_cur += b->rel_ws ? 2 : 1;
			b->rel_ws = false;
		}
	}
}

/*
 * The canonical body length under bc, the body ending in CRLF: simple
 * keeps everything up to the last non-empty line, and turns no body
 * into one CRLF; relaxed drops trailing blanks and all trailing empty
 * lines.
 */
static uint64_t
dkim_bodylen_of(const struct dkim_bodylen *b, dkim_canon_t bc)
{
	if (bc == DKIM_CANON_SIMPLE)
		return b->simple_end > 0 ? b->simple_end : 2;
	return b->rel_end;
}

/* Body bytes to libopendkim, and to the counts kept here. */
static dm_status
dkim_feed(dm_dkim_msg *m, const unsigned char *p, size_t len)
{
	DKIM_STAT st;

	if (m->any_l)
		dkim_bodylen_add(&m->blen, p, len);
	m->body_seen = true;
	m->body_crlf = p[len - 1] == '\n' &&
	    (len > 1 ? p[len - 2] : m->body_last) == '\r';
	m->body_last = p[len - 1];
	st = dkim_body(m->dkim, (unsigned char *)p, len);
	if (st != DKIM_STAT_OK)
		return dkim_broken(m, "dkim_body", st);
	return DM_OK;
}

dm_status
dm_dkim_body(dm_dkim_msg *m, const unsigned char *p, size_t len)
{
	if (m->state == MSG_HEADERS)
		(void)dm_dkim_eoh(m);
	if (m->state != MSG_BODY)
		return DM_PERMFAIL;
	if (m->failed != DM_OK)
		return m->failed;
	if (m->unsigned_msg || m->noverify || len == 0)
		return DM_OK;
	return dkim_feed(m, p, len);
}

/* A tag value fit for a report: printable ASCII that fits, else "". */
static void
dkim_copy_tag(char *dst, size_t dstlen, const unsigned char *v, bool lower)
{
	size_t i;

	dst[0] = '\0';
	if (v == NULL || strlen((const char *)v) >= dstlen)
		return;
	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] < 0x21 || v[i] > 0x7e) {
			dst[0] = '\0';
			return;
		}
		dst[i] = lower ? (char)tolower(v[i]) : (char)v[i];
	}
	dst[i] = '\0';
}

static void
dkim_sig_names(DKIM_SIGINFO *sig, dm_dkim_sig *out)
{
	unsigned char *d;

	d = dkim_sig_gettagvalue(sig, false, (unsigned char *)"d");
	if (d == NULL || dm_domain_normalize((const char *)d,
	    strlen((const char *)d), out->domain, sizeof(out->domain)) != DM_OK)
		out->domain[0] = '\0';
	dkim_copy_tag(out->selector, sizeof(out->selector),
	    dkim_sig_gettagvalue(sig, false, (unsigned char *)"s"), false);
	dkim_copy_tag(out->algorithm, sizeof(out->algorithm),
	    dkim_sig_gettagvalue(sig, false, (unsigned char *)"a"), true);
}

static dm_dkim_result
dkim_map_error(int error)
{
	size_t i;

	for (i = 0; i < sizeof(dkim_errmap) / sizeof(dkim_errmap[0]); i++)
		if (dkim_errmap[i].error == error)
			return dkim_errmap[i].result;
	return DM_DKIM_PERMERROR;
}

/*
 * An l= shorter than the body: what follows it is nobody's, yet would
 * ride on the signer's pass (text appended to a signed message). Unless
 * configured otherwise, such a signature is "policy", not "pass".
 */
static bool
dkim_partial_body(const dm_dkim_msg *m, DKIM_SIGINFO *sig, dm_dkim_sig *out)
{
	dkim_canon_t hc = DKIM_CANON_UNKNOWN, bc = DKIM_CANON_UNKNOWN;
	ssize_t signlen = -1;
	uint64_t body;

	if (!m->any_l || m->d->partial_pass ||
	    dkim_sig_getcanonlen(m->dkim, sig, NULL, NULL, &signlen) !=
	    DKIM_STAT_OK || signlen < 0 ||
	    dkim_sig_getcanons(sig, &hc, &bc) != DKIM_STAT_OK)
		return false;
	body = dkim_bodylen_of(&m->blen, bc);
	if ((uint64_t)signlen >= body)
		return false;
	snprintf(out->error, sizeof(out->error),
	    "body partly unsigned (l=%zd of %llu bytes)", signlen,
	    (unsigned long long)body);
	return true;
}

/* A signature that verified: is it acceptable (RFC 8301, l=)? */
static dm_dkim_result
dkim_judge_pass(const dm_dkim_msg *m, DKIM_SIGINFO *sig, dm_dkim_sig *out)
{
	dkim_alg_t alg = DKIM_SIGN_UNKNOWN;
	unsigned int bits = 0;

	(void)dkim_sig_getsignalg(sig, &alg);
	if (alg == DKIM_SIGN_RSASHA1) {
		strlcpy(out->error, "rsa-sha1 is not accepted (RFC 8301)",
		    sizeof(out->error));
		return DM_DKIM_POLICY;
	}
	if (alg != DKIM_SIGN_ED25519SHA256 &&
	    dkim_sig_getkeysize(sig, &bits) == DKIM_STAT_OK &&
	    bits < DKIM_MIN_RSA_BITS) {
		snprintf(out->error, sizeof(out->error),
		    "key too small (%u bits)", bits);
		return DM_DKIM_POLICY;
	}
	if (dkim_partial_body(m, sig, out))
		return DM_DKIM_POLICY;
	return DM_DKIM_PASS;
}

static void
dkim_sig_outcome(const dm_dkim_msg *m, DKIM_SIGINFO *sig, const char *bad,
    dm_dkim_sig *out)
{
	unsigned int flags = dkim_sig_getflags(sig);
	int error = dkim_sig_geterror(sig);
	const char *s;

	if (bad != NULL) {
		/* whatever the library made of it (dm_dkimsig.h) */
		out->result = DM_DKIM_PERMERROR;
		strlcpy(out->error, bad, sizeof(out->error));
		return;
	}
	if ((flags & DKIM_SIGFLAG_IGNORE) != 0) {
		out->result = DM_DKIM_POLICY;
		snprintf(out->error, sizeof(out->error),
		    "not verified: more than %d signatures", DKIM_MAX_VERIFY);
		return;
	}
	if ((flags & DKIM_SIGFLAG_PASSED) != 0 &&
	    dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH &&
	    (error == DKIM_SIGERROR_OK || error == DKIM_SIGERROR_UNKNOWN)) {
		out->result = dkim_judge_pass(m, sig, out);
		return;
	}
	if (error == DKIM_SIGERROR_UNKNOWN) {
		/* the library stopped before this one was finished */
		out->result = DM_DKIM_TEMPERROR;
		strlcpy(out->error, "verification incomplete",
		    sizeof(out->error));
		return;
	}
	if (error == DKIM_SIGERROR_OK) {
		out->result = DM_DKIM_FAIL;
		strlcpy(out->error, "signature did not verify",
		    sizeof(out->error));
		return;
	}
	out->result = dkim_map_error(error);
	if ((s = dkim_sig_geterrorstr(error)) != NULL)
		strlcpy(out->error, s, sizeof(out->error));
	else
		snprintf(out->error, sizeof(out->error), "error %d", error);
}

/* The library broke before it could list the signatures. */
static void
dkim_report_broken(dm_dkim_msg *m)
{
	if (m->nsighdr == 0)
		return;
	memset(&m->fallback, 0, sizeof(m->fallback));
	m->fallback.result = DM_DKIM_TEMPERROR;
	snprintf(m->fallback.error, sizeof(m->fallback.error),
	    "verification failed: %s", dm_status_str(m->failed));
	m->sigs = NULL;
	m->nsigs = 1;
}

static void
dkim_collect(dm_dkim_msg *m)
{
	DKIM_SIGINFO **list = NULL;
	dm_dkim_sig *s;
	int i, n = 0;

	if (m->unsigned_msg)
		return;
	if (dkim_getsiglist(m->dkim, &list, &n) != DKIM_STAT_OK || n <= 0) {
		dkim_report_broken(m);
		return;
	}
	if ((m->sigs = calloc((size_t)n, sizeof(*m->sigs))) == NULL)
		dm_log_oom();
	for (i = 0; i < n; i++) {
		s = &m->sigs[i];
		/* dkim_eom has run them all; this only catches stragglers */
		if (m->failed == DM_OK &&
		    (dkim_sig_getflags(list[i]) & (DKIM_SIGFLAG_IGNORE |
		    DKIM_SIGFLAG_PROCESSED)) == 0 &&
		    dkim_sig_geterror(list[i]) == DKIM_SIGERROR_UNKNOWN)
			(void)dkim_sig_process(m->dkim, list[i]);
		dkim_sig_names(list[i], s);
		dkim_sig_outcome(m, list[i], dkim_syntax_of(m, i, n), s);
		dm_log_qid(DM_LOG_DEBUG, m->qid,
		    "dkim: d=%s s=%s a=%s: %s%s%s", s->domain, s->selector,
		    s->algorithm, dm_dkim_result_str(s->result),
		    s->error[0] != '\0' ? ": " : "", s->error);
	}
	m->nsigs = (size_t)n;
}

static bool
dkim_stat_is_failure(DKIM_STAT st)
{
	switch (st) {
	case DKIM_STAT_NORESOURCE:
	case DKIM_STAT_INTERNAL:
	case DKIM_STAT_INVALID:
	case DKIM_STAT_NOTIMPLEMENT:
	case DKIM_STAT_CBREJECT:
	case DKIM_STAT_CBINVALID:
	case DKIM_STAT_CBTRYAGAIN:
	case DKIM_STAT_CBERROR:
		return true;
	default:
		/* a verdict about one signature: all are collected below */
		return false;
	}
}

dm_status
dm_dkim_eom(dm_dkim_msg *m)
{
	DKIM_STAT st;

	if (m->state == MSG_DONE)
		return m->status;
	if (m->state == MSG_HEADERS)
		(void)dm_dkim_eoh(m);
	m->state = MSG_DONE;
	/*
	 * RFC 6376 3.4.3: a body without a final CRLF is hashed with one
	 * (relaxed likewise: its last line is a line). libopendkim would
	 * instead stop with "CRLF at end of body missing", and leave every
	 * signature unfinished; its FIXCRLF flag would also rewrite bare
	 * CR and LF inside the body, which no signer hashed.
	 */
	if (m->failed == DM_OK && !m->unsigned_msg && !m->noverify &&
	    !m->body_crlf)
		(void)dkim_feed(m, (const unsigned char *)"\r\n", 2);
	if (m->failed == DM_OK && !m->unsigned_msg && !m->noverify) {
		st = dkim_eom(m->dkim, NULL);
		if (dkim_stat_is_failure(st))
			(void)dkim_broken(m, "dkim_eom", st);
	}
	dkim_collect(m);
	m->status = m->failed;
	return m->status;
}

size_t
dm_dkim_nsigs(const dm_dkim_msg *m)
{
	return m->state == MSG_DONE ? m->nsigs : 0;
}

const dm_dkim_sig *
dm_dkim_sig_at(const dm_dkim_msg *m, size_t i)
{
	if (m->state != MSG_DONE || i >= m->nsigs)
		return NULL;
	return m->sigs != NULL ? &m->sigs[i] : &m->fallback;
}

const char *
dm_dkim_result_str(dm_dkim_result r)
{
	switch (r) {
	case DM_DKIM_NONE:	return "none";
	case DM_DKIM_PASS:	return "pass";
	case DM_DKIM_FAIL:	return "fail";
	case DM_DKIM_NEUTRAL:	return "neutral";
	case DM_DKIM_POLICY:	return "policy";
	case DM_DKIM_TEMPERROR:	return "temperror";
	case DM_DKIM_PERMERROR:	return "permerror";
	}
	return "neutral";
}
