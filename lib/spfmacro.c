/*
 * lib/spfmacro.c - SPF macro-strings (RFC 7208 7): the syntax of 7.1
 * and the expansion of 7.3 (letters, transformers, delimiters, URL
 * escaping of upper-case letters, the 253-byte cut of a domain).
 *
 * Expansion writes into the caller's buffer and never allocates. A
 * domain is cut on the left, so while expanding only its last bytes are
 * kept: a hostile record cannot make it grow without bound.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include "dm_spfmacro.h"

#define MACRO_DOMAIN_MAX	253
#define MACRO_DELIMS		".-+,/_="

static int
macro_is_letter(int c)
{
	return c != '\0' && strchr("slodiphcrtv", tolower(c)) != NULL;
}

static int
macro_exp_only(int c)
{
	c = tolower(c);
	return c == 'c' || c == 'r' || c == 't';
}

/*
 * One "%{...}" starting at s[0] == '%', s[1] == '{': its length, or 0
 * when it is malformed (*why says how).
 */
static size_t
macro_expand_len(const char *s, size_t len, dm_spf_mctx m, const char **why)
{
	size_t j = 2, d0;
	int nonzero = 0;

	if (j >= len || !macro_is_letter((unsigned char)s[j])) {
		*why = "unknown macro letter";
		return 0;
	}
	if (m == DM_SPF_MDOMAIN && macro_exp_only((unsigned char)s[j])) {
		*why = "%{c}, %{r} and %{t} belong in explanations only";
		return 0;
	}
	for (d0 = ++j; j < len && isdigit((unsigned char)s[j]); j++)
		nonzero |= s[j] != '0';
	if (j > d0 && !nonzero) {
		*why = "a macro transformer of 0 parts";
		return 0;
	}
	if (j < len && (s[j] == 'r' || s[j] == 'R'))
		j++;
	while (j < len && strchr(MACRO_DELIMS, s[j]) != NULL && s[j] != '\0')
		j++;
	if (j >= len || s[j] != '}') {
		*why = "malformed macro";
		return 0;
	}
	return j + 1;
}

int
dm_spf_macro_check(const char *s, size_t len, dm_spf_mctx m,
    const char **why, int *ends_macro)
{
	size_t i = 0, n;
	unsigned char c;

	*ends_macro = 0;
	while (i < len) {
		c = (unsigned char)s[i];
		*ends_macro = 0;
		if (c == '%') {
			if (i + 1 < len && strchr("%_-", s[i + 1]) != NULL &&
			    s[i + 1] != '\0')
				n = 2;
			else if (i + 1 < len && s[i + 1] == '{')
				n = macro_expand_len(s + i, len - i, m, why);
			else {
				*why = "'%' not followed by { % _ -";
				return -1;
			}
			if (n == 0)
				return -1;
			i += n;
			*ends_macro = 1;
			continue;
		}
		if ((c < 0x21 || c > 0x7e) && !(c == ' ' && m == DM_SPF_MEXP)) {
			*why = c >= 0x80 ? "an 8-bit byte" :
			    "a control byte or space";
			return -1;
		}
		i++;
	}
	return 0;
}

/* --- expansion ----------------------------------------------------------- */

struct msink {
	char *buf;
	size_t cap, len;	/* cap: bytes usable before the NUL */
	int domain, dropped;
};

static void
sink_put(struct msink *k, char c)
{
	size_t half;

	if (k->len == k->cap) {
		if (!k->domain)
			return;
		/* a domain keeps its right end: drop the older half */
		half = k->cap / 2;
		memmove(k->buf, k->buf + half, k->len - half);
		k->len -= half;
		k->dropped = 1;
	}
	k->buf[k->len++] = c;
}

/* RFC 3986 unreserved characters pass; others are %XX (7.3). */
static void
sink_char(struct msink *k, char c, int esc)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char u = (unsigned char)c;

	if (!esc || isalnum(u) || c == '-' || c == '.' || c == '_' ||
	    c == '~') {
		sink_put(k, c);
		return;
	}
	sink_put(k, '%');
	sink_put(k, hex[u >> 4]);
	sink_put(k, hex[u & 15]);
}

static int
is_delim(char c, const char *dl, size_t dn)
{
	return memchr(dl, c, dn) != NULL;
}

/*
 * The value split at the delimiters, reversed if asked, the rightmost
 * keep parts (0: all), joined with dots (7.3).
 */
static void
macro_transform(struct msink *k, const char *v, unsigned long keep, int rev,
    const char *dl, size_t dn, int esc)
{
	size_t i, n = 1, b, e, cnt = 0, vn = strlen(v);

	for (i = 0; i < vn; i++)
		n += is_delim(v[i], dl, dn);
	if (keep == 0 || keep > n)
		keep = n;
	if (!rev) {
		for (i = 0, cnt = n - keep; cnt > 0; i++)
			cnt -= is_delim(v[i], dl, dn);
		for (; i < vn; i++)
			sink_char(k, is_delim(v[i], dl, dn) ? '.' : v[i], esc);
		return;
	}
	/* reversed, the rightmost parts are the first keep ones, last first */
	for (e = 0; e < vn; e++)
		if (is_delim(v[e], dl, dn) && ++cnt == keep)
			break;
	for (;;) {
		for (b = e; b > 0 && !is_delim(v[b - 1], dl, dn); b--)
			;
		for (i = b; i < e; i++)
			sink_char(k, v[i], esc);
		if (b == 0)
			break;
		sink_char(k, '.', esc);
		e = b - 1;
	}
}

static const char *
macro_value(int letter, const dm_spf_menv *env, const char **pcache)
{
	const char *v = NULL;

	switch (tolower(letter)) {
	case 's': v = env->s; break;
	case 'l': v = env->l; break;
	case 'o': v = env->o; break;
	case 'd': v = env->d; break;
	case 'h': v = env->h; break;
	case 'i': v = env->i; break;
	case 'c': v = env->c; break;
	case 'v': v = env->v; break;
	case 'r': v = env->r; break;
	case 't': v = env->t; break;
	case 'p':
		/* asked once; no validated name is "unknown" (7.3) */
		if (*pcache == NULL && (env->p == NULL ||
		    (*pcache = env->p(env->parg)) == NULL))
			*pcache = "unknown";
		v = *pcache;
		break;
	}
	return v != NULL ? v : "";
}

/* One checked "%{...}" at s: expanded into k. */
static void
macro_one(struct msink *k, const char *s, size_t n, const dm_spf_menv *env,
    const char **pcache)
{
	const char *v = macro_value((unsigned char)s[2], env, pcache);
	unsigned long keep = 0;
	size_t j = 3, d0;
	int rev = 0, esc = isupper((unsigned char)s[2]);

	for (; isdigit((unsigned char)s[j]); j++)
		if (keep < 100000)
			keep = keep * 10 + (unsigned long)(s[j] - '0');
	if (s[j] == 'r' || s[j] == 'R') {
		rev = 1;
		j++;
	}
	d0 = j;
	if (n - 1 > d0)
		macro_transform(k, v, keep, rev, s + d0, n - 1 - d0, esc);
	else
		macro_transform(k, v, keep, rev, ".", 1, esc);
}

/* 7.3: no trailing dot; over 253 bytes, labels go from the left. */
static void
macro_cut_domain(struct msink *k)
{
	char *dot;
	size_t cut;

	k->buf[k->len] = '\0';
	if (k->dropped && (dot = memchr(k->buf, '.', k->len)) != NULL) {
		cut = (size_t)(dot - k->buf) + 1;
		memmove(k->buf, k->buf + cut, k->len - cut + 1);
		k->len -= cut;
	}
	if (k->len > 0 && k->buf[k->len - 1] == '.')
		k->buf[--k->len] = '\0';
	while (k->len > MACRO_DOMAIN_MAX &&
	    (dot = memchr(k->buf, '.', k->len)) != NULL) {
		cut = (size_t)(dot - k->buf) + 1;
		memmove(k->buf, k->buf + cut, k->len - cut + 1);
		k->len -= cut;
	}
}

int
dm_spf_macro_expand(const char *s, size_t len, dm_spf_mctx m,
    const dm_spf_menv *env, char *out, size_t outlen)
{
	struct msink k;
	const char *why, *pcache = NULL;
	size_t i = 0, n;
	int ends;

	if (outlen < 2 * (MACRO_DOMAIN_MAX + 3) ||
	    dm_spf_macro_check(s, len, m, &why, &ends) != 0)
		return -1;
	k.buf = out;
	k.cap = outlen - 1;
	k.len = 0;
	k.domain = m == DM_SPF_MDOMAIN;
	k.dropped = 0;
	while (i < len) {
		if (s[i] != '%') {
			sink_put(&k, s[i++]);
			continue;
		}
		switch (s[i + 1]) {
		case '%': sink_put(&k, '%'); n = 2; break;
		case '_': sink_put(&k, ' '); n = 2; break;
		case '-':
			sink_put(&k, '%');
			sink_put(&k, '2');
			sink_put(&k, '0');
			n = 2;
			break;
		default:
			n = (size_t)(memchr(s + i, '}', len - i) -
			    (const void *)(s + i)) + 1;
			macro_one(&k, s + i, n, env, &pcache);
			break;
		}
		i += n;
	}
	if (k.domain)
		macro_cut_domain(&k);
	out[k.len] = '\0';
	return (int)k.len;
}
