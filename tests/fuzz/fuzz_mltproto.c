/*
 * tests/fuzz/fuzz_mltproto.c - libFuzzer target: bytes an MTA sends,
 * framed and decoded by milter/mltproto.c. The first byte picks where
 * the stream is cut in two reads; the packets framed must be the same
 * as from one read, each must lie inside the input, and every decoder
 * and the command order must hold to the bytes of its packet.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mltproto.h"

#define MAXPKT	4096	/* a small limit, so that it is reached */

static void
check_inside(const mlt_pkt *p, const char *s, const char *what)
{
	const char *lo = (const char *)p->data, *hi = lo + p->len;

	if (s < lo || s >= hi || memchr(s, '\0', (size_t)(hi - s)) == NULL)
		fuzz_fail("%s: a string outside its packet", what);
}

static void
check_args(const mlt_pkt *p, int *state)
{
	const char *v[8], *why;
	mlt_connect c;
	mlt_optneg o;
	int i, n;

	(void)mlt_proto_order(state, p->cmd, &why);
	if (p->cmd == MLT_C_CONNECT && mlt_proto_connect(p, &c, &why) == 0) {
		check_inside(p, c.host, "connect host");
		if (c.family != 'U')
			check_inside(p, c.addr, "connect address");
	}
	if (p->cmd == MLT_C_OPTNEG && mlt_proto_optneg(p, &o, &why) == 0 &&
	    o.version < MLT_PROTO_VMIN)
		fuzz_fail("optneg version %u taken", o.version);
	n = mlt_proto_strings(p->data, p->len, v, 8);
	if (n > 8)
		fuzz_fail("%d strings for 8 places", n);
	for (i = 0; i < n; i++)
		check_inside(p, v[i], "string");
}

/* Frames data[0..len) fed in two reads; the packets' offsets in seen. */
static size_t
frame(const unsigned char *data, size_t len, size_t cut, size_t *seen,
    size_t max)
{
	unsigned char *buf = malloc(len + 1);
	size_t have = 0, fed = 0, off, used, n = 0, base = 0;
	const char *why;
	mlt_pkt p;
	int r = 0, state = 0;

	if (buf == NULL)
		fuzz_fail("out of memory");
	while (fed < len && r >= 0) {
		size_t take = fed < cut ? cut - fed : len - fed;

		memcpy(buf + have, data + fed, take);
		have += take;
		fed += take;
		off = 0;
		while ((r = mlt_proto_next(buf + off, have - off, MAXPKT, &p,
		    &used, &why)) == 1) {
			if (used > have - off || used < 5 ||
			    p.len != used - 5 || p.len > MAXPKT)
				fuzz_fail("packet of %zu bytes framed", used);
			check_args(&p, &state);
			if (n < max)
				seen[n] = base + off;
			n++;
			off += used;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
		base += off;
	}
	free(buf);
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t a[256], b[256], na, nb, cut, i;

	if (size < 1)
		return 0;
	cut = data[0] % size;
	na = frame(data + 1, size - 1, size - 1, a, 256);
	nb = frame(data + 1, size - 1, cut, b, 256);
	if (na != nb)
		fuzz_fail("%zu packets in one read, %zu cut at %zu", na, nb,
		    cut);
	for (i = 0; i < na && i < 256; i++)
		if (a[i] != b[i])
			fuzz_fail("packet %zu at %zu, cut: at %zu", i, a[i],
			    b[i]);
	return 0;
}
