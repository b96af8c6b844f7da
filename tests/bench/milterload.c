/*
 * tests/bench/milterload.c - a milter load driver: speaks the milter
 * protocol (version 6) itself, as an MTA does, and replays a directory of
 * messages over N concurrent connections against any milter socket. It
 * prints messages/s, the EOM latency (p50, p99, max), the replies by
 * type, and the CPU the milter process(es) used over the run.
 *
 * Why its own client: miltertest runs a Lua step per protocol command
 * and tops out far below the milter, and Postfix adds its own costs; a
 * benchmark of the milter needs a driver that costs little per message.
 *
 * Message files: a message (LF or CRLF line ends), optionally preceded
 * by envelope fields, which are stripped before the message is sent:
 *	X-Envelope-Client: 192.0.2.10 [host.name]
 *	X-Envelope-Helo: mx.sender.example
 *	X-Envelope-From: <alice@sender.example>
 *	X-Envelope-To: <bob@rcpt.example>	(repeatable)
 * Header folding goes to the milter as bare LF (as Postfix hands it
 * over); the body as CRLF lines.
 *
 * Usage: milterload -s SOCKET [-s SOCKET...] -d DIR [-c conns]
 *	[-n messages] [-k messages-per-connection] [-r rate] [-w warm-up]
 *	[-p pid[,pid]] [-v]
 * SOCKET: unix:/path, /path, inet:port@host, or host:port. Several -s
 * chain milters as Postfix does: each sees the message with the fields
 * the ones before it inserted or added (opendmarc after opendkim reads
 * opendkim's Authentication-Results); the first that does not accept
 * ends the message. A message's EOM latency is then the sum over the
 * chain. -r offers a fixed rate (message i starts at i/rate s); -w sends
 * uncounted messages first, over one connection; -v prints the EOM
 * replies of the first message.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Commands, replies and negotiation bits of the milter protocol. */
#define ML_VERSION	6
#define ML_ACTIONS	0x1ffu		/* every modification action */
#define ML_PROTO_OFFER	0x001fffffu	/* every step, NR_, LEADSPC */
#define ML_NOCONNECT	0x1u
#define ML_NOHELO	0x2u
#define ML_NOMAIL	0x4u
#define ML_NORCPT	0x8u
#define ML_NOBODY	0x10u
#define ML_NOHDRS	0x20u
#define ML_NOEOH	0x40u
#define ML_NR_HDR	0x80u
#define ML_NODATA	0x200u
#define ML_NR_CONN	0x1000u
#define ML_NR_HELO	0x2000u
#define ML_NR_MAIL	0x4000u
#define ML_NR_RCPT	0x8000u
#define ML_NR_DATA	0x10000u
#define ML_NR_EOH	0x40000u
#define ML_NR_BODY	0x80000u
#define ML_LEADSPC	0x100000u
#define ML_CHUNK	65535
#define ML_MAXREPLY	(1u << 20)
#define ML_MAXMSGS	100000
#define ML_MAXPIDS	8
#define ML_MAXSOCK	4	/* milters chained, as an MTA chains them */

struct ml_field {
	char *name, *value;	/* value: after the colon, folding as LF */
};

/* The header fields one milter of a chain sees: the message's, plus
 * those the milters before it inserted or added. */
struct ml_hdrs {
	const struct ml_field **f;
	size_t n, cap;
	struct ml_field *own;	/* fields added by milters */
	size_t nown, capown;
};

struct ml_msg {
	const char *path;
	char ip[64], host[256], helo[256], from[512];
	char **rcpt;
	size_t nrcpt;
	struct ml_field *hdr;
	size_t nhdr;
	unsigned char *body;	/* CRLF lines */
	size_t bodylen;
};

/* Replies by type: final replies, and modification requests at EOM. */
struct ml_counts {
	unsigned long final[128];
	unsigned long mods[128];
	unsigned long early;	/* final reply before EOM */
	unsigned long errors;	/* connection broke or protocol error */
};

struct ml_conn {
	int fd;
	int sock;		/* index into ml_addr */
	const char *ip;		/* the client this connection is for */
	long sent;		/* messages over it */
	uint32_t proto;		/* what the milter negotiated */
	unsigned char *rbuf;	/* reply buffer */
	size_t rlen, rpos, rcap;
	unsigned char *wbuf;	/* one command */
	size_t wcap;
};

struct ml_opts {
	const char *socket[ML_MAXSOCK];
	int nsock;
	const char *dir;
	int conns;
	long total;
	long per_conn;		/* 0: one connection per thread */
	double rate;		/* 0: as fast as the milter answers */
	long warmup;
	bool verbose;		/* show the EOM replies of the first message */
	pid_t pids[ML_MAXPIDS];
	int npids;
};

struct ml_thread {
	pthread_t tid;
	struct ml_counts c;
	double *lat;		/* EOM latency, microseconds */
	long nlat, caplat;
};

static struct ml_opts opt = { .conns = 20, .total = 20000, .per_conn = 0 };
static struct ml_msg *msgs;
static size_t nmsgs;
static atomic_long next_msg;
static atomic_int shown;
static struct timespec t_start;
static struct sockaddr_storage ml_addr[ML_MAXSOCK];
static socklen_t ml_addrlen[ML_MAXSOCK];

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("milterload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n ? n : 1)) == NULL)
		die("out of memory");
	return p;
}

static double
ts_diff_us(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e6 +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e3;
}

/* ---- the corpus ---------------------------------------------------- */

static void
msg_envelope(struct ml_msg *m, const char *name, const char *v)
{
	const char *sp;

	v += strspn(v, " \t");
	if (strcasecmp(name, "X-Envelope-Client") == 0) {
		sp = v + strcspn(v, " \t");
		snprintf(m->ip, sizeof(m->ip), "%.*s", (int)(sp - v), v);
		sp += strspn(sp, " \t[");
		snprintf(m->host, sizeof(m->host), "%.*s",
		    (int)strcspn(sp, "] \t"), sp);
	} else if (strcasecmp(name, "X-Envelope-Helo") == 0) {
		snprintf(m->helo, sizeof(m->helo), "%s", v);
	} else if (strcasecmp(name, "X-Envelope-From") == 0) {
		snprintf(m->from, sizeof(m->from), "%s", v);
	} else if (strcasecmp(name, "X-Envelope-To") == 0) {
		m->rcpt = xrealloc(m->rcpt, (m->nrcpt + 1) * sizeof(char *));
		if ((m->rcpt[m->nrcpt++] = strdup(v)) == NULL)
			die("out of memory");
	}
}

/* One unfolded header field "Name:value" (folding as LF), kept or used. */
static void
msg_field(struct ml_msg *m, char *field, bool *in_env)
{
	char *colon = strchr(field, ':');

	if (colon == NULL)
		return;
	*colon = '\0';
	if (*in_env && strncasecmp(field, "X-Envelope-", 11) == 0) {
		msg_envelope(m, field, colon + 1);
		return;
	}
	*in_env = false;
	m->hdr = xrealloc(m->hdr, (m->nhdr + 1) * sizeof(*m->hdr));
	m->hdr[m->nhdr].name = strdup(field);
	m->hdr[m->nhdr].value = strdup(colon + 1);
	if (m->hdr[m->nhdr].name == NULL || m->hdr[m->nhdr].value == NULL)
		die("out of memory");
	m->nhdr++;
}

/* The body of p (bare LF or CRLF) as CRLF lines. */
static void
msg_body(struct ml_msg *m, const char *p, size_t len)
{
	size_t i, o = 0;

	m->body = xmalloc(2 * len + 1);
	for (i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			m->body[o++] = '\r';
		m->body[o++] = (unsigned char)p[i];
	}
	m->bodylen = o;
}

/* Split the header section into fields and the body off it. */
static void
msg_parse(struct ml_msg *m, char *p, size_t len)
{
	char *end = p + len, *line, *nl, *field = NULL;
	size_t flen = 0, ll;
	bool in_env = true;

	for (line = p; line < end; line = nl + 1) {
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;
		ll = (size_t)(nl - line);
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll == 0 || (line[0] != ' ' && line[0] != '\t')) {
			if (field != NULL)
				msg_field(m, field, &in_env);
			flen = 0;
			if (ll == 0) {
				line = nl + 1;
				break;
			}
		}
		field = xrealloc(field, flen + ll + 2);
		if (flen > 0)
			field[flen++] = '\n';
		memcpy(field + flen, line, ll);
		flen += ll;
		field[flen] = '\0';
	}
	free(field);
	if (line < end)
		msg_body(m, line, (size_t)(end - line));
	else
		msg_body(m, "", 0);
}

static void
msg_defaults(struct ml_msg *m)
{
	if (m->ip[0] == '\0')
		snprintf(m->ip, sizeof(m->ip), "192.0.2.1");
	if (m->host[0] == '\0')
		snprintf(m->host, sizeof(m->host), "[%s]", m->ip);
	if (m->helo[0] == '\0')
		snprintf(m->helo, sizeof(m->helo), "%s", m->host);
	if (m->from[0] == '\0')
		snprintf(m->from, sizeof(m->from), "<>");
	if (m->nrcpt == 0)
		msg_envelope(m, "X-Envelope-To", "<postmaster@rcpt.example>");
}

static void
msg_load(struct ml_msg *m, const char *path)
{
	struct stat st;
	char *buf;
	FILE *f;

	memset(m, 0, sizeof(*m));
	m->path = path;
	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) != 0)
		die("%s: %s", path, strerror(errno));
	buf = xmalloc((size_t)st.st_size + 1);
	if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		die("%s: short read", path);
	fclose(f);
	buf[st.st_size] = '\0';
	msg_parse(m, buf, (size_t)st.st_size);
	msg_defaults(m);
	free(buf);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of the directory, in name order. */
static void
corpus_load(const char *dir)
{
	DIR *d;
	struct dirent *e;
	char **names = NULL, *p;
	size_t n = 0, i;

	if ((d = opendir(dir)) == NULL)
		die("%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL && n < ML_MAXMSGS) {
		if (e->d_name[0] == '.')
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		if (asprintf(&p, "%s/%s", dir, e->d_name) < 0)
			die("out of memory");
		names[n++] = p;
	}
	closedir(d);
	if (n == 0)
		die("%s: no messages", dir);
	qsort(names, n, sizeof(*names), name_cmp);
	msgs = xmalloc(n * sizeof(*msgs));
	for (i = 0; i < n; i++)
		msg_load(&msgs[i], names[i]);
	nmsgs = n;
	free(names);
}

/* ---- the wire ------------------------------------------------------- */

static void
sock_resolve(int i, const char *spec)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&ml_addr[i];
	struct addrinfo hints, *ai;
	char host[256], port[32];
	const char *p;

	memset(&ml_addr[i], 0, sizeof(ml_addr[i]));
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0)
		spec = strchr(spec, ':') + 1;
	if (spec[0] == '/') {
		un->sun_family = AF_UNIX;
		if (strlen(spec) >= sizeof(un->sun_path))
			die("%s: path too long", spec);
		strcpy(un->sun_path, spec);
		ml_addrlen[i] = sizeof(*un);
		return;
	}
	if (strncmp(spec, "inet:", 5) == 0 && (p = strchr(spec, '@')) != NULL)
		snprintf(port, sizeof(port), "%.*s", (int)(p - spec - 5),
		    spec + 5), snprintf(host, sizeof(host), "%s", p + 1);
	else if ((p = strrchr(spec, ':')) != NULL)
		snprintf(host, sizeof(host), "%.*s", (int)(p - spec), spec),
		    snprintf(port, sizeof(port), "%s", p + 1);
	else
		die("%s: not a socket (unix:/path or inet:port@host)", spec);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		die("%s: cannot resolve", spec);
	memcpy(&ml_addr[i], ai->ai_addr, ai->ai_addrlen);
	ml_addrlen[i] = ai->ai_addrlen;
	freeaddrinfo(ai);
}

static int
conn_write(struct ml_conn *c, const unsigned char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(c->fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One command: 4-byte length, the command byte, then data parts. */
static int
conn_send(struct ml_conn *c, char cmd, const void *a, size_t alen,
    const void *b, size_t blen)
{
	size_t len = 1 + alen + blen;
	uint32_t nlen = htonl((uint32_t)len);

	if (c->wcap < len + 4) {
		c->wcap = len + 4 + 1024;
		c->wbuf = xrealloc(c->wbuf, c->wcap);
	}
	memcpy(c->wbuf, &nlen, 4);
	c->wbuf[4] = (unsigned char)cmd;
	if (alen > 0)
		memcpy(c->wbuf + 5, a, alen);
	if (blen > 0)
		memcpy(c->wbuf + 5 + alen, b, blen);
	return conn_write(c, c->wbuf, len + 4);
}

/* Make sure n bytes are buffered; -1 when the milter hung up. */
static int
conn_fill(struct ml_conn *c, size_t n)
{
	ssize_t r;

	if (c->rpos > 0 && c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
	if (c->rcap < c->rpos + n) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
		if (c->rcap < n) {
			c->rcap = n + 4096;
			c->rbuf = xrealloc(c->rbuf, c->rcap);
		}
	}
	while (c->rlen - c->rpos < n) {
		r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c->rlen += (size_t)r;
	}
	return 0;
}

/* One reply: its command byte, *data and *len; -1 on error. */
static int
conn_reply(struct ml_conn *c, const unsigned char **data, size_t *len)
{
	uint32_t n;
	int cmd;

	if (conn_fill(c, 4) != 0)
		return -1;
	memcpy(&n, c->rbuf + c->rpos, 4);
	n = ntohl(n);
	if (n == 0 || n > ML_MAXREPLY)
		return -1;
	c->rpos += 4;
	if (conn_fill(c, n) != 0)
		return -1;
	cmd = c->rbuf[c->rpos];
	*data = c->rbuf + c->rpos + 1;
	*len = n - 1;
	c->rpos += n;
	return cmd;
}

static int
conn_open(struct ml_conn *c)
{
	int on = 1;

	const struct sockaddr_storage *sa = &ml_addr[c->sock];

	c->rpos = c->rlen = 0;
	if ((c->fd = socket(sa->ss_family, SOCK_STREAM, 0)) < 0)
		return -1;
	if (sa->ss_family != AF_UNIX)
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on));
	if (connect(c->fd, (const struct sockaddr *)sa,
	    ml_addrlen[c->sock]) != 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void
conn_close(struct ml_conn *c, bool quit)
{
	if (c->fd < 0)
		return;
	if (quit)
		(void)conn_send(c, 'Q', NULL, 0, NULL, 0);
	close(c->fd);
	c->fd = -1;
}

/* SMFIC_OPTNEG: offer everything; keep what the milter takes. */
static int
conn_negotiate(struct ml_conn *c)
{
	uint32_t v[3] = { htonl(ML_VERSION), htonl(ML_ACTIONS),
	    htonl(ML_PROTO_OFFER) };
	const unsigned char *d;
	size_t len;

	if (conn_send(c, 'O', v, sizeof(v), NULL, 0) != 0 ||
	    conn_reply(c, &d, &len) != 'O' || len < 12)
		return -1;
	memcpy(v, d, sizeof(v));
	c->proto = ntohl(v[2]);
	return 0;
}

/* ---- one message ------------------------------------------------------ */

/*
 * A step's reply unless the milter said it sends none: 'c' to go on,
 * another final reply (counted) to end the message, or -1.
 */
static int
step_reply(struct ml_conn *c, uint32_t noreply, struct ml_counts *k)
{
	const unsigned char *d;
	size_t len;
	int r;

	if ((c->proto & noreply) != 0)
		return 'c';
	do {
		r = conn_reply(c, &d, &len);
	} while (r == 'p');
	if (r < 0)
		return -1;
	if (r != 'c' && r != 's')
		k->early++;
	return r;
}

/* Macros (no reply), then one command and its reply. */
static int
step(struct ml_conn *c, char cmd, const char *macros, size_t mlen,
    const void *data, size_t len, uint32_t skip, uint32_t noreply,
    struct ml_counts *k)
{
	char mbuf[1024];

	if ((c->proto & skip) != 0)
		return 'c';
	if (mlen > 0) {
		mbuf[0] = cmd;
		memcpy(mbuf + 1, macros, mlen);
		if (conn_send(c, 'D', mbuf, mlen + 1, NULL, 0) != 0)
			return -1;
	}
	if (conn_send(c, cmd, data, len, NULL, 0) != 0)
		return -1;
	return step_reply(c, noreply, k);
}

static int
send_connect(struct ml_conn *c, const struct ml_msg *m, struct ml_counts *k)
{
	static const char macros[] = "j\0mx.rcpt.example\0"
	    "{daemon_name}\0milterload\0";
	unsigned char buf[512];
	size_t n = 0, hl = strlen(m->host) + 1, al = strlen(m->ip) + 1;
	int r;

	memcpy(buf, m->host, hl);
	n = hl;
	buf[n++] = strchr(m->ip, ':') != NULL ? '6' : '4';
	buf[n++] = 0x04;	/* port 1025, network order */
	buf[n++] = 0x01;
	memcpy(buf + n, m->ip, al);
	n += al;
	r = step(c, 'C', macros, sizeof(macros) - 1, buf, n, ML_NOCONNECT,
	    ML_NR_CONN, k);
	if (r != 'c')
		return r;
	return step(c, 'H', NULL, 0, m->helo, strlen(m->helo) + 1,
	    ML_NOHELO, ML_NR_HELO, k);
}

/* name\0value\0, the value's one leading space gone unless LEADSPC. */
static int
send_header(struct ml_conn *c, const struct ml_field *f, struct ml_counts *k)
{
	const char *v = f->value;
	size_t nl = strlen(f->name) + 1;

	if ((c->proto & ML_LEADSPC) == 0 && *v == ' ')
		v++;
	if ((c->proto & ML_NOHDRS) != 0)
		return 'c';
	if (conn_send(c, 'L', f->name, nl, v, strlen(v) + 1) != 0)
		return -1;
	return step_reply(c, ML_NR_HDR, k);
}

static int
send_envelope(struct ml_conn *c, const struct ml_msg *m, const char *qid,
    struct ml_counts *k)
{
	char mac[256];
	size_t ml, i;
	int r;

	ml = (size_t)snprintf(mac, sizeof(mac), "i%c%s%c{mail_addr}%c%s%c",
	    0, qid, 0, 0, m->from, 0);
	r = step(c, 'M', mac, ml, m->from, strlen(m->from) + 1, ML_NOMAIL,
	    ML_NR_MAIL, k);
	for (i = 0; i < m->nrcpt && r == 'c'; i++)
		r = step(c, 'R', NULL, 0, m->rcpt[i], strlen(m->rcpt[i]) + 1,
		    ML_NORCPT, ML_NR_RCPT, k);
	if (r == 'c')
		r = step(c, 'T', NULL, 0, NULL, 0, ML_NODATA, ML_NR_DATA, k);
	return r;
}

static int
send_content(struct ml_conn *c, const struct ml_msg *m,
    const struct ml_hdrs *h, struct ml_counts *k)
{
	size_t i, n;
	int r = 'c';

	for (i = 0; i < h->n && r == 'c'; i++)
		r = send_header(c, h->f[i], k);
	if (r == 'c')
		r = step(c, 'N', NULL, 0, NULL, 0, ML_NOEOH, ML_NR_EOH, k);
	for (i = 0; i < m->bodylen && r == 'c'; i += n) {
		n = m->bodylen - i < ML_CHUNK ? m->bodylen - i : ML_CHUNK;
		r = step(c, 'B', NULL, 0, m->body + i, n, ML_NOBODY,
		    ML_NR_BODY, k);
	}
	/* SMFIR_SKIP: no more body for this milter, on to EOM */
	return r == 's' ? 'c' : r;
}

/* name\0value\0 of an SMFIR_ADDHEADER or SMFIR_INSHEADER, at index at. */
static void
hdrs_add(struct ml_hdrs *h, const unsigned char *d, size_t len, size_t at)
{
	const char *name = (const char *)d, *value;
	struct ml_field *f;
	size_t nl = strnlen(name, len);

	if (nl + 1 >= len || memchr(d + nl + 1, '\0', len - nl - 1) == NULL)
		return;
	value = name + nl + 1;
	if (h->nown == h->capown) {
		/* h->f points into own: keep it in place, it is never moved */
		return;
	}
	f = &h->own[h->nown++];
	free(f->name);
	free(f->value);
	if ((f->name = strdup(name)) == NULL ||
	    asprintf(&f->value, "%s%s", *value == ' ' ? "" : " ", value) < 0)
		die("out of memory");
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 64;
		h->f = xrealloc(h->f, h->cap * sizeof(*h->f));
	}
	at = at > h->n ? h->n : at;
	memmove(h->f + at + 1, h->f + at, (h->n - at) * sizeof(*h->f));
	h->f[at] = f;
	h->n++;
}

/* A field the next milter of the chain sees (others are only counted). */
static void
hdrs_apply(struct ml_hdrs *h, int r, const unsigned char *d, size_t len)
{
	uint32_t at;

	if (h == NULL)
		return;
	if (r == 'h')
		hdrs_add(h, d, len, h->n);
	if (r == 'i' && len > 4) {
		memcpy(&at, d, 4);
		hdrs_add(h, d + 4, len - 4, ntohl(at));
	}
}

/* -v: what one EOM reply asks for, printable. */
static void
show_reply(int r, const unsigned char *d, size_t len)
{
	size_t i;

	printf("  eom reply '%c':", r);
	for (i = 0; i < len; i++) {
		if (d[i] == '\0')
			fputs(" | ", stdout);
		else if (d[i] >= 0x20 && d[i] < 0x7f)
			putchar(d[i]);
		else
			printf("\\x%02x", d[i]);
	}
	putchar('\n');
}

/* EOM and its replies: modifications, then one final reply. */
static int
send_eom(struct ml_conn *c, const char *qid, struct ml_hdrs *h,
    struct ml_counts *k)
{
	char mac[128];
	const unsigned char *d;
	size_t ml, len;
	int r;
	bool show = opt.verbose && atomic_load(&shown) < opt.nsock &&
	    atomic_fetch_add(&shown, 1) < opt.nsock;

	ml = (size_t)snprintf(mac, sizeof(mac), "E" "i%c%s%c", 0, qid, 0);
	if (conn_send(c, 'D', mac, ml, NULL, 0) != 0 ||
	    conn_send(c, 'E', NULL, 0, NULL, 0) != 0)
		return -1;
	for (;;) {
		if ((r = conn_reply(c, &d, &len)) < 0)
			return -1;
		if (show)
			show_reply(r, d, len);
		if (strchr("acrtdy", r) != NULL)
			break;
		if (r != 'p')
			k->mods[r & 0x7f]++;
		hdrs_apply(h, r, d, len);
	}
	/* a reply code counts by its class: '4' or '5' */
	if (r == 'y' && len > 0 && (d[0] == '4' || d[0] == '5'))
		r = d[0];
	return r;
}

/* ---- connections and threads --------------------------------------- */

static int
conn_start(struct ml_conn *c, const struct ml_msg *m, struct ml_counts *k)
{
	if (conn_open(c) != 0)
		return -1;
	if (conn_negotiate(c) != 0 || send_connect(c, m, k) != 'c') {
		conn_close(c, false);
		return -1;
	}
	return 0;
}

/* A new connection when the client changes or the quota is used up. */
static bool
conn_ready(struct ml_conn *c, const struct ml_msg *m, struct ml_counts *k)
{
	if (c->fd >= 0 && (strcmp(c->ip, m->ip) != 0 ||
	    (opt.per_conn > 0 && c->sent >= opt.per_conn)))
		conn_close(c, true);
	if (c->fd >= 0)
		return true;
	c->sent = 0;
	c->ip = m->ip;
	if (conn_start(c, m, k) == 0)
		return true;
	k->errors++;
	return false;
}

static void
lat_add(struct ml_thread *t, double us)
{
	if (t->nlat == t->caplat) {
		t->caplat = t->caplat ? 2 * t->caplat : 4096;
		t->lat = xrealloc(t->lat, (size_t)t->caplat * sizeof(double));
	}
	t->lat[t->nlat++] = us;
}

/*
 * One milter of the chain: the message as h lists it, its EOM replies
 * added to h. The final reply (also one before EOM), or -1; *eom_us
 * gets the EOM round trip.
 */
static int
msg_one(struct ml_conn *c, const struct ml_msg *m, const char *qid,
    struct ml_hdrs *h, struct ml_counts *k, double *eom_us)
{
	struct timespec a, b;
	int r;

	c->sent++;
	r = send_envelope(c, m, qid, k);
	if (r == 'c')
		r = send_content(c, m, h, k);
	if (r != 'c') {
		/* ended early: the MTA aborts the milter's message */
		if (r > 0 && conn_send(c, 'A', NULL, 0, NULL, 0) != 0)
			return -1;
		return r;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	r = send_eom(c, qid, h, k);
	clock_gettime(CLOCK_MONOTONIC, &b);
	*eom_us += ts_diff_us(&a, &b);
	return r;
}

static void
hdrs_reset(struct ml_hdrs *h, const struct ml_msg *m)
{
	size_t i;

	if (h->cap < m->nhdr + 64) {
		h->cap = m->nhdr + 64;
		h->f = xrealloc(h->f, h->cap * sizeof(*h->f));
	}
	if (h->own == NULL) {
		h->capown = 64;
		h->own = calloc(h->capown, sizeof(*h->own));
		if (h->own == NULL)
			die("out of memory");
	}
	for (i = 0; i < m->nhdr; i++)
		h->f[i] = &m->hdr[i];
	h->n = m->nhdr;
	h->nown = 0;
}

/*
 * One message through the chain, stopping at the first milter that does
 * not accept it. Its latency is the sum of the EOM round trips.
 */
static void
msg_run(struct ml_conn *c, const struct ml_msg *m, long i, struct ml_thread *t,
    struct ml_hdrs *h)
{
	unsigned long early = t->c.early;
	char qid[32];
	double us = 0;
	int j, r = 'a';

	snprintf(qid, sizeof(qid), "ML%08lX", (unsigned long)i + 1);
	hdrs_reset(h, m);
	for (j = 0; j < opt.nsock && (r == 'a' || r == 'c'); j++) {
		if (!conn_ready(&c[j], m, &t->c))
			return;
		r = msg_one(&c[j], m, qid, h, &t->c, &us);
		if (r < 0) {
			t->c.errors++;
			conn_close(&c[j], false);
			return;
		}
	}
	if (t->c.early == early)
		lat_add(t, us);
	t->c.final[r & 0x7f]++;
}

/* --rate: message i starts at t_start + i / rate. */
static void
rate_wait(long i)
{
	struct timespec at = t_start;
	double off = (double)i / opt.rate;

	at.tv_sec += (time_t)off;
	at.tv_nsec += (long)((off - (double)(time_t)off) * 1e9);
	if (at.tv_nsec >= 1000000000L) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) ==
	    EINTR)
		;
}

static void
thread_loop(struct ml_thread *t, atomic_long *counter, long total,
    bool paced)
{
	struct ml_conn c[ML_MAXSOCK];
	struct ml_hdrs h;
	long i;
	int j;

	memset(c, 0, sizeof(c));
	memset(&h, 0, sizeof(h));
	for (j = 0; j < opt.nsock; j++) {
		c[j].fd = -1;
		c[j].sock = j;
	}
	while ((i = atomic_fetch_add(counter, 1)) < total) {
		if (paced)
			rate_wait(i);
		msg_run(c, &msgs[(size_t)i % nmsgs], i, t, &h);
	}
	for (j = 0; j < opt.nsock; j++) {
		conn_close(&c[j], true);
		free(c[j].rbuf);
		free(c[j].wbuf);
	}
	for (i = 0; i < (long)h.capown; i++) {
		free(h.own[i].name);
		free(h.own[i].value);
	}
	free(h.own);
	free(h.f);
}

static void *
thread_main(void *arg)
{
	thread_loop(arg, &next_msg, opt.total, opt.rate > 0);
	return NULL;
}

/* ---- figures ----------------------------------------------------------- */

/* utime + stime of a process (all its threads), in seconds; -1 if gone. */
static double
pid_cpu(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after "pid (comm)": state is field 3, utime 14, stime 15 */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 2,
	    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const double *v, long n, double p)
{
	long i;

	if (n == 0)
		return 0;
	i = (long)(p * (double)n + 0.5) - 1;
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static const char *
reply_name(int r)
{
	switch (r) {
	case 'a': return "accept";
	case 'c': return "continue";
	case 'r': return "reject";
	case 't': return "tempfail";
	case 'd': return "discard";
	case 'y': return "replycode";
	case '4': return "replycode-4xx";
	case '5': return "replycode-5xx";
	case 'h': return "addheader";
	case 'i': return "insheader";
	case 'm': return "chgheader";
	case 'q': return "quarantine";
	case 'b': return "replbody";
	case '+': return "addrcpt";
	case '-': return "delrcpt";
	case 'e': return "chgfrom";
	default: return NULL;
	}
}

static void
print_counts(const char *what, const unsigned long *v)
{
	const char *name;
	int i;

	printf("%s:", what);
	for (i = 0; i < 128; i++) {
		if (v[i] == 0)
			continue;
		if ((name = reply_name(i)) != NULL)
			printf(" %s=%lu", name, v[i]);
		else
			printf(" '%c'=%lu", i, v[i]);
	}
	printf("\n");
}

/* Sum the threads' counts and latencies into the first. */
static void
merge(struct ml_thread *t, int n, struct ml_counts *k, double **lat,
    long *nlat)
{
	int i, j;

	memset(k, 0, sizeof(*k));
	*nlat = 0;
	for (i = 0; i < n; i++)
		*nlat += t[i].nlat;
	*lat = xmalloc((size_t)*nlat * sizeof(double) + 1);
	*nlat = 0;
	for (i = 0; i < n; i++) {
		for (j = 0; j < 128; j++) {
			k->final[j] += t[i].c.final[j];
			k->mods[j] += t[i].c.mods[j];
		}
		k->early += t[i].c.early;
		k->errors += t[i].c.errors;
		memcpy(*lat + *nlat, t[i].lat, (size_t)t[i].nlat *
		    sizeof(double));
		*nlat += t[i].nlat;
	}
	qsort(*lat, (size_t)*nlat, sizeof(double), dbl_cmp);
}

static void
report(struct ml_thread *t, double secs, const double *cpu)
{
	struct ml_counts k;
	unsigned long done = 0;
	double *lat, cpusum = 0;
	long nlat;
	int i;

	merge(t, opt.conns, &k, &lat, &nlat);
	for (i = 0; i < 128; i++)
		done += k.final[i];
	printf("messages: %lu in %.3f s: %.1f msg/s (offered: %s)\n", done,
	    secs, secs > 0 ? (double)done / secs : 0, opt.rate > 0 ?
	    "fixed rate" : "as fast as answered");
	printf("eom latency us: p50=%.0f p99=%.0f max=%.0f (%ld messages)\n",
	    pct(lat, nlat, 0.50), pct(lat, nlat, 0.99),
	    nlat ? lat[nlat - 1] : 0, nlat);
	print_counts("final replies", k.final);
	print_counts("modifications", k.mods);
	printf("ended before eom: %lu, connection errors: %lu\n", k.early,
	    k.errors);
	for (i = 0; i < opt.npids; i++) {
		printf("cpu pid %d: %.3f s\n", (int)opt.pids[i], cpu[i]);
		cpusum += cpu[i] > 0 ? cpu[i] : 0;
	}
	printf("RESULT msgs=%lu secs=%.3f rate=%.1f p50_us=%.0f p99_us=%.0f "
	    "max_us=%.0f cpu_s=%.3f cpu_us_per_msg=%.1f errors=%lu\n", done,
	    secs, secs > 0 ? (double)done / secs : 0, pct(lat, nlat, 0.50),
	    pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] : 0, cpusum,
	    done ? cpusum * 1e6 / (double)done : 0, k.errors);
	free(lat);
}

/* ---- main -------------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr, "usage: milterload -s socket [-s socket...] -d dir "
	    "[-c connections] "
	    "[-n messages]\n\t[-k messages-per-connection] [-r msgs/s] "
	    "[-w warm-up messages] [-p pid[,pid...]] [-v]\n");
	exit(2);
}

static void
parse_pids(char *s)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(s, ",", &save); tok != NULL && opt.npids <
	    ML_MAXPIDS; tok = strtok_r(NULL, ",", &save))
		opt.pids[opt.npids++] = (pid_t)atoi(tok);
}

static void
parse_args(int argc, char **argv)
{
	int ch;

	while ((ch = getopt(argc, argv, "c:d:k:n:p:r:s:vw:")) != -1) {
		switch (ch) {
		case 'c': opt.conns = atoi(optarg); break;
		case 'd': opt.dir = optarg; break;
		case 'k': opt.per_conn = atol(optarg); break;
		case 'n': opt.total = atol(optarg); break;
		case 'p': parse_pids(optarg); break;
		case 'r': opt.rate = atof(optarg); break;
		case 's':
			if (opt.nsock == ML_MAXSOCK)
				die("at most %d sockets", ML_MAXSOCK);
			opt.socket[opt.nsock++] = optarg;
			break;
		case 'v': opt.verbose = true; break;
		case 'w': opt.warmup = atol(optarg); break;
		default: usage();
		}
	}
	if (opt.nsock == 0 || opt.dir == NULL || opt.conns < 1 ||
	    opt.total < 1 || opt.rate < 0 || opt.per_conn < 0)
		usage();
}

/* Warm-up: one connection, not counted (fills the milter's caches). */
static void
warm_up(void)
{
	struct ml_thread t;
	atomic_long counter = 0;

	if (opt.warmup <= 0)
		return;
	memset(&t, 0, sizeof(t));
	thread_loop(&t, &counter, opt.warmup, false);
	free(t.lat);
}

int
main(int argc, char **argv)
{
	struct ml_thread *t;
	struct timespec end;
	double cpu0[ML_MAXPIDS], cpu[ML_MAXPIDS];
	int i;

	parse_args(argc, argv);
	/* a milter that hangs up is counted, not fatal */
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < opt.nsock; i++)
		sock_resolve(i, opt.socket[i]);
	corpus_load(opt.dir);
	warm_up();
	t = calloc((size_t)opt.conns, sizeof(*t));
	if (t == NULL)
		die("out of memory");
	for (i = 0; i < opt.npids; i++)
		cpu0[i] = pid_cpu(opt.pids[i]);
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	for (i = 0; i < opt.conns; i++)
		if (pthread_create(&t[i].tid, NULL, thread_main, &t[i]) != 0)
			die("pthread_create failed");
	for (i = 0; i < opt.conns; i++)
		pthread_join(t[i].tid, NULL);
	clock_gettime(CLOCK_MONOTONIC, &end);
	for (i = 0; i < opt.npids; i++)
		cpu[i] = pid_cpu(opt.pids[i]) - cpu0[i];
	printf("milterload: %zu message file(s) from %s, %d connection(s) "
	    "to %s%s, %ld messages per connection (0: any number)\n", nmsgs,
	    opt.dir, opt.conns, opt.socket[0], opt.nsock > 1 ?
	    " and the milters chained after it" : "", opt.per_conn);
	report(t, ts_diff_us(&t_start, &end) / 1e6, cpu);
	return 0;
}
