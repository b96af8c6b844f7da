/*
 * lib/spfrec.c - the syntax of one SPF record (RFC 7208 4.6.1, 5, 6,
 * 7.1): terms split at spaces, each a modifier (name "=" value) or a
 * directive (qualifier, mechanism, domain-spec, CIDR lengths), all of it
 * checked before the record is used.
 *
 * One allocation holds the parsed record and a copy of its text, which
 * the terms' domain-specs point into.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dm_log.h"
#include "dm_spfmacro.h"
#include "dm_spfrec.h"

struct dm_spfrec {
	size_t nterms;
	dm_spf_term *terms;
	const char *redirect, *exp;
	size_t redirect_len, exp_len;
	int has_all;
	char text[];
};

static const struct {
	const char *name;
	dm_spf_mech mech;
} spfrec_mechs[] = {
	{ "all", DM_SPFM_ALL }, { "include", DM_SPFM_INCLUDE },
	{ "a", DM_SPFM_A }, { "mx", DM_SPFM_MX }, { "ptr", DM_SPFM_PTR },
	{ "ip4", DM_SPFM_IP4 }, { "ip6", DM_SPFM_IP6 },
	{ "exists", DM_SPFM_EXISTS },
};

int
dm_spfrec_is_v1(const char *txt, size_t len)
{
	return len >= 6 && strncasecmp(txt, "v=spf1", 6) == 0 &&
	    (len == 6 || txt[6] == ' ');
}

static int
spfrec_fail(char *why, size_t whylen, const char *what, const char *t,
    size_t n)
{
	snprintf(why, whylen, "%s: \"%.*s\"", what, (int)(n > 64 ? 64 : n),
	    t);
	return -1;
}

/*
 * toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
 */
static int
spfrec_toplabel(const char *s, size_t n)
{
	size_t i;
	int alpha = 0, hyphen = 0;

	if (n == 0 || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '-')
			hyphen = 1;
		else if (isalpha((unsigned char)s[i]))
			alpha = 1;
		else if (!isdigit((unsigned char)s[i]))
			return 0;
	}
	return alpha || hyphen;
}

/* domain-spec = macro-string domain-end (7.1). */
static const char *
spfrec_domain_spec(const char *s, size_t n)
{
	const char *why;
	size_t end = n, i;
	int ends_macro;

	if (n == 0)
		return "empty domain-spec";
	if (dm_spf_macro_check(s, n, DM_SPF_MDOMAIN, &why, &ends_macro) != 0)
		return why;
	if (ends_macro)
		return NULL;
	/* else "." toplabel [ "." ] */
	if (s[end - 1] == '.')
		end--;
	for (i = end; i > 0 && s[i - 1] != '.'; i--)
		;
	if (i == 0)
		return "domain-spec is not a name of several labels";
	if (!spfrec_toplabel(s + i, end - i))
		return "domain-spec ends in no valid top label";
	return NULL;
}

/*
 * A "/N" (slashes 1) or "//N" (slashes 2) at the end of s[0..*n): 0 when
 * there is none, 1 when there is one (*val set, *n shortened), -1 when
 * it is malformed (a leading zero, over max).
 */
static int
spfrec_cidr(const char *s, size_t *n, int slashes, int max, int *val)
{
	size_t i = *n, d;
	long v = 0;

	while (i > 0 && isdigit((unsigned char)s[i - 1]))
		i--;
	d = *n - i;
	if (d == 0 || i < (size_t)slashes || s[i - 1] != '/' ||
	    (slashes == 2 && s[i - 2] != '/'))
		return 0;
	if ((d > 1 && s[i] == '0') || d > 3)
		return -1;
	for (; i < *n; i++)
		v = v * 10 + (s[i] - '0');
	if (v > max)
		return -1;
	*val = (int)v;
	*n -= d + (size_t)slashes;
	return 1;
}

/* ip4-network: four qnum, no leading zeros (5.6). */
static int
spfrec_ip4(const char *s, size_t n, unsigned char out[4])
{
	size_t i = 0, k, d;
	int v;

	for (k = 0; k < 4; k++) {
		if (k > 0 && (i >= n || s[i++] != '.'))
			return -1;
		for (d = 0, v = 0; i < n && isdigit((unsigned char)s[i]);
		    i++, d++)
			if (d < 4)	/* more is refused below */
				v = v * 10 + (s[i] - '0');
		if (d == 0 || d > 3 || v > 255 || (d > 1 && s[i - d] == '0'))
			return -1;
		out[k] = (unsigned char)v;
	}
	return i == n ? 0 : -1;
}

static int
spfrec_ip6(const char *s, size_t n, unsigned char out[16])
{
	char buf[64];

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

/* The arguments of ip4 / ip6: ":" network [ "/" length ]. */
static int
spfrec_ipnet(dm_spf_term *t, const char *s, size_t n, char *why,
    size_t whylen)
{
	int six = t->mech == DM_SPFM_IP6, rc;
	size_t len = n;

	if (n < 2 || s[0] != ':')
		return spfrec_fail(why, whylen, "ip4/ip6 without a network",
		    s, n);
	rc = spfrec_cidr(s, &len, 1, six ? 128 : 32, six ? &t->cidr6 :
	    &t->cidr4);
	if (rc < 0)
		return spfrec_fail(why, whylen, "bad CIDR length", s, n);
	if ((six ? spfrec_ip6(s + 1, len - 1, t->net) :
	    spfrec_ip4(s + 1, len - 1, t->net)) != 0)
		return spfrec_fail(why, whylen, six ? "bad IPv6 network" :
		    "bad IPv4 network", s, n);
	return 0;
}

/* [ ":" domain-spec ] and, for a and mx, a dual-cidr-length (5.3, 5.4). */
static int
spfrec_target(dm_spf_term *t, const char *s, size_t n, char *why,
    size_t whylen)
{
	size_t len = n;
	const char *bad;
	int cidr = t->mech == DM_SPFM_A || t->mech == DM_SPFM_MX;
	int need = t->mech == DM_SPFM_INCLUDE || t->mech == DM_SPFM_EXISTS;

	if (cidr && (spfrec_cidr(s, &len, 2, 128, &t->cidr6) < 0 ||
	    spfrec_cidr(s, &len, 1, 32, &t->cidr4) < 0))
		return spfrec_fail(why, whylen, "bad CIDR length", s, n);
	if (len == 0 && !need)
		return 0;
	if (len == 0 || s[0] != ':')
		return spfrec_fail(why, whylen, need ? "mechanism needs a "
		    "domain-spec" : "unknown mechanism", s, n);
	if ((bad = spfrec_domain_spec(s + 1, len - 1)) != NULL)
		return spfrec_fail(why, whylen, bad, s + 1, len - 1);
	t->spec = s + 1;
	t->speclen = len - 1;
	return 0;
}

static int
spfrec_directive(dm_spfrec *r, const char *s, size_t n, char *why,
    size_t whylen)
{
	dm_spf_term *t = &r->terms[r->nterms];
	size_t i, k;

	memset(t, 0, sizeof(*t));
	t->qual = '+';
	t->cidr4 = 32;
	t->cidr6 = 128;
	if (s[0] != '\0' && strchr("+-?~", s[0]) != NULL) {
		t->qual = s[0];
		s++;
		n--;
	}
	for (i = 0; i < n && s[i] != ':' && s[i] != '/'; i++)
		;
	for (k = 0; k < sizeof(spfrec_mechs) / sizeof(spfrec_mechs[0]); k++)
		if (strlen(spfrec_mechs[k].name) == i &&
		    strncasecmp(s, spfrec_mechs[k].name, i) == 0)
			break;
	if (k == sizeof(spfrec_mechs) / sizeof(spfrec_mechs[0]))
		return spfrec_fail(why, whylen, "unknown mechanism", s, n);
	t->mech = spfrec_mechs[k].mech;
	r->nterms++;
	switch (t->mech) {
	case DM_SPFM_ALL:
		r->has_all = 1;
		return i == n ? 0 : spfrec_fail(why, whylen,
		    "\"all\" takes no arguments", s, n);
	case DM_SPFM_IP4:
	case DM_SPFM_IP6:
		return spfrec_ipnet(t, s + i, n - i, why, whylen);
	default:
		return spfrec_target(t, s + i, n - i, why, whylen);
	}
}

/* name "=" value; redirect and exp at most once each (6). */
static int
spfrec_modifier(dm_spfrec *r, const char *s, size_t namelen, size_t n,
    char *why, size_t whylen)
{
	const char *v = s + namelen + 1, *bad, *dummy;
	size_t vn = n - namelen - 1;
	int ends;

	if (namelen == 8 && strncasecmp(s, "redirect", 8) == 0) {
		if (r->redirect != NULL)
			return spfrec_fail(why, whylen, "redirect= twice", s,
			    n);
		r->redirect = v;
		r->redirect_len = vn;
	} else if (namelen == 3 && strncasecmp(s, "exp", 3) == 0) {
		if (r->exp != NULL)
			return spfrec_fail(why, whylen, "exp= twice", s, n);
		r->exp = v;
		r->exp_len = vn;
	} else {
		/* unknown modifiers are ignored, but must be macro-strings */
		if (dm_spf_macro_check(v, vn, DM_SPF_MDOMAIN, &dummy, &ends)
		    != 0)
			return spfrec_fail(why, whylen, dummy, s, n);
		return 0;
	}
	if ((bad = spfrec_domain_spec(v, vn)) != NULL)
		return spfrec_fail(why, whylen, bad, s, n);
	return 0;
}

static int
spfrec_term(dm_spfrec *r, const char *s, size_t n, char *why, size_t whylen)
{
	size_t i;

	if (isalpha((unsigned char)s[0])) {
		for (i = 1; i < n && (isalnum((unsigned char)s[i]) ||
		    s[i] == '-' || s[i] == '_' || s[i] == '.'); i++)
			;
		if (i < n && s[i] == '=')
			return spfrec_modifier(r, s, i, n, why, whylen);
	}
	return spfrec_directive(r, s, n, why, whylen);
}

dm_status
dm_spfrec_parse(const char *txt, size_t len, dm_spfrec **out, char *why,
    size_t whylen)
{
	dm_spfrec *r;
	size_t i, j, maxterms = 1;
	char *text;

	*out = NULL;
	if (!dm_spfrec_is_v1(txt, len)) {
		snprintf(why, whylen, "not an SPF version 1 record");
		return DM_PERMFAIL;
	}
	/* no term may hold one, and C string functions would stop there */
	if (memchr(txt, '\0', len) != NULL) {
		snprintf(why, whylen, "a NUL byte in the record");
		return DM_PERMFAIL;
	}
	for (i = 6; i < len; i++)
		maxterms += txt[i] == ' ';
	if ((r = calloc(1, sizeof(*r) + len + 1)) == NULL ||
	    (r->terms = calloc(maxterms, sizeof(*r->terms))) == NULL)
		dm_log_oom();
	text = r->text;
	memcpy(text, txt, len);
	text[len] = '\0';
	for (i = 6; i < len; i = j) {
		while (i < len && text[i] == ' ')
			i++;
		for (j = i; j < len && text[j] != ' '; j++)
			;
		if (j > i && spfrec_term(r, text + i, j - i, why, whylen)
		    != 0) {
			dm_spfrec_free(r);
			return DM_PERMFAIL;
		}
	}
	*out = r;
	return DM_OK;
}

void
dm_spfrec_free(dm_spfrec *r)
{
	if (r == NULL)
		return;
	free(r->terms);
	free(r);
}

size_t
dm_spfrec_nterms(const dm_spfrec *r)
{
	return r->nterms;
}

const dm_spf_term *
dm_spfrec_term(const dm_spfrec *r, size_t i)
{
	return i < r->nterms ? &r->terms[i] : NULL;
}

const char *
dm_spfrec_redirect(const dm_spfrec *r, size_t *len)
{
	*len = r->redirect_len;
	return r->has_all ? NULL : r->redirect;
}

const char *
dm_spfrec_exp(const dm_spfrec *r, size_t *len)
{
	*len = r->exp_len;
	return r->exp;
}
