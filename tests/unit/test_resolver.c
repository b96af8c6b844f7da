/*
 * tests/unit/test_resolver.c - the libunbound resolver: status mapping,
 * TXT joining, raw RDATA and packets, name checks, the real timeout, and
 * many threads on one context. DNS comes from tests/fixtures/resolver.conf
 * (local-data) and, for the timeout, from a UDP socket of our own that
 * never answers; never from the network.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dm_log.h"
#include "dm_resolver.h"
#include "tap.h"

#define T_A	1
#define T_CNAME	5
#define T_MX	15
#define T_TXT	16
#define T_AAAA	28

#define Z	".resolver.example"

static long
elapsed_ms(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (long)(b.tv_sec - a->tv_sec) * 1000 +
	    (b.tv_nsec - a->tv_nsec) / 1000000;
}

static char tmpdir[64];

static const char *
write_conf(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if ((f = fopen(path, "w")) == NULL)
		tap_bail("cannot write %s", path);
	fputs(text, f);
	fclose(f);
	return path;
}

static void
test_new_errors(void)
{
	static const struct {
		const char *name, *text;
	} rows[] = {
		{ "bad-syntax.conf", "server:\n\tno-such-option: yes\n" },
		{ "bad-rr.conf", "server:\n\tlocal-zone: \"x.example.\" static\n"
		    "\tlocal-data: \"x.example. IN A not-an-address\"\n" },
		{ "bad-zone.conf", "server:\n\tlocal-zone: \"x.example.\" "
		    "no-such-type\n" },
	};
	char err[256], path[128];
	dm_resolver *r;
	size_t i;

	err[0] = '\0';
	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	r = dm_resolver_new(path, 1000, err, sizeof(err));
	tap_ok(r == NULL, "missing config file: expected NULL");
	tap_ok(err[0] != '\0', "missing config file: expected a message "
	    "(got \"%s\")", err);
	dm_resolver_free(r);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		err[0] = '\0';
		r = dm_resolver_new(write_conf(rows[i].name, rows[i].text),
		    1000, err, sizeof(err));
		tap_ok(r == NULL && err[0] != '\0', "%s: expected NULL and a "
		    "message (got \"%s\")", rows[i].name, err);
		dm_resolver_free(r);
	}
	r = dm_resolver_new(NULL, 0, err, sizeof(err));
	tap_ok(r == NULL, "timeout 0 ms: expected NULL");
	dm_resolver_free(r);
}

static char long_txt[601];

static void
test_txt(dm_resolver *r)
{
	static char label63[100], label64[100], name254[300];
	const struct {
		const char *name;
		dm_dns_status st;
		size_t n;
		const char *first;	/* NULL: not compared */
	} rows[] = {
		{ "txt1" Z, DM_DNS_OK, 1, "v=spf1 -all" },
		{ "txt1" Z ".", DM_DNS_OK, 1, "v=spf1 -all" },
		{ "TXT1.Resolver.EXAMPLE", DM_DNS_OK, 1, "v=spf1 -all" },
		{ "multi" Z, DM_DNS_OK, 1, "part one, part two" },
		{ "long" Z, DM_DNS_OK, 1, long_txt },
		{ "two" Z, DM_DNS_OK, 2, NULL },
		{ "empty" Z, DM_DNS_OK, 1, "" },
		{ "bad" Z, DM_DNS_NODATA, 0, NULL },
		{ "mixed" Z, DM_DNS_OK, 1, "good" },
		{ "host" Z, DM_DNS_NODATA, 0, NULL },
		{ "nx" Z, DM_DNS_NXDOMAIN, 0, NULL },
		{ label63, DM_DNS_NXDOMAIN, 0, NULL },
		{ "x.refused.example", DM_DNS_TEMPFAIL, 0, NULL },
		{ "elsewhere.example", DM_DNS_TEMPFAIL, 0, NULL },
		{ "", DM_DNS_PERMFAIL, 0, NULL },
		{ "a..resolver.example", DM_DNS_PERMFAIL, 0, NULL },
		{ ".resolver.example", DM_DNS_PERMFAIL, 0, NULL },
		{ "txt1" Z "..", DM_DNS_PERMFAIL, 0, NULL },
		{ "a\\.b" Z, DM_DNS_PERMFAIL, 0, NULL },
		{ label64, DM_DNS_PERMFAIL, 0, NULL },
		{ name254, DM_DNS_PERMFAIL, 0, NULL },
	};
	dm_txt *recs;
	size_t i, n;
	dm_dns_status st;

	memset(label63, 'x', 63);
	strcpy(label63 + 63, Z);
	memset(label64, 'x', 64);
	strcpy(label64 + 64, Z);
	for (i = 0; i < 254; i++)
		name254[i] = i % 2 ? '.' : 'a';
	name254[253] = 'a';
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		st = dm_resolver_txt(r, rows[i].name, &recs, &n);
		tap_is_str(dm_dns_status_str(st),
		    dm_dns_status_str(rows[i].st), "txt %.40s: status",
		    rows[i].name);
		tap_is_int((long)n, (long)rows[i].n, "txt %.40s: %zu records",
		    rows[i].name, rows[i].n);
		if (rows[i].first != NULL && n > 0) {
			tap_is_str(recs[0].data, rows[i].first,
			    "txt %.40s: text", rows[i].name);
			tap_is_int((long)recs[0].len,
			    (long)strlen(rows[i].first), "txt %.40s: length",
			    rows[i].name);
		}
		dm_txt_free(recs, n);
	}
	st = dm_resolver_txt(r, "two" Z, &recs, &n);
	tap_ok(st == DM_DNS_OK && n == 2 &&
	    ((strcmp(recs[0].data, "first record") == 0 &&
	    strcmp(recs[1].data, "second record") == 0) ||
	    (strcmp(recs[1].data, "first record") == 0 &&
	    strcmp(recs[0].data, "second record") == 0)),
	    "txt two: expected \"first record\" and \"second record\"");
	dm_txt_free(recs, n);
}

static void
test_lookup(dm_resolver *r)
{
	static const unsigned char a1[] = { 192, 0, 2, 1 };
	static const unsigned char a2[] = { 192, 0, 2, 2 };
	static const unsigned char aaaa[] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,
	    0, 0, 0, 0, 0, 0, 0, 0, 1 };
	static const unsigned char mx[] = { 0, 10, 4, 'h', 'o', 's', 't', 8,
	    'r', 'e', 's', 'o', 'l', 'v', 'e', 'r', 7, 'e', 'x', 'a', 'm', 'p',
	    'l', 'e', 0 };
	static const unsigned char cname[] = { 4, 'h', 'o', 's', 't', 8,
	    'r', 'e', 's', 'o', 'l', 'v', 'e', 'r', 7, 'e', 'x', 'a', 'm', 'p',
	    'l', 'e', 0 };
	static const struct {
		const char *name;
		int type;
		dm_dns_status st;
		size_t n;
		const unsigned char *rd;	/* one of the RDATAs */
		size_t rdlen;
	} rows[] = {
		{ "host" Z, T_A, DM_DNS_OK, 2, a1, sizeof(a1) },
		{ "host" Z, T_A, DM_DNS_OK, 2, a2, sizeof(a2) },
		{ "host" Z, T_AAAA, DM_DNS_OK, 1, aaaa, sizeof(aaaa) },
		{ "resolver.example", T_MX, DM_DNS_OK, 1, mx, sizeof(mx) },
		{ "alias" Z, T_CNAME, DM_DNS_OK, 1, cname, sizeof(cname) },
		{ "txt1" Z, T_AAAA, DM_DNS_NODATA, 0, NULL, 0 },
		{ "nx" Z, T_MX, DM_DNS_NXDOMAIN, 0, NULL, 0 },
		{ "x.refused.example", T_A, DM_DNS_TEMPFAIL, 0, NULL, 0 },
		{ "a..b" Z, T_A, DM_DNS_PERMFAIL, 0, NULL, 0 },
	};
	dm_rr *rrs;
	size_t i, j, n;
	dm_dns_status st;
	int found;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		st = dm_resolver_lookup(r, rows[i].name, rows[i].type, &rrs,
		    &n);
		tap_is_str(dm_dns_status_str(st),
		    dm_dns_status_str(rows[i].st), "lookup %s/%d: status",
		    rows[i].name, rows[i].type);
		tap_is_int((long)n, (long)rows[i].n, "lookup %s/%d: count",
		    rows[i].name, rows[i].type);
		if (rows[i].rd != NULL) {
			found = 0;
			for (j = 0; j < n; j++)
				if (rrs[j].len == rows[i].rdlen &&
				    memcmp(rrs[j].data, rows[i].rd,
				    rows[i].rdlen) == 0)
					found = 1;
			tap_ok(found, "lookup %s/%d: expected RDATA present",
			    rows[i].name, rows[i].type);
		}
		dm_rr_free(rrs, n);
	}
}

/* A CNAME loop must end, as NODATA or TEMPFAIL, well before the timeout. */
static void
test_cname_loop(dm_resolver *r, int timeout_ms)
{
	static const char *const names[] = { "loop1" Z, "self" Z };
	struct timespec t0;
	dm_rr *rrs;
	size_t i, n;
	dm_dns_status st;
	long ms;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		st = dm_resolver_lookup(r, names[i], T_A, &rrs, &n);
		ms = elapsed_ms(&t0);
		dm_rr_free(rrs, n);
		tap_ok(st == DM_DNS_NODATA || st == DM_DNS_TEMPFAIL,
		    "cname loop %s: expected nodata or tempfail, got %s",
		    names[i], dm_dns_status_str(st));
		tap_ok(ms <= timeout_ms, "cname loop %s: ended in %ld ms, "
		    "expected <= %d", names[i], ms, timeout_ms);
	}
}

static void
test_exists(dm_resolver *r)
{
	static const struct {
		const char *name;
		dm_dns_status st;
	} rows[] = {
		{ "host" Z, DM_DNS_OK },
		{ "txt1" Z, DM_DNS_OK },		/* exists, no A */
		{ "resolver.example", DM_DNS_OK },
		{ "nx" Z, DM_DNS_NXDOMAIN },
		{ "deep.nx" Z, DM_DNS_NXDOMAIN },
		{ "x.refused.example", DM_DNS_TEMPFAIL },
		{ "elsewhere.example", DM_DNS_TEMPFAIL },
		{ "", DM_DNS_PERMFAIL },
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		tap_is_str(dm_dns_status_str(dm_resolver_exists(r,
		    rows[i].name)), dm_dns_status_str(rows[i].st),
		    "exists %s", rows[i].name);
}

static void
test_packet(dm_resolver *r)
{
	unsigned char buf[4096];
	size_t len;
	dm_dns_status st;

	st = dm_resolver_packet(r, "host" Z, T_A, buf, sizeof(buf), &len);
	tap_is_str(dm_dns_status_str(st), "ok", "packet host/A: status");
	tap_ok(len > 12, "packet host/A: length %zu, expected > 12", len);
	tap_ok(len > 12 && (buf[2] & 0x80) && (buf[3] & 0x0f) == 0 &&
	    buf[6] == 0 && buf[7] == 2, "packet host/A: a response, "
	    "NOERROR, 2 answers");
	st = dm_resolver_packet(r, "nx" Z, T_TXT, buf, sizeof(buf), &len);
	tap_is_str(dm_dns_status_str(st), "nxdomain", "packet nx: status");
	tap_ok(len > 12 && (buf[3] & 0x0f) == 3,
	    "packet nx: rcode 3 in the packet");
	st = dm_resolver_packet(r, "long" Z, T_TXT, buf, 100, &len);
	tap_is_str(dm_dns_status_str(st), "permfail",
	    "packet too big for the buffer: status");
	tap_is_int((long)len, 0, "packet too big for the buffer: length");
	st = dm_resolver_packet(r, "x.refused.example", T_A, buf, sizeof(buf),
	    &len);
	tap_is_str(dm_dns_status_str(st), "tempfail", "packet refused: "
	    "status");
}

static void
test_status_str(void)
{
	static const struct {
		dm_dns_status st;
		const char *want;
	} rows[] = {
		{ DM_DNS_OK, "ok" }, { DM_DNS_NODATA, "nodata" },
		{ DM_DNS_NXDOMAIN, "nxdomain" }, { DM_DNS_TEMPFAIL, "tempfail" },
		{ DM_DNS_PERMFAIL, "permfail" },
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		tap_is_str(dm_dns_status_str(rows[i].st), rows[i].want,
		    "dm_dns_status_str(%d)", (int)rows[i].st);
}

/* --- threads ------------------------------------------------------------ */

struct worker {
	dm_resolver *r;
	/* mode 0: fixture names; 1: fast + slow; 2: timeouts racing answers */
	int id, rounds, mode;
	int done, wrong;
};

static int
check_one(dm_resolver *r, int k)
{
	dm_txt *recs;
	dm_rr *rrs;
	size_t n;
	dm_dns_status st;
	int ok;

	switch (k % 4) {
	case 0:
		st = dm_resolver_txt(r, "txt1" Z, &recs, &n);
		ok = st == DM_DNS_OK && n == 1 &&
		    strcmp(recs[0].data, "v=spf1 -all") == 0;
		dm_txt_free(recs, n);
		return ok;
	case 1:
		st = dm_resolver_lookup(r, "host" Z, T_A, &rrs, &n);
		dm_rr_free(rrs, n);
		return st == DM_DNS_OK && n == 2;
	case 2:
		return dm_resolver_exists(r, "nx" Z) == DM_DNS_NXDOMAIN;
	default:
		return dm_resolver_exists(r, "x.refused.example") ==
		    DM_DNS_TEMPFAIL;
	}
}

/* Fast local answers while other threads wait for a silent server. */
static int
check_mixed(dm_resolver *r, int id, int k)
{
	char name[64];
	dm_txt *recs;
	size_t n;
	dm_dns_status st;

	if (id % 2) {
		snprintf(name, sizeof(name), "s%d-%d.slow.example", id, k);
		return dm_resolver_exists(r, name) == DM_DNS_TEMPFAIL;
	}
	st = dm_resolver_txt(r, "txt.fast.example", &recs, &n);
	dm_txt_free(recs, n);
	return st == DM_DNS_OK && n == 1;
}

/*
 * With a 1 ms timeout, answers and timeouts race: either outcome is fine,
 * a wrong answer, a crash or a double free (valgrind, TSan) is not.
 */
static int
check_race(dm_resolver *r, int k)
{
	dm_txt *recs;
	size_t n;
	dm_dns_status st;
	int ok;

	st = dm_resolver_txt(r, k % 2 ? "txt1" Z : "multi" Z, &recs, &n);
	if (st == DM_DNS_TEMPFAIL)
		return n == 0;
	ok = st == DM_DNS_OK && n == 1 && strcmp(recs[0].data,
	    k % 2 ? "v=spf1 -all" : "part one, part two") == 0;
	dm_txt_free(recs, n);
	return ok;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	int k, ok;

	for (k = 0; k < w->rounds; k++) {
		if (w->mode == 0)
			ok = check_one(w->r, k + w->id);
		else if (w->mode == 1)
			ok = check_mixed(w->r, w->id, k);
		else
			ok = check_race(w->r, k + w->id);
		w->done++;
		if (!ok)
			w->wrong++;
	}
	return NULL;
}

static void
run_threads(dm_resolver *r, int nthreads, int rounds, int mode,
    const char *what)
{
	pthread_t tid[16];
	struct worker w[16];
	int i, done = 0, wrong = 0, started = 0;

	for (i = 0; i < nthreads; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].r = r;
		w[i].id = i;
		w[i].rounds = rounds;
		w[i].mode = mode;
		if (pthread_create(&tid[i], NULL, worker_run, &w[i]) != 0)
			break;
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		done += w[i].done;
		wrong += w[i].wrong;
	}
	tap_is_int(done, (long)nthreads * rounds, "%s: lookups done", what);
	tap_is_int(wrong, 0, "%s: wrong answers", what);
}

/* --- the timeout, against a UDP socket that never answers -------------- */

static int
silent_socket(int *port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd;

	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* TXT RDATA as it comes from the wire, joined (dm_txt_join). */
static void
test_txt_join(void)
{
	static const struct {
		const char *what;
		const char *rdata;
		size_t len;
		const char *want;	/* NULL: malformed */
		size_t wantlen;
	} txts[] = {
		{ "one string", "\010v=DMARC1", 9, "v=DMARC1", 8 },
		{ "two strings, joined without a space", "\3v=s\4pf1 ", 9,
		  "v=spf1 ", 7 },
		{ "an empty string among others", "\1a\0\1b", 5, "ab", 2 },
		{ "a NUL byte kept", "\3a\0b", 4, "a\0b", 3 },
		{ "a length past the end", "\5abc", 4, NULL, 0 },
		{ "empty RDATA", "", 0, NULL, 0 },
	};
	dm_txt t;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(txts) / sizeof(txts[0]); i++) {
		rc = dm_txt_join((const unsigned char *)txts[i].rdata,
		    txts[i].len, &t);
		if (txts[i].want == NULL) {
			tap_is_int(rc, -1, "txt join, %s: malformed",
			    txts[i].what);
			continue;
		}
		tap_ok(rc == 0 && t.len == txts[i].wantlen &&
		    memcmp(t.data, txts[i].want, t.len) == 0 &&
		    t.data[t.len] == '\0', "txt join, %s: %zu bytes",
		    txts[i].what, txts[i].wantlen);
		if (rc == 0)
			free(t.data);
	}
}

static void
test_timeout(void)
{
	char conf[1024], err[256], pkt[512];
	struct timespec t0;
	dm_resolver *r;
	dm_rr *rrs;
	size_t n;
	dm_dns_status st;
	long ms;
	int fd, port;
	ssize_t got;

	if ((fd = silent_socket(&port)) < 0) {
		tap_skip(9, "no loopback UDP socket");
		return;
	}
	snprintf(conf, sizeof(conf),
	    "server:\n"
	    "\tdo-not-query-localhost: no\n"
	    "\tmodule-config: \"iterator\"\n"
	    "\tlocal-zone: \"fast.example.\" static\n"
	    "\tlocal-data: 'txt.fast.example. 300 IN TXT \"fast\"'\n"
	    "forward-zone:\n"
	    "\tname: \".\"\n"
	    "\tforward-addr: 127.0.0.1@%d\n", port);
	r = dm_resolver_new(write_conf("resolver-timeout.conf", conf), 300,
	    err, sizeof(err));
	if (!tap_ok(r != NULL, "timeout resolver: created (%s)",
	    r ? "ok" : err)) {
		close(fd);
		tap_skip(8, "no resolver");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	st = dm_resolver_lookup(r, "slow.example", T_A, &rrs, &n);
	ms = elapsed_ms(&t0);
	dm_rr_free(rrs, n);
	tap_is_str(dm_dns_status_str(st), "tempfail",
	    "silent server: tempfail");
	tap_ok(ms >= 290, "silent server: waited %ld ms, expected >= 290",
	    ms);
	tap_ok(ms < 5000, "silent server: gave up after %ld ms, expected "
	    "< 5000 (timeout 300)", ms);
	got = recv(fd, pkt, sizeof(pkt), MSG_DONTWAIT);
	tap_ok(got > 12, "silent server: the query reached our socket "
	    "(%zd bytes)", got);
	tap_is_str(dm_dns_status_str(dm_resolver_exists(r, "slow2.example")),
	    "tempfail", "silent server: exists() is tempfail");
	run_threads(r, 8, 6, 1, "8 threads, half on a silent server");
	/* freeing with queries still out at the silent server */
	dm_resolver_free(r);
	close(fd);
	tap_skip(1, "freeing with queries in flight asserts nothing here: a "
	    "crash or hang fails the program, the ASan and valgrind runs "
	    "check its memory");
}

int
main(void)
{
	char err[256], path[512];
	dm_resolver *r;
	int timeout_ms = 2000;

	dm_log_set_level(DM_LOG_WARNING);
	memset(long_txt, 'a', 255);
	memset(long_txt + 255, 'b', 255);
	memset(long_txt + 510, 'c', 90);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_resolver.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		tap_bail("mkdtemp failed");

	test_new_errors();
	test_status_str();
	test_txt_join();
	snprintf(path, sizeof(path), "%s/resolver.conf", tap_fixture_dir());
	r = dm_resolver_new(path, timeout_ms, err, sizeof(err));
	if (r == NULL)
		tap_bail("%s: %s", path, err);
	test_txt(r);
	test_lookup(r);
	test_cname_loop(r, timeout_ms);
	test_exists(r);
	test_packet(r);
	run_threads(r, 8, 200, 0, "8 threads x 200 lookups");
	dm_resolver_free(r);
	r = dm_resolver_new(path, 1, err, sizeof(err));
	if (r == NULL)
		tap_bail("%s: %s", path, err);
	run_threads(r, 8, 200, 2, "8 threads x 200, 1 ms timeout");
	dm_resolver_free(r);
	test_timeout();

	snprintf(path, sizeof(path), "rm -rf '%s'", tmpdir);
	if (system(path) != 0)
		tap_diag("could not remove %s", tmpdir);
	return tap_done();
}
