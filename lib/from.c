/*
 * lib/from.c - the RFC5322.From field: a one-pass lexer and a small
 * address grammar that yield the author domains.
 *
 * The field is read once, left to right, with one token at a time and
 * no recursion, so a hostile megabyte costs linear time and constant
 * stack. Whitespace and comments vanish in the lexer; what remains is
 * atoms, quoted strings, domain literals and the specials. An addr-spec
 * recogniser (struct spec) is fed those tokens: once for the bare
 * addr-spec or display name of a mailbox, once for the inside of an
 * angle address. Structural faults make one mailbox unusable (nbad);
 * lexical faults make the whole field unparsable.
 *
 * A field that is not clean gets a second reading, the reader's view
 * (from_view): what a mail reader would show after an '@' is evaluated
 * too, or, when it is no domain name, makes the field deceptive. The
 * strict grammar alone would drop what it cannot read, and a dropped
 * author is a spoof that is accepted and counted nowhere.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "dm_from.h"
#include "dm_log.h"

#define FROM_COMMENT_DEPTH 32

enum tok_type { TOK_END, TOK_ATOM, TOK_QSTR, TOK_DLIT, TOK_SPECIAL };

typedef struct tok {
	enum tok_type type;
	char c;			/* the special character */
	bool gap;		/* white space or a comment came before it */
	const char *p;		/* atom text */
	size_t len;
} tok;

typedef struct lexer {
	const char *p, *end;
} lexer;

/* States of the addr-spec recogniser: local-part "@" domain. */
enum spec_state {
	SPEC_START, SPEC_LOCAL, SPEC_LDOT, SPEC_AT, SPEC_DOM, SPEC_DDOT,
	SPEC_LIT, SPEC_BAD
};

typedef struct spec {
	enum spec_state st;
	bool restarted;		/* words before the addr-spec (a phrase) */
	bool overflow;
	bool folded;		/* CFWS between the labels of the domain */
	size_t dlen;
	char dom[DM_DOMAIN_MAX + 2];
} spec;

/* One address of the list: its display-name part and its angle part. */
typedef struct segment {
	bool any;		/* some token seen */
	bool bad;		/* structure broken */
	bool at;		/* an '@' outside angle brackets */
	int angle;		/* 0 before '<', 1 inside, 2 after '>' */
	spec phrase, inner;
} segment;

static bool
from_atext(unsigned char c)
{
	/* Bytes >= 0x80: UTF-8 of RFC 6532 headers, judged by IDNA later. */
	if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

static bool
from_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Text of a quoted string, comment or literal: no NUL, no bare controls. */
static bool
from_text_ok(unsigned char c)
{
	return c != '\0' && (c >= 0x20 || from_ws(c)) && c != 0x7f;
}

/* Skip a comment (the '(' already consumed); false if it never closes. */
static bool
lex_comment(lexer *lx)
{
	int depth = 1;

	while (lx->p < lx->end) {
		unsigned char c = (unsigned char)*lx->p++;

		if (c == '\\') {
			if (lx->p == lx->end || !from_text_ok(*lx->p))
				return false;
			lx->p++;
		} else if (c == '(') {
			if (++depth > FROM_COMMENT_DEPTH)
				return false;
		} else if (c == ')') {
			if (--depth == 0)
				return true;
		} else if (!from_text_ok(c))
			return false;
	}
	return false;
}

/* Skip to the closing delimiter, honouring backslash pairs. */
static bool
lex_delimited(lexer *lx, char close)
{
	while (lx->p < lx->end) {
		unsigned char c = (unsigned char)*lx->p++;

		if (c == (unsigned char)close)
			return true;
		if (c == '\\') {
			if (lx->p == lx->end || !from_text_ok(*lx->p))
				return false;
			lx->p++;
		} else if (!from_text_ok(c) || (close == ']' && c == '['))
			return false;
	}
	return false;
}

/* Next token; false on a lexical fault (the field is not parsable). */
static bool
lex_next(lexer *lx, tok *t)
{
	const char *start = lx->p;
	unsigned char c;

	for (;;) {
		while (lx->p < lx->end && from_ws((unsigned char)*lx->p))
			lx->p++;
		if (lx->p == lx->end) {
			t->type = TOK_END;
			return true;
		}
		if (*lx->p != '(')
			break;
		lx->p++;
		if (!lex_comment(lx))
			return false;
	}
	c = (unsigned char)*lx->p;
	t->gap = lx->p != start;
	t->p = lx->p++;
	if (from_atext(c)) {
		while (lx->p < lx->end && from_atext((unsigned char)*lx->p))
			lx->p++;
		t->type = TOK_ATOM;
		t->len = (size_t)(lx->p - t->p);
		return true;
	}
	if (c == '"' || c == '[') {
		t->type = c == '"' ? TOK_QSTR : TOK_DLIT;
		return lex_delimited(lx, c == '"' ? '"' : ']');
	}
	if (strchr("<>:;@,.", c) == NULL || c == '\0')
		return false;	/* ')', '\\', ']' or a control character */
	t->type = TOK_SPECIAL;
	t->c = (char)c;
	return true;
}

static void
spec_reset(spec *s)
{
	s->st = SPEC_START;
	s->dlen = 0;
	s->overflow = false;
	s->folded = false;
}

static void
spec_append(spec *s, const char *p, size_t len)
{
	if (s->dlen + len >= sizeof(s->dom)) {
		s->overflow = true;
		return;
	}
	memcpy(s->dom + s->dlen, p, len);
	s->dlen += len;
}

static bool
is_word(const tok *t)
{
	return t->type == TOK_ATOM || t->type == TOK_QSTR;
}

static bool
is_special(const tok *t, char c)
{
	return t->type == TOK_SPECIAL && t->c == c;
}

/* One step of the addr-spec grammar. */
static enum spec_state
spec_step(spec *s, const tok *t)
{
	switch (s->st) {
	case SPEC_START:
	case SPEC_LDOT:
		return is_word(t) ? SPEC_LOCAL : SPEC_BAD;
	case SPEC_LOCAL:
		return is_special(t, '.') ? SPEC_LDOT :
		    is_special(t, '@') ? SPEC_AT : SPEC_BAD;
	case SPEC_AT:
	case SPEC_DDOT:
		if (t->type == TOK_DLIT && s->st == SPEC_AT)
			return SPEC_LIT;
		if (t->type != TOK_ATOM)
			return SPEC_BAD;
		spec_append(s, t->p, t->len);
		s->folded |= s->st == SPEC_DDOT && t->gap;
		return SPEC_DOM;
	case SPEC_DOM:
		if (!is_special(t, '.'))
			return SPEC_BAD;
		spec_append(s, ".", 1);
		s->folded |= t->gap;
		return SPEC_DDOT;
	default:
		return SPEC_BAD;
	}
}

/*
 * Feed a token. In a display name (phrase) a word that breaks the
 * grammar starts a new attempt, so that "Support ceo@bank.example"
 * still shows its addr-spec; restarted records that words came first.
 */
static void
spec_feed(spec *s, const tok *t, bool phrase)
{
	s->st = spec_step(s, t);
	if (s->st == SPEC_BAD && phrase && is_word(t)) {
		spec_reset(s);
		s->restarted = true;
		s->st = SPEC_LOCAL;
	}
}

static bool
spec_done(const spec *s)
{
	return (s->st == SPEC_DOM || s->st == SPEC_DDOT) && !s->overflow;
}

static void
segment_reset(segment *g)
{
	memset(g, 0, sizeof(*g));
	spec_reset(&g->phrase);
	spec_reset(&g->inner);
}

/* One UTF-8 sequence at p (len > 0): its code point, or -1 if invalid. */
static int32_t
from_utf8(const unsigned char *p, size_t len, size_t *used)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	uint32_t cp;
	size_t n, i;

	if (p[0] < 0xc2 || p[0] > 0xf4)
		return -1;
	n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
	if (len < n)
		return -1;
	cp = p[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*used = n;
	return (int32_t)cp;
}

/*
 * Code points a reader draws as nothing or as blank, or that reorder the
 * text around them: C1 controls, Unicode's spaces and format characters
 * (bidi controls among them), and the fillers, joiners and selectors
 * that IDNA mapping drops without a word (libidn2 makes bank.example of
 * "bank" U+00AD ".example"). None belongs in a domain a reader is shown.
 */
static bool
from_invisible(uint32_t cp)
{
	static const uint32_t r[][2] = {
		{ 0x80, 0xa0 }, { 0xad, 0xad }, { 0x34f, 0x34f },
		{ 0x61c, 0x61c }, { 0x115f, 0x1160 }, { 0x1680, 0x1680 },
		{ 0x17b4, 0x17b5 }, { 0x180b, 0x180f }, { 0x2000, 0x200f },
		{ 0x2028, 0x202f }, { 0x205f, 0x206f }, { 0x3000, 0x3000 },
		{ 0x3164, 0x3164 }, { 0xfe00, 0xfe0f }, { 0xfeff, 0xfeff },
		{ 0xffa0, 0xffa0 }, { 0xfff0, 0xfffb }, { 0x1bca0, 0x1bca3 },
		{ 0x1d173, 0x1d17a }, { 0xe0000, 0xe0fff },
	};
	size_t i;

	for (i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (cp >= r[i][0] && cp <= r[i][1])
			return true;
	return false;
}

/*
 * Why the text a reader shows after an '@' cannot be a domain anybody
 * publishes a policy for; NULL when nothing in its bytes says so (it may
 * still fail dm_domain_normalize). One trailing dot is a root, not an
 * empty label.
 */
static const char *
from_run_fault(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i, used;
	int32_t cp;

	for (i = 0; i < len; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			return "control character in the domain";
		if (u[i] == '.' && (i == 0 || u[i - 1] == '.'))
			return "empty label in the domain";
		if (u[i] < 0x80)
			continue;
		if ((cp = from_utf8(u + i, len - i, &used)) < 0)
			return "invalid UTF-8 in the domain";
		if (from_invisible((uint32_t)cp))
			return "invisible or bidi character in the domain";
		i += used - 1;
	}
	return NULL;
}

/* Add a normalised domain once (*seen: it was there); bounded. */
static dm_status
from_add_domain(dm_from_addrs *out, const char *d, bool *seen)
{
	char (*nd)[DM_DOMAIN_MAX];
	size_t i;

	*seen = false;
	for (i = 0; i < out->n; i++)
		if (strcmp(out->domain[i], d) == 0) {
			*seen = true;
			return DM_OK;
		}
	if (out->n == DM_FROM_MAX_DOMAINS) {
		out->truncated = 1;
		return DM_OK;
	}
	/* Capacity doubles from 4: grow when n is 0 or a power of two >= 4. */
	if (out->n == 0 || (out->n >= 4 && (out->n & (out->n - 1)) == 0)) {
		nd = reallocarray(out->domain, out->n ? out->n * 2 : 4,
		    sizeof(*nd));
		if (nd == NULL)
			dm_log_oom();
		out->domain = nd;
	}
	strlcpy(out->domain[out->n++], d, DM_DOMAIN_MAX);
	return DM_OK;
}

/*
 * Record one mailbox whose domain the recogniser s holds (or not). An
 * extra one (the addr-spec of a display name) counts only when it names
 * a new domain: "a@x.example <a@x.example>" is one mailbox, not two. A
 * domain folded across labels reads differently in different readers,
 * so its field gets the reader's view too.
 */
static dm_status
from_add(dm_from_addrs *out, const spec *s, bool extra)
{
	char d[DM_DOMAIN_MAX];
	dm_status st = DM_PERMFAIL;
	bool seen;

	if (spec_done(s) && from_run_fault(s->dom, s->dlen) == NULL)
		st = dm_domain_normalize(s->dom, s->dlen, d, sizeof(d));
	if (st != DM_OK) {
		if (!extra) {
			out->nmailboxes++;
			out->nbad++;
		}
		return DM_OK;
	}
	if (s->folded)
		out->malformed = 1;
	if ((st = from_add_domain(out, d, &seen)) != DM_OK)
		return st;
	if (!extra || !seen)
		out->nmailboxes++;
	return DM_OK;
}

/* The end of one address (',' or ';' or the end of the field). */
static dm_status
segment_finish(segment *g, dm_from_addrs *out)
{
	dm_status st = DM_OK;

	if (!g->any)
		return DM_OK;	/* an empty list member (obs-mbox-list) */
	if (g->bad || g->angle == 1) {
		out->nmailboxes++;
		out->nbad++;
	} else if (g->angle == 2) {
		st = from_add(out, &g->inner, false);
		if (st == DM_OK)
			st = from_add(out, &g->phrase, true);
	} else if (g->phrase.restarted) {
		out->nmailboxes++;
		out->nbad++;	/* words and no angle address */
	} else
		st = from_add(out, &g->phrase, false);
	segment_reset(g);
	return st;
}

/* A token inside "<...>": an optional route, then the addr-spec. */
static void
segment_inner(segment *g, const tok *t)
{
	if (is_special(t, '>'))
		g->angle = 2;
	else if (is_special(t, ':') || is_special(t, ','))
		spec_reset(&g->inner);	/* obs-route: "@a,@b:" then addr */
	else if (is_special(t, '<'))
		g->bad = true;
	else
		spec_feed(&g->inner, t, false);
}

/*
 * One token outside any angle address. Returns 1 when the token ended
 * the address (',' or the ';' of a group), 0 otherwise.
 */
static int
segment_outer(segment *g, const tok *t, bool *in_group, dm_from_addrs *out)
{
	if (is_special(t, ',') || (*in_group && is_special(t, ';'))) {
		if (is_special(t, ';'))
			*in_group = false;
		return 1;
	}
	g->any = true;
	if (g->angle == 2)
		g->bad = true;	/* only CFWS may follow '>' */
	else if (is_special(t, '<'))
		g->angle = 1;
	else if (is_special(t, ':') && !*in_group) {
		/*
		 * A group: its name is no mailbox. But a name with an '@'
		 * ("ceo@bank.example: ;") is no phrase, and shows a reader
		 * an address: the field gets the reader's view.
		 */
		if (g->at || g->bad)
			out->malformed = 1;
		*in_group = true;
		segment_reset(g);
	} else if (t->type == TOK_SPECIAL && t->c != '.' && t->c != '@')
		g->bad = true;
	else {
		g->at |= is_special(t, '@');
		/* A literal is a domain after '@' and nothing in a phrase. */
		if (t->type == TOK_DLIT && g->phrase.st != SPEC_AT)
			out->malformed = 1;
		spec_feed(&g->phrase, t, true);
	}
	return 0;
}

/* The strict reading; false on a lexical fault (*st: the last status). */
static bool
from_strict(const char *value, size_t len, dm_from_addrs *out,
    dm_status *st)
{
	lexer lx = { value, value + len };
	segment g;
	bool in_group = false;
	tok t;

	*st = DM_OK;
	segment_reset(&g);
	for (;;) {
		if (!lex_next(&lx, &t))
			return false;
		if (t.type == TOK_END)
			break;
		if (g.angle == 1) {
			g.any = true;
			segment_inner(&g, &t);
		} else if (segment_outer(&g, &t, &in_group, out) &&
		    (*st = segment_finish(&g, out)) != DM_OK)
			return true;
	}
	*st = segment_finish(&g, out);
	return true;
}

/* What ends the text a reader takes for the domain after an '@'. */
static bool
from_view_delim(unsigned char c)
{
	return from_ws(c) || (c != '\0' && strchr("<>()[],;:\"\\@", c) !=
	    NULL);
}

/* The run after one '@': nothing, an author domain, or a deception. */
static dm_status
from_view_run(dm_from_addrs *out, const char *p, size_t len)
{
	char d[DM_DOMAIN_MAX];
	const char *why;
	dm_status st;
	bool seen;

	if (len == 0)
		return DM_OK;	/* "<alice@>", "a@[192.0.2.1]": no domain */
	if ((why = from_run_fault(p, len)) == NULL) {
		st = dm_domain_normalize(p, len, d, sizeof(d));
		if (st == DM_OK)
			return from_add_domain(out, d, &seen);
		why = "not a domain name";
	}
	if (out->ndeceptive++ == 0)
		out->deceptive = why;
	return DM_OK;
}

/*
 * The reader's view: every '@' and what follows it. Quoted strings and
 * comments hide their '@' only while the field lexes; a field that does
 * not has no reliable quotes, and a reader may show any of its parts.
 */
static dm_status
from_view(const char *v, size_t len, bool lexes, dm_from_addrs *out)
{
	size_t i, j;
	int depth = 0;
	bool quoted = false, literal = false;
	dm_status st;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (lexes && c == '\\' && (quoted || depth > 0 || literal)) {
			i++;
			continue;
		}
		/* As in the lexer: '(' and '"' in a literal are text. */
		if (lexes && !quoted && depth == 0 && (literal || c == '['))
			literal = c != ']';
		else if (lexes && (quoted || depth > 0 || c == '"' || c == '(')) {
			if (c == '"' && depth == 0)
				quoted = !quoted;
			else if (!quoted)
				depth += c == '(' ? 1 : c == ')' ? -1 : 0;
			continue;
		}
		if (c != '@')
			continue;
		for (j = i + 1; j < len && !from_view_delim(
		    (unsigned char)v[j]); j++)
			;
		if ((st = from_view_run(out, v + i + 1, j - i - 1)) != DM_OK)
			return st;
		i = j - 1;
	}
	if (out->nmailboxes < out->n + out->ndeceptive)
		out->nmailboxes = out->n + out->ndeceptive;
	return DM_OK;
}

dm_status
dm_from_parse(const char *value, size_t len, dm_from_addrs *out)
{
	dm_status st;
	bool lexes;

	memset(out, 0, sizeof(*out));
	lexes = from_strict(value, len, out, &st);
	if (st == DM_OK && (!lexes || out->nbad > 0 || out->malformed)) {
		out->malformed = 1;
		st = from_view(value, len, lexes, out);
	}
	if (st == DM_OK && out->nmailboxes == 0)
		st = DM_PERMFAIL;	/* no author shown at all */
	if (st != DM_OK)
		dm_from_addrs_clear(out);
	return st;
}

void
dm_from_addrs_clear(dm_from_addrs *a)
{
	free(a->domain);
	memset(a, 0, sizeof(*a));
}
