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
 * only lexical faults make the whole field unparsable.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dm_from.h"

#define FROM_COMMENT_DEPTH 32

enum tok_type { TOK_END, TOK_ATOM, TOK_QSTR, TOK_DLIT, TOK_SPECIAL };

typedef struct tok {
	enum tok_type type;
	char c;			/* the special character */
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
	size_t dlen;
	char dom[DM_DOMAIN_MAX + 2];
} spec;

/* One address of the list: its display-name part and its angle part. */
typedef struct segment {
	bool any;		/* some token seen */
	bool bad;		/* structure broken */
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
		return SPEC_DOM;
	case SPEC_DOM:
		if (!is_special(t, '.'))
			return SPEC_BAD;
		spec_append(s, ".", 1);
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

/*
 * Record one mailbox whose domain the recogniser s holds (or not). An
 * extra one (the addr-spec of a display name) counts only when it names
 * a new domain: "a@x.example <a@x.example>" is one mailbox, not two.
 */
static dm_status
from_add(dm_from_addrs *out, const spec *s, bool extra)
{
	char d[DM_DOMAIN_MAX], (*nd)[DM_DOMAIN_MAX];
	size_t i;
	dm_status st = DM_PERMFAIL;

	if (spec_done(s))
		st = dm_domain_normalize(s->dom, s->dlen, d, sizeof(d));
	if (st == DM_NOMEM)
		return st;
	if (st != DM_OK) {
		if (!extra) {
			out->nmailboxes++;
			out->nbad++;
		}
		return DM_OK;
	}
	for (i = 0; i < out->n; i++)
		if (strcmp(out->domain[i], d) == 0)
			break;
	if (!extra || i == out->n)
		out->nmailboxes++;
	if (i < out->n)
		return DM_OK;
	if (out->n == DM_FROM_MAX_DOMAINS) {
		out->truncated = 1;
		return DM_OK;
	}
	/* Capacity doubles from 4: grow when n is 0 or a power of two >= 4. */
	if (out->n == 0 || (out->n >= 4 && (out->n & (out->n - 1)) == 0)) {
		nd = reallocarray(out->domain, out->n ? out->n * 2 : 4,
		    sizeof(*nd));
		if (nd == NULL)
			return DM_NOMEM;
		out->domain = nd;
	}
	memcpy(out->domain[out->n++], d, sizeof(d));
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
segment_outer(segment *g, const tok *t, bool *in_group)
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
		*in_group = true;	/* a group: its name is no mailbox */
		segment_reset(g);
	} else if (t->type == TOK_SPECIAL && t->c != '.' && t->c != '@')
		g->bad = true;
	else
		spec_feed(&g->phrase, t, true);
	return 0;
}

dm_status
dm_from_parse(const char *value, size_t len, dm_from_addrs *out)
{
	lexer lx = { value, value + len };
	segment g;
	bool in_group = false;
	dm_status st = DM_OK;
	tok t;

	memset(out, 0, sizeof(*out));
	segment_reset(&g);
	for (;;) {
		if (!lex_next(&lx, &t)) {
			st = DM_PERMFAIL;
			break;
		}
		if (t.type == TOK_END)
			break;
		if (g.angle == 1) {
			g.any = true;
			segment_inner(&g, &t);
		} else if (segment_outer(&g, &t, &in_group) &&
		    (st = segment_finish(&g, out)) != DM_OK)
			break;
	}
	if (st == DM_OK)
		st = segment_finish(&g, out);
	if (st == DM_OK && out->nmailboxes == 0)
		st = DM_PERMFAIL;
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
