/*
 * lib/authres.c - the Authentication-Results field (RFC 8601): writes
 * ours from a verdict, and reads the authserv-id of any field and the
 * spf= result of a trusted upstream's.
 *
 * Everything here that came from the message or the SMTP session (HELO
 * names, selectors) is attacker-controlled: it is written as a token
 * when it is one, else as a quoted-string with control characters
 * dropped, so that nothing can end the field or inject another.
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <bsd/string.h>

#include "dm_authres.h"
#include "dm_buf.h"
#include "dm_domain.h"
#include "dm_from.h"

/* RFC 2045 token characters. */
static bool
ar_is_token(const char *s)
{
	const unsigned char *p;

	if (*s == '\0')
		return false;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p <= 32 || *p >= 127 || strchr("()<>@,;:\\\"/[]?=", *p))
			return false;
	return true;
}

static void
ar_value(dm_buf *b, const char *s)
{
	const unsigned char *p;

	if (ar_is_token(s)) {
		dm_buf_printf(b, "%s", s);
		return;
	}
	dm_buf_printf(b, "\"");
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 32 || *p == 127)
			continue;
		if (*p == '"' || *p == '\\')
			dm_buf_printf(b, "\\");
		dm_buf_printf(b, "%c", *p);
	}
	dm_buf_printf(b, "\"");
}

static void
ar_spf(dm_buf *b, const dm_spf_outcome *spf)
{
	dm_buf_printf(b, "spf=%s", dm_spf_result_str(spf->result));
	if (spf->domain[0] == '\0')
		return;
	dm_buf_printf(b, " smtp.%s=", spf->scope == DM_SPF_SCOPE_HELO ?
	    "helo" : "mailfrom");
	ar_value(b, spf->domain);
}

static void
ar_dkim(dm_buf *b, const dm_verdict *v, const char *sep)
{
	const dm_dkim_sig *s;
	size_t i;

	if (v->nsigs == 0) {
		dm_buf_printf(b, "%sdkim=none", sep);
		return;
	}
	for (i = 0; i < v->nsigs; i++) {
		s = v->sigs[i];
		dm_buf_printf(b, "%sdkim=%s", sep, dm_dkim_result_str(s->result));
		if (s->result != DM_DKIM_PASS && s->error[0] != '\0') {
			dm_buf_printf(b, " reason=");
			ar_value(b, s->error);
		}
		if (s->domain[0] != '\0') {
			dm_buf_printf(b, " header.d=");
			ar_value(b, s->domain);
		}
		if (s->selector[0] != '\0') {
			dm_buf_printf(b, " header.s=");
			ar_value(b, s->selector);
		}
	}
}

static void
ar_dmarc_author(dm_buf *b, const dm_author *a)
{
	const dm_record *rec = a->disc.record;

	dm_buf_printf(b, "dmarc=%s", dm_dmarc_result_str(a->pv.result));
	if (rec != NULL)
		dm_buf_printf(b, " (p=%s sp=%s dis=%s)", dm_policy_str(rec->p),
		    dm_policy_str(rec->sp),
		    dm_disposition_str(a->pv.disposition));
	dm_buf_printf(b, " header.from=%s", a->domain);
	if (rec != NULL)
		dm_buf_printf(b, " policy.dmarc=%s",
		    dm_policy_str(a->pv.requested));
}

static void
ar_dmarc(dm_buf *b, const dm_verdict *v, const char *sep)
{
	size_t i;

	if (v->nauthors == 0 && v->from_why != NULL) {
		dm_buf_printf(b, "%sdmarc=%s (unusable From: %s)", sep,
		    dm_dmarc_result_str(v->result), v->from_why);
		return;
	}
	if (v->nauthors == 0) {
		dm_buf_printf(b, "%sdmarc=%s (%s From)", sep,
		    dm_dmarc_result_str(v->result),
		    v->from_state == DM_FROM_MISSING ? "no" : "unusable");
		return;
	}
	/* The author domain that decided comes first. */
	dm_buf_printf(b, "%s", sep);
	ar_dmarc_author(b, &v->authors[v->decisive]);
	if (v->from_why != NULL)
		dm_buf_printf(b, " (%s)", v->from_why);
	for (i = 0; i < v->nauthors; i++)
		if (i != v->decisive) {
			dm_buf_printf(b, "%s", sep);
			ar_dmarc_author(b, &v->authors[i]);
		}
}

char *
dm_authres_format(const dm_verdict *v, const char *authserv_id,
    const char *eol, size_t *len)
{
	dm_buf b = DM_BUF_INIT;
	char sep[8];

	snprintf(sep, sizeof(sep), ";%s\t", eol);
	dm_buf_printf(&b, " ");
	ar_value(&b, authserv_id);
	dm_buf_printf(&b, "%s", sep);
	ar_spf(&b, &v->spf);
	ar_dkim(&b, v, sep);
	ar_dmarc(&b, v, sep);
	return dm_buf_take(&b, len);
}

/* Skip white space and RFC 5322 comments (bounded nesting). */
static const char *
ar_skip_cfws(const char *p)
{
	int depth = 0;

	for (; *p != '\0'; p++) {
		if (*p == '(' )
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (*p == '\\' && depth > 0 && p[1] != '\0')
			p++;
		else if (depth == 0 && *p != ' ' && *p != '\t' &&
		    *p != '\r' && *p != '\n')
			break;
	}
	return p;
}

dm_status
dm_authres_servid(const char *value, char *out, size_t outlen)
{
	const char *p = ar_skip_cfws(value);
	size_t o = 0;
	bool quoted = *p == '"';

	if (quoted)
		p++;
	for (; *p != '\0' && o + 1 < outlen; p++) {
		if (quoted && *p == '"')
			break;
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (!quoted && (*p == ';' || *p == ' ' || *p == '\t' ||
		    *p == '\r' || *p == '\n' || *p == '('))
			break;
		out[o++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	}
	out[o] = '\0';
	/* A truncated id could equal ours by accident: none is read. */
	if (*p != '\0' && o + 1 >= outlen)
		return DM_PERMFAIL;
	return o > 0 ? DM_OK : DM_PERMFAIL;
}

/*
 * Reading a trusted upstream's spf= result: the field is parsed by RFC
 * 8601's grammar, resinfo by resinfo and property by property, never
 * searched: text that merely looks like "smtp.mailfrom=" (in a reason, a
 * comment, a quoted string) is not a property, and a quoted local part
 * ("ceo@bank.example"@evil.example) is not the domain. Anything off the
 * grammar makes the whole field unreadable.
 */
struct ar_cur {
	const char *p;
	bool bad;
};

/* CFWS: white space, line breaks and (nested, escaped) comments. */
static void
ar_cfws(struct ar_cur *c)
{
	int depth = 0;

	for (; *c->p != '\0'; c->p++) {
		if (*c->p == '(') {
			if (++depth > 32)
				break;
		} else if (depth > 0 && *c->p == ')')
			depth--;
		else if (depth > 0 && *c->p == '\\' && c->p[1] != '\0')
			c->p++;
		else if (depth == 0 && strchr(" \t\r\n", *c->p) == NULL)
			return;
	}
	if (depth > 0)
		c->bad = true;
}

/* A keyword (method, result, ptype, property): letters, digits, - _. */
static size_t
ar_keyword(struct ar_cur *c, char *out, size_t outlen)
{
	size_t n = 0;

	ar_cfws(c);
	while (isalnum((unsigned char)c->p[n]) || c->p[n] == '-' ||
	    c->p[n] == '_')
		n++;
	if (n == 0 || n >= outlen) {
		c->bad = true;
		return 0;
	}
	memcpy(out, c->p, n);
	out[n] = '\0';
	c->p += n;
	return n;
}

/* The special character ch, after CFWS. */
static bool
ar_expect(struct ar_cur *c, char ch)
{
	ar_cfws(c);
	if (c->bad || *c->p != ch) {
		c->bad = true;
		return false;
	}
	c->p++;
	return true;
}

/* A quoted string at c->p (its quotes included); false if unterminated. */
static bool
ar_skip_quoted(struct ar_cur *c)
{
	for (c->p++; *c->p != '"'; c->p++) {
		if (*c->p == '\\' && c->p[1] != '\0')
			c->p++;
		else if (*c->p == '\0') {
			c->bad = true;
			return false;
		}
	}
	c->p++;
	return true;
}

/*
 * A value or pvalue: quoted strings and other bytes up to CFWS or ';'.
 * Its text into raw; into dom the domain it names: what follows the last
 * '@' outside quotes, or, for one quoted string alone, the last '@' of
 * its content (unescaped), or else the whole of it.
 */
static bool
ar_pvalue(struct ar_cur *c, char *raw, size_t rawlen, char *dom,
    size_t domlen)
{
	const char *start, *at = NULL, *d;
	size_t n, o = 0;

	ar_cfws(c);
	start = c->p;
	while (!c->bad && *c->p != '\0' && strchr(" \t\r\n(;", *c->p) == NULL)
		if (*c->p == '"')
			ar_skip_quoted(c);
		else if (*c->p++ == '@')
			at = c->p - 1;
	n = (size_t)(c->p - start);
	if (c->bad || n == 0 || n >= rawlen)
		return !(c->bad = true);
	memcpy(raw, start, n);
	raw[n] = '\0';
	if (at == NULL && raw[0] == '"' && raw[n - 1] == '"' && n >= 2) {
		for (d = raw + 1; d < raw + n - 1 && o + 1 < domlen; d++) {
			if (*d == '\\')
				d++;
			o = *d == '@' ? 0 : o;
			if (*d != '@')
				dom[o++] = *d;
		}
		dom[o] = '\0';
		return true;
	}
	strlcpy(dom, at != NULL ? raw + (at - start) + 1 : raw, domlen);
	return true;
}

static const struct {
	const char *name;
	dm_spf_result r;
} ar_spf_results[] = {
	{ "pass", DM_SPF_PASS }, { "fail", DM_SPF_FAIL },
	{ "softfail", DM_SPF_SOFTFAIL }, { "neutral", DM_SPF_NEUTRAL },
	{ "none", DM_SPF_NONE }, { "temperror", DM_SPF_TEMPERROR },
	{ "permerror", DM_SPF_PERMERROR },
};

/* What one spf= resinfo says, gathered property by property. */
struct ar_spf {
	int result;		/* index into ar_spf_results, -1 unknown */
	int nid[2];		/* smtp.mailfrom, smtp.helo seen */
	char raw[2][512], dom[2][DM_DOMAIN_MAX + 2];
};

/* One propspec (or reasonspec) of a resinfo; spf: gather into it. */
static void
ar_prop(struct ar_cur *c, struct ar_spf *spf)
{
	char ptype[32], prop[32], raw[512], dom[DM_DOMAIN_MAX + 2];
	int k;

	if (ar_keyword(c, ptype, sizeof(ptype)) == 0)
		return;
	if (strcasecmp(ptype, "reason") != 0) {
		if (!ar_expect(c, '.') || ar_keyword(c, prop, sizeof(prop)) == 0)
			return;
	}
	if (!ar_expect(c, '=') || !ar_pvalue(c, raw, sizeof(raw), dom,
	    sizeof(dom)) || spf == NULL || strcasecmp(ptype, "smtp") != 0)
		return;
	k = strcasecmp(prop, "mailfrom") == 0 ? 0 :
	    strcasecmp(prop, "helo") == 0 ? 1 : -1;
	if (k < 0 || spf->nid[k]++ > 0)
		return;
	strlcpy(spf->raw[k], raw, sizeof(spf->raw[k]));
	strlcpy(spf->dom[k], dom, sizeof(spf->dom[k]));
}

/* One resinfo after its ';': methodspec, then properties to ';' or end. */
static void
ar_resinfo(struct ar_cur *c, struct ar_spf *spf, bool *is_spf)
{
	char method[64], result[32];
	size_t i;

	if (ar_keyword(c, method, sizeof(method)) == 0)
		return;
	ar_cfws(c);
	if (*c->p == '/') {
		c->p++;
		if (ar_keyword(c, result, sizeof(result)) == 0)
			return;
	}
	if (!ar_expect(c, '=') || ar_keyword(c, result, sizeof(result)) == 0)
		return;
	*is_spf = strcasecmp(method, "spf") == 0;
	spf->result = -1;
	for (i = 0; *is_spf && i < sizeof(ar_spf_results) /
	    sizeof(ar_spf_results[0]); i++)
		if (strcasecmp(result, ar_spf_results[i].name) == 0)
			spf->result = (int)i;
	for (;;) {
		ar_cfws(c);
		if (c->bad || *c->p == ';' || *c->p == '\0')
			return;
		ar_prop(c, *is_spf ? spf : NULL);
		if (c->bad)
			return;
	}
}

/* The first spf= resinfo as an outcome: every part must be usable. */
static dm_status
ar_spf_outcome(const struct ar_spf *spf, dm_spf_outcome *out)
{
	int k = spf->nid[0] > 0 ? 0 : 1;

	if (spf->result < 0 || spf->nid[k] != 1)
		return DM_PERMFAIL;	/* unknown result, no or two ids */
	memset(out, 0, sizeof(*out));
	out->result = ar_spf_results[spf->result].r;
	out->scope = k == 0 ? DM_SPF_SCOPE_MFROM : DM_SPF_SCOPE_HELO;
	strlcpy(out->identity, spf->raw[k], sizeof(out->identity));
	if (dm_domain_normalize(spf->dom[k], strlen(spf->dom[k]),
	    out->domain, sizeof(out->domain)) != DM_OK)
		return DM_PERMFAIL;
	snprintf(out->comment, sizeof(out->comment),
	    "from a trusted Authentication-Results field");
	return DM_OK;
}

dm_status
dm_authres_read_spf(const char *value, dm_spf_outcome *out)
{
	struct ar_cur c = { value, false };
	struct ar_spf spf, one;
	char raw[256], dom[DM_DOMAIN_MAX + 2], kw[16];
	bool found = false, is_spf;

	if (!ar_pvalue(&c, raw, sizeof(raw), dom, sizeof(dom)))
		return DM_PERMFAIL;	/* no authserv-id */
	ar_cfws(&c);
	if (isdigit((unsigned char)*c.p))
		(void)ar_keyword(&c, kw, sizeof(kw));	/* authres-version */
	for (ar_cfws(&c); !c.bad && *c.p != '\0'; ar_cfws(&c)) {
		if (!ar_expect(&c, ';'))
			break;
		ar_cfws(&c);
		if (strncasecmp(c.p, "none", 4) == 0 && !isalnum(
		    (unsigned char)c.p[4]) && c.p[4] != '=') {
			c.p += 4;	/* no-result */
			continue;
		}
		memset(&one, 0, sizeof(one));
		is_spf = false;
		ar_resinfo(&c, &one, &is_spf);
		if (is_spf && !found) {
			spf = one;
			found = true;
		}
	}
	if (c.bad)
		return DM_PERMFAIL;
	return found ? ar_spf_outcome(&spf, out) : DM_NOTFOUND;
}
