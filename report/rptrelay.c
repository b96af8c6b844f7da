/*
 * report/rptrelay.c - a report mail to an SMTP relay through libcurl (see
 * rptrelay.h). This file owns the libcurl settings that make the relay
 * path safe: TLS required and verified, AUTH only inside it, bounded in
 * time, no signals; and the reading of the relay's last reply, which
 * libcurl's error text leaves out, so that err says what the relay said.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "rptrelay.h"

#define REPLY_KEEP 512		/* bytes of the relay's last reply kept */
#define DEFAULT_TIMEOUT 300
#define CONNECT_TIMEOUT_MAX 30
#define HOSTPORT_MAX 300
#define SOCKS_MAX 8		/* open at once: happy eyeballs makes 2 */
#define LABEL_MAX (HOSTPORT_MAX + 8)	/* "host:port" */

struct call {
	CURL *h;
	struct curl_slist *rcpts;
	const char *eml;
	size_t len, off;
	char label[LABEL_MAX];		/* for err */
	char url[LABEL_MAX + 10];	/* "smtps://" label "/" */
	char reply[REPLY_KEEP];
	size_t replylen;
	bool reply_ended;	/* the next line starts a new reply */
	struct timespec deadline;
	bool timed_out;
	long timeout;
	int socks[SOCKS_MAX];	/* ours, -1: free */
	char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t rr_once = PTHREAD_ONCE_INIT;
static CURLcode rr_init_rc = CURLE_FAILED_INIT;

void
rpt_relay_defaults(rpt_relay *o)
{
	memset(o, 0, sizeof(*o));
	o->tls = RPT_TLS_STARTTLS;
	o->verify = true;
}

static void
rr_global_once(void)
{
	rr_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
rpt_relay_global_init(void)
{
	pthread_once(&rr_once, rr_global_once);
	return rr_init_rc == CURLE_OK ? 0 : -1;
}

static bool
rr_clean_addr(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '<' ||
		    *s == '>')
			return false;
	return true;
}

/* CRLF line ends only, no NUL: what dot-stuffing can be trusted with. */
static bool
rr_clean_message(const char *eml, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (eml[i] == '\0')
			return false;
		if (eml[i] == '\r' && (i + 1 == len || eml[i + 1] != '\n'))
			return false;
		if (eml[i] == '\n' && (i == 0 || eml[i - 1] != '\r'))
			return false;
	}
	return true;
}

static bool
rr_port(const char *s, unsigned *port)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = (unsigned)v;
	return true;
}

/*
 * The host part of hostport: [v6] with hex digits, ':' and '.', or a
 * name or v4 address of letters, digits, '.', '-', '_'. Nothing that
 * could change the meaning of the URL built from it. Returns its length.
 */
static size_t
rr_host(const char *s)
{
	size_t i;

	if (s[0] == '[') {
		for (i = 1; s[i] != '\0' && s[i] != ']'; i++)
			if (strchr("0123456789abcdefABCDEF:.", s[i]) == NULL)
				return 0;
		return s[i] == ']' && i > 1 ? i + 1 : 0;
	}
	for (i = 0; s[i] != '\0' && s[i] != ':'; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", s[i]) == NULL)
			return 0;
	return i;
}

static bool
rr_target(struct call *c, const rpt_relay *o)
{
	static const unsigned dflt[] = { 587, 465, 25 };
	const char *hp = o->hostport;
	size_t hl;
	unsigned port;

	if (hp == NULL || strlen(hp) > HOSTPORT_MAX || (hl = rr_host(hp)) == 0)
		return false;
	if (hp[hl] == '\0')
		port = dflt[o->tls];
	else if (hp[hl] != ':' || !rr_port(hp + hl + 1, &port))
		return false;
	snprintf(c->label, sizeof(c->label), "%.*s:%u", (int)hl, hp, port);
	snprintf(c->url, sizeof(c->url), "%s://%s/",
	    o->tls == RPT_TLS_SMTPS ? "smtps" : "smtp", c->label);
	return true;
}

static size_t
rr_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct call *c = arg;
	size_t n = c->len - c->off;

	if (n > size * nitems)
		n = size * nitems;
	memcpy(buf, c->eml + c->off, n);
	c->off += n;
	return n;
}

/*
 * libcurl gives each line of the relay's replies to the header callback.
 * Keeps the last complete reply, its lines joined by a space, control
 * bytes dropped. QUIT's 221 is not kept: it comes after the reply that
 * made the transaction fail.
 */
static size_t
rr_reply_line(char *buf, size_t size, size_t nitems, void *arg)
{
	struct call *c = arg;
	size_t n = size * nitems, i;

	if (n >= 4 && memcmp(buf, "221", 3) == 0 && c->reply_ended)
		return n;
	if (c->reply_ended) {
		c->replylen = 0;
		c->reply_ended = false;
	} else if (c->replylen > 0 && c->replylen + 1 < sizeof(c->reply))
		c->reply[c->replylen++] = ' ';
	for (i = 0; i < n && c->replylen + 1 < sizeof(c->reply); i++)
		if ((unsigned char)buf[i] >= 0x20 && buf[i] != 0x7f)
			c->reply[c->replylen++] = buf[i];
	c->reply[c->replylen] = '\0';
	if (n < 4 || buf[3] != '-')
		c->reply_ended = true;
	return n;
}

/*
 * The sockets libcurl opens are tracked so that at the deadline they can
 * be shut down: after an abort libcurl still says QUIT and waits for the
 * answer, which a hung relay never gives.
 */
static curl_socket_t
rr_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct call *c = arg;
	int fd, i;

	for (i = 0; i < SOCKS_MAX && c->socks[i] >= 0; i++)
		;
	if (i == SOCKS_MAX || (fd = socket(a->family, a->socktype |
	    SOCK_CLOEXEC, a->protocol)) < 0)
		return CURL_SOCKET_BAD;
	c->socks[i] = fd;
	return fd;
}

static int
rr_close(void *arg, curl_socket_t fd)
{
	struct call *c = arg;
	int i;

	for (i = 0; i < SOCKS_MAX; i++)
		if (c->socks[i] == fd)
			c->socks[i] = -1;
	return close(fd);
}

/*
 * The deadline, kept by us too: libcurl 7.88 waits for the reply to the
 * final "." in a loop that ignores CURLOPT_TIMEOUT, but calls this at
 * least once a second.
 */
static int
rr_progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
    curl_off_t uln)
{
	struct call *c = arg;
	struct timespec now;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (c->timed_out || now.tv_sec < c->deadline.tv_sec ||
	    (now.tv_sec == c->deadline.tv_sec && now.tv_nsec <
	    c->deadline.tv_nsec))
		return c->timed_out;
	c->timed_out = true;
	for (i = 0; i < SOCKS_MAX; i++)
		if (c->socks[i] >= 0)
			shutdown(c->socks[i], SHUT_RDWR);
	return 1;
}

static CURLcode
rr_set_tls(struct call *c, const rpt_relay *o)
{
	CURLcode rc;

	if ((rc = curl_easy_setopt(c->h, CURLOPT_USE_SSL, (long)(o->tls ==
	    RPT_TLS_NONE ? CURLUSESSL_NONE : CURLUSESSL_ALL))) != CURLE_OK ||
	    o->tls == RPT_TLS_NONE)
		return rc;
	if ((rc = curl_easy_setopt(c->h, CURLOPT_SSLVERSION,
	    (long)CURL_SSLVERSION_TLSv1_2)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYPEER,
	    o->verify ? 1L : 0L)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYHOST,
	    o->verify ? 2L : 0L)) != CURLE_OK)
		return rc;
	if (o->ca_file == NULL)
		return CURLE_OK;
	/* only these CAs, not also the system's directory */
	if ((rc = curl_easy_setopt(c->h, CURLOPT_CAINFO, o->ca_file)) !=
	    CURLE_OK)
		return rc;
	return curl_easy_setopt(c->h, CURLOPT_CAPATH, NULL);
}

/* The deadline: libcurl's limits, and ours (see rr_progress). */
static CURLcode
rr_set_limits(struct call *c)
{
	long conn = c->timeout < CONNECT_TIMEOUT_MAX ? c->timeout :
	    CONNECT_TIMEOUT_MAX;
	CURLcode rc;

	if ((rc = curl_easy_setopt(c->h, CURLOPT_TIMEOUT, c->timeout)) !=
	    CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_SERVER_RESPONSE_TIMEOUT,
	    c->timeout)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT, conn)) !=
	    CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION,
	    rr_progress)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, c)) !=
	    CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_OPENSOCKETFUNCTION,
	    rr_open)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_OPENSOCKETDATA, c)) !=
	    CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_CLOSESOCKETFUNCTION,
	    rr_close)) != CURLE_OK)
		return rc;
	return curl_easy_setopt(c->h, CURLOPT_CLOSESOCKETDATA, c);
}

/* Nothing but SMTP, whatever the URL says. */
static CURLcode
rr_set_protocols(struct call *c)
{
#if LIBCURL_VERSION_NUM >= 0x075500	/* 7.85 */
	return curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
	return curl_easy_setopt(c->h, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
}

/* Where, how, and what is kept of the replies. */
static CURLcode
rr_set_conn(struct call *c, const rpt_relay *o)
{
	CURLcode rc;

	if ((rc = curl_easy_setopt(c->h, CURLOPT_URL, c->url)) != CURLE_OK ||
	    (rc = rr_set_protocols(c)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->errbuf)) !=
	    CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION,
	    rr_reply_line)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_HEADERDATA, c)) != CURLE_OK ||
	    (rc = rr_set_limits(c)) != CURLE_OK)
		return rc;
	return rr_set_tls(c, o);
}

static CURLcode
rr_set_auth(struct call *c, const rpt_relay *o)
{
	CURLcode rc;

	if (o->user == NULL)
		return CURLE_OK;
	if ((rc = curl_easy_setopt(c->h, CURLOPT_USERNAME, o->user)) !=
	    CURLE_OK)
		return rc;
	return curl_easy_setopt(c->h, CURLOPT_PASSWORD, o->password != NULL ?
	    o->password : "");
}

static CURLcode
rr_set_mail(struct call *c, const char *from, const char *const *rcpts,
    size_t n)
{
	struct curl_slist *l;
	CURLcode rc;
	size_t i;

	for (i = 0; i < n; i++) {
		if ((l = curl_slist_append(c->rcpts, rcpts[i])) == NULL)
			return CURLE_OUT_OF_MEMORY;
		c->rcpts = l;
	}
	if ((rc = curl_easy_setopt(c->h, CURLOPT_MAIL_FROM, from)) !=
	    CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_MAIL_RCPT, c->rcpts)) !=
	    CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_UPLOAD, 1L)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_INFILESIZE_LARGE,
	    (curl_off_t)c->len)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c->h, CURLOPT_READFUNCTION, rr_read)) !=
	    CURLE_OK)
		return rc;
	return curl_easy_setopt(c->h, CURLOPT_READDATA, c);
}

/*
 * Neither libcurl nor a sane relay echoes the password, but a relay's
 * reply is foreign text: if it is there anyway, nothing of err is kept
 * (masking in place could leave it, or a part of it, readable).
 */
static void
rr_scrub(char *err, size_t errlen, const char *secret)
{
	if (secret != NULL && secret[0] != '\0' && strstr(err, secret) != NULL)
		snprintf(err, errlen, "relay: the error text is withheld: it "
		    "contained the password");
}

static bool
rr_bad_args(const rpt_relay *o, const char *from, const char *const *rcpts,
    size_t n, const char *eml, size_t len, char *err, size_t errlen)
{
	size_t i;

	if (o == NULL || (unsigned)o->tls > RPT_TLS_NONE) {
		snprintf(err, errlen, "relay: no settings");
		return true;
	}
	if (o->user != NULL && o->tls == RPT_TLS_NONE && !o->auth_plaintext) {
		snprintf(err, errlen, "relay: AUTH without TLS is not allowed");
		return true;
	}
	if (!rr_clean_addr(from) || rcpts == NULL || n == 0 ||
	    (eml == NULL && len > 0)) {
		snprintf(err, errlen, "relay: need a valid sender, recipients "
		    "and a message");
		return true;
	}
	for (i = 0; i < n; i++)
		if (!rr_clean_addr(rcpts[i])) {
			snprintf(err, errlen, "relay: recipient %zu is empty "
			    "or has control characters, '<' or '>'", i + 1);
			return true;
		}
	if (!rr_clean_message(eml, len)) {
		snprintf(err, errlen, "relay: the message has a bare CR or LF "
		    "or a NUL byte");
		return true;
	}
	return false;
}

static void
rr_call_init(struct call *c, const char *eml, size_t len, int timeout_sec)
{
	memset(c, 0, sizeof(*c));
	c->eml = eml;
	c->len = len;
	memset(c->socks, -1, sizeof(c->socks));
	c->timeout = timeout_sec > 0 ? timeout_sec : DEFAULT_TIMEOUT;
	clock_gettime(CLOCK_MONOTONIC, &c->deadline);
	c->deadline.tv_sec += c->timeout;
}

/* As rptrelay.h says, err from the relay's reply or libcurl. */
static dm_status
rr_verdict(struct call *c, CURLcode cc, char *err, size_t errlen)
{
	long code = 0;
	const char *why = c->errbuf[0] != '\0' ? c->errbuf :
	    curl_easy_strerror(cc);

	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
	/* our deadline or libcurl's (server response) one: the same words */
	if (c->timed_out || cc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(err, errlen, "%s: timed out after %ld s", c->label,
		    c->timeout);
		return DM_TEMPFAIL;
	}
	if (code >= 400 && code < 600 && c->replylen > 0)
		snprintf(err, errlen, "%s: %s (%s)", c->label, c->reply, why);
	else
		snprintf(err, errlen, "%s: %s", c->label, why);
	if (code >= 500 && code < 600)
		return DM_PERMFAIL;
	switch (cc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return DM_PERMFAIL;
	default:
		return DM_TEMPFAIL;
	}
}

dm_status
rpt_send_relay(const rpt_relay *o, const char *from,
    const char *const *rcpts, size_t n, const char *eml, size_t len,
    int timeout_sec, char *err, size_t errlen)
{
	struct call c;
	CURLcode cc;
	dm_status rc = DM_TEMPFAIL;

	if (errlen > 0)
		err[0] = '\0';
	if (rr_bad_args(o, from, rcpts, n, eml, len, err, errlen))
		return DM_PERMFAIL;
	rr_call_init(&c, eml, len, timeout_sec);
	if (!rr_target(&c, o)) {
		snprintf(err, errlen, "relay: bad host or port in \"%.*s\"",
		    HOSTPORT_MAX, o->hostport != NULL ? o->hostport : "");
		return DM_PERMFAIL;
	}
	if (rpt_relay_global_init() != 0 || (c.h = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "%s: cannot set up libcurl", c.label);
		return DM_TEMPFAIL;
	}
	if ((cc = rr_set_conn(&c, o)) != CURLE_OK ||
	    (cc = rr_set_auth(&c, o)) != CURLE_OK ||
	    (cc = rr_set_mail(&c, from, rcpts, n)) != CURLE_OK) {
		snprintf(err, errlen, "%s: libcurl refused a setting: %s",
		    c.label, curl_easy_strerror(cc));
		rc = cc == CURLE_OUT_OF_MEMORY ? DM_TEMPFAIL :
		    DM_PERMFAIL;
		goto out;
	}
	if ((cc = curl_easy_perform(c.h)) == CURLE_OK)
		rc = DM_OK;
	else
		rc = rr_verdict(&c, cc, err, errlen);
out:
	curl_easy_cleanup(c.h);
	curl_slist_free_all(c.rcpts);
	if (errlen > 0)
		rr_scrub(err, errlen, o->password);
	return rc;
}
