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

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <bsd/string.h>

#include "dm_authres.h"
#include "dm_from.h"

struct ar_buf {
	char *p;
	size_t len, used;
	bool overflow;
};

static void __attribute__((format(printf, 2, 3)))
ar_printf(struct ar_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->used, b->len - b->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->len - b->used)
		b->overflow = true;
	else
		b->used += (size_t)n;
}

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
ar_value(struct ar_buf *b, const char *s)
{
	const unsigned char *p;

	if (ar_is_token(s)) {
		ar_printf(b, "%s", s);
		return;
	}
	ar_printf(b, "\"");
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 32 || *p == 127)
			continue;
		if (*p == '"' || *p == '\\')
			ar_printf(b, "\\");
		ar_printf(b, "%c", *p);
	}
	ar_printf(b, "\"");
}

static void
ar_spf(struct ar_buf *b, const dm_spf_outcome *spf)
{
	ar_printf(b, "spf=%s", dm_spf_result_str(spf->result));
	if (spf->domain[0] == '\0')
		return;
	ar_printf(b, " smtp.%s=", spf->scope == DM_SPF_SCOPE_HELO ?
	    "helo" : "mailfrom");
	ar_value(b, spf->domain);
}

static void
ar_dkim(struct ar_buf *b, const dm_verdict *v, const char *sep)
{
	const dm_dkim_sig *s;
	size_t i;

	if (v->nsigs == 0) {
		ar_printf(b, "%sdkim=none", sep);
		return;
	}
	for (i = 0; i < v->nsigs; i++) {
		s = v->sigs[i];
		ar_printf(b, "%sdkim=%s", sep, dm_dkim_result_str(s->result));
		if (s->result != DM_DKIM_PASS && s->error[0] != '\0') {
			ar_printf(b, " reason=");
			ar_value(b, s->error);
		}
		if (s->domain[0] != '\0') {
			ar_printf(b, " header.d=");
			ar_value(b, s->domain);
		}
		if (s->selector[0] != '\0') {
			ar_printf(b, " header.s=");
			ar_value(b, s->selector);
		}
	}
}

static void
ar_dmarc_author(struct ar_buf *b, const dm_author *a)
{
	const dm_record *rec = a->disc.record;

	ar_printf(b, "dmarc=%s", dm_dmarc_result_str(a->pv.result));
	if (rec != NULL)
		ar_printf(b, " (p=%s sp=%s dis=%s)", dm_policy_str(rec->p),
		    dm_policy_str(rec->sp),
		    dm_disposition_str(a->pv.disposition));
	ar_printf(b, " header.from=%s", a->domain);
	if (rec != NULL)
		ar_printf(b, " policy.dmarc=%s",
		    dm_policy_str(a->pv.requested));
}

static void
ar_dmarc(struct ar_buf *b, const dm_verdict *v, const char *sep)
{
	size_t i;

	if (v->nauthors == 0) {
		ar_printf(b, "%sdmarc=%s (%s From)", sep,
		    dm_dmarc_result_str(v->result),
		    v->from_state == DM_FROM_MISSING ? "no" : "unusable");
		return;
	}
	/* The author domain that decided comes first. */
	ar_printf(b, "%s", sep);
	ar_dmarc_author(b, &v->authors[v->decisive]);
	for (i = 0; i < v->nauthors; i++)
		if (i != v->decisive) {
			ar_printf(b, "%s", sep);
			ar_dmarc_author(b, &v->authors[i]);
		}
}

dm_status
dm_authres_format(const dm_verdict *v, const char *authserv_id,
    const char *eol, char *buf, size_t len)
{
	struct ar_buf b = { buf, len, 0, false };
	char sep[8];

	if (len == 0)
		return DM_NOMEM;
	snprintf(sep, sizeof(sep), ";%s\t", eol);
	ar_printf(&b, " ");
	ar_value(&b, authserv_id);
	ar_printf(&b, "%s", sep);
	ar_spf(&b, &v->spf);
	ar_dkim(&b, v, sep);
	ar_dmarc(&b, v, sep);
	if (b.overflow) {
		buf[0] = '\0';
		return DM_NOMEM;
	}
	return DM_OK;
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
 * Reading a trusted upstream's spf= result. The field is first copied
 * without its comments (quoted strings kept whole), then cut at the
 * semicolons that separate the authserv-id from each resinfo. false when
 * the copy does not fit in out: an escape inside quotes writes two bytes
 * at once, so two and the NUL must fit before each write.
 */
static bool
ar_strip_comments(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	int depth = 0;
	bool quoted = false;

	for (; *in != '\0'; in++) {
		if (!quoted && *in == '(' && depth < 32) {
			depth++;
			continue;
		}
		if (depth > 0) {
			if (*in == '\\' && in[1] != '\0')
				in++;
			else if (*in == ')')
				depth--;
			continue;
		}
		if (o + 2 >= outlen)
			break;
		if (*in == '"')
			quoted = !quoted;
		else if (quoted && *in == '\\' && in[1] != '\0')
			out[o++] = *in++;
		out[o++] = (*in == '\r' || *in == '\n' || *in == '\t') ? ' ' :
		    *in;
	}
	out[o] = '\0';
	return *in == '\0';
}

static const char *
ar_skip_ws(const char *p)
{
	return p + strspn(p, " ");
}

/* "name = value" at p (name already matched); the value into out. */
static bool
ar_prop_value(const char *p, char *out, size_t outlen)
{
	size_t n;

	p = ar_skip_ws(p);
	if (*p != '=')
		return false;
	p = ar_skip_ws(p + 1);
	if (*p == '"')
		p++;
	n = strcspn(p, " \";");
	if (n == 0 || n >= outlen)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
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

/* One resinfo: "spf=RESULT ... smtp.mailfrom=X" or "... smtp.helo=Y". */
static dm_status
ar_resinfo_spf(const char *ri, dm_spf_outcome *out)
{
	const char *p = ar_skip_ws(ri), *q;
	char id[512];
	size_t i, n;

	if (strncasecmp(p, "spf", 3) != 0 || *(p = ar_skip_ws(p + 3)) != '=')
		return DM_NOTFOUND;
	p = ar_skip_ws(p + 1);
	n = strcspn(p, " ;");
	for (i = 0; i < sizeof(ar_spf_results) / sizeof(ar_spf_results[0]);
	    i++)
		if (strlen(ar_spf_results[i].name) == n &&
		    strncasecmp(p, ar_spf_results[i].name, n) == 0)
			break;
	if (i == sizeof(ar_spf_results) / sizeof(ar_spf_results[0]))
		return DM_PERMFAIL;
	memset(out, 0, sizeof(*out));
	out->result = ar_spf_results[i].r;
	if ((q = strcasestr(p, "smtp.mailfrom")) != NULL &&
	    ar_prop_value(q + 13, id, sizeof(id)))
		out->scope = DM_SPF_SCOPE_MFROM;
	else if ((q = strcasestr(p, "smtp.helo")) != NULL &&
	    ar_prop_value(q + 9, id, sizeof(id)))
		out->scope = DM_SPF_SCOPE_HELO;
	else
		return DM_PERMFAIL;	/* a result without its identity */
	strlcpy(out->identity, id, sizeof(out->identity));
	q = strrchr(id, '@');
	if (dm_domain_normalize(q ? q + 1 : id, strlen(q ? q + 1 : id),
	    out->domain, sizeof(out->domain)) != DM_OK)
		return DM_PERMFAIL;
	return DM_OK;
}

dm_status
dm_authres_read_spf(const char *value, dm_spf_outcome *out)
{
	char buf[4096], *ri, *save = NULL;
	dm_status st = DM_NOTFOUND;

	if (!ar_strip_comments(value, buf, sizeof(buf)))
		return DM_PERMFAIL;	/* too long to read whole */
	if ((ri = strtok_r(buf, ";", &save)) == NULL)
		return DM_NOTFOUND;	/* the authserv-id alone */
	while ((ri = strtok_r(NULL, ";", &save)) != NULL)
		if ((st = ar_resinfo_spf(ri, out)) != DM_NOTFOUND)
			break;
	if (st == DM_OK)
		snprintf(out->comment, sizeof(out->comment),
		    "from a trusted Authentication-Results field");
	return st;
}
