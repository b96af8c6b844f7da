/*
 * tests/unit/test_from.c - the From field parser: every shape of
 * mailbox-list RFC 5322 and RFC 6854 allow, the display-name tricks
 * spoofers use, lexical faults, bounds, and linear time on a megabyte.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bsd/string.h>

#include "dm_from.h"
#include "tap.h"

/* M: the field is malformed (a reader's view was added). */
#define M 1

static const struct row {
	const char *name;
	const char *in;
	dm_status want;
	const char *domains;	/* space separated, in order */
	size_t nmailboxes, nbad;
	int malformed;
	size_t ndeceptive;
} rows[] = {
	{ "bare addr-spec", "a@example.com", DM_OK, "example.com", 1, 0, 0,
	    0 },
	{ "upper case, trailing dot", " A@Example.COM. ", DM_OK,
	    "example.com", 1, 0, 0, 0 },
	{ "name-addr", "Alice <alice@example.org>", DM_OK, "example.org",
	    1, 0, 0, 0 },
	{ "quoted display name with @", "\"a@evil.example\" <b@good.example>",
	    DM_OK, "good.example", 1, 0, 0, 0 },
	{ "quoted display name with <>",
	    "\"x <a@evil.example>\" <b@good.example>", DM_OK, "good.example",
	    1, 0, 0, 0 },
	{ "bare addr-spec in display name counts",
	    "ceo@bank.example <x@evil.example>", DM_OK,
	    "evil.example bank.example", 2, 0, 0, 0 },
	{ "words then addr-spec in display name",
	    "Support ceo@bank.example <x@evil.example>", DM_OK,
	    "evil.example bank.example", 2, 0, 0, 0 },
	{ "same address as display name is one mailbox",
	    "noreply@shop.example <noreply@shop.example>", DM_OK,
	    "shop.example", 1, 0, 0, 0 },
	{ "comment with @", "(a@evil.example) b@good.example", DM_OK,
	    "good.example", 1, 0, 0, 0 },
	{ "nested comments", "b@good.example (x (y (z) @evil.example) w)",
	    DM_OK, "good.example", 1, 0, 0, 0 },
	{ "comment between tokens", "b(c)@(d)good.example", DM_OK,
	    "good.example", 1, 0, 0, 0 },
	{ "obs domain with CFWS", "b@ good . example", DM_OK,
	    "good.example", 1, 0, M, 0 },
	{ "folded domain: both readings",
	    "ceo@bank.example\r\n .evil.example", DM_OK,
	    "bank.example.evil.example bank.example", 2, 0, M, 0 },
	{ "comment inside domain: both readings",
	    "ceo@bank.example(x).evil.example", DM_OK,
	    "bank.example.evil.example bank.example", 2, 0, M, 0 },
	{ "quoted local part", "\"a b@c\"@example.net", DM_OK,
	    "example.net", 1, 0, 0, 0 },
	{ "quoted local part with @ and a domain",
	    "\"ceo@bank.example\"@evil.example", DM_OK, "evil.example", 1, 0,
	    0, 0 },
	{ "escaped quote", "\"a\\\"@evil.example\" <b@good.example>", DM_OK,
	    "good.example", 1, 0, 0, 0 },
	{ "folded", "Alice\r\n <alice@example.org>", DM_OK, "example.org", 1,
	    0, 0, 0 },
	{ "two mailboxes", "a@one.example, b@two.example", DM_OK,
	    "one.example two.example", 2, 0, 0, 0 },
	{ "two mailboxes same domain", "a@one.example, b@ONE.example", DM_OK,
	    "one.example", 2, 0, 0, 0 },
	{ "empty list members", ", a@one.example,,", DM_OK, "one.example", 1,
	    0, 0, 0 },
	{ "obs-route", "<@r1.example,@r2.example:a@one.example>", DM_OK,
	    "one.example", 1, 0, 0, 0 },
	{ "group", "team: a@one.example, b@two.example;", DM_OK,
	    "one.example two.example", 2, 0, 0, 0 },
	{ "group then mailbox", "g: a@one.example; , c@three.example", DM_OK,
	    "one.example three.example", 2, 0, 0, 0 },
	{ "empty group", "undisclosed-recipients:;", DM_PERMFAIL, "", 0, 0, 0,
	    0 },
	{ "group named like an address (fuzz_from)",
	    "undisclosed-risclose$-reca@ipiecipients:;", DM_OK,
	    "ipiecipients", 1, 0, M, 0 },
	{ "a literal in a group name (fuzz_from)",
	    "undksds\xd7" "ed-ris[_ose.-'reca@ipiec]ipients:;", DM_OK,
	    "ipiec", 1, 0, M, 0 },
	{ "a '(' inside a literal is text, not a comment (fuzz_from)",
	    "[x (y] b@good.example", DM_OK, "good.example", 1, 1, M, 0 },
	{ "a bad group name before the group (fuzz_from)",
	    ";x@evil.example g: ;", DM_OK, "evil.example", 1, 0, M, 0 },
	{ "a literal as a display name",
	    "[x@bank.example] <a@evil.example>", DM_OK,
	    "evil.example bank.example", 2, 0, M, 0 },
	{ "group named like an address, with members",
	    "ceo@bank.example: a@one.example;", DM_OK,
	    "one.example bank.example", 2, 0, M, 0 },
	{ "U-label", "a@b\xc3\xbc" "cher.example", DM_OK,
	    "xn--bcher-kva.example", 1, 0, 0, 0 },
	/* No author shown at all: outside DMARC (engine: none/permerror). */
	{ "no domain", "alice", DM_OK, "", 1, 1, M, 0 },
	{ "empty domain", "<alice@>", DM_OK, "", 1, 1, M, 0 },
	{ "domain literal", "a@[192.0.2.1]", DM_OK, "", 1, 1, M, 0 },
	{ "empty", "", DM_PERMFAIL, "", 0, 0, 0, 0 },
	{ "only spaces", "  \r\n ", DM_PERMFAIL, "", 0, 0, 0, 0 },
	{ "only a comment", "(nobody)", DM_PERMFAIL, "", 0, 0, 0, 0 },
	{ "unterminated literal", "a@[1.2.3.4", DM_PERMFAIL, "", 0, 0, 0, 0 },
	/* Malformed, but a reader shows the domain: it is evaluated. */
	{ "junk after angle", "<a@one.example> b@two.example", DM_OK,
	    "one.example two.example", 2, 1, M, 0 },
	{ "words without angle", "John Doe a@one.example", DM_OK,
	    "one.example", 1, 1, M, 0 },
	{ "unclosed angle", "Bob <b@good.example", DM_OK, "good.example", 1,
	    1, M, 0 },
	{ "nested group", "g: h: a@one.example;;", DM_OK, "one.example", 2,
	    2, M, 0 },
	{ "one good one bad", "x, b@good.example", DM_OK, "good.example", 2,
	    1, M, 0 },
	{ "unterminated quote", "\"a <b@good.example>", DM_OK,
	    "good.example", 1, 0, M, 0 },
	{ "unterminated comment", "(a b@good.example", DM_OK, "good.example",
	    1, 0, M, 0 },
	{ "stray close paren", "a) b@good.example", DM_OK, "good.example", 1,
	    0, M, 0 },
	{ "backslash outside quotes", "a\\b@good.example", DM_OK,
	    "good.example", 1, 0, M, 0 },
	{ "issue 12: word after the angle address",
	    "CEO <ceo@bank.example> x", DM_OK, "bank.example", 1, 1, M, 0 },
	{ "issue 12: a second '>'", "CEO <ceo@bank.example>>", DM_OK,
	    "bank.example", 1, 1, M, 0 },
	{ "issue 12: unclosed angle", "CEO <ceo@bank.example", DM_OK,
	    "bank.example", 1, 1, M, 0 },
	{ "issue 12: ';' outside a group", "ceo@bank.example;", DM_OK,
	    "bank.example", 1, 1, M, 0 },
	{ "issue 12: unclosed comment", "ceo@bank.example (CEO", DM_OK,
	    "bank.example", 1, 0, M, 0 },
	{ "issue 12: control byte in the display name",
	    "C\x01O <ceo@bank.example>", DM_OK, "bank.example", 1, 0, M, 0 },
	{ "issue 12: with a second, passing author",
	    "CEO <ceo@bank.example> x, a@evil.example", DM_OK,
	    "evil.example bank.example", 2, 1, M, 0 },
	{ "quotes do not hide '@' in a field that does not lex",
	    "\"x\" <a@evil.example> \"ceo@bank.example\" \x01", DM_OK,
	    "evil.example bank.example", 2, 0, M, 0 },
	{ "'@' in a domain literal of a broken field",
	    "x@[ceo@bank.example]", DM_OK, "bank.example", 1, 1, M, 0 },
	{ "two '@'", "ceo@bank.example@evil.example", DM_OK,
	    "bank.example evil.example", 2, 1, M, 0 },
	/* A domain shown that is no domain name: deceptive. */
	{ "issue 12: empty label at the end", "ceo@bank.example..", DM_OK, "",
	    1, 1, M, 1 },
	{ "empty label inside", "ceo@bank..example", DM_OK, "", 1, 1, M, 1 },
	{ "leading dot", "<ceo@.bank.example>", DM_OK, "", 1, 1, M, 1 },
	{ "bad domain", "a@exa_mple..com", DM_OK, "", 1, 1, M, 1 },
	{ "issue 12: U+200E after the domain",
	    "ceo@bank.example\xe2\x80\x8e", DM_OK, "", 1, 1, M, 1 },
	{ "U+200E after the domain, in angles",
	    "CEO <ceo@bank.example\xe2\x80\x8e>", DM_OK, "", 1, 1, M, 1 },
	{ "soft hyphen, which IDNA drops", "ceo@bank\xc2\xad.example", DM_OK,
	    "", 1, 1, M, 1 },
	{ "zero width space, which IDNA drops",
	    "ceo@bank\xe2\x80\x8b.example", DM_OK, "", 1, 1, M, 1 },
	{ "byte order mark", "ceo@\xef\xbb\xbf" "bank.example", DM_OK, "", 1,
	    1, M, 1 },
	{ "right-to-left override", "ceo@\xe2\x80\xae" "elpmaxe.knab",
	    DM_OK, "", 1, 1, M, 1 },
	{ "no-break space", "ceo@bank.example\xc2\xa0", DM_OK, "", 1, 1, M,
	    1 },
	{ "invalid UTF-8", "ceo@bank\xff.example", DM_OK, "", 1, 1, M, 1 },
	{ "overlong UTF-8 dot", "ceo@bank\xc0\xae" "example", DM_OK, "", 1, 1,
	    M, 1 },
	{ "control character", "a@good.example\x01", DM_OK, "", 1, 0, M, 1 },
	{ "DEL in the domain", "a@good\x7f.example", DM_OK, "", 1, 0, M, 1 },
	{ "bytes no domain has", "a@good.example!x", DM_OK, "", 1, 1, M, 1 },
	{ "deceptive beside a good author",
	    "a@one.example, ceo@bank.example..", DM_OK, "one.example", 2, 1,
	    M, 1 },
};
static void
check_row(const struct row *r)
{
	dm_from_addrs a;
	char got[1024] = "";
	size_t i;
	dm_status st;

	st = dm_from_parse(r->in, strlen(r->in), &a);
	tap_is_int(st, r->want, "%s: status", r->name);
	for (i = 0; i < a.n; i++) {
		if (i > 0)
			strlcat(got, " ", sizeof(got));
		strlcat(got, a.domain[i], sizeof(got));
	}
	tap_is_str(got, r->domains, "%s: domains", r->name);
	tap_is_int((long)a.nmailboxes, (long)r->nmailboxes, "%s: mailboxes",
	    r->name);
	tap_is_int((long)a.nbad, (long)r->nbad, "%s: unusable", r->name);
	tap_is_int(a.malformed, r->malformed, "%s: malformed", r->name);
	tap_is_int((long)a.ndeceptive, (long)r->ndeceptive, "%s: deceptive",
	    r->name);
	tap_ok((a.ndeceptive > 0) == (a.deceptive != NULL),
	    "%s: a reason with every deception", r->name);
	dm_from_addrs_clear(&a);
}

/* Embedded NUL: the length, not strlen, bounds the field. */
static void
test_nul(void)
{
	static const char in[] = "a@one.example\0, b@two.example";
	dm_from_addrs a;

	tap_is_int(dm_from_parse(in, sizeof(in) - 1, &a), DM_OK,
	    "NUL inside the field: read as a reader would");
	tap_is_int((long)a.ndeceptive, 1, "a NUL in a domain deceives");
	tap_is_str(a.n == 1 ? a.domain[0] : NULL, "two.example",
	    "the mailbox after the NUL still counts");
	dm_from_addrs_clear(&a);
	tap_is_int(dm_from_parse(in, 13, &a), DM_OK, "length bounds input");
	tap_is_int((long)a.n, 1, "one domain before the NUL");
	dm_from_addrs_clear(&a);
}

static void
test_depth(void)
{
	char in[256];
	dm_from_addrs a;
	int i, n = 0;

	for (i = 0; i < 32; i++)
		in[n++] = '(';
	for (i = 0; i < 32; i++)
		in[n++] = ')';
	memcpy(in + n, "a@one.example", 14);
	tap_is_int(dm_from_parse(in, strlen(in), &a), DM_OK,
	    "comments 32 deep are accepted");
	dm_from_addrs_clear(&a);
	memmove(in + 1, in, strlen(in) + 1);
	in[0] = '(';
	memmove(in + 34, in + 33, strlen(in + 33) + 1);
	in[33] = ')';
	tap_is_int(dm_from_parse(in, strlen(in), &a), DM_OK,
	    "comments 33 deep: the reader's view");
	tap_ok(a.malformed && a.n == 1, "comments 33 deep: malformed, the "
	    "domain still read");
	dm_from_addrs_clear(&a);
}

/* More distinct domains than kept: truncated, and the kept ones in order. */
static void
test_many(void)
{
	size_t cap = 100 * 32, len = 0, i;
	char *in = malloc(cap);
	dm_from_addrs a;

	if (in == NULL)
		tap_bail("malloc");
	for (i = 0; i < 100; i++)
		len += (size_t)snprintf(in + len, cap - len, "%sa@d%zu.example",
		    i ? "," : "", i);
	tap_is_int(dm_from_parse(in, len, &a), DM_OK, "100 domains parse");
	tap_is_int((long)a.n, DM_FROM_MAX_DOMAINS, "distinct domains kept");
	tap_ok(a.truncated, "truncation is reported");
	tap_is_int((long)a.nmailboxes, 100, "every mailbox counted");
	tap_is_str(a.n ? a.domain[63] : NULL, "d63.example", "order kept");
	dm_from_addrs_clear(&a);
	free(in);
}

/*
 * A megabyte of each hostile shape. Quadratic parsing would take
 * minutes here; linear takes milliseconds. The bound is generous so
 * that a slow valgrind run does not fail: this catches the complexity
 * class, not a speed.
 */
static void
test_large(void)
{
	static const char *const unit[] = { "(((", "a,", "\"\\\"", "a.",
	    "x x ", "(a)" };
	size_t n = 1 << 20, i, j;
	char *in = malloc(n + 32);
	dm_from_addrs a;
	clock_t t0;

	if (in == NULL)
		tap_bail("malloc");
	for (j = 0; j < sizeof(unit) / sizeof(unit[0]); j++) {
		size_t ul = strlen(unit[j]);

		for (i = 0; i + ul <= n; i += ul)
			memcpy(in + i, unit[j], ul);
		memcpy(in + i, "<a@one.example>", 16);
		t0 = clock();
		(void)dm_from_parse(in, i + 15, &a);
		dm_from_addrs_clear(&a);
		tap_ok((double)(clock() - t0) / CLOCKS_PER_SEC < 10.0,
		    "1 MB of \"%s\" parses in linear time", unit[j]);
	}
	free(in);
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		check_row(&rows[i]);
	test_nul();
	test_depth();
	test_many();
	test_large();
	return tap_done();
}
