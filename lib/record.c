/*
 * lib/record.c - the DMARC policy record parser: one TXT string in, a
 * dm_record out (RFC 7489 6.3, 6.4, 6.6.3; RFC 9989 4.7, 4.8, 4.10.1).
 * rua=/ruf= values go to lib/urilist.c.
 *
 * Readings of the texts, and where RFC 7489 and RFC 9989 differ (RFC 9989
 * wins):
 * - The record is DKIM tag-value syntax (both RFCs say so): whitespace
 *   (SP, HTAB, and CR/LF as in DKIM's FWS) may surround tags, '=' and ';',
 *   may lead the record, and a trailing ';' and empty tag-specs are fine.
 * - v=DMARC1 must be the first tag. The tag name is an ABNF literal and so
 *   case-insensitive; the value is case-sensitive (RFC 7489 spells it in
 *   %x, RFC 9989 with %s). The value ends at ';' or at the end: in
 *   "v=DMARC1 p=none" the value of v is "DMARC1 p=none", which is not
 *   DMARC1, so that is not a DMARC record.
 * - Tag names and the words of p, sp, np, adkim, aspf, t, psd and fo are
 *   case-insensitive (ABNF literals). Unknown tags are ignored.
 * - A tag that appears twice: the first one is used, valid or not, and the
 *   later ones are ignored, so that a second p= cannot override the first.
 *   (DKIM would reject the whole record; DMARC does not say, and ignoring
 *   is in the spirit of "syntax errors ... discarded in favor of default
 *   values".)
 * - A value must be non-empty and printable (RFC 9989 dmarc-value; HTAB
 *   and FWS too, as DKIM allows). Other bytes make that one tag invalid.
 * - No valid p, or an invalid sp or np (RFC 9989 4.10.1; RFC 7489 6.6.3
 *   said the same for p and sp): with at least one valid rua URI the
 *   record acts as if it carried p=none (p_defaulted); otherwise it is
 *   not a usable record (DM_NOTFOUND). RFC 9989 4.7 says a missing p
 *   means p=none without the rua condition, but points to 4.10.1 for the
 *   rule, and a bare "v=DMARC1;" is how a report consumer authorizes
 *   third-party reports (RFC 9989 B.2.3), not a policy. Only p is
 *   replaced: invalid sp/np read as absent, valid ones stay. So p, sp
 *   and np are the policies in effect, while has_p/has_sp/has_np say what
 *   was validly published (has_p stays true when a bad sp forced p=none).
 * - fo follows RFC 9989's dmarc-fo: at most one of 0 and 1, d and s at
 *   most once each (RFC 7489 allowed any list). Stored without
 *   whitespace, lower case. Invalid fo reads as "0". That fo means
 *   nothing without ruf is for the failure-report sender to apply.
 * - pct, rf and ri are gone from RFC 9989 but records in the wild carry
 *   them: pct is 1 to 3 digits, 0..100; ri a 32-bit unsigned decimal; rf
 *   a colon-separated list of SMTP Keywords (stored lower case when it
 *   fits, checked against the format registry by the report sender).
 *   Invalid values read as the defaults.
 * - NUL bytes: a record that claims to be DMARC and holds one is
 *   DM_PERMFAIL (a TXT string with NUL is no text at all). A record
 *   longer than REC_MAX_LEN (far above the 65535 bytes a TXT RR can hold)
 *   is DM_PERMFAIL too.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dm_log.h"
#include "dm_record.h"

#define REC_MAX_LEN	(1024 * 1024)
#define REC_VERSION	"DMARC1"

struct rec_parse;
typedef dm_status (*rec_tag_fn)(struct rec_parse *, const char *, size_t);

/* The rows of rec_tags[]; bits of rec_parse.seen and .bad. */
enum rec_tagid {
	REC_V, REC_P, REC_SP, REC_NP, REC_PCT, REC_T, REC_PSD, REC_ADKIM,
	REC_ASPF, REC_FO, REC_RF, REC_RI, REC_RUA, REC_RUF, REC_NTAGS
};

#define REC_BIT(t)	(1U << (t))

struct rec_parse {
	dm_record *rec;
	unsigned int seen;	/* tags met, valid or not */
	unsigned int bad;	/* tags met with an invalid value */
	char *err;
	size_t errlen;
};

static bool
rec_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
rec_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
rec_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Appends a note to err, "; "-separated; truncation is fine. */
static void rec_note(struct rec_parse *, const char *, ...)
	__attribute__((format(printf, 2, 3)));

static void
rec_note(struct rec_parse *ps, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	size_t used;

	if (ps->err == NULL || ps->errlen == 0)
		return;
	used = strlen(ps->err);
	if (used + 1 >= ps->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	snprintf(ps->err + used, ps->errlen - used, "%s%s",
	    used > 0 ? "; " : "", buf);
}

static bool
rec_word(const char *v, size_t n, const char *word)
{
	return n == strlen(word) && strncasecmp(v, word, n) == 0;
}

static bool
rec_policy(const char *v, size_t n, dm_policy *out)
{
	if (rec_word(v, n, "none"))
		*out = DM_POLICY_NONE;
	else if (rec_word(v, n, "quarantine"))
		*out = DM_POLICY_QUARANTINE;
	else if (rec_word(v, n, "reject"))
		*out = DM_POLICY_REJECT;
	else
		return false;
	return true;
}

static bool
rec_align(const char *v, size_t n, dm_align_mode *out)
{
	if (rec_word(v, n, "r"))
		*out = DM_ALIGN_RELAXED;
	else if (rec_word(v, n, "s"))
		*out = DM_ALIGN_STRICT;
	else
		return false;
	return true;
}

/* Decimal digits only, at most maxdigits of them, value at most max. */
static bool
rec_number(const char *v, size_t n, size_t maxdigits, uint64_t max,
    uint64_t *out)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0 || n > maxdigits)
		return false;
	for (i = 0; i < n; i++) {
		if (!rec_is_digit((unsigned char)v[i]))
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
		if (x > max)
			return false;
	}
	*out = x;
	return true;
}

static dm_status
rec_tag_p(struct rec_parse *ps, const char *v, size_t n)
{
	if (!rec_policy(v, n, &ps->rec->p))
		return DM_PERMFAIL;
	ps->rec->has_p = true;
	return DM_OK;
}

static dm_status
rec_tag_sp(struct rec_parse *ps, const char *v, size_t n)
{
	if (!rec_policy(v, n, &ps->rec->sp))
		return DM_PERMFAIL;
	ps->rec->has_sp = true;
	return DM_OK;
}

static dm_status
rec_tag_np(struct rec_parse *ps, const char *v, size_t n)
{
	if (!rec_policy(v, n, &ps->rec->np))
		return DM_PERMFAIL;
	ps->rec->has_np = true;
	return DM_OK;
}

static dm_status
rec_tag_pct(struct rec_parse *ps, const char *v, size_t n)
{
	uint64_t x;

	if (!rec_number(v, n, 3, 100, &x))
		return DM_PERMFAIL;
	ps->rec->pct = (int)x;
	ps->rec->has_pct = true;
	return DM_OK;
}

static dm_status
rec_tag_t(struct rec_parse *ps, const char *v, size_t n)
{
	if (rec_word(v, n, "y"))
		ps->rec->testing = true;
	else if (!rec_word(v, n, "n"))
		return DM_PERMFAIL;
	return DM_OK;
}

static dm_status
rec_tag_psd(struct rec_parse *ps, const char *v, size_t n)
{
	if (rec_word(v, n, "y"))
		ps->rec->psd = DM_PSD_YES;
	else if (rec_word(v, n, "n"))
		ps->rec->psd = DM_PSD_NO;
	else if (!rec_word(v, n, "u"))
		return DM_PERMFAIL;
	return DM_OK;
}

static dm_status
rec_tag_adkim(struct rec_parse *ps, const char *v, size_t n)
{
	return rec_align(v, n, &ps->rec->adkim) ? DM_OK : DM_PERMFAIL;
}

static dm_status
rec_tag_aspf(struct rec_parse *ps, const char *v, size_t n)
{
	return rec_align(v, n, &ps->rec->aspf) ? DM_OK : DM_PERMFAIL;
}

/*
 * Splits a colon-separated list (whitespace allowed around ':', as in RFC
 * 7489's dmarc-fo) and calls ok() on each item; writes the items back
 * lower case, colon-joined, into out. false when an item is rejected or
 * the result does not fit.
 */
static bool
rec_colon_list(const char *v, size_t n, bool (*ok)(const char *, size_t,
    void *), void *arg, char *out, size_t outlen)
{
	size_t pos = 0, end, b, e, o = 0, i;

	for (;;) {
		for (end = pos; end < n && v[end] != ':'; end++)
			continue;
		for (b = pos; b < end && rec_is_space((unsigned char)v[b]); b++)
			continue;
		for (e = end; e > b && rec_is_space((unsigned char)v[e - 1]); e--)
			continue;
		if (!ok(v + b, e - b, arg))
			return false;
		if (o + (o > 0) + (e - b) + 1 > outlen)
			return false;
		if (o > 0)
			out[o++] = ':';
		for (i = b; i < e; i++)
			out[o++] = (char)(v[i] >= 'A' && v[i] <= 'Z' ?
			    v[i] - 'A' + 'a' : v[i]);
		out[o] = '\0';
		if (end >= n)
			return true;
		pos = end + 1;
	}
}

/* One fo item; arg counts what was seen: bit 0 "0"/"1", 1 "d", 2 "s". */
static bool
rec_fo_item(const char *v, size_t n, void *arg)
{
	unsigned int *seen = arg, bit;

	if (rec_word(v, n, "0") || rec_word(v, n, "1"))
		bit = 1;
	else if (rec_word(v, n, "d"))
		bit = 2;
	else if (rec_word(v, n, "s"))
		bit = 4;
	else
		return false;
	if (*seen & bit)
		return false;
	*seen |= bit;
	return true;
}

static dm_status
rec_tag_fo(struct rec_parse *ps, const char *v, size_t n)
{
	char fo[sizeof(ps->rec->fo)];
	unsigned int seen = 0;

	if (!rec_colon_list(v, n, rec_fo_item, &seen, fo, sizeof(fo)))
		return DM_PERMFAIL;
	memcpy(ps->rec->fo, fo, strlen(fo) + 1);
	return DM_OK;
}

/* An SMTP Keyword (RFC 5321 4.1.2): Ldh-str. */
static bool
rec_rf_item(const char *v, size_t n, void *arg)
{
	size_t i;

	if (n == 0 || v[n - 1] == '-')
		return false;
	for (i = 0; i < n; i++) {
		if (!rec_is_alpha((unsigned char)v[i]) &&
		    !rec_is_digit((unsigned char)v[i]) &&
		    (v[i] != '-' || i == 0))
			return false;
	}
	return true;
}

static dm_status
rec_tag_rf(struct rec_parse *ps, const char *v, size_t n)
{
	char rf[sizeof(ps->rec->rf)];

	if (!rec_colon_list(v, n, rec_rf_item, NULL, rf, sizeof(rf)))
		return DM_PERMFAIL;
	memcpy(ps->rec->rf, rf, strlen(rf) + 1);
	return DM_OK;
}

static dm_status
rec_tag_ri(struct rec_parse *ps, const char *v, size_t n)
{
	uint64_t x;

	if (!rec_number(v, n, SIZE_MAX, UINT32_MAX, &x))
		return DM_PERMFAIL;
	ps->rec->ri = (uint32_t)x;
	return DM_OK;
}

static dm_status
rec_uris(dm_urilist *l, const char *v, size_t n)
{
	dm_status st;

	if ((st = dm_urilist_parse(v, n, l)) != DM_OK)
		return st;
	return l->n > 0 ? DM_OK : DM_PERMFAIL;
}

static dm_status
rec_tag_rua(struct rec_parse *ps, const char *v, size_t n)
{
	return rec_uris(&ps->rec->rua, v, n);
}

static dm_status
rec_tag_ruf(struct rec_parse *ps, const char *v, size_t n)
{
	return rec_uris(&ps->rec->ruf, v, n);
}

/*
 * v is marked seen before the loop, so a later v= is a duplicate. rua and
 * ruf check their own bytes, URI by URI: one bad URI must not take the
 * valid ones with it.
 */
static const struct rec_tag {
	const char *name;
	rec_tag_fn fn;
	bool own_syntax;
} rec_tags[REC_NTAGS] = {
	[REC_V] =	{ "v", NULL, false },
	[REC_P] =	{ "p", rec_tag_p, false },
	[REC_SP] =	{ "sp", rec_tag_sp, false },
	[REC_NP] =	{ "np", rec_tag_np, false },
	[REC_PCT] =	{ "pct", rec_tag_pct, false },
	[REC_T] =	{ "t", rec_tag_t, false },
	[REC_PSD] =	{ "psd", rec_tag_psd, false },
	[REC_ADKIM] =	{ "adkim", rec_tag_adkim, false },
	[REC_ASPF] =	{ "aspf", rec_tag_aspf, false },
	[REC_FO] =	{ "fo", rec_tag_fo, false },
	[REC_RF] =	{ "rf", rec_tag_rf, false },
	[REC_RI] =	{ "ri", rec_tag_ri, false },
	[REC_RUA] =	{ "rua", rec_tag_rua, true },
	[REC_RUF] =	{ "ruf", rec_tag_ruf, true },
};

/* DKIM tag-name: ALPHA *(ALPHA / DIGIT / "_"). */
static bool
rec_tag_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || !rec_is_alpha((unsigned char)s[0]))
		return false;
	for (i = 1; i < n; i++) {
		if (!rec_is_alpha((unsigned char)s[i]) &&
		    !rec_is_digit((unsigned char)s[i]) && s[i] != '_')
			return false;
	}
	return true;
}

/* RFC 9989 dmarc-value (printable but ';'), plus DKIM's HTAB and FWS. */
static bool
rec_value_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		if (((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) &&
		    !rec_is_space((unsigned char)s[i]))
			return false;
	}
	return true;
}

static enum rec_tagid
rec_find_tag(const char *name, size_t n)
{
	int i;

	for (i = 0; i < REC_NTAGS; i++) {
		if (rec_word(name, n, rec_tags[i].name))
			return (enum rec_tagid)i;
	}
	return REC_NTAGS;
}

/* One known tag, value trimmed; a bad value leaves the default. */
static dm_status
rec_tag(struct rec_parse *ps, enum rec_tagid t, const char *v, size_t n)
{
	const struct rec_tag *tag = &rec_tags[t];
	dm_status st;

	if (ps->seen & REC_BIT(t)) {
		rec_note(ps, "duplicate %s= ignored", tag->name);
		return DM_OK;
	}
	ps->seen |= REC_BIT(t);
	if (tag->own_syntax || rec_value_ok(v, n))
		st = tag->fn(ps, v, n);
	else
		st = DM_PERMFAIL;
	if (st == DM_PERMFAIL) {
		ps->bad |= REC_BIT(t);
		rec_note(ps, "invalid %s= ignored", tag->name);
		st = DM_OK;
	}
	return st;
}

/* One tag-spec between ';'s, not yet trimmed. */
static dm_status
rec_spec(struct rec_parse *ps, const char *s, size_t n)
{
	size_t b, e, eq, ne, vb;
	enum rec_tagid t;

	for (b = 0; b < n && rec_is_space((unsigned char)s[b]); b++)
		continue;
	for (e = n; e > b && rec_is_space((unsigned char)s[e - 1]); e--)
		continue;
	if (b == e)
		return DM_OK;
	for (eq = b; eq < e && s[eq] != '='; eq++)
		continue;
	for (ne = eq; ne > b && rec_is_space((unsigned char)s[ne - 1]); ne--)
		continue;
	if (eq == e || !rec_tag_name_ok(s + b, ne - b)) {
		rec_note(ps, "malformed tag-spec ignored");
		return DM_OK;
	}
	for (vb = eq + 1; vb < e && rec_is_space((unsigned char)s[vb]); vb++)
		continue;
	if ((t = rec_find_tag(s + b, ne - b)) == REC_NTAGS) {
		rec_note(ps, "unknown tag %.*s= ignored",
		    (int)(ne - b > 16 ? 16 : ne - b), s + b);
		return DM_OK;
	}
	return rec_tag(ps, t, s + vb, e - vb);
}

static void
rec_defaults(dm_record *r)
{
	memset(r, 0, sizeof(*r));
	r->p = r->sp = r->np = DM_POLICY_NONE;
	r->pct = 100;
	r->psd = DM_PSD_UNSET;
	r->adkim = r->aspf = DM_ALIGN_RELAXED;
	memcpy(r->fo, "0", sizeof("0"));
	memcpy(r->rf, "afrf", sizeof("afrf"));
	r->ri = 86400;
}

/*
 * The invalid-record rule (RFC 9989 4.10.1, RFC 7489 6.6.3 step 6), then
 * the inheritance sp <- p, np <- sp for what was not validly published.
 */
static dm_status
rec_settle(struct rec_parse *ps)
{
	dm_record *r = ps->rec;
	const char *why = NULL;

	if (!r->has_p)
		why = (ps->seen & REC_BIT(REC_P)) ? "invalid p=" : "no p=";
	else if (ps->bad & REC_BIT(REC_SP))
		why = "invalid sp=";
	else if (ps->bad & REC_BIT(REC_NP))
		why = "invalid np=";
	if (why != NULL) {
		if (r->rua.n == 0) {
			rec_note(ps, "%s and no valid rua=: not a policy", why);
			return DM_NOTFOUND;
		}
		rec_note(ps, "%s with valid rua=: treated as p=none", why);
		r->p = DM_POLICY_NONE;
		r->p_defaulted = true;
	}
	if (!r->has_sp)
		r->sp = r->p;
	if (!r->has_np)
		r->np = r->sp;
	return DM_OK;
}

static dm_status
rec_parse_tags(struct rec_parse *ps, const char *txt, size_t len)
{
	size_t pos, end;
	dm_status st;

	/* dm_record_is_dmarc vouched for the first tag-spec: skip it. */
	for (pos = 0; pos < len && txt[pos] != ';'; pos++)
		continue;
	ps->seen = REC_BIT(REC_V);
	while (pos < len) {
		pos++;
		for (end = pos; end < len && txt[end] != ';'; end++)
			continue;
		if ((st = rec_spec(ps, txt + pos, end - pos)) != DM_OK)
			return st;
		pos = end;
	}
	return rec_settle(ps);
}

dm_status
dm_record_parse(const char *txt, size_t len, dm_record **out, char *err,
    size_t errlen)
{
	struct rec_parse ps;
	dm_status st;

	*out = NULL;
	memset(&ps, 0, sizeof(ps));
	ps.err = err;
	ps.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > REC_MAX_LEN) {
		rec_note(&ps, "record longer than %d bytes", REC_MAX_LEN);
		return DM_PERMFAIL;
	}
	if (!dm_record_is_dmarc(txt, len)) {
		rec_note(&ps, "not a DMARC record (no leading v=DMARC1)");
		return DM_NOTFOUND;
	}
	if (memchr(txt, '\0', len) != NULL) {
		rec_note(&ps, "NUL byte in record");
		return DM_PERMFAIL;
	}
	if ((ps.rec = malloc(sizeof(*ps.rec))) == NULL)
		dm_log_oom();
	rec_defaults(ps.rec);
	if ((st = rec_parse_tags(&ps, txt, len)) != DM_OK) {
		dm_record_free(ps.rec);
		return st;
	}
	*out = ps.rec;
	return DM_OK;
}

void
dm_record_free(dm_record *rec)
{
	if (rec == NULL)
		return;
	dm_urilist_clear(&rec->rua);
	dm_urilist_clear(&rec->ruf);
	free(rec);
}

/*
 * [WSP] "v" [WSP] "=" [WSP] "DMARC1" [WSP] then ';' or the end: the v tag
 * must come first (RFC 7489 6.3, RFC 9989 4.7); DKIM's tag-list allows
 * the whitespace.
 */
bool
dm_record_is_dmarc(const char *txt, size_t len)
{
	size_t i = 0, vl = strlen(REC_VERSION);

	if (txt == NULL)
		return false;
	while (i < len && rec_is_space((unsigned char)txt[i]))
		i++;
	if (i >= len || (txt[i] != 'v' && txt[i] != 'V'))
		return false;
	for (i++; i < len && rec_is_space((unsigned char)txt[i]); i++)
		continue;
	if (i >= len || txt[i] != '=')
		return false;
	for (i++; i < len && rec_is_space((unsigned char)txt[i]); i++)
		continue;
	if (len - i < vl || memcmp(txt + i, REC_VERSION, vl) != 0)
		return false;
	for (i += vl; i < len && rec_is_space((unsigned char)txt[i]); i++)
		continue;
	return i == len || txt[i] == ';';
}

/* Out-of-range values give the default word, never an unregistered one. */
const char *
dm_policy_str(dm_policy p)
{
	switch (p) {
	case DM_POLICY_QUARANTINE:	return "quarantine";
	case DM_POLICY_REJECT:		return "reject";
	case DM_POLICY_NONE:		break;
	}
	return "none";
}

const char *
dm_align_mode_str(dm_align_mode m)
{
	return m == DM_ALIGN_STRICT ? "s" : "r";
}

const char *
dm_psd_str(dm_psd p)
{
	switch (p) {
	case DM_PSD_YES:	return "y";
	case DM_PSD_NO:		return "n";
	case DM_PSD_UNSET:	break;
	}
	return "u";
}
