/*
 * milter/dispatch.c - one MTA connection at the protocol level: each
 * packet (mltproto.c has already framed it) is checked against the
 * order of commands, its arguments marshalled into session.c, and the
 * answer written as replies. Nothing here decides about mail: session.c
 * and the core do. The end of a message is evaluated elsewhere (a
 * worker thread, worker.c): mlt_disp_packet says so, mlt_disp_eval runs
 * there, mlt_disp_eval_done writes the result back on the I/O thread.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "dm_log.h"
#include "mlt.h"
#include "mltproto.h"

/*
 * Steps answered with no reply at all (SMFIP_NR_*), on a unix socket
 * only: a round trip per header field was most of the protocol's cost.
 * Over TCP the MTA's next command would sit in its Nagle buffer until
 * our delayed ACK, ~40 ms (Postfix does not set TCP_NODELAY on milter
 * connections), so there every step keeps its reply. End of headers
 * keeps it everywhere: a message we do not evaluate is accepted there
 * (when it carries no forged A-R of ours), and its body is never sent.
 */
#define DISP_NOREPLY (MLT_P_NR_HELO | MLT_P_NR_RCPT | MLT_P_NR_DATA | \
	MLT_P_NR_HDR | MLT_P_NR_BODY)
#define DISP_ACTIONS (MLT_F_ADDHDRS | MLT_F_CHGHDRS | MLT_F_QUARANTINE)

/*
 * Per connection, not per process: two MTAs on one socket may offer
 * different options. Of the macros only the two we read are kept, so a
 * connection's memory does not grow with what the MTA sends.
 */
struct mlt_disp {
	char peer[80];		/* for log lines */
	bool local;		/* unix socket */
	bool refused;		/* over MaxConnections */
	int state;		/* mlt_proto_order */
	bool leadspc;		/* header values keep their leading space */
	uint32_t noreply;	/* SMFIP_NR_* steps answered with none */
	mlt_session *s;
	char qid[128];		/* macro i */
	char auth[256];		/* macro {auth_authen} */
	mlt_outcome out;	/* of the evaluation in progress */
};

mlt_disp *
mlt_disp_new(const char *peer, bool local, bool refused)
{
	mlt_disp *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		dm_log_oom();
	strlcpy(d->peer, peer, sizeof(d->peer));
	d->local = local;
	d->refused = refused;
	return d;
}

void
mlt_disp_free(mlt_disp *d)
{
	if (d == NULL)
		return;
	mlt_session_free(d->s);
	free(d);
}

static void
disp_reply(mlt_disp *d, mlt_obuf *o, uint32_t nr, char r)
{
	if (r != MLT_R_CONTINUE || (d->noreply & nr) == 0)
		mlt_proto_put(o, r, NULL, 0);
}

/* "x" and "{x}" are one macro. */
static bool
macro_is(const char *name, const char *want)
{
	size_t n = strlen(want);

	if (name[0] == '{')
		return strncmp(name + 1, want, n) == 0 && name[n + 1] == '}' &&
		    name[n + 2] == '\0';
	return strcmp(name, want) == 0;
}

static int
disp_macro(mlt_disp *d, const mlt_pkt *p)
{
	const char *v[64];
	int n, i;

	if (p->len < 1)
		return -1;
	if (p->len == 1)
		return 0;
	if ((n = mlt_proto_strings(p->data + 1, p->len - 1, v, 64)) < 0 ||
	    n % 2 != 0)
		return -1;
	if (p->data[0] == MLT_C_MAIL) {		/* a new message */
		d->qid[0] = '\0';
		d->auth[0] = '\0';
	}
	for (i = 0; i < n; i += 2) {
		if (macro_is(v[i], "i"))
			strlcpy(d->qid, v[i + 1], sizeof(d->qid));
		else if (macro_is(v[i], "auth_authen"))
			strlcpy(d->auth, v[i + 1], sizeof(d->auth));
	}
	return 0;
}

static void
disp_optneg(mlt_disp *d, const mlt_optneg *in, mlt_obuf *o)
{
	mlt_optneg r;
	uint32_t want = MLT_P_NOUNKNOWN | MLT_P_HDR_LEADSPC |
	    (d->local ? DISP_NOREPLY : 0);

	r.version = in->version < MLT_PROTO_VMAX ? in->version :
	    MLT_PROTO_VMAX;
	r.actions = in->actions & DISP_ACTIONS;
	r.protocol = in->protocol & want;
	d->leadspc = (r.protocol & MLT_P_HDR_LEADSPC) != 0;
	d->noreply = r.protocol & DISP_NOREPLY;
	mlt_proto_put_optneg(o, &r);
}

/* The client's address as text, or "" (a unix client, a bad address). */
static void
disp_addr(const mlt_connect *c, char *out, size_t len)
{
	unsigned char bin[16];
	const char *a = c->addr;
	int af = c->family == '4' ? AF_INET : AF_INET6;

	out[0] = '\0';
	if (c->family != '4' && c->family != '6')
		return;
	if (strncasecmp(a, "IPv6:", 5) == 0)
		a += 5;
	if (inet_pton(af, a, bin) == 1)
		inet_ntop(af, bin, out, (socklen_t)len);
}

static int
disp_connect(mlt_disp *d, const mlt_pkt *p, mlt_obuf *o,
    const char **why)
{
	mlt_connect c;
	char ip[64];

	if (mlt_proto_connect(p, &c, why) != 0)
		return -1;
	mlt_session_free(d->s);
	d->s = NULL;
	if (d->refused || mlt_draining()) {
		mlt_proto_put(o, MLT_R_TEMPFAIL, NULL, 0);	/* try later */
		return 0;
	}
	disp_addr(&c, ip, sizeof(ip));
	d->s = mlt_session_new(ip[0] ? ip : NULL);
	mlt_proto_put(o, MLT_R_CONTINUE, NULL, 0);
	return 0;
}

/* A failed step is kept for the end of the message (see mlt.h). */
static void
disp_step(mlt_disp *d, dm_status st)
{
	if (st != DM_OK)
		mlt_msg_fail(d->s, dm_status_str(st));
}

static int
disp_mail(mlt_disp *d, const mlt_pkt *p, mlt_obuf *o)
{
	const char *v[32];
	dm_status st;

	if (mlt_proto_strings(p->data, p->len, v, 32) < 1)
		return -1;
	if (mlt_draining()) {
		mlt_msg_end(d->s);
		mlt_proto_put(o, MLT_R_TEMPFAIL, NULL, 0);
		return 0;
	}
	st = mlt_msg_begin(d->s, d->qid, v[0], d->auth[0] != '\0');
	if (st != DM_NOTFOUND)
		disp_step(d, st);
	mlt_proto_put(o, MLT_R_CONTINUE, NULL, 0);
	return 0;
}

static int
disp_header(mlt_disp *d, const mlt_pkt *p, mlt_obuf *o)
{
	const char *v[2];

	if (mlt_proto_strings(p->data, p->len, v, 2) != 2)
		return -1;
	disp_step(d, mlt_msg_header(d->s, v[0], v[1]));
	disp_reply(d, o, MLT_P_NR_HDR, MLT_R_CONTINUE);
	return 0;
}

static void
disp_eoh(mlt_disp *d, mlt_obuf *o)
{
	dm_status st = mlt_msg_eoh(d->s);

	if (st == DM_NOTFOUND) {
		mlt_msg_end(d->s);
		mlt_proto_put(o, MLT_R_ACCEPT, NULL, 0);
		return;
	}
	disp_step(d, st);
	disp_reply(d, o, MLT_P_NR_EOH, MLT_R_CONTINUE);
}

/* The steps of a message; -1 when the arguments are malformed. */
static int
disp_msg_step(mlt_disp *d, const mlt_pkt *p, mlt_obuf *o)
{
	const char *v[32];

	switch (p->cmd) {
	case MLT_C_HELO:
		if (mlt_proto_strings(p->data, p->len, v, 1) != 1)
			return -1;
		mlt_session_helo(d->s, v[0]);
		disp_reply(d, o, MLT_P_NR_HELO, MLT_R_CONTINUE);
		return 0;
	case MLT_C_MAIL:
		return disp_mail(d, p, o);
	case MLT_C_RCPT:
		if (mlt_proto_strings(p->data, p->len, v, 32) < 1)
			return -1;
		mlt_msg_rcpt(d->s, v[0]);
		disp_reply(d, o, MLT_P_NR_RCPT, MLT_R_CONTINUE);
		return 0;
	case MLT_C_DATA:
		disp_reply(d, o, MLT_P_NR_DATA, MLT_R_CONTINUE);
		return 0;
	case MLT_C_HEADER:
		return disp_header(d, p, o);
	case MLT_C_EOH:
		disp_eoh(d, o);
		return 0;
	case MLT_C_BODY:
		disp_step(d, mlt_msg_body(d->s, p->data, p->len));
		disp_reply(d, o, MLT_P_NR_BODY, MLT_R_CONTINUE);
		return 0;
	default:	/* UNKNOWN: not ours to judge */
		mlt_proto_put(o, MLT_R_CONTINUE, NULL, 0);
		return 0;
	}
}

static int
disp_fail(mlt_disp *d, char cmd, const char *why)
{
	dm_warn("%s: closing the connection: %s (command '%c', 0x%02x)",
	    d->peer, why, cmd >= 0x21 && cmd <= 0x7e ? cmd : '?',
	    (unsigned)(unsigned char)cmd);
	return MLT_DISP_CLOSE;
}

#ifdef MLT_BENCH_NULL
/*
 * The benchmarks' null mode (milter/dmarc-milter-null, never installed):
 * the same negotiation and steps, no evaluation, one A-R inserted and
 * accept at the end: what this server costs an MTA by itself.
 */
static bool
disp_null(mlt_disp *d, const mlt_pkt *p, mlt_obuf *o)
{
	static const uint32_t nr[] = { ['H'] = MLT_P_NR_HELO,
	    ['R'] = MLT_P_NR_RCPT, ['T'] = MLT_P_NR_DATA, ['L'] = MLT_P_NR_HDR,
	    ['B'] = MLT_P_NR_BODY, ['M'] = 0, ['N'] = 0 };

	if (p->cmd == MLT_C_BODYEOB) {
		mlt_proto_put_header(o, MLT_R_INSHEADER, 0,
		    "Authentication-Results", d->leadspc ? " null; none" :
		    "null; none");
		mlt_proto_put(o, MLT_R_ACCEPT, NULL, 0);
		return true;
	}
	if (strchr("HMRTLNB", p->cmd) == NULL)
		return false;
	disp_reply(d, o, nr[(unsigned char)p->cmd], MLT_R_CONTINUE);
	return true;
}
#endif

int
mlt_disp_packet(mlt_disp *d, const mlt_pkt *p, mlt_obuf *o)
{
	const char *why = "malformed arguments";
	mlt_optneg on;

	if (mlt_proto_order(&d->state, p->cmd, &why) != 0)
		return disp_fail(d, p->cmd, why);
#ifdef MLT_BENCH_NULL
	if (disp_null(d, p, o))
		return MLT_DISP_OK;
#endif
	switch (p->cmd) {
	case MLT_C_OPTNEG:
		if (mlt_proto_optneg(p, &on, &why) != 0)
			return disp_fail(d, p->cmd, why);
		disp_optneg(d, &on, o);
		return MLT_DISP_OK;
	case MLT_C_MACRO:
		return disp_macro(d, p) == 0 ? MLT_DISP_OK :
		    disp_fail(d, p->cmd, why);
	case MLT_C_CONNECT:
		return disp_connect(d, p, o, &why) == 0 ? MLT_DISP_OK :
		    disp_fail(d, p->cmd, why);
	case MLT_C_QUIT:
		return MLT_DISP_CLOSE;
	case MLT_C_QUIT_NC:
		mlt_session_free(d->s);
		d->s = NULL;
		return MLT_DISP_OK;
	case MLT_C_ABORT:
		if (d->s != NULL)
			mlt_msg_end(d->s);
		return MLT_DISP_OK;
	default:
		break;
	}
	if (d->s == NULL) {	/* refused at connect: the MTA goes on */
		mlt_proto_put(o, MLT_R_TEMPFAIL, NULL, 0);
		return MLT_DISP_OK;
	}
	if (p->cmd == MLT_C_BODYEOB) {
		if (p->len > 0)
			disp_step(d, mlt_msg_body(d->s, p->data, p->len));
		return MLT_DISP_EVAL;
	}
	return disp_msg_step(d, p, o) == 0 ? MLT_DISP_OK :
	    disp_fail(d, p->cmd, why);
}

void
mlt_disp_eval(mlt_disp *d)
{
	mlt_msg_eom(d->s, d->qid, &d->out);
}

/* "Name: value" as a header field to add. */
static void
disp_add_field(mlt_disp *d, mlt_obuf *o, const char *field)
{
	char name[128];
	const char *colon;

	if (field == NULL || (colon = strchr(field, ':')) == NULL ||
	    (size_t)(colon - field) >= sizeof(name) || colon == field)
		return;
	memcpy(name, field, (size_t)(colon - field));
	name[colon - field] = '\0';
	colon++;
	if (!d->leadspc)
		colon += strspn(colon, " \t");
	mlt_proto_put_header(o, MLT_R_ADDHEADER, -1, name, colon);
}

/* Forged A-R out (last first, indexes stay valid), ours in, the rest. */
void
mlt_disp_eval_done(mlt_disp *d, mlt_obuf *o)
{
	const mlt_outcome *r = &d->out;
	char reply[512];
	size_t i;

	for (i = r->ndelete; i > 0; i--)
		mlt_proto_put_header(o, MLT_R_CHGHEADER, r->delete_idx[i - 1],
		    "Authentication-Results", "");
	if (r->authres != NULL)
		mlt_proto_put_header(o, MLT_R_INSHEADER, 0,
		    "Authentication-Results", d->leadspc ? r->authres :
		    r->authres + 1);
	if (r->action.add_header)
		disp_add_field(d, o, r->qheader);
	if (r->action.hold)
		mlt_proto_put_str(o, MLT_R_QUARANTINE, r->quarantine_reason);
	if (r->action.kind == DM_ACT_REJECT ||
	    r->action.kind == DM_ACT_TEMPFAIL) {
		snprintf(reply, sizeof(reply), "%s %s %s", r->action.rcode,
		    r->action.xcode, r->action.text);
		mlt_proto_put_str(o, MLT_R_REPLYCODE, reply);
	} else
		mlt_proto_put(o, MLT_R_ACCEPT, NULL, 0);
	mlt_msg_end(d->s);
}
