/*
 * report/rptxml.c - an aggregate report's XML (see rptxml.h): the
 * policy and row texts read back with dm_row_get/dm_hex_decode, every
 * value checked against the schema's vocabulary, cleaned of what XML
 * cannot carry and written through libxml2's xmlTextWriter.
 */
#include "config.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/stdlib.h>
#include <libxml/xmlwriter.h>

#include "dm_buf.h"
#include "dm_hex.h"
#include "dm_log.h"
#include "dm_row.h"
#include "rptxml.h"

#define RPT_NS		"urn:ietf:params:xml:ns:dmarc-2.0"
#define RPT_MAX_DKIM	100	/* signatures per record (RFC 9990) */

/* Slots of the per-row scratch area, each as long as the row text. */
enum { S_IP, S_HF, S_EF, S_ET, S_DISP, S_DKIM, S_SPF, S_R, S_AD, S_AS,
	S_RAW, S_P0, S_P1, S_P2, S_NSLOTS };

struct rpt_policy {
	char *p, *sp, *np, *pct, *t, *adkim, *aspf, *fo, *dm;
};

struct wr {
	const rpt_meta *m;
	const struct rpt_policy *pol;
	xmlTextWriterPtr w;
	char *clean;		/* a value made fit for XML */
	size_t cleancap;
	char *scratch;		/* S_NSLOTS slots of slotlen bytes */
	size_t slotlen;
	rpt_sink sink;
	void *sinkctx;
	bool sinkfailed;
	char *err;
	size_t errlen;
};

static int
wr_fail(struct wr *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
wr_fail(struct wr *x, const char *fmt, ...)
{
	va_list ap;

	if (x->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(x->err, x->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool
in_set(const char *v, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(v, *set) == 0)
			return true;
	return false;
}

static const char *const dispositions[] = { "none", "quarantine", "reject",
	NULL };
static const char *const dmarc_results[] = { "pass", "fail", NULL };
static const char *const align_modes[] = { "r", "s", NULL };
static const char *const yes_no[] = { "y", "n", NULL };
static const char *const methods[] = { "treewalk", "psl", NULL };
static const char *const dkim_results[] = { "none", "pass", "fail",
	"policy", "neutral", "temperror", "permerror", NULL };
static const char *const spf_results[] = { "none", "neutral", "pass",
	"fail", "softfail", "temperror", "permerror", NULL };
static const char *const spf_scopes[] = { "mfrom", "helo", NULL };
static const char *const reasons[] = { "forwarded", "sampled_out",
	"trusted_forwarder", "mailing_list", "local_policy", "other",
	"policy_test_mode", NULL };
/* Reason types each schema lacks: written as "other". */
static const char *const reasons_not7489[] = { "policy_test_mode", NULL };
static const char *const reasons_not9990[] = { "forwarded", "sampled_out",
	NULL };

/* ---- text fit for XML 1.0 ---------------------------------------------- */

/*
 * Length of the valid UTF-8 sequence at s (0: invalid), its code point
 * in *cp. s is NUL-terminated, so a truncated sequence stops at the NUL.
 */
static size_t
utf8_seq(const unsigned char *s, uint32_t *cp)
{
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xBF;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		n = 2;
		*cp = s[0] & 0x1F;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		n = 3;
		*cp = s[0] & 0x0F;
		if (s[0] == 0xE0)
			lo = 0xA0;	/* overlong */
		else if (s[0] == 0xED)
			hi = 0x9F;	/* surrogates */
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		n = 4;
		*cp = s[0] & 0x07;
		if (s[0] == 0xF0)
			lo = 0x90;	/* overlong */
		else if (s[0] == 0xF4)
			hi = 0x8F;	/* above U+10FFFF */
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF))
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3F);
	}
	return n;
}

/*
 * Control characters (C0 but tab and newline, DEL, C1) and the
 * non-characters U+FFFE/U+FFFF: XML 1.0 forbids or discourages them.
 */
static bool
xml_char_ok(uint32_t cp)
{
	if (cp < 0x20)
		return cp == '\t' || cp == '\n';
	if (cp >= 0x7F && cp <= 0x9F)
		return false;
	return cp != 0xFFFE && cp != 0xFFFF;
}

/* s with every unfit byte or character replaced by U+FFFD. */
static const char *
xml_clean(struct wr *x, const char *s)
{
	static const char repl[] = "\xEF\xBF\xBD";
	const unsigned char *p = (const unsigned char *)s;
	size_t need = strlen(s) * 3 + 1, o = 0, n;
	uint32_t cp;
	char *np;

	if (need > x->cleancap) {
		if ((np = realloc(x->clean, need)) == NULL)
			return NULL;
		x->clean = np;
		x->cleancap = need;
	}
	while (*p != '\0') {
		n = utf8_seq(p, &cp);
		if (n > 0 && xml_char_ok(cp)) {
			memcpy(x->clean + o, p, n);
			o += n;
			p += n;
		} else {
			memcpy(x->clean + o, repl, 3);
			o += 3;
			p += n > 0 ? n : 1;
		}
	}
	x->clean[o] = '\0';
	return x->clean;
}

/* ---- writer helpers ----------------------------------------------------- */

static int
w_start(struct wr *x, const char *name)
{
	if (xmlTextWriterStartElement(x->w, BAD_CAST name) < 0)
		return wr_fail(x, "write error at <%s>", name);
	return 0;
}

static int
w_end(struct wr *x)
{
	if (xmlTextWriterEndElement(x->w) < 0)
		return wr_fail(x, "write error");
	return 0;
}

static int
w_el(struct wr *x, const char *name, const char *text)
{
	const char *c;

	if ((c = xml_clean(x, text)) == NULL)
		return wr_fail(x, "out of memory");
	if (xmlTextWriterWriteElement(x->w, BAD_CAST name, BAD_CAST c) < 0)
		return wr_fail(x, "write error at <%s>", name);
	return 0;
}

static int
w_int(struct wr *x, const char *name, int64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, v);
	return w_el(x, name, num);
}

/* ---- reading the texts -------------------------------------------------- */

/* A scratch slot: room for any value of the current text. */
static char *
slot(struct wr *x, int i)
{
	return x->scratch + (size_t)i * x->slotlen;
}

static int
scratch_fit(struct wr *x, size_t textlen)
{
	char *np;

	if (textlen + 1 <= x->slotlen)
		return 0;
	if ((np = reallocarray(NULL, S_NSLOTS, textlen + 1)) == NULL)
		return -1;
	free(x->scratch);
	x->scratch = np;
	x->slotlen = textlen + 1;
	return 0;
}

/* The raw (escaped) value of key into slot i; false when absent. */
static bool
get_raw(struct wr *x, const char *text, const char *key, int i)
{
	return dm_row_get(text, key, slot(x, i), x->slotlen);
}

/* The unescaped value of key into slot i; false when absent. */
static bool
get_val(struct wr *x, const char *text, const char *key, int i)
{
	if (!get_raw(x, text, key, S_RAW))
		return false;
	return dm_hex_decode(slot(x, S_RAW), strlen(slot(x, S_RAW)),
	    slot(x, i), x->slotlen);
}

/*
 * Split one list item (n bytes at item) at '/' into want parts,
 * unescaped into slots S_P0.. ; false unless there are exactly want.
 */
static bool
split_item(struct wr *x, const char *item, size_t n, int want)
{
	const char *end = item + n, *slash;
	int k;

	for (k = 0; k < want; k++) {
		slash = memchr(item, '/', (size_t)(end - item));
		if ((k < want - 1) != (slash != NULL))
			return false;
		if (slash == NULL)
			slash = end;
		if (!dm_hex_decode(item, (size_t)(slash - item),
		    slot(x, S_P0 + k), x->slotlen))
			return false;
		item = slash + 1;
	}
	return true;
}

static void
policy_free(struct rpt_policy *p)
{
	free(p->p);
	free(p->sp);
	free(p->np);
	free(p->pct);
	free(p->t);
	free(p->adkim);
	free(p->aspf);
	free(p->fo);
	free(p->dm);
	memset(p, 0, sizeof(*p));
}

/*
 * One policy tag, unescaped and checked against set (NULL: any text),
 * or dflt (NULL: the tag is required) when absent.
 */
static int
policy_tag(struct wr *x, const char *text, const char *key,
    const char *const *set, const char *dflt, char **out)
{
	const char *v = dflt;

	if (get_val(x, text, key, S_P0))
		v = slot(x, S_P0);
	else if (dflt == NULL)
		return wr_fail(x, "policy: no %s= tag", key);
	if (set != NULL && !in_set(v, set))
		return wr_fail(x, "policy: %s=%s is not a valid value", key,
		    v);
	if ((*out = strdup(v)) == NULL)
		return wr_fail(x, "out of memory");
	return 0;
}

static bool
is_pct(const char *s)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9' || strlen(s) > 3)
		return false;
	v = strtoul(s, &end, 10);
	return *end == '\0' && v <= 100;
}

static int
policy_read(struct wr *x, const char *text, struct rpt_policy *p)
{
	if (scratch_fit(x, strlen(text)) < 0)
		return wr_fail(x, "out of memory");
	if (policy_tag(x, text, "p", dispositions, NULL, &p->p) < 0 ||
	    policy_tag(x, text, "sp", dispositions, p->p, &p->sp) < 0 ||
	    policy_tag(x, text, "np", dispositions, p->sp, &p->np) < 0 ||
	    policy_tag(x, text, "pct", NULL, "100", &p->pct) < 0 ||
	    policy_tag(x, text, "t", yes_no, "n", &p->t) < 0 ||
	    policy_tag(x, text, "adkim", align_modes, "r", &p->adkim) < 0 ||
	    policy_tag(x, text, "aspf", align_modes, "r", &p->aspf) < 0 ||
	    policy_tag(x, text, "fo", NULL, "0", &p->fo) < 0)
		return -1;
	if (!is_pct(p->pct))
		return wr_fail(x, "policy: pct=%s is not 0..100", p->pct);
	if (get_val(x, text, "dm", S_P0) && *slot(x, S_P0) != '\0' &&
	    (p->dm = strdup(slot(x, S_P0))) == NULL)
		return wr_fail(x, "out of memory");
	if (p->dm != NULL && !in_set(p->dm, methods))
		return wr_fail(x, "policy: dm=%s is not a discovery method",
		    p->dm);
	return 0;
}

/*
 * The source IP as the format wants it; false when it is no address.
 * IPv4-mapped IPv6 becomes IPv4; RFC 7489's pattern takes IPv6 only
 * with all 8 groups, RFC 9990 any RFC 3986 form (RFC 5952's here).
 */
static bool
ip_text(const char *ip, enum rpt_format f, char *out, size_t len)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0xff, 0xff };
	unsigned char a[16];
	int i;

	if (inet_pton(AF_INET, ip, a) == 1)
		return inet_ntop(AF_INET, a, out, (socklen_t)len) != NULL;
	if (inet_pton(AF_INET6, ip, a) != 1)
		return false;
	if (memcmp(a, mapped, sizeof(mapped)) == 0)
		return inet_ntop(AF_INET, a + 12, out, (socklen_t)len) != NULL;
	if (f == RPT_RFC9990)
		return inet_ntop(AF_INET6, a, out, (socklen_t)len) != NULL;
	if (len < 40)
		return false;
	for (i = 0; i < 8; i++)
		out += sprintf(out, i ? ":%x" : "%x",
		    (unsigned)(a[2 * i] << 8 | a[2 * i + 1]));
	return true;
}

/* ---- the record --------------------------------------------------------- */

/* Items of a ','-separated list: *item and *n of the next one. */
static bool
list_next(const char **cur, const char **item, size_t *n)
{
	if (*cur == NULL)
		return false;
	*item = *cur;
	*n = strcspn(*cur, ",");
	*cur = (*cur)[*n] == ',' ? *cur + *n + 1 : NULL;
	return true;
}

static int
w_reasons(struct wr *x, size_t rowno)
{
	const char *cur = slot(x, S_R), *item, *type, *comment;
	const char *const *other = x->m->format == RPT_RFC7489 ?
	    reasons_not7489 : reasons_not9990;
	char *joined;
	size_t n;
	int rc;

	if (*cur == '\0')
		return 0;
	while (list_next(&cur, &item, &n)) {
		if (!split_item(x, item, n, 2))
			return wr_fail(x, "row %zu: bad reason '%.*s'", rowno,
			    (int)n, item);
		type = slot(x, S_P0);
		comment = slot(x, S_P1);
		if (!in_set(type, reasons))
			return wr_fail(x, "row %zu: unknown reason type %s",
			    rowno, type);
		if (w_start(x, "reason") < 0)
			return -1;
		if (in_set(type, other)) {
			if (asprintf(&joined, "%s%s%s", type,
			    *comment ? ": " : "", comment) < 0)
				return wr_fail(x, "out of memory");
			rc = w_el(x, "type", "other");
			if (rc == 0)
				rc = w_el(x, "comment", joined);
			free(joined);
			if (rc < 0)
				return -1;
		} else if (w_el(x, "type", type) < 0 || (*comment != '\0' &&
		    w_el(x, "comment", comment) < 0))
			return -1;
		if (w_end(x) < 0)
			return -1;
	}
	return 0;
}

/* The DKIM results passing (pass) or not; up to *left of them. */
static int
w_dkim(struct wr *x, size_t rowno, int pass, size_t *left)
{
	const char *cur = slot(x, S_AD), *item;
	size_t n;

	if (*cur == '\0')
		return 0;
	while (*left > 0 && list_next(&cur, &item, &n)) {
		if (!split_item(x, item, n, 3))
			return wr_fail(x, "row %zu: bad DKIM result '%.*s'",
			    rowno, (int)n, item);
		if (!in_set(slot(x, S_P2), dkim_results))
			return wr_fail(x, "row %zu: unknown DKIM result %s",
			    rowno, slot(x, S_P2));
		if (pass >= 0 && (strcmp(slot(x, S_P2), "pass") == 0) != pass)
			continue;
		if (w_start(x, "dkim") < 0 ||
		    w_el(x, "domain", slot(x, S_P0)) < 0 ||
		    ((x->m->format == RPT_RFC9990 || *slot(x, S_P1) != '\0') &&
		    w_el(x, "selector", slot(x, S_P1)) < 0) ||
		    w_el(x, "result", slot(x, S_P2)) < 0 || w_end(x) < 0)
			return -1;
		(*left)--;
	}
	return 0;
}

static int
w_auth(struct wr *x, size_t rowno)
{
	size_t left = RPT_MAX_DKIM, nsig = 0;
	const char *p;

	if (w_start(x, "auth_results") < 0)
		return -1;
	if (*slot(x, S_AD) != '\0')
		for (nsig = 1, p = slot(x, S_AD); *p; p++)
			nsig += *p == ',';
	if (nsig <= RPT_MAX_DKIM) {
		if (w_dkim(x, rowno, -1, &left) < 0)
			return -1;
	} else if (w_dkim(x, rowno, 1, &left) < 0 ||
	    w_dkim(x, rowno, 0, &left) < 0)
		return -1;
	if (!split_item(x, slot(x, S_AS), strlen(slot(x, S_AS)), 3))
		return wr_fail(x, "row %zu: bad SPF result '%s'", rowno,
		    slot(x, S_AS));
	if (!in_set(slot(x, S_P1), spf_scopes) ||
	    !in_set(slot(x, S_P2), spf_results))
		return wr_fail(x, "row %zu: unknown SPF scope or result '%s'",
		    rowno, slot(x, S_AS));
	if (w_start(x, "spf") < 0 || w_el(x, "domain", slot(x, S_P0)) < 0)
		return -1;
	if ((x->m->format == RPT_RFC7489 ||
	    strcmp(slot(x, S_P1), "mfrom") == 0) &&
	    w_el(x, "scope", slot(x, S_P1)) < 0)
		return -1;
	if (w_el(x, "result", slot(x, S_P2)) < 0 || w_end(x) < 0)
		return -1;
	return w_end(x);
}

static int
w_identifiers(struct wr *x, bool has_ef, bool has_et)
{
	if (w_start(x, "identifiers") < 0)
		return -1;
	if (x->m->format == RPT_RFC7489) {
		/* envelope_from is required there, even when empty */
		if ((has_et && w_el(x, "envelope_to", slot(x, S_ET)) < 0) ||
		    w_el(x, "envelope_from", slot(x, S_EF)) < 0 ||
		    w_el(x, "header_from", slot(x, S_HF)) < 0)
			return -1;
	} else if (w_el(x, "header_from", slot(x, S_HF)) < 0 ||
	    (has_ef && w_el(x, "envelope_from", slot(x, S_EF)) < 0) ||
	    (has_et && w_el(x, "envelope_to", slot(x, S_ET)) < 0))
		return -1;
	return w_end(x);
}

/*
 * RFC 9990's disposition "pass": no action, passing DMARC with an
 * enforcing policy. Under p=none, or t=y, a pass is still "none". The
 * policy that applied is p for the domain itself, sp for a subdomain
 * (np only ever meets mail that fails).
 */
static const char *
disposition(struct wr *x, const char *disp, const char *hf)
{
	const char *applied = strcasecmp(hf, x->m->domain) == 0 ?
	    x->pol->p : x->pol->sp;

	if (x->m->format != RPT_RFC9990 || strcmp(disp, "none") != 0 ||
	    (strcmp(slot(x, S_DKIM), "pass") != 0 &&
	    strcmp(slot(x, S_SPF), "pass") != 0) ||
	    strcmp(x->pol->t, "y") == 0 || strcmp(applied, "none") == 0)
		return disp;
	return "pass";
}

/* One row: 1 written, 0 skipped, -1 error. */
static int
w_record(struct wr *x, const rpt_row *r, size_t rowno)
{
	static const struct { const char *key; int slot; } need[] = {
		{ "ip", S_IP }, { "hf", S_HF }, { "disp", S_DISP },
		{ "dkim", S_DKIM }, { "spf", S_SPF },
	};
	char ip[INET6_ADDRSTRLEN + 8], count[24];
	const char *disp;
	bool has_ef, has_et;
	size_t i;

	if (r->row == NULL)
		return wr_fail(x, "row %zu: no text", rowno);
	if (r->count == 0)
		return 0;
	if (scratch_fit(x, strlen(r->row)) < 0)
		return wr_fail(x, "out of memory");
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!get_val(x, r->row, need[i].key, need[i].slot))
			return wr_fail(x, "row %zu: no %s= key", rowno,
			    need[i].key);
	if (!get_raw(x, r->row, "as", S_AS))
		return wr_fail(x, "row %zu: no as= key", rowno);
	has_ef = get_val(x, r->row, "ef", S_EF);
	if (!has_ef)
		*slot(x, S_EF) = '\0';
	has_et = get_val(x, r->row, "et", S_ET);
	if (!get_raw(x, r->row, "r", S_R))
		*slot(x, S_R) = '\0';
	if (!get_raw(x, r->row, "ad", S_AD))
		*slot(x, S_AD) = '\0';
	if (!in_set(slot(x, S_DISP), dispositions) ||
	    !in_set(slot(x, S_DKIM), dmarc_results) ||
	    !in_set(slot(x, S_SPF), dmarc_results))
		return wr_fail(x, "row %zu: bad disp, dkim or spf value",
		    rowno);
	if (!ip_text(slot(x, S_IP), x->m->format, ip, sizeof(ip)))
		return 0;	/* no client address: nothing to report */

	disp = disposition(x, slot(x, S_DISP), slot(x, S_HF));
	snprintf(count, sizeof(count), "%" PRIu64, r->count);
	if (w_start(x, "record") < 0 || w_start(x, "row") < 0 ||
	    w_el(x, "source_ip", ip) < 0 || w_el(x, "count", count) < 0 ||
	    w_start(x, "policy_evaluated") < 0 ||
	    w_el(x, "disposition", disp) < 0 ||
	    w_el(x, "dkim", slot(x, S_DKIM)) < 0 ||
	    w_el(x, "spf", slot(x, S_SPF)) < 0 ||
	    w_reasons(x, rowno) < 0 || w_end(x) < 0 || w_end(x) < 0 ||
	    w_identifiers(x, has_ef, has_et) < 0 || w_auth(x, rowno) < 0 ||
	    w_end(x) < 0)
		return -1;
	return 1;
}

/* ---- the document ------------------------------------------------------- */

static int
w_metadata(struct wr *x)
{
	const rpt_meta *m = x->m;

	if (w_start(x, "report_metadata") < 0 ||
	    w_el(x, "org_name", m->org_name) < 0 ||
	    w_el(x, "email", m->email) < 0 ||
	    (m->extra_contact != NULL && *m->extra_contact != '\0' &&
	    w_el(x, "extra_contact_info", m->extra_contact) < 0) ||
	    w_el(x, "report_id", m->report_id) < 0 ||
	    w_start(x, "date_range") < 0 || w_int(x, "begin", m->begin) < 0 ||
	    w_int(x, "end", m->end - 1) < 0 || w_end(x) < 0)
		return -1;
	if (m->format == RPT_RFC9990 && m->generator != NULL &&
	    *m->generator != '\0' && w_el(x, "generator", m->generator) < 0)
		return -1;
	return w_end(x);
}

static int
w_policy(struct wr *x, const struct rpt_policy *p)
{
	if (w_start(x, "policy_published") < 0 ||
	    w_el(x, "domain", x->m->domain) < 0)
		return -1;
	if (x->m->format == RPT_RFC7489) {
		if (w_el(x, "adkim", p->adkim) < 0 ||
		    w_el(x, "aspf", p->aspf) < 0 || w_el(x, "p", p->p) < 0 ||
		    w_el(x, "sp", p->sp) < 0 || w_el(x, "pct", p->pct) < 0 ||
		    w_el(x, "fo", p->fo) < 0)
			return -1;
	} else if ((p->dm != NULL &&
	    w_el(x, "discovery_method", p->dm) < 0) ||
	    w_el(x, "p", p->p) < 0 || w_el(x, "sp", p->sp) < 0 ||
	    w_el(x, "np", p->np) < 0 || w_el(x, "fo", p->fo) < 0 ||
	    w_el(x, "adkim", p->adkim) < 0 || w_el(x, "aspf", p->aspf) < 0 ||
	    w_el(x, "testing", p->t) < 0)
		return -1;
	return w_end(x);
}

static int
w_document(struct wr *x, const rpt_row *rows, size_t n, rpt_stats *st)
{
	struct rpt_policy pol = { 0 };
	size_t i;
	int rc = -1, r;

	if (policy_read(x, x->m->policy, &pol) < 0)
		goto out;
	x->pol = &pol;
	if (xmlTextWriterSetIndent(x->w, 1) < 0 ||
	    xmlTextWriterSetIndentString(x->w, BAD_CAST "  ") < 0 ||
	    xmlTextWriterStartDocument(x->w, "1.0", "UTF-8", NULL) < 0) {
		wr_fail(x, "write error");
		goto out;
	}
	if (x->m->format == RPT_RFC9990) {
		if (xmlTextWriterStartElementNS(x->w, NULL, BAD_CAST "feedback",
		    BAD_CAST RPT_NS) < 0) {
			wr_fail(x, "write error");
			goto out;
		}
	} else if (w_start(x, "feedback") < 0)
		goto out;
	if (w_el(x, "version", "1.0") < 0 || w_metadata(x) < 0 ||
	    w_policy(x, &pol) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((r = w_record(x, &rows[i], i + 1)) < 0)
			goto out;
		if (r == 0)
			st->skipped++;
		else {
			st->records++;
			st->messages += rows[i].count;
		}
	}
	if (st->records == 0) {
		wr_fail(x, "no row to report (%zu skipped)", st->skipped);
		goto out;
	}
	if (xmlTextWriterEndDocument(x->w) < 0 ||
	    xmlTextWriterFlush(x->w) < 0) {
		wr_fail(x, "write error");
		goto out;
	}
	rc = 0;
out:
	policy_free(&pol);
	return rc;
}

static int
sink_write(void *ctx, const char *buf, int len)
{
	struct wr *x = ctx;

	if (x->sinkfailed || len < 0 ||
	    x->sink(x->sinkctx, buf, (size_t)len) < 0) {
		x->sinkfailed = true;
		return -1;
	}
	return len;
}

static int
sink_close(void *ctx)
{
	(void)ctx;
	return 0;
}

/* What makes meta unusable for any document, or NULL. */
static const char *
wr_meta_fault(const rpt_meta *m)
{
	if (m->org_name == NULL || m->email == NULL || m->report_id == NULL ||
	    m->domain == NULL || m->policy == NULL)
		return "org_name, email, report_id, domain and policy are "
		    "required";
	if (m->format != RPT_RFC7489 && m->format != RPT_RFC9990)
		return "unknown report format";
	if (m->end <= m->begin)
		return "empty date range";
	return NULL;
}

dm_status
rpt_xml_stream(const rpt_meta *m, const rpt_row *rows, size_t n,
    rpt_sink sink, void *ctx, rpt_stats *st, char *err, size_t errlen)
{
	struct wr x;
	rpt_stats dummy;
	xmlOutputBufferPtr ob;
	const char *why;
	int rc;

	memset(&x, 0, sizeof(x));
	x.m = m;
	x.sink = sink;
	x.sinkctx = ctx;
	x.err = err;
	x.errlen = errlen;
	if (st == NULL)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	if (errlen > 0)
		*err = '\0';
	if ((why = wr_meta_fault(m)) != NULL) {
		(void)wr_fail(&x, "%s", why);
		return DM_PERMFAIL;
	}
	xmlInitParser();
	/* libxml2 fails these only for memory: the one policy applies */
	if ((ob = xmlOutputBufferCreateIO(sink_write, sink_close, &x,
	    NULL)) == NULL || (x.w = xmlNewTextWriter(ob)) == NULL)
		dm_log_oom();
	rc = w_document(&x, rows, n, st);
	xmlFreeTextWriter(x.w);		/* flushes and closes ob */
	if (rc == 0 && x.sinkfailed)
		rc = wr_fail(&x, "write error");
	free(x.clean);
	free(x.scratch);
	if (rc == 0)
		return DM_OK;
	return x.sinkfailed ? DM_TEMPFAIL : DM_PERMFAIL;
}

/* The sink of rpt_xml_write: the document into a dm_buf. */
static int
mem_sink(void *ctx, const char *buf, size_t len)
{
	dm_buf_add(ctx, buf, len);
	return 0;
}

dm_status
rpt_xml_write(const rpt_meta *m, const rpt_row *rows, size_t n,
    char **out, size_t *len, rpt_stats *st, char *err, size_t errlen)
{
	dm_buf b = DM_BUF_INIT;
	dm_status st2;

	*out = NULL;
	*len = 0;
	if ((st2 = rpt_xml_stream(m, rows, n, mem_sink, &b, st, err,
	    errlen)) != DM_OK) {
		dm_buf_free(&b);
		return st2;
	}
	*out = dm_buf_take(&b, len);
	return DM_OK;
}
