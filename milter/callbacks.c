/*
 * milter/callbacks.c - libmilter's callbacks. Each one marshals its
 * arguments into session.c and turns the answer into a milter reply;
 * none decides anything itself. Also the registration: the protocol
 * steps we do not need are switched off in negotiation, so the MTA does
 * not send them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmilter/mfapi.h>

#include <bsd/string.h>

#include "dm_log.h"
#include "mlt.h"

/*
 * What a connection negotiated, and its session. Per connection, not per
 * process: two MTAs on one socket may offer different options, and one
 * connection's SMFIP_HDR_LEADSPC must not decide how the other's header
 * values are read and written. (libmilter itself fakes the no-reply
 * steps for an MTA that lacks them, per connection.)
 */
struct cb_conn {
	bool leadspc;		/* header values keep their leading space */
	unsigned long noreply;	/* SMFIP_NR_* steps answered with none */
	mlt_session *s;
};

#define CONN(ctx) ((struct cb_conn *)smfi_getpriv(ctx))
#define SESSION(ctx) (CONN(ctx) ? CONN(ctx)->s : NULL)

/*
 * Steps answered with no reply at all (SMFIP_NR_*), on a unix socket
 * only: a round trip per header field was most of the protocol's cost.
 * Over TCP the MTA's next command would sit in its Nagle buffer until
 * our delayed ACK, ~40 ms (Postfix does not set TCP_NODELAY on milter
 * connections), so there every step keeps its reply. End of headers
 * keeps it everywhere: a message we do not evaluate is accepted there
 * (when it carries no forged A-R of ours), and its body is never sent.
 */
#define CB_NOREPLY (SMFIP_NR_HELO | SMFIP_NR_RCPT | SMFIP_NR_DATA | \
	SMFIP_NR_HDR | SMFIP_NR_BODY)
static bool cb_local;

/* CONTINUE from a step the MTA expects no reply for becomes NOREPLY. */
static sfsistat
cb_reply(SMFICTX *ctx, unsigned long nr, sfsistat r)
{
	return r == SMFIS_CONTINUE && CONN(ctx) != NULL &&
	    (CONN(ctx)->noreply & nr) != 0 ? SMFIS_NOREPLY : r;
}

/* The connection's state, made at the first callback that needs it. */
static struct cb_conn *
cb_conn(SMFICTX *ctx)
{
	struct cb_conn *c = CONN(ctx);

	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			dm_log_oom();
		smfi_setpriv(ctx, c);
	}
	return c;
}

static void
cb_addr(const struct sockaddr *sa, char *out, size_t len)
{
	strlcpy(out, "", len);
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, out, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, out, (socklen_t)len);
}

static const char *
cb_qid(SMFICTX *ctx)
{
	const char *q = smfi_getsymval(ctx, "i");

	return q != NULL ? q : "";
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	/*
	 * RCPT and DATA are taken, not skipped: for a skipped step Postfix
	 * still sends its macros and expects no reply, and over TCP its
	 * next packet then waits ~40 ms for our delayed ACK.
	 */
	unsigned long want = SMFIP_NOUNKNOWN;
	struct cb_conn *c = cb_conn(ctx);

	(void)f2;
	(void)f3;
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE);
	c->leadspc = (f1 & SMFIP_HDR_LEADSPC) != 0;
	c->noreply = cb_local ? f1 & CB_NOREPLY : 0;
	*pf1 = (f1 & (want | SMFIP_HDR_LEADSPC)) | c->noreply;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
cb_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	char ip[INET6_ADDRSTRLEN];
	mlt_session *s;

	(void)host;
	if (mlt_draining())
		return SMFIS_TEMPFAIL;	/* the MTA tries again later */
	cb_addr(sa, ip, sizeof(ip));
	s = mlt_session_new(ip[0] ? ip : NULL);
	cb_conn(ctx)->s = s;
	return SMFIS_CONTINUE;	/* even ignored hosts: a log line each */
}

static sfsistat
cb_helo(SMFICTX *ctx, char *helo)
{
	mlt_session_helo(SESSION(ctx), helo);
	return cb_reply(ctx, SMFIP_NR_HELO, SMFIS_CONTINUE);
}

/* A failed step is kept for the end of the message (see mlt.h). */
static sfsistat
cb_step(SMFICTX *ctx, dm_status st)
{
	if (st != DM_OK)
		mlt_msg_fail(SESSION(ctx), dm_status_str(st));
	return SMFIS_CONTINUE;
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	const char *auth = smfi_getsymval(ctx, "{auth_authen}");
	dm_status st;

	if (mlt_draining())
		return SMFIS_TEMPFAIL;
	st = mlt_msg_begin(SESSION(ctx), cb_qid(ctx), argv[0],
	    auth != NULL && *auth != '\0');
	return st == DM_NOTFOUND ? SMFIS_CONTINUE : cb_step(ctx, st);
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	mlt_msg_rcpt(SESSION(ctx), argv[0]);
	return cb_reply(ctx, SMFIP_NR_RCPT, SMFIS_CONTINUE);
}

static sfsistat
cb_data(SMFICTX *ctx)
{
	(void)ctx;
	return cb_reply(ctx, SMFIP_NR_DATA, SMFIS_CONTINUE);
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	return cb_reply(ctx, SMFIP_NR_HDR, cb_step(ctx, mlt_msg_header(SESSION(ctx),
	    name, value)));
}

static sfsistat
cb_eoh(SMFICTX *ctx)
{
	dm_status st = mlt_msg_eoh(SESSION(ctx));

	if (st == DM_NOTFOUND) {
		mlt_msg_end(SESSION(ctx));
		return SMFIS_ACCEPT;
	}
	return cb_step(ctx, st);
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *p, size_t len)
{
	return cb_reply(ctx, SMFIP_NR_BODY, cb_step(ctx, mlt_msg_body(SESSION(ctx), p,
	    len)));
}

/* "Name: value" as a header field to add. */
static void
cb_add_field(SMFICTX *ctx, const char *field)
{
	char name[128];
	const char *colon;

	if (field == NULL || (colon = strchr(field, ':')) == NULL ||
	    (size_t)(colon - field) >= sizeof(name) || colon == field)
		return;
	memcpy(name, field, (size_t)(colon - field));
	name[colon - field] = '\0';
	colon++;
	if (!CONN(ctx)->leadspc)
		colon += strspn(colon, " \t");
	smfi_addheader(ctx, name, (char *)colon);
}

/* Header edits: forged A-R out (last first, indexes stay valid), ours in. */
static void
cb_edit_headers(SMFICTX *ctx, const mlt_outcome *o)
{
	size_t i;

	for (i = o->ndelete; i > 0; i--)
		smfi_chgheader(ctx, "Authentication-Results",
		    o->delete_idx[i - 1], NULL);
	if (o->authres != NULL)
		smfi_insheader(ctx, 0, "Authentication-Results",
		    (char *)(CONN(ctx)->leadspc ? o->authres :
		    o->authres + 1));
	if (o->action.add_header)
		cb_add_field(ctx, o->qheader);
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	mlt_session *s = SESSION(ctx);
	mlt_outcome o;
	sfsistat r = SMFIS_ACCEPT;

	mlt_msg_eom(s, cb_qid(ctx), &o);
	cb_edit_headers(ctx, &o);
	if (o.action.hold)
		smfi_quarantine(ctx, o.quarantine_reason);
	if (o.action.kind == DM_ACT_REJECT || o.action.kind ==
	    DM_ACT_TEMPFAIL) {
		smfi_setreply(ctx, o.action.rcode, o.action.xcode,
		    o.action.text);
		r = o.action.kind == DM_ACT_REJECT ? SMFIS_REJECT :
		    SMFIS_TEMPFAIL;
	}
	mlt_msg_end(s);
	return r;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	mlt_session *s = SESSION(ctx);

	if (s != NULL)
		mlt_msg_end(s);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_close(SMFICTX *ctx)
{
	if (CONN(ctx) != NULL) {
		mlt_session_free(CONN(ctx)->s);
		free(CONN(ctx));
	}
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static struct smfiDesc cb_desc = {
	.xxfi_name = "dmarc-milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE,
	.xxfi_connect = cb_connect,
	.xxfi_helo = cb_helo,
	.xxfi_envfrom = cb_envfrom,
	.xxfi_envrcpt = cb_envrcpt,
	.xxfi_data = cb_data,
	.xxfi_header = cb_header,
	.xxfi_eoh = cb_eoh,
	.xxfi_body = cb_body,
	.xxfi_eom = cb_eom,
	.xxfi_abort = cb_abort,
	.xxfi_close = cb_close,
	.xxfi_negotiate = cb_negotiate,
};

/*
 * TCP_NODELAY on the listening socket (accepted ones inherit it): our
 * end-of-message answer is several small packets, and with Nagle the
 * last waits for the MTA's delayed ACK, ~40 ms a message. libmilter
 * does not hand out its socket, so it is found among our descriptors.
 */
static void
cb_nodelay(void)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, on = 1, listening;

	for (fd = 0; fd < 1024; fd++) {
		sl = sizeof(listening);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
		    &sl) != 0 || !listening)
			continue;
		sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
		    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
			    sizeof(on));
	}
}

int
mlt_milter_setup(const char *socket, char *err, size_t errlen)
{
	cb_local = strncmp(socket, "unix:", 5) == 0 ||
	    strncmp(socket, "local:", 6) == 0 || socket[0] == '/';
	if (smfi_setconn((char *)socket) != MI_SUCCESS) {
		snprintf(err, errlen, "Socket %s: not a milter socket", socket);
		return -1;
	}
	if (smfi_register(cb_desc) != MI_SUCCESS) {
		snprintf(err, errlen, "smfi_register failed");
		return -1;
	}
	if (smfi_opensocket(true) != MI_SUCCESS) {
		snprintf(err, errlen, "Socket %s: cannot listen", socket);
		return -1;
	}
	cb_nodelay();
	return 0;
}

int
mlt_milter_run(int timeout_sec)
{
	smfi_settimeout(timeout_sec);
	return smfi_main() == MI_SUCCESS ? 0 : -1;
}
