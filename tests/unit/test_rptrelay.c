/*
 * tests/unit/test_rptrelay.c - sending through an SMTP relay with libcurl,
 * against tests/unit/smtpsink.py on loopback (a certificate made here with
 * openssl): STARTTLS and smtps with AUTH, the message bytes after dot-
 * stuffing, refused recipients, 4xx and 5xx, dropped connections,
 * timeouts, a relay without STARTTLS, certificates that must not verify,
 * and the arguments refused before any connection.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rptrelay.h"
#include "tap.h"

#define USER "relayuser"
#define PASS "pa55-w0rd-Sekr1t"

static char dir[] = "/tmp/test_rptrelay.XXXXXX";
static pid_t sink_pid = -1;
static unsigned port_plain, port_smtps, port_closed;
static bool password_leaked;

enum port { P_PLAIN, P_SMTPS, P_CLOSED };
enum ca { CA_SYSTEM, CA_OWN };

static const char *const rcpt_one[] = { "dmarc-rua@example.com" };
static const char *const rcpt_two[] = { "dmarc-rua@example.com",
	"gone@thirdparty.example" };

static const struct relay_case {
	const char *tag, *mode;
	enum port port;
	const char *host;
	rpt_relay_tls tls;
	const char *pass;	/* NULL: no AUTH */
	bool auth_plaintext, verify;
	enum ca ca;
	const char *const *rcpts;
	size_t nrcpt;
	int timeout, want;
	const char *want_err;	/* in err, when failing */
	bool delivered;
	double max_s;		/* 0: no bound on the time taken */
} cases[] = {
	{ "starttls_plain", "mechs=PLAIN", P_PLAIN, "localhost",
	  RPT_TLS_STARTTLS, PASS, false, true, CA_OWN, rcpt_two, 2, 10, 0,
	  NULL, true, 0 },
	{ "starttls_login", "mechs=LOGIN", P_PLAIN, "localhost",
	  RPT_TLS_STARTTLS, PASS, false, true, CA_OWN, rcpt_one, 1, 10, 0,
	  NULL, true, 0 },
	{ "smtps", "", P_SMTPS, "localhost", RPT_TLS_SMTPS, PASS, false, true,
	  CA_OWN, rcpt_one, 1, 10, 0, NULL, true, 0 },
	{ "plain_noauth", "nostarttls", P_PLAIN, "127.0.0.1", RPT_TLS_NONE,
	  NULL, false, true, CA_SYSTEM, rcpt_one, 1, 10, 0, NULL, true, 0 },
	{ "plain_auth_allowed", "nostarttls plainauth", P_PLAIN, "127.0.0.1",
	  RPT_TLS_NONE, PASS, true, true, CA_SYSTEM, rcpt_one, 1, 10, 0, NULL,
	  true, 0 },
	{ "noverify", "", P_PLAIN, "127.0.0.1", RPT_TLS_STARTTLS, PASS, false,
	  false, CA_SYSTEM, rcpt_one, 1, 10, 0, NULL, true, 0 },
	{ "wrong_password", "", P_PLAIN, "localhost", RPT_TLS_STARTTLS,
	  PASS "x", false, true, CA_OWN, rcpt_one, 1, 10, DM_PERMFAIL,
	  "535 5.7.8 Error: authentication failed", false, 0 },
	{ "refused_rcpt", "refuse=gone@thirdparty.example", P_PLAIN,
	  "localhost", RPT_TLS_STARTTLS, PASS, false, true, CA_OWN, rcpt_two, 2,
	  10, DM_PERMFAIL, ": 550 5.1.1 <gone@thirdparty.example>: "
	  "Recipient address rejected", false, 0 },
	{ "data451", "data451", P_PLAIN, "localhost", RPT_TLS_STARTTLS, PASS,
	  false, true, CA_OWN, rcpt_one, 1, 10, DM_TEMPFAIL,
	  "451 4.3.0 Error: queue file write error", false, 0 },
	{ "eod451", "eod451", P_SMTPS, "localhost", RPT_TLS_SMTPS, PASS, false,
	  true, CA_OWN, rcpt_one, 1, 10, DM_TEMPFAIL, "451 4.3.0 Error: try again",
	  false, 0 },
	{ "eod554", "eod554", P_PLAIN, "localhost", RPT_TLS_STARTTLS, PASS,
	  false, true, CA_OWN, rcpt_one, 1, 10, DM_PERMFAIL,
	  "554 5.7.1 Error: message content rejected", false, 0 },
	{ "drop_greet", "drop=greet", P_PLAIN, "localhost", RPT_TLS_STARTTLS,
	  PASS, false, true, CA_OWN, rcpt_one, 1, 10, DM_TEMPFAIL, NULL, false, 0 },
	{ "drop_eod", "drop=eod", P_PLAIN, "localhost", RPT_TLS_STARTTLS, PASS,
	  false, true, CA_OWN, rcpt_one, 1, 10, DM_TEMPFAIL, NULL, false, 0 },
	{ "no_starttls", "nostarttls", P_PLAIN, "localhost", RPT_TLS_STARTTLS,
	  PASS, false, true, CA_OWN, rcpt_one, 1, 10, DM_TEMPFAIL, "STARTTLS", false,
	  0 },
	{ "unknown_ca", "", P_PLAIN, "localhost", RPT_TLS_STARTTLS, PASS,
	  false, true, CA_SYSTEM, rcpt_one, 1, 10, DM_TEMPFAIL, "certificate", false,
	  0 },
	{ "wrong_name", "", P_SMTPS, "127.0.0.1", RPT_TLS_SMTPS, PASS, false,
	  true, CA_OWN, rcpt_one, 1, 10, DM_TEMPFAIL, "does not match", false, 0 },
	{ "timeout_greet", "sleep=greet:6", P_PLAIN, "localhost",
	  RPT_TLS_STARTTLS, PASS, false, true, CA_OWN, rcpt_one, 1, 2, DM_TEMPFAIL,
	  "imed out", false, 4.5 },
	{ "timeout_eod", "sleep=eod:6", P_SMTPS, "localhost", RPT_TLS_SMTPS,
	  PASS, false, true, CA_OWN, rcpt_one, 1, 2, DM_TEMPFAIL, "imed out", false,
	  4.5 },
	{ "closed_port", "", P_CLOSED, "127.0.0.1", RPT_TLS_STARTTLS, NULL,
	  false, true, CA_SYSTEM, rcpt_one, 1, 10, DM_TEMPFAIL, "onnect", false, 0 },
};

static void
path_of(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

static void
write_file(const char *name, const char *text)
{
	char path[256];

	path_of(path, sizeof(path), name);
	if (tap_write_file(path, text, strlen(text)) != 0)
		tap_bail("cannot write %s", path);
}

static void
stop_sink(void)
{
	char cmd[300];

	if (sink_pid <= 0)
		return;
	kill(sink_pid, SIGTERM);
	waitpid(sink_pid, NULL, 0);
	sink_pid = -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
}

/* A port nothing listens on: bound, never listened to, closed. */
static unsigned
closed_port(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(s, (struct sockaddr *)&sin, &sl) < 0)
		tap_bail("socket: %s", strerror(errno));
	close(s);
	return ntohs(sin.sin_port);
}

static void
start_sink(void)
{
	char script[4096], out[256], cert[256], key[256], line[128];
	const char *src = getenv("srcdir");
	int pfd[2];
	FILE *fp;

	snprintf(script, sizeof(script), "%s/tests/unit/smtpsink.py",
	    src != NULL ? src : ".");
	path_of(out, sizeof(out), "out");
	path_of(cert, sizeof(cert), "cert.pem");
	path_of(key, sizeof(key), "key.pem");
	if (pipe(pfd) < 0 || (sink_pid = fork()) < 0)
		tap_bail("pipe/fork: %s", strerror(errno));
	if (sink_pid == 0) {
		close(pfd[0]);
		if (dup2(pfd[1], 1) < 0)
			_exit(127);
		execlp("python3", "python3", script, "--dir", out, "--cert",
		    cert, "--key", key, "--user", USER, "--password", PASS,
		    (char *)NULL);
		_exit(127);
	}
	atexit(stop_sink);
	close(pfd[1]);
	if ((fp = fdopen(pfd[0], "r")) == NULL ||
	    fgets(line, sizeof(line), fp) == NULL ||
	    sscanf(line, "PORTS %u %u", &port_plain, &port_smtps) != 2)
		tap_bail("smtpsink.py did not start (%s)", script);
	fclose(fp);
	port_closed = closed_port();
}

static bool
setup(void)
{
	char cmd[1024];

	if (system("command -v python3 >/dev/null && "
	    "command -v openssl >/dev/null") != 0) {
		puts("1..0 # SKIP python3 or openssl not installed");
		return false;
	}
	if (mkdtemp(dir) == NULL)
		tap_bail("mkdtemp");
	snprintf(cmd, sizeof(cmd), "cd '%s' && mkdir out && openssl req -x509 "
	    "-newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout "
	    "key.pem -out cert.pem 2>/dev/null", dir);
	if (system(cmd) != 0)
		tap_bail("openssl could not make a certificate");
	start_sink();
	return true;
}

/*
 * CRLF lines, some starting with ".", one of them a lone "." and one
 * "..", spread over 300 kB so some fall on libcurl's buffer boundaries.
 */
static char *
message(size_t *len)
{
	size_t cap = 320 * 1024, n = 0, i;
	char *m = malloc(cap);

	if (m == NULL)
		tap_bail("malloc");
	n += (size_t)snprintf(m, cap, "From: dmarc@r.example\r\nTo: "
	    "dmarc-rua@example.com\r\nSubject: Report Domain: x.example\r\n"
	    "\r\n.hidden line\r\n.\r\n..\r\n");
	for (i = 0; n + 100 < cap - 64; i++)
		n += (size_t)snprintf(m + n, cap - n, "%s%060zu\r\n",
		    i % 7 == 0 ? "." : "", i);
	n += (size_t)snprintf(m + n, cap - n, ".last\r\n");
	*len = n;
	return m;
}

static void
relay_of(const struct relay_case *c, rpt_relay *o, char *hp, size_t hplen,
    char *ca, size_t calen)
{
	unsigned port = c->port == P_PLAIN ? port_plain : c->port == P_SMTPS ?
	    port_smtps : port_closed;

	rpt_relay_defaults(o);
	snprintf(hp, hplen, "%s:%u", c->host, port);
	path_of(ca, calen, "cert.pem");
	o->hostport = hp;
	o->tls = c->tls;
	o->user = c->pass != NULL ? USER : NULL;
	o->password = c->pass;
	o->ca_file = c->ca == CA_OWN ? ca : NULL;
	o->verify = c->verify;
	o->auth_plaintext = c->auth_plaintext;
}

static void
check_delivery(const struct relay_case *c, const char *msg, size_t len)
{
	char name[128], *got, *env;
	size_t gotlen = 0;

	snprintf(name, sizeof(name), "out/%s.eml", c->tag);
	got = tap_slurp_in(dir, name, &gotlen);
	if (!c->delivered) {
		tap_ok(got == NULL, "%s: nothing delivered", c->tag);
		free(got);
		return;
	}
	tap_ok(got != NULL && gotlen == len && memcmp(got, msg, len) == 0,
	    "%s: the relay got the message byte for byte (%zu of %zu)",
	    c->tag, gotlen, len);
	snprintf(name, sizeof(name), "out/%s.env", c->tag);
	env = tap_slurp_in(dir, name, NULL);
	if (!tap_ok(env != NULL && strstr(env, "from=dmarc@r.example\n") &&
	    strstr(env, "rcpt=dmarc-rua@example.com\n") != NULL &&
	    (c->nrcpt < 2 || strstr(env, "rcpt=gone@thirdparty.example\n")) &&
	    strstr(env, c->tls == RPT_TLS_NONE ? "tls=no\n" : "tls=yes\n") &&
	    strstr(env, c->pass ? "auth=" USER "\n" : "auth=-\n"),
	    "%s: envelope, TLS and AUTH as asked", c->tag))
		tap_diag("the relay saw: %s", env != NULL ? env : "nothing");
	free(got);
	free(env);
}

static void
run_case(const struct relay_case *c, const char *msg, size_t len)
{
	char mode[256], hp[128], ca[256], err[1024];
	struct timespec t0;
	rpt_relay o;
	double took;
	int rc;

	snprintf(mode, sizeof(mode), "tag=%s %s\n", c->tag, c->mode);
	write_file("out/mode", mode);
	relay_of(c, &o, hp, sizeof(hp), ca, sizeof(ca));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = rpt_send_relay(&o, "dmarc@r.example", c->rcpts, c->nrcpt, msg,
	    len, c->timeout, err, sizeof(err));
	took = tap_seconds_since(&t0);
	if (strstr(err, PASS) != NULL)
		password_leaked = true;
	tap_is_int(rc, c->want, "%s: returns %d (%s)", c->tag, c->want, err);
	if (c->want != 0)
		tap_ok(strncmp(err, hp, strlen(hp)) == 0 && strncmp(err +
		    strlen(hp), ": ", 2) == 0 && (c->want_err == NULL ||
		    strstr(err, c->want_err) != NULL),
		    "%s: err is \"%s: ...%s...\"", c->tag, hp,
		    c->want_err != NULL ? c->want_err : "");
	if (c->max_s > 0)
		tap_ok(took < c->max_s, "%s: gave up in %.2f s (< %.1f)",
		    c->tag, took, c->max_s);
	check_delivery(c, msg, len);
}

/* What the relay saw: TLS before AUTH, nothing at all without TLS. */
static void
test_transcripts(void)
{
	char *log = tap_slurp_in(dir, "out/starttls_plain.log", NULL);
	const char *tls = log ? strstr(log, "[tls]") : NULL;
	const char *auth = log ? strstr(log, "AUTH ") : NULL;

	tap_ok(tls != NULL && auth != NULL && tls < auth && strstr(log,
	    "AUTH PLAIN") != NULL, "STARTTLS, then AUTH PLAIN inside TLS");
	free(log);
	log = tap_slurp_in(dir, "out/starttls_login.log", NULL);
	tap_ok(log != NULL && strstr(log, "[auth LOGIN " USER "]") != NULL,
	    "AUTH LOGIN when that is all the relay offers");
	free(log);
	log = tap_slurp_in(dir, "out/no_starttls.log", NULL);
	tap_ok(log != NULL && strstr(log, "EHLO") != NULL &&
	    strstr(log, "AUTH") == NULL && strstr(log, "MAIL") == NULL &&
	    strstr(log, "RCPT") == NULL, "no STARTTLS offered: no AUTH, no "
	    "MAIL, nothing sent in plain text");
	free(log);
	log = tap_slurp_in(dir, "out/unknown_ca.log", NULL);
	tap_ok(log != NULL && strstr(log, "[tls failed") != NULL &&
	    strstr(log, "AUTH") == NULL, "an unverified relay gets no AUTH");
	free(log);
	tap_ok(!password_leaked, "the password is in no error text");
}

static const struct bad_case {
	const char *name, *hostport, *from, *rcpt, *eml;
	rpt_relay_tls tls;
	bool auth;
} bad[] = {
	{ "empty sender", "localhost", "", "a@b.example", "x\r\n",
	  RPT_TLS_STARTTLS, false },
	{ "sender with CRLF", "localhost", "d@r.example\r\nRSET", "a@b.example",
	  "x\r\n", RPT_TLS_STARTTLS, false },
	{ "recipient with '>'", "localhost", "d@r.example",
	  "a@b.example> NOTIFY=NEVER", "x\r\n", RPT_TLS_STARTTLS, false },
	{ "empty recipient", "localhost", "d@r.example", "", "x\r\n",
	  RPT_TLS_STARTTLS, false },
	{ "bare LF in the message", "localhost", "d@r.example", "a@b.example",
	  "a\r\nb\n.\nMAIL FROM:<x@y>\r\n", RPT_TLS_STARTTLS, false },
	{ "bare CR in the message", "localhost", "d@r.example", "a@b.example",
	  "a\rb\r\n", RPT_TLS_STARTTLS, false },
	{ "AUTH without TLS, not allowed", "localhost", "d@r.example",
	  "a@b.example", "x\r\n", RPT_TLS_NONE, true },
	{ "port 0", "localhost:0", "d@r.example", "a@b.example", "x\r\n",
	  RPT_TLS_STARTTLS, false },
	{ "port 65536", "localhost:65536", "d@r.example", "a@b.example",
	  "x\r\n", RPT_TLS_STARTTLS, false },
	{ "v6 without brackets", "::1:25", "d@r.example", "a@b.example",
	  "x\r\n", RPT_TLS_STARTTLS, false },
	{ "userinfo in the host", "u:p@relay.example:25", "d@r.example",
	  "a@b.example", "x\r\n", RPT_TLS_STARTTLS, false },
	{ "a path in the host", "relay.example/x", "d@r.example",
	  "a@b.example", "x\r\n", RPT_TLS_STARTTLS, false },
	{ "empty host", "", "d@r.example", "a@b.example", "x\r\n",
	  RPT_TLS_STARTTLS, false },
};

/* Refused before any connection: permanent, and the sink sees nothing. */
static void
test_bad_args(void)
{
	char err[512], *log;
	rpt_relay o;
	size_t i;
	int rc;

	write_file("out/mode", "tag=bad\n");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *rc1[] = { bad[i].rcpt };

		rpt_relay_defaults(&o);
		o.hostport = bad[i].hostport;
		o.tls = bad[i].tls;
		o.user = bad[i].auth ? USER : NULL;
		o.password = bad[i].auth ? PASS : NULL;
		rc = rpt_send_relay(&o, bad[i].from, rc1, 1, bad[i].eml,
		    strlen(bad[i].eml), 5, err, sizeof(err));
		tap_ok(rc == DM_PERMFAIL && strncmp(err, "relay: ", 7) == 0,
		    "%s: refused, permanent: %s", bad[i].name, err);
	}
	log = tap_slurp_in(dir, "out/bad.log", NULL);
	tap_ok(log == NULL, "no connection for refused arguments");
	free(log);
}

/* The [v6]:port form reaches the URL (port 1: nothing there). */
static void
test_hostport_forms(void)
{
	char err[512];
	rpt_relay o;
	int rc;

	rpt_relay_defaults(&o);
	o.hostport = "[::1]:1";
	rc = rpt_send_relay(&o, "d@r.example", rcpt_one, 1, "x\r\n", 3, 5, err,
	    sizeof(err));
	tap_ok(rc == DM_TEMPFAIL && strncmp(err, "[::1]:1: ", 9) == 0,
	    "[::1]:1 is a host and a port (nothing there): %s", err);
}

#define NTHREADS 4

struct worker {
	pthread_t t;
	const char *msg;
	size_t len;
	int rc;
	char hp[128], ca[256], err[512];
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	rpt_relay o;

	relay_of(&cases[0], &o, w->hp, sizeof(w->hp), w->ca, sizeof(w->ca));
	w->rc = rpt_send_relay(&o, "dmarc@r.example", rcpt_one, 1, w->msg,
	    w->len, 20, w->err, sizeof(w->err));
	return NULL;
}

/* Several threads at once, each with its own handle: all delivered. */
static void
test_threads(const char *msg, size_t len)
{
	struct worker w[NTHREADS];
	char *env, *p;
	int i, ok = 0, mails = 0;

	write_file("out/mode", "tag=threads\n");
	for (i = 0; i < NTHREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].msg = msg;
		w[i].len = len;
		if (pthread_create(&w[i].t, NULL, worker_run, &w[i]) != 0)
			tap_bail("pthread_create");
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(w[i].t, NULL);
		if (w[i].rc == 0)
			ok++;
		else
			tap_diag("thread %d: %s", i, w[i].err);
	}
	env = tap_slurp_in(dir, "out/threads.env", NULL);
	for (p = env; p != NULL && (p = strstr(p, "from=")) != NULL; p++)
		mails++;
	tap_ok(ok == NTHREADS && mails == NTHREADS, "%d threads at once: %d "
	    "succeeded, the relay got %d mails", NTHREADS, ok, mails);
	free(env);
}

int
main(void)
{
	char *msg;
	size_t len, i;

	/* the default action, so a SIGPIPE that got through would kill us */
	signal(SIGPIPE, SIG_DFL);
	if (!setup())
		return 0;
	tap_ok(rpt_relay_global_init() == 0, "curl_global_init");
	msg = message(&len);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i], msg, len);
	test_transcripts();
	test_threads(msg, len);
	test_bad_args();
	test_hostport_forms();
	free(msg);
	stop_sink();
	return tap_done();
}
