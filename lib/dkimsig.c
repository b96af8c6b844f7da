/*
 * lib/dkimsig.c - the syntax check of a DKIM-Signature field
 * (dm_dkimsig.h): the tag-list grammar of RFC 6376 3.2 and the value
 * grammar of each tag of 3.5.
 *
 * Readings of the text:
 * - A tag-list is tag-spec *(";" tag-spec) [";"]: an empty tag-spec
 *   (";;") is not one. Tag names are case-sensitive ("D=" is an unknown
 *   tag, so d= is missing). Unknown tags are ignored, but a duplicate
 *   of any tag makes the whole list invalid.
 * - d= is a domain-name of at least two labels, each label LDH as RFC
 *   5321 has it, no trailing dot: no '(' or '_' that libopendkim would
 *   put into a key query. s= is a selector of at least one such label,
 *   but '_' is let through there: selectors with it are in use, and the
 *   key is looked up under d= whatever the selector.
 * - Values may contain no whitespace except where 3.5 allows FWS: inside
 *   b= and bh= (base64), around the colons of h= and q=, and in z=.
 * - x= must be greater than t= (equal is not); l= is at most 76 digits,
 *   t= and x= at most 12.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "dm_dkimsig.h"

/* Far more than the 14 tags of RFC 6376; a field with more is refused. */
#define SIG_MAX_TAGS	64

struct sigtag {
	const char *name;
	size_t nlen;
	const char *val;	/* without the FWS around it */
	size_t vlen;
};

struct sigtags {
	struct sigtag t[SIG_MAX_TAGS];
	size_t n;
};

static bool
sig_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
sig_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
sig_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
sig_valchar(char c)
{
	return c >= 0x21 && c <= 0x7e && c != ';';
}

/* Past any FWS at i: WSP, and CRLF only when WSP follows (a fold). */
static size_t
sig_fws(const char *p, size_t len, size_t i)
{
	for (;;) {
		if (i < len && sig_wsp(p[i]))
			i++;
		else if (i + 2 < len && p[i] == '\r' && p[i + 1] == '\n' &&
		    sig_wsp(p[i + 2]))
			i += 3;
		else
			return i;
	}
}

/* One tag-spec's value, from i up to the ';' or the end. */
static const char *
sig_value(const char *p, size_t len, size_t *ip, struct sigtag *t)
{
	size_t i = *ip, end = *ip, j;

	t->val = p + i;
	while (i < len && p[i] != ';') {
		if (sig_valchar(p[i])) {
			end = ++i;
			continue;
		}
		if ((j = sig_fws(p, len, i)) == i)
			return "invalid character in a tag value";
		i = j;
	}
	t->vlen = (size_t)(p + end - t->val);
	*ip = i;
	return NULL;
}

static const char *
sig_split(const char *p, size_t len, struct sigtags *tags)
{
	struct sigtag *t;
	const char *why;
	size_t i = 0;

	tags->n = 0;
	for (;;) {
		i = sig_fws(p, len, i);
		if (i == len)
			return tags->n > 0 ? NULL : "empty tag list";
		if (!sig_alpha(p[i]))
			return "malformed tag list";
		if (tags->n == SIG_MAX_TAGS)
			return "too many tags";
		t = &tags->t[tags->n++];
		t->name = p + i;
		while (i < len && (sig_alpha(p[i]) || sig_digit(p[i]) ||
		    p[i] == '_'))
			i++;
		t->nlen = (size_t)(p + i - t->name);
		i = sig_fws(p, len, i);
		if (i == len || p[i] != '=')
			return "malformed tag list";
		i = sig_fws(p, len, i + 1);
		if ((why = sig_value(p, len, &i, t)) != NULL)
			return why;
		if (i == len)
			return NULL;
		i++;		/* the ';' */
	}
}

static const struct sigtag *
sig_get(const struct sigtags *tags, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < tags->n; i++)
		if (tags->t[i].nlen == n &&
		    memcmp(tags->t[i].name, name, n) == 0)
			return &tags->t[i];
	return NULL;
}

static bool
sig_has_dup(const struct sigtags *tags)
{
	size_t i, j;

	for (i = 0; i < tags->n; i++)
		for (j = i + 1; j < tags->n; j++)
			if (tags->t[i].nlen == tags->t[j].nlen &&
			    memcmp(tags->t[i].name, tags->t[j].name,
			    tags->t[i].nlen) == 0)
				return true;
	return false;
}

static bool
sig_is(const struct sigtag *t, const char *s)
{
	return t->vlen == strlen(s) && memcmp(t->val, s, t->vlen) == 0;
}

/* No whitespace inside the value. */
static bool
sig_plain(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!sig_valchar(p[i]))
			return false;
	return true;
}

/* RFC 5321 sub-domain: Let-dig [Ldh-str], at most 63 bytes. */
static bool
sig_label(const char *p, size_t n, bool underscore)
{
	size_t i;

	if (n == 0 || n > 63)
		return false;
	for (i = 0; i < n; i++)
		if (!sig_alpha(p[i]) && !sig_digit(p[i]) &&
		    !(underscore && p[i] == '_') &&
		    (p[i] != '-' || i == 0 || i == n - 1))
			return false;
	return true;
}

/*
 * sub-domain *("." sub-domain) with at least minlabels labels; a
 * selector (minlabels 1) may have '_' in its labels.
 */
static bool
sig_name(const char *p, size_t n, size_t minlabels)
{
	size_t i, start = 0, labels = 0;

	if (n == 0 || n > 253)
		return false;
	for (i = 0; i <= n; i++) {
		if (i < n && p[i] != '.')
			continue;
		if (!sig_label(p + start, i - start, minlabels == 1))
			return false;
		labels++;
		start = i + 1;
	}
	return labels >= minlabels;
}

/* 1*max DIGIT; the value, if it fits in 64 bits, in *out. */
static bool
sig_number(const struct sigtag *t, size_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (t->vlen == 0 || t->vlen > max)
		return false;
	for (i = 0; i < t->vlen; i++) {
		if (!sig_digit(t->val[i]))
			return false;
		if (v <= (UINT64_MAX - 9) / 10)
			v = v * 10 + (uint64_t)(t->val[i] - '0');
	}
	if (out != NULL)
		*out = v;
	return true;
}

/* base64string with FWS anywhere: 0 good, 1 empty, 2 malformed. */
static int
sig_base64(const struct sigtag *t)
{
	size_t i, n = 0, pad = 0;
	char c;

	for (i = 0; i < t->vlen; i++) {
		c = t->val[i];
		if (sig_wsp(c) || c == '\r' || c == '\n')
			continue;	/* sig_value let only FWS through */
		if (c == '=') {
			if (++pad > 2)
				return 2;
			continue;
		}
		if (pad > 0 || !(sig_alpha(c) || sig_digit(c) || c == '+' ||
		    c == '/'))
			return 2;
		n++;
	}
	return n == 0 ? (pad == 0 ? 1 : 2) : 0;
}

/*
 * A colon-separated list (h=, q=) with FWS around the colons: calls
 * item() on each item, which must be 1*ftext. False if malformed.
 */
static bool
sig_list(const struct sigtag *t, bool (*item)(const char *, size_t, void *),
    void *arg)
{
	size_t i = 0, start;

	for (;;) {
		i = sig_fws(t->val, t->vlen, i);
		start = i;
		while (i < t->vlen && t->val[i] != ':' &&
		    sig_valchar(t->val[i]))
			i++;
		if (i == start || !item(t->val + start, i - start, arg))
			return false;
		i = sig_fws(t->val, t->vlen, i);
		if (i == t->vlen)
			return true;
		if (t->val[i] != ':')
			return false;
		i++;
	}
}

static bool
sig_h_item(const char *p, size_t n, void *arg)
{
	if (n == 4 && strncasecmp(p, "from", 4) == 0)
		*(bool *)arg = true;
	return true;
}

static bool
sig_q_item(const char *p, size_t n, void *arg)
{
	if (n == 7 && memcmp(p, "dns/txt", 7) == 0)
		*(bool *)arg = true;
	return true;
}

/* ---- one function per tag: NULL when the value is good ---------------- */

typedef const char *(*sig_checkfn)(const struct sigtag *,
    const struct sigtags *);

static const char *
sig_check_v(const struct sigtag *t, const struct sigtags *all)
{
	return sig_is(t, "1") ? NULL : "unsupported version (v= is not 1)";
}

static const char *
sig_check_a(const struct sigtag *t, const struct sigtags *all)
{
	if (sig_is(t, "rsa-sha256") || sig_is(t, "rsa-sha1") ||
	    sig_is(t, "ed25519-sha256"))
		return NULL;
	return "unknown algorithm (a=)";
}

static const char *
sig_check_b(const struct sigtag *t, const struct sigtags *all)
{
	static const char *const why[] = { NULL, "empty signature (b=)",
	    "b= is not base64" };

	return why[sig_base64(t)];
}

static const char *
sig_check_bh(const struct sigtag *t, const struct sigtags *all)
{
	static const char *const why[] = { NULL, "empty body hash (bh=)",
	    "bh= is not base64" };

	return why[sig_base64(t)];
}

static bool
sig_canon_word(const char *p, size_t n)
{
	return (n == 6 && memcmp(p, "simple", 6) == 0) ||
	    (n == 7 && memcmp(p, "relaxed", 7) == 0);
}

static const char *
sig_check_c(const struct sigtag *t, const struct sigtags *all)
{
	const char *slash = memchr(t->val, '/', t->vlen);
	size_t n = slash != NULL ? (size_t)(slash - t->val) : t->vlen;

	if (sig_canon_word(t->val, n) && (slash == NULL ||
	    sig_canon_word(slash + 1, t->vlen - n - 1)))
		return NULL;
	return "unknown canonicalization (c=)";
}

static const char *
sig_check_d(const struct sigtag *t, const struct sigtags *all)
{
	if (sig_plain(t->val, t->vlen) && sig_name(t->val, t->vlen, 2))
		return NULL;
	return "d= is not a domain name";
}

static const char *
sig_check_s(const struct sigtag *t, const struct sigtags *all)
{
	if (sig_plain(t->val, t->vlen) && sig_name(t->val, t->vlen, 1))
		return NULL;
	return "s= is not a selector";
}

static const char *
sig_check_h(const struct sigtag *t, const struct sigtags *all)
{
	bool from = false;

	if (!sig_list(t, sig_h_item, &from))
		return "malformed header list (h=)";
	return from ? NULL : "From is not signed (h=)";
}

/* [Local-part] "@" domain-name, that domain d= or below it. */
static const char *
sig_check_i(const struct sigtag *t, const struct sigtags *all)
{
	const struct sigtag *d = sig_get(all, "d");
	const char *at = NULL, *dom;
	size_t i, n;

	for (i = 0; i < t->vlen; i++)
		if (t->val[i] == '@')
			at = t->val + i;
	if (at == NULL || !sig_plain(t->val, t->vlen))
		return "i= is not an identity";
	dom = at + 1;
	n = (size_t)(t->val + t->vlen - dom);
	if (!sig_name(dom, n, 2))
		return "i= is not an identity";
	if (d == NULL || n < d->vlen ||
	    strncasecmp(dom + n - d->vlen, d->val, d->vlen) != 0 ||
	    (n > d->vlen && dom[n - d->vlen - 1] != '.'))
		return "i= is not within d=";
	return NULL;
}

static const char *
sig_check_l(const struct sigtag *t, const struct sigtags *all)
{
	return sig_number(t, 76, NULL) ? NULL : "malformed body length (l=)";
}

static const char *
sig_check_q(const struct sigtag *t, const struct sigtags *all)
{
	bool dns = false;

	if (!sig_list(t, sig_q_item, &dns))
		return "malformed query method (q=)";
	return dns ? NULL : "no known query method (q=)";
}

static const char *
sig_check_t(const struct sigtag *t, const struct sigtags *all)
{
	return sig_number(t, 12, NULL) ? NULL : "malformed timestamp (t=)";
}

static const char *
sig_check_x(const struct sigtag *t, const struct sigtags *all)
{
	const struct sigtag *ts = sig_get(all, "t");
	uint64_t x, tv;

	if (!sig_number(t, 12, &x))
		return "malformed expiration (x=)";
	if (ts != NULL && sig_number(ts, 12, &tv) && x <= tv)
		return "expiration before timestamp (x= <= t=)";
	return NULL;
}

static const struct sigdef {
	const char *name;
	const char *missing;	/* NULL: optional */
	sig_checkfn check;
} sig_defs[] = {
	{ "v", "missing version (v=)", sig_check_v },
	{ "a", "missing algorithm (a=)", sig_check_a },
	{ "b", "missing signature (b=)", sig_check_b },
	{ "bh", "missing body hash (bh=)", sig_check_bh },
	{ "c", NULL, sig_check_c },
	{ "d", "missing domain (d=)", sig_check_d },
	{ "h", "missing header list (h=)", sig_check_h },
	{ "i", NULL, sig_check_i },
	{ "l", NULL, sig_check_l },
	{ "q", NULL, sig_check_q },
	{ "s", "missing selector (s=)", sig_check_s },
	{ "t", NULL, sig_check_t },
	{ "x", NULL, sig_check_x },
	/* z= is free text (dkim-quoted-printable): nothing to check */
};

const char *
dm_dkimsig_check(const char *value, size_t len, dm_dkimsig_info *info)
{
	struct sigtags tags;
	const struct sigtag *t;
	const char *why;
	size_t i;

	if (info != NULL)
		info->has_l = false;
	if ((why = sig_split(value, len, &tags)) != NULL)
		return why;
	if (sig_has_dup(&tags))
		return "duplicate tag";
	for (i = 0; i < sizeof(sig_defs) / sizeof(sig_defs[0]); i++) {
		if ((t = sig_get(&tags, sig_defs[i].name)) == NULL) {
			if (sig_defs[i].missing != NULL)
				return sig_defs[i].missing;
			continue;
		}
		if ((why = sig_defs[i].check(t, &tags)) != NULL)
			return why;
	}
	if (info != NULL)
		info->has_l = sig_get(&tags, "l") != NULL;
	return NULL;
}
