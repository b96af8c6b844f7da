/*
 * milter/mltproto.c - the milter protocol's bytes (see mltproto.h):
 * framing, command arguments, command order, replies. Everything here
 * takes bytes an MTA sent, which may be hostile or cut anywhere, and
 * never reads past them.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dm_log.h"
#include "mltproto.h"

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int
mlt_proto_next(const unsigned char *buf, size_t len, size_t max,
    mlt_pkt *p, size_t *used, const char **why)
{
	uint32_t n;

	if (len < 4)
		return 0;
	n = get32(buf);
	if (n == 0) {
		*why = "packet of length 0";
		return -1;
	}
	if (n > max) {
		*why = "packet longer than the limit";
		return -1;
	}
	if (len - 4 < n)
		return 0;
	p->cmd = (char)buf[4];
	p->data = buf + 5;
	p->len = n - 1;
	*used = (size_t)n + 4;
	return 1;
}

int
mlt_proto_strings(const unsigned char *data, size_t len, const char **v,
    size_t max)
{
	const unsigned char *end = data + len, *nul;
	size_t n = 0;

	if (len == 0 || data[len - 1] != '\0')
		return -1;
	while (data < end) {
		if (n == max)
			return -1;
		nul = memchr(data, '\0', (size_t)(end - data));
		v[n++] = (const char *)data;
		data = nul + 1;
	}
	return (int)n;
}

int
mlt_proto_optneg(const mlt_pkt *p, mlt_optneg *o, const char **why)
{
	if (p->len < 12) {
		*why = "option negotiation shorter than 12 bytes";
		return -1;
	}
	o->version = get32(p->data);
	o->actions = get32(p->data + 4);
	o->protocol = get32(p->data + 8);
	if (o->version < MLT_PROTO_VMIN) {
		*why = "protocol version below 2";
		return -1;
	}
	return 0;
}

/* host NUL family [port(2) address NUL] */
int
mlt_proto_connect(const mlt_pkt *p, mlt_connect *c, const char **why)
{
	const unsigned char *d = p->data, *nul;
	size_t rest;

	*why = "malformed connect";
	if ((nul = memchr(d, '\0', p->len)) == NULL)
		return -1;
	c->host = (const char *)d;
	rest = p->len - (size_t)(nul + 1 - d);
	d = nul + 1;
	if (rest < 1)
		return -1;
	c->family = (char)d[0];
	c->port = 0;
	c->addr = "";
	if (c->family == 'U')
		return rest == 1 ? 0 : -1;
	if (c->family != '4' && c->family != '6' && c->family != 'L')
		return -1;
	if (rest < 4 || d[rest - 1] != '\0' ||
	    memchr(d + 3, '\0', rest - 3) != d + rest - 1)
		return -1;
	c->port = (uint16_t)(d[1] << 8 | d[2]);
	c->addr = (const char *)d + 3;
	return 0;
}

/*
 * States: 0 before negotiation, 1 negotiated, 2 connected (between
 * messages), 3 after MAIL, 4 after RCPT, 5 in the header, 6 after its
 * end. MAIL, HELO and ABORT may come in any connected state: after we
 * accept or refuse a message early the MTA sends nothing more of it.
 */
static const struct {
	char cmd;
	int from, to;	/* states allowed (inclusive) */
	int next;	/* -1: unchanged */
} order[] = {
	{ MLT_C_OPTNEG, 0, 0, 1 },
	{ MLT_C_MACRO, 1, 6, -1 },
	{ MLT_C_CONNECT, 1, 1, 2 },
	{ MLT_C_QUIT_NC, 1, 6, 1 },
	{ MLT_C_UNKNOWN, 2, 6, -1 },
	{ MLT_C_HELO, 2, 6, 2 },
	{ MLT_C_MAIL, 2, 6, 3 },
	{ MLT_C_ABORT, 2, 6, 2 },
	{ MLT_C_RCPT, 3, 4, 4 },
	{ MLT_C_DATA, 4, 4, 5 },
	{ MLT_C_HEADER, 4, 5, 5 },
	{ MLT_C_EOH, 4, 5, 6 },
	{ MLT_C_BODY, 6, 6, 6 },
	{ MLT_C_BODYEOB, 4, 6, 2 },
};

int
mlt_proto_order(int *state, char cmd, const char **why)
{
	size_t i;

	if (cmd == MLT_C_QUIT)
		return 0;
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (order[i].cmd != cmd)
			continue;
		if (*state < order[i].from || *state > order[i].to) {
			*why = "command out of order";
			return -1;
		}
		if (order[i].next >= 0)
			*state = order[i].next;
		return 0;
	}
	*why = "unknown command";
	return -1;
}

void
mlt_obuf_free(mlt_obuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static unsigned char *
obuf_room(mlt_obuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	unsigned char *p;

	while (cap - b->len < n)
		cap *= 2;
	if (cap != b->cap) {
		if ((p = realloc(b->p, cap)) == NULL)
			dm_log_oom();
		b->p = p;
		b->cap = cap;
	}
	return b->p + b->len;
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Room for one packet of len data bytes; returns where its data goes. */
static unsigned char *
put_head(mlt_obuf *b, char cmd, size_t len)
{
	unsigned char *p = obuf_room(b, len + 5);

	put32(p, (uint32_t)(len + 1));
	p[4] = (unsigned char)cmd;
	b->len += len + 5;
	return p + 5;
}

void
mlt_proto_put(mlt_obuf *b, char cmd, const void *data, size_t len)
{
	unsigned char *p = put_head(b, cmd, len);

	if (len > 0)
		memcpy(p, data, len);
}

void
mlt_proto_put_optneg(mlt_obuf *b, const mlt_optneg *o)
{
	unsigned char *p = put_head(b, MLT_R_OPTNEG, 12);

	put32(p, o->version);
	put32(p + 4, o->actions);
	put32(p + 8, o->protocol);
}

void
mlt_proto_put_header(mlt_obuf *b, char cmd, long idx, const char *name,
    const char *value)
{
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
	size_t il = idx >= 0 ? 4 : 0;
	unsigned char *p = put_head(b, cmd, il + nl + vl);

	if (idx >= 0)
		put32(p, (uint32_t)idx);
	memcpy(p + il, name, nl);
	memcpy(p + il + nl, value, vl);
}

void
mlt_proto_put_str(mlt_obuf *b, char cmd, const char *s)
{
	mlt_proto_put(b, cmd, s, strlen(s) + 1);
}
