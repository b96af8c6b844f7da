/*
 * tests/unit/test_mltproto.c - the milter protocol's bytes
 * (milter/mltproto.c): a whole MTA conversation framed from one buffer
 * and from the same bytes split at every byte boundary, many packets in
 * one read, hostile lengths, the arguments of each command (truncated,
 * unterminated, too many), the order of commands, and the replies we
 * write read back by the same framing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mltproto.h"
#include "tap.h"

/* A packet as an MTA writes it. */
static size_t
pkt(unsigned char *out, char cmd, const void *data, size_t len)
{
	uint32_t n = (uint32_t)len + 1;

	out[0] = (unsigned char)(n >> 24);
	out[1] = (unsigned char)(n >> 16);
	out[2] = (unsigned char)(n >> 8);
	out[3] = (unsigned char)n;
	out[4] = (unsigned char)cmd;
	memcpy(out + 5, data, len);
	return len + 5;
}

#define S(x) x, sizeof(x) - 1	/* the bytes written */
#define Z(x) x, sizeof(x)		/* and the literal's own NUL */

static const struct step {
	char cmd;
	const char *data;
	size_t len;
} convo[] = {
	{ 'O', S("\0\0\0\6\0\0\1\377\0\37\377\377") },
	{ 'D', Z("Cj\0mx.example\0{daemon_name}\0smtpd") },
	{ 'C', Z("client.example\0" "4\0\x19" "192.0.2.1") },
	{ 'H', Z("client.example") },
	{ 'D', Z("Mi\0" "4XyZ\0{auth_authen}\0alice") },
	{ 'M', Z("<a@sample.example>\0SIZE=100") },
	{ 'R', Z("<b@rcpt.example>") },
	{ 'T', "", 0 },
	{ 'L', Z("From\0 alice@sample.example") },
	{ 'L', Z("Subject\0 hi") },
	{ 'N', "", 0 },
	{ 'B', S("Hello.\r\n") },
	{ 'E', "", 0 },
	{ 'Q', "", 0 },
};
#define NCONVO (sizeof(convo) / sizeof(convo[0]))

static size_t
build_convo(unsigned char *buf)
{
	size_t i, n = 0;

	for (i = 0; i < NCONVO; i++)
		n += pkt(buf + n, convo[i].cmd, convo[i].data, convo[i].len);
	return n;
}

/*
 * Frame a stream fed in two reads (the first cut bytes long), as a
 * server does: parse what is complete, keep the rest. The packets are
 * checked against convo; returns how many matched in order.
 */
static size_t
frame_split(const unsigned char *all, size_t total, size_t cut)
{
	unsigned char buf[4096];
	size_t have = 0, fed = 0, got = 0, off, used;
	const char *why;
	mlt_pkt p;
	int r;

	while (fed < total || have > 0) {
		size_t take = fed < cut ? cut - fed : total - fed;

		memcpy(buf + have, all + fed, take);
		have += take;
		fed += take;
		off = 0;
		while ((r = mlt_proto_next(buf + off, have - off,
		    MLT_PROTO_MAX, &p, &used, &why)) == 1) {
			if (got >= NCONVO || p.cmd != convo[got].cmd ||
			    p.len != convo[got].len ||
			    memcmp(p.data, convo[got].data, p.len) != 0)
				return got;
			got++;
			off += used;
		}
		if (r < 0)
			return got;
		memmove(buf, buf + off, have - off);
		have -= off;
		if (take == 0)
			break;
	}
	return have == 0 ? got : 0;
}

static void
test_framing(void)
{
	unsigned char all[4096];
	size_t total = build_convo(all), cut, bad = 0;

	tap_is_int((long)frame_split(all, total, total), (long)NCONVO,
	    "a conversation in one read: all %zu packets in order", NCONVO);
	for (cut = 0; cut <= total; cut++)
		if (frame_split(all, total, cut) != NCONVO) {
			if (bad++ == 0)
				tap_diag("first failing cut: %zu", cut);
		}
	tap_is_int((long)bad, 0, "split at each of the %zu byte boundaries: "
	    "the same packets every time", total + 1);
}

static void
test_lengths(void)
{
	const unsigned char zero[] = { 0, 0, 0, 0, 'Q' };
	const unsigned char huge[] = { 0x7f, 0xff, 0xff, 0xff, 'B' };
	const unsigned char over[] = { 0, 0x10, 0, 2, 'B' };	/* 1 MB + 2 */
	const unsigned char atmax[] = { 0, 0x10, 0, 0, 'B' };	/* 1 MB */
	const unsigned char part[] = { 0, 0, 0, 3, 'L', 'x' };
	mlt_pkt p;
	size_t used;
	const char *why = NULL;
	int i;

	tap_is_int(mlt_proto_next(zero, sizeof(zero), MLT_PROTO_MAX, &p,
	    &used, &why), -1, "length 0: malformed (%s)", why ? why : "-");
	why = NULL;
	tap_is_int(mlt_proto_next(huge, sizeof(huge), MLT_PROTO_MAX, &p,
	    &used, &why), -1, "length 2^31-1: refused before any byte is "
	    "waited for (%s)", why ? why : "-");
	tap_is_int(mlt_proto_next(over, sizeof(over), MLT_PROTO_MAX, &p,
	    &used, &why), -1, "one byte over the 1 MB limit: refused");
	tap_is_int(mlt_proto_next(atmax, sizeof(atmax), MLT_PROTO_MAX, &p,
	    &used, &why), 0, "exactly the limit: waits for its bytes");
	for (i = 0; i < 4; i++)
		tap_is_int(mlt_proto_next(zero, (size_t)i, MLT_PROTO_MAX, &p,
		    &used, &why), 0, "%d bytes of a length field: need more",
		    i);
	tap_is_int(mlt_proto_next(part, sizeof(part), MLT_PROTO_MAX, &p,
	    &used, &why), 0, "a packet one byte short: need more");
}

static void
test_many(void)
{
	static unsigned char buf[2000 * 10];
	size_t n = 0, off = 0, used, count = 0;
	const char *why;
	mlt_pkt p;
	int i;

	for (i = 0; i < 2000; i++)
		n += pkt(buf + n, 'B', "abcde", 5);
	while (mlt_proto_next(buf + off, n - off, MLT_PROTO_MAX, &p, &used,
	    &why) == 1 && p.cmd == 'B' && p.len == 5) {
		off += used;
		count++;
	}
	tap_ok(count == 2000 && off == n, "2000 packets in one read: all "
	    "framed (got %zu, %zu of %zu bytes)", count, off, n);
}

static const struct srow {
	const char *data;
	size_t len, max;
	int want;
	const char *name;
} srows[] = {
	{ Z("a\0b"), 4, 2, "two strings" },
	{ S("a\0b"), 4, -1, "the last one unterminated" },
	{ "", 0, 4, -1, "no bytes at all" },
	{ Z(""), 4, 1, "one empty string" },
	{ Z("a\0b\0c"), 2, -1, "more strings than asked for" },
	{ Z("\0\0"), 4, 3, "three empty strings" },
};

static void
test_strings(void)
{
	const char *v[4];
	size_t i;
	int n;

	for (i = 0; i < sizeof(srows) / sizeof(srows[0]); i++) {
		n = mlt_proto_strings((const unsigned char *)srows[i].data,
		    srows[i].len, v, srows[i].max);
		tap_is_int(n, srows[i].want, "strings: %s", srows[i].name);
	}
	n = mlt_proto_strings((const unsigned char *)"From\0 a@b", 10, v, 2);
	tap_ok(n == 2 && strcmp(v[0], "From") == 0 &&
	    strcmp(v[1], " a@b") == 0, "header: name and value as sent "
	    "(leading space kept)");
}

static const struct crow {
	const char *data;
	size_t len;
	int want;
	char family;
	unsigned port;
	const char *addr;
	const char *name;
} crows[] = {
	{ Z("h.example\0" "4\0\x19" "192.0.2.1"), 0, '4', 25, "192.0.2.1",
	  "IPv4 with port 25" },
	{ Z("h\0" "6\x01\xbb" "IPv6:2001:db8::1"), 0, '6', 443,
	  "IPv6:2001:db8::1", "IPv6 as Sendmail writes it" },
	{ Z("h\0" "L\0\0/tmp/s"), 0, 'L', 0, "/tmp/s", "unix client" },
	{ S("h\0U"), 0, 'U', 0, "", "family unknown, nothing after" },
	{ Z("h\0U"), -1, 0, 0, NULL, "family unknown with trailing bytes" },
	{ S("h\0" "4\0\x19" "192.0.2.1"), -1, 0, 0, NULL,
	  "address unterminated" },
	{ Z("h\0" "4\0"), -1, 0, 0, NULL, "port cut short" },
	{ S("h"), -1, 0, 0, NULL, "host unterminated" },
	{ Z("h"), -1, 0, 0, NULL, "no family" },
	{ Z("h\0" "X\0\x19" "1.2.3.4"), -1, 0, 0, NULL, "unknown family" },
	{ Z("h\0" "4\0\x19" "1.2\0.3.4"), -1, 0, 0, NULL,
	  "a NUL inside the address" },
};

static void
test_connect(void)
{
	mlt_connect c;
	mlt_pkt p = { 'C', NULL, 0 };
	const char *why;
	size_t i;
	int r;

	for (i = 0; i < sizeof(crows) / sizeof(crows[0]); i++) {
		p.data = (const unsigned char *)crows[i].data;
		p.len = crows[i].len;
		r = mlt_proto_connect(&p, &c, &why);
		if (crows[i].want != 0) {
			tap_is_int(r, -1, "connect: %s: malformed",
			    crows[i].name);
			continue;
		}
		tap_ok(r == 0 && c.family == crows[i].family &&
		    c.port == crows[i].port &&
		    strcmp(c.addr, crows[i].addr) == 0, "connect: %s: "
		    "family %c port %u address %s", crows[i].name,
		    crows[i].family, crows[i].port, crows[i].addr);
	}
}

static void
test_optneg(void)
{
	mlt_pkt p = { 'O', (const unsigned char *)
	    "\0\0\0\6\0\0\1\377\0\37\377\377", 12 };
	mlt_optneg o;
	const char *why;

	tap_ok(mlt_proto_optneg(&p, &o, &why) == 0 && o.version == 6 &&
	    o.actions == 0x1ff && o.protocol == 0x1fffff,
	    "optneg: version 6, actions 0x1ff, protocol 0x1fffff");
	p.len = 11;
	tap_is_int(mlt_proto_optneg(&p, &o, &why), -1, "optneg of 11 bytes: "
	    "malformed");
	p.data = (const unsigned char *)"\0\0\0\1\0\0\0\0\0\0\0\0";
	p.len = 12;
	tap_is_int(mlt_proto_optneg(&p, &o, &why), -1, "optneg version 1: "
	    "refused");
}

static const struct orow {
	const char *cmds;
	int want;	/* 0: all accepted; else the 1-based refused one */
	const char *name;
} orows[] = {
	{ "ODCHMRTLLNBBEQ", 0, "a whole message" },
	{ "OCHMRLNBEMRLNEQ", 0, "two messages, version 2 (no DATA)" },
	{ "OCHMRTLNMRTLNBEQ", 0, "accepted at end of headers, next message" },
	{ "OCHMRAMRNEQ", 0, "abort, then a message" },
	{ "OCKCHQ", 0, "QUIT_NC, then a new connection" },
	{ "C", 1, "connect before negotiation" },
	{ "OO", 2, "a second negotiation" },
	{ "OH", 2, "HELO before connect" },
	{ "OCR", 3, "RCPT before MAIL" },
	{ "OCMRNL", 6, "header after end of headers" },
	{ "OCMRLB", 6, "body before end of headers" },
	{ "OCE", 3, "end of message with no message" },
	{ "OCMZ", 4, "unknown command" },
	{ "Q", 0, "quit at once" },
};

static void
test_order(void)
{
	size_t i, j;
	const char *why;
	int state, refused;

	for (i = 0; i < sizeof(orows) / sizeof(orows[0]); i++) {
		state = 0;
		refused = 0;
		for (j = 0; orows[i].cmds[j] != '\0'; j++)
			if (mlt_proto_order(&state, orows[i].cmds[j], &why)) {
				refused = (int)j + 1;
				break;
			}
		tap_is_int(refused, orows[i].want, "order: %s (%s)",
		    orows[i].name, orows[i].cmds);
	}
}

static void
test_replies(void)
{
	mlt_obuf b = { 0 };
	mlt_optneg o = { 6, 0x31, 0x100 }, back;
	mlt_pkt p;
	size_t off = 0, used;
	const char *why, *v[2];
	int ok;

	mlt_proto_put_optneg(&b, &o);
	mlt_proto_put_header(&b, 'i', 0, "Authentication-Results", " x; y");
	mlt_proto_put_header(&b, 'm', 3, "Authentication-Results", "");
	mlt_proto_put_header(&b, 'h', -1, "X-Q", "yes");
	mlt_proto_put_str(&b, 'y', "550 5.7.1 no");
	mlt_proto_put(&b, 'a', NULL, 0);
	ok = mlt_proto_next(b.p, b.len, 64, &p, &used, &why) == 1 &&
	    p.cmd == 'O' && mlt_proto_optneg(&p, &back, &why) == 0 &&
	    back.version == 6 && back.actions == 0x31 &&
	    back.protocol == 0x100;
	tap_ok(ok, "reply optneg reads back");
	off += used;
	ok = mlt_proto_next(b.p + off, b.len - off, 64, &p, &used, &why) == 1
	    && p.cmd == 'i' && p.len == 4 + 23 + 6 && p.data[3] == 0 &&
	    mlt_proto_strings(p.data + 4, p.len - 4, v, 2) == 2 &&
	    strcmp(v[1], " x; y") == 0;
	tap_ok(ok, "INSHEADER: index 0, name, value with its space");
	off += used;
	ok = mlt_proto_next(b.p + off, b.len - off, 64, &p, &used, &why) == 1
	    && p.cmd == 'm' && p.data[3] == 3 &&
	    mlt_proto_strings(p.data + 4, p.len - 4, v, 2) == 2 &&
	    v[1][0] == '\0';
	tap_ok(ok, "CHGHEADER: index 3, empty value (a deletion)");
	off += used;
	ok = mlt_proto_next(b.p + off, b.len - off, 64, &p, &used, &why) == 1
	    && p.cmd == 'h' && mlt_proto_strings(p.data, p.len, v, 2) == 2;
	tap_ok(ok, "ADDHEADER: no index");
	off += used;
	ok = mlt_proto_next(b.p + off, b.len - off, 64, &p, &used, &why) == 1
	    && p.cmd == 'y' && strcmp((const char *)p.data,
	    "550 5.7.1 no") == 0;
	off += used;
	ok = ok && mlt_proto_next(b.p + off, b.len - off, 64, &p, &used,
	    &why) == 1 && p.cmd == 'a' && p.len == 0 && off + used == b.len;
	tap_ok(ok, "REPLYCODE then ACCEPT, nothing after");
	mlt_obuf_free(&b);
}

int
main(void)
{
	test_framing();
	test_lengths();
	test_many();
	test_strings();
	test_connect();
	test_optneg();
	test_order();
	test_replies();
	return tap_done();
}
