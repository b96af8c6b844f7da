/*
 * tests/unit/test_redis.c - the Redis backend against real redis-servers
 * the test starts in a temp dir (unix sockets, and one on a loopback TCP
 * port for AUTH): URL parsing, the keys of one update, exactly-once by
 * sequence, interleaved writers, a 1,000-update pipeline, NOSCRIPT, a
 * server killed mid-batch (with AOF, so the final counts can be checked
 * exactly) and restarted, a stopped server, AUTH and SELECT. Figures
 * (updates/s, memory per row) are printed as diagnostics only.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "dm_redis.h"
#include "tap.h"

#define DAY 86400
#define TTL (7 * DAY)
#define PASSWORD "s3cret"
#define POLICY "p=reject;sp=none;np=reject;pct=100;adkim=r;aspf=r;" \
	"rua=mailto:d%40example.org;dm=treewalk"

struct server {
	const char *name;
	bool aof;
	const char *password;
	int port;		/* 0: unix socket only */
	char dir[128], sock[160];
	pid_t pid;
};

static char tmpdir[] = "/tmp/test_redis.XXXXXX";
static struct server srv_main = { "main", false, NULL, 0, "", "", 0 };
static struct server srv_kill = { "kill", true, NULL, 0, "", "", 0 };
static struct server srv_auth = { "auth", false, PASSWORD, 0, "", "", 0 };
static struct server *const servers[] = { &srv_main, &srv_kill, &srv_auth };
static int64_t day_begin, day_end;

/* A copy of dm_update_policy_id (FNV-1a 64): the test's own oracle. */
static void
test_policy_id(const char *policy, char out[17])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)policy; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	snprintf(out, 17, "%016" PRIx64, h);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- servers ------------------------------------------------------------ */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	(void)remove(path);
	return 0;
}

static void
server_kill(struct server *s, int sig)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGCONT);
	kill(s->pid, sig);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

static void
cleanup(void)
{
	size_t i;

	for (i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
		server_kill(servers[i], SIGKILL);
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * SIGTERM and the like (a harness timeout): only async-signal-safe calls.
 * SIGPIPE keeps its default on purpose: the library must never let one
 * through, and if it did this test would die and fail.
 */
static void
on_signal(int sig)
{
	char *const argv[] = { (char *)"rm", (char *)"-rf", tmpdir, NULL };
	size_t i;
	pid_t pid;

	for (i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
		if (servers[i]->pid > 0) {
			kill(servers[i]->pid, SIGKILL);
			waitpid(servers[i]->pid, NULL, 0);
		}
	if ((pid = fork()) == 0) {
		execv("/bin/rm", argv);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
server_exec(const struct server *s)
{
	char port[16], log[200];
	const char *argv[32] = { "redis-server", "--port", port,
	    "--unixsocket", s->sock, "--unixsocketperm", "700", "--dir",
	    s->dir, "--save", "", "--daemonize", "no", "--appendonly",
	    s->aof ? "yes" : "no" };
	int n = 15, fd;

	snprintf(port, sizeof(port), "%d", s->port);
	if (s->port != 0) {
		argv[n++] = "--bind";
		argv[n++] = "127.0.0.1";
	}
	if (s->aof) {
		argv[n++] = "--appendfsync";
		argv[n++] = "always";
	}
	if (s->password != NULL) {
		argv[n++] = "--requirepass";
		argv[n++] = s->password;
	}
	snprintf(log, sizeof(log), "%s/redis.log", s->dir);
	if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	execvp(argv[0], (char *const *)argv);
	_exit(127);
}

static redisContext *
admin(const struct server *s)
{
	struct timeval tv = { 5, 0 };
	redisContext *c = redisConnectUnixWithTimeout(s->sock, tv);
	redisReply *rep;

	if (c == NULL || c->err != 0) {
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	if (s->password != NULL) {
		rep = redisCommand(c, "AUTH %s", s->password);
		freeReplyObject(rep);
	}
	return c;
}

static bool
server_pings(const struct server *s)
{
	redisContext *c = admin(s);
	redisReply *rep = c != NULL ? redisCommand(c, "PING") : NULL;
	bool ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;

	freeReplyObject(rep);
	redisFree(c);
	return ok;
}

/* Start s and poll PING until it answers; false when it died. */
static bool
server_start(struct server *s)
{
	int i;

	snprintf(s->dir, sizeof(s->dir), "%s/%s", tmpdir, s->name);
	snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);
	mkdir(s->dir, 0700);
	if ((s->pid = fork()) < 0)
		tap_bail("fork: %s", strerror(errno));
	if (s->pid == 0)
		server_exec(s);
	for (i = 0; i < 1000; i++) {
		if (server_pings(s))
			return true;
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			return false;
		}
		usleep(10000);
	}
	server_kill(s, SIGKILL);
	return false;
}

static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static bool
have_redis_server(void)
{
	const char *path = getenv("PATH");
	char dir[4096], file[4200];
	size_t len;

	while (path != NULL && *path != '\0') {
		len = strcspn(path, ":");
		snprintf(dir, sizeof(dir), "%.*s", (int)len, path);
		snprintf(file, sizeof(file), "%s/redis-server",
		    len ? dir : ".");
		if (access(file, X_OK) == 0)
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}

/* ---- reading back ------------------------------------------------------- */

/* An integer reply, or a number in a string reply; -1 for nil, -2 error. */
static long long
adm_int(redisContext *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static long long
adm_int(redisContext *c, const char *fmt, ...)
{
	redisReply *rep;
	long long v = -2;
	va_list ap;

	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (rep != NULL && rep->type == REDIS_REPLY_INTEGER)
		v = rep->integer;
	else if (rep != NULL && rep->type == REDIS_REPLY_STRING)
		v = strtoll(rep->str, NULL, 10);
	else if (rep != NULL && rep->type == REDIS_REPLY_NIL)
		v = -1;
	else
		tap_diag("'%s': %s", fmt, rep != NULL ? rep->str : c->errstr);
	freeReplyObject(rep);
	return v;
}

/* A string reply into buf ("" for nil or error). */
static const char *
adm_str(redisContext *c, char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static const char *
adm_str(redisContext *c, char *buf, size_t len, const char *fmt, ...)
{
	redisReply *rep;
	va_list ap;

	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	snprintf(buf, len, "%s", rep != NULL && (rep->type ==
	    REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS) ?
	    rep->str : "");
	freeReplyObject(rep);
	return buf;
}

/* P{dom}:kind[:begin:policyid] */
static const char *
key_at(char *buf, size_t len, const char *prefix, const char *dom,
    const char *kind, int64_t begin)
{
	char pid[17];

	test_policy_id(POLICY, pid);
	if (strcmp(kind, "rows") == 0 || strcmp(kind, "meta") == 0)
		snprintf(buf, len, "%s{%s}:%s:%" PRId64 ":%s", prefix, dom,
		    kind, begin, pid);
	else
		snprintf(buf, len, "%s{%s}:%s", prefix, dom, kind);
	return buf;
}

static const char *
key(char *buf, size_t len, const char *prefix, const char *dom,
    const char *kind)
{
	return key_at(buf, len, prefix, dom, kind, day_begin);
}

static long long
row_count(redisContext *c, const char *prefix, const char *dom,
    const char *row)
{
	char k[512];

	return adm_int(c, "HGET %s %s", key(k, sizeof(k), prefix, dom,
	    "rows"), row);
}

/* ---- updates ------------------------------------------------------------ */

static dm_update
mk(const char *writer, uint64_t seq, const char *dom, const char *row,
    uint32_t count)
{
	dm_update u;

	memset(&u, 0, sizeof(u));
	snprintf(u.writer, sizeof(u.writer), "%s", writer);
	u.seq = seq;
	u.domain = (char *)dom;
	u.begin = day_begin;
	u.end = day_end;
	u.policy = (char *)POLICY;
	u.row = (char *)row;
	u.count = count;
	return u;
}

static dm_redis *
open_redis(const char *url, const char *prefix, int timeout_ms)
{
	char err[256] = "";
	dm_redis *r = dm_redis_new(url, prefix, timeout_ms, TTL, err,
	    sizeof(err));

	if (r == NULL)
		tap_bail("dm_redis_new(%s): %s", url, err);
	return r;
}

static dm_redis *
open_server(const struct server *s, const char *query, int timeout_ms)
{
	char url[300];

	snprintf(url, sizeof(url), "unix://%s%s", s->sock, query);
	return open_redis(url, NULL, timeout_ms);
}

/* ---- URL parsing -------------------------------------------------------- */

static const struct url_row {
	const char *url;
	const char *where;	/* NULL: refused */
} url_rows[] = {
	{ "redis://127.0.0.1", "redis://127.0.0.1:6379" },
	{ "redis://localhost:6380/2", "redis://localhost:6380/2" },
	{ "REDIS://h.example", "redis://h.example:6379" },
	{ "redis://[::1]:7000/", "redis://[::1]:7000" },
	{ "redis://:" PASSWORD "@r.example:6379/0",
	    "redis://:***@r.example:6379" },
	{ "redis://user:p%40" PASSWORD "@10.0.0.1/15",
	    "redis://user:***@10.0.0.1:6379/15" },
	{ "unix:///run/redis/redis.sock", "unix:///run/redis/redis.sock" },
	{ "unix:///run/redis.sock?db=3", "unix:///run/redis.sock?db=3" },
	{ "unix:///run/redis.sock?db=3&password=" PASSWORD,
	    "unix:///run/redis.sock?db=3&password=***" },
	{ "unix:///run/redis.sock?password=" PASSWORD,
	    "unix:///run/redis.sock?password=***" },
	{ "redis-sentinel://s1.example,s2.example:26380/mymaster",
	    "redis-sentinel://s1.example:26379,s2.example:26380/mymaster" },
	{ "REDIS-SENTINEL://[::1]:5000/m.1_x?db=2",
	    "redis-sentinel://[::1]:5000/m.1_x?db=2" },
	{ "redis-sentinel://:" PASSWORD "@h:1,h:2,h:3/m?wait=0",
	    "redis-sentinel://h:1,h:2,h:3/m?password=***&wait=0" },
	{ "redis-sentinel://u:" PASSWORD "@h/m?sentinel_password=" PASSWORD,
	    "redis-sentinel://u:***@h:26379/m?sentinel_password=***" },
	{ "redis-sentinel://h/m?password=" PASSWORD "&db=3&wait=2",
	    "redis-sentinel://h:26379/m?db=3&password=***&wait=2" },
	{ "redis-sentinel://a,b,c,d,e,f,g,h/m",
	    "redis-sentinel://a:26379,b:26379,c:26379,d:26379,e:26379,"
	    "f:26379,g:26379,h:26379/m" },
	{ "redis-sentinel://a,b,c,d,e,f,g,h,i/m", NULL },
	{ "redis-sentinel://h", NULL },
	{ "redis-sentinel://h/", NULL },
	{ "redis-sentinel://h:26379", NULL },
	{ "redis-sentinel://h,/m", NULL },
	{ "redis-sentinel://,h/m", NULL },
	{ "redis-sentinel://h:0/m", NULL },
	{ "redis-sentinel://h/m/2", NULL },
	{ "redis-sentinel://h/m#x", NULL },
	{ "redis-sentinel://h/m?foo=1", NULL },
	{ "redis-sentinel://h/m?wait=65", NULL },
	{ "redis-sentinel://h/m?sentinel_password=" PASSWORD "%zz", NULL },
	{ "unix:///p.sock?sentinel_password=" PASSWORD, NULL },
	{ "unix:///p.sock?wait=1", NULL },
	{ "", NULL },
	{ "localhost:6379", NULL },
	{ "http://h.example/", NULL },
	{ "rediss://h.example", NULL },
	{ "redis://", NULL },
	{ "redis://:6379", NULL },
	{ "redis://h:0", NULL },
	{ "redis://h:65536", NULL },
	{ "redis://h:port", NULL },
	{ "redis://h/x", NULL },
	{ "redis://h/1/2", NULL },
	{ "redis://h/-1", NULL },
	{ "redis://h?db=1", NULL },
	{ "redis://" PASSWORD "@h", NULL },
	{ "redis://:@h", NULL },
	{ "redis://:" PASSWORD "%zz@h", NULL },
	{ "redis://:" PASSWORD "%00@h", NULL },
	{ "redis://[::1", NULL },
	{ "redis://h_x.example", NULL },
	{ "unix://relative.sock", NULL },
	{ "unix:///p.sock?db=x", NULL },
	{ "unix:///p.sock?db=", NULL },
	{ "unix:///p.sock?foo=1", NULL },
	{ "unix:///p.sock?password=" PASSWORD "&db=1&x", NULL },
};

static void
test_urls(void)
{
	char err[256], longurl[300];
	dm_redis *r;
	size_t i;

	for (i = 0; i < sizeof(url_rows) / sizeof(url_rows[0]); i++) {
		err[0] = '\0';
		r = dm_redis_new(url_rows[i].url, NULL, 1000, TTL, err,
		    sizeof(err));
		if (url_rows[i].where != NULL)
			tap_is_str(r != NULL ? dm_redis_where(r) : err,
			    url_rows[i].where, "URL '%s' is taken",
			    url_rows[i].url);
		else
			tap_ok(r == NULL && err[0] != '\0' &&
			    strstr(err, PASSWORD) == NULL,
			    "URL '%s' is refused: %s", url_rows[i].url, err);
		dm_redis_free(r);
	}
	snprintf(longurl, sizeof(longurl), "unix:///%0200d", 0);
	r = dm_redis_new(longurl, NULL, 1000, TTL, err, sizeof(err));
	tap_ok(r == NULL, "a socket path over sun_path is refused: %s", err);
	dm_redis_free(r);
	r = dm_redis_new("redis://h", NULL, 0, TTL, err, sizeof(err));
	tap_ok(r == NULL, "timeout 0 is refused: %s", err);
	dm_redis_free(r);
}

/* ---- one update, its keys ----------------------------------------------- */

static void
check_ttl(redisContext *c, const char *k, const char *what, int64_t until)
{
	long long got = adm_int(c, "TTL %s", k);
	int64_t want = until - (int64_t)time(NULL);

	tap_ok(got >= want - 5 && got <= want + 1, "%s expires at the period "
	    "end + ttl (TTL %lld, want ~%" PRId64 ")", what, got, want);
}

static void
check_meta(redisContext *c, const char *prefix, const char *dom)
{
	char k[512], v[512], member[64], pid[17];

	key(k, sizeof(k), prefix, dom, "meta");
	tap_is_str(adm_str(c, v, sizeof(v), "HGET %s policy", k), POLICY,
	    "meta policy");
	tap_is_int(adm_int(c, "HGET %s begin", k), day_begin, "meta begin");
	tap_is_int(adm_int(c, "HGET %s end", k), day_end, "meta end");
	check_ttl(c, k, "meta", day_end + TTL);
	test_policy_id(POLICY, pid);
	snprintf(member, sizeof(member), "%" PRId64 ":%s", day_begin, pid);
	key(k, sizeof(k), prefix, dom, "groups");
	tap_is_int(adm_int(c, "ZSCORE %s %s", k, member), day_end,
	    "groups has '%s' scored by the period end", member);
	check_ttl(c, k, "groups", day_end + TTL);
}

static void
check_one(redisContext *c, const char *prefix, const char *dom,
    const char *row)
{
	char k[512], set[160];

	tap_is_int(row_count(c, prefix, dom, row), 2, "%s row counted 2",
	    prefix);
	check_ttl(c, key(k, sizeof(k), prefix, dom, "rows"), "rows",
	    day_end + TTL);
	check_meta(c, prefix, dom);
	key(k, sizeof(k), prefix, dom, "writers");
	tap_is_int(adm_int(c, "HGET %s w1", k), 7, "writers has w1 -> 7");
	check_ttl(c, k, "writers", day_end + TTL);
	snprintf(set, sizeof(set), "%sdomains", prefix);
	tap_is_int(adm_int(c, "SISMEMBER %s %s", set, dom), 1,
	    "%s has the domain", set);
}

static void
test_one(redisContext *c)
{
	const char *row = "ip=192.0.2.1;hf=one.example;disp=none";
	dm_update u = mk("w1", 7, "one.example", row, 2);
	dm_redis *r = open_server(&srv_main, "", 1000);
	char url[300], err[256];
	dm_redis *t;
	size_t done = 99;

	tap_is_int(dm_redis_ping(r), DM_OK, "PING answers");
	tap_is_int(dm_redis_apply(r, &u, 1, &done), DM_OK, "one update");
	tap_is_int((long)done, 1, "done is 1");
	check_one(c, "dmarc:", "one.example", row);
	snprintf(url, sizeof(url), "unix://%s", srv_main.sock);
	t = dm_redis_new(url, "t:", 1000, TTL, err, sizeof(err));
	tap_is_int(dm_redis_apply(t, &u, 1, &done), DM_OK,
	    "the same update under prefix t:");
	check_one(c, "t:", "one.example", row);
	tap_is_int(dm_redis_apply(r, &u, 0, &done), DM_OK, "n 0 is fine");
	tap_is_int((long)done, 0, "n 0 does nothing");
	dm_redis_free(t);
	dm_redis_free(r);
}

/* Each period's rows and meta keep their own expiry; groups and writers
 * follow the latest period, and an older one does not shorten them. */
static void
test_expiry(redisContext *c)
{
	const char *d = "exp.example", *x = "ip=192.0.2.90";
	dm_update u[3] = { mk("e", 1, d, x, 1), mk("e", 2, d, x, 1),
	    mk("e", 3, d, x, 1) };
	dm_redis *r = open_server(&srv_main, "", 1000);
	char k[512];
	size_t done;
	int i;

	u[1].begin += DAY;
	u[1].end += DAY;
	u[2].begin -= DAY;
	u[2].end -= DAY;
	tap_is_int(dm_redis_apply(r, u, 3, &done), DM_OK,
	    "today, tomorrow, yesterday");
	for (i = 0; i < 3; i++)
		check_ttl(c, key_at(k, sizeof(k), "dmarc:", d, "rows",
		    u[i].begin), "rows of each period", u[i].end + TTL);
	check_ttl(c, key(k, sizeof(k), "dmarc:", d, "groups"),
	    "groups (latest period)", u[1].end + TTL);
	check_ttl(c, key(k, sizeof(k), "dmarc:", d, "writers"),
	    "writers (latest period)", u[1].end + TTL);
	tap_is_int(adm_int(c, "ZCARD %s", key(k, sizeof(k), "dmarc:", d,
	    "groups")), 3, "three groups");
	dm_redis_free(r);
}

/* dm_redis_apply with what it logs caught in log[]. */
static dm_status
apply_logged(dm_redis *r, const dm_update *u, size_t n, size_t *done,
    char *log, size_t len)
{
	char path[200];
	int fd, saved;
	ssize_t got;
	dm_status st;

	snprintf(path, sizeof(path), "%s/stderr.txt", tmpdir);
	fflush(stderr);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    (saved = dup(2)) < 0)
		tap_bail("%s: %s", path, strerror(errno));
	dup2(fd, 2);
	st = dm_redis_apply(r, u, n, done);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	got = read(fd, log, len - 1);
	log[got > 0 ? got : 0] = '\0';
	close(fd);
	return st;
}

static void
test_oom(redisContext *c)
{
	const char *d = "oom.example", *x = "ip=192.0.2.95";
	dm_update u[2] = { mk("o", 1, d, x, 1), mk("o", 2, d, x, 1) };
	dm_redis *r = open_server(&srv_main, "", 1000);
	char ok[16], log[1024];
	size_t done = 99;

	tap_is_int(dm_redis_ping(r), DM_OK, "connected");
	tap_is_str(adm_str(c, ok, sizeof(ok), "CONFIG SET maxmemory 1"), "OK",
	    "maxmemory 1 byte (noeviction)");
	tap_is_int(apply_logged(r, u, 2, &done, log, sizeof(log)),
	    DM_TEMPFAIL, "an OOM error reply: TEMPFAIL");
	tap_is_int((long)done, 0, "nothing committed");
	tap_ok(strstr(log, "OOM") != NULL, "a log line says why: %.*s",
	    (int)strcspn(log, "\n"), log);
	adm_str(c, ok, sizeof(ok), "CONFIG SET maxmemory 0");
	tap_is_int(dm_redis_apply(r, u, 2, &done), DM_OK, "memory back: OK");
	tap_is_int(row_count(c, "dmarc:", d, x), 2, "counted once each");
	dm_redis_free(r);
}

/* ---- exactly once ------------------------------------------------------- */

static void
test_twice(redisContext *c)
{
	const char *d = "twice.example", *a = "ip=192.0.2.10", *b =
	    "ip=192.0.2.11";
	dm_update u[7] = { mk("tw", 1, d, a, 1), mk("tw", 2, d, b, 1),
	    mk("tw", 3, d, a, 1), mk("tw", 4, d, b, 1), mk("tw", 5, d, a, 1),
	    mk("tw", 6, d, a, 10), mk("tw", 7, d, b, 100) };
	dm_redis *r = open_server(&srv_main, "", 1000);
	size_t done;
	int pass;

	for (pass = 1; pass <= 2; pass++) {
		tap_is_int(dm_redis_apply(r, u, 5, &done), DM_OK,
		    "batch of 5, pass %d", pass);
		tap_is_int((long)done, 5, "done 5, pass %d", pass);
		tap_is_int(row_count(c, "dmarc:", d, a), 3, "row a 3, pass %d",
		    pass);
		tap_is_int(row_count(c, "dmarc:", d, b), 2, "row b 2, pass %d",
		    pass);
	}
	tap_is_int(dm_redis_apply(r, u + 3, 4, &done), DM_OK,
	    "an overlapping batch (seq 4..7)");
	tap_is_int((long)done, 4, "all 4 are committed");
	tap_is_int(row_count(c, "dmarc:", d, a), 13, "only seq 6 added to a");
	tap_is_int(row_count(c, "dmarc:", d, b), 102, "only seq 7 added to b");
	dm_redis_free(r);
}

/* mk() with a fingerprint of 32 hex digits made from tag. */
static dm_update
mkfp(const char *writer, uint64_t seq, const char *dom, const char *row,
    char tag)
{
	dm_update u = mk(writer, seq, dom, row, 1);

	memset(u.fp, tag, DM_FP_LEN);
	u.fp[DM_FP_LEN] = '\0';
	return u;
}

/*
 * The fingerprint window (issue 16): a message counted by one writer and
 * offered again (its reply lost, the milter restarted: a new writer) is
 * not counted again in the same group; another message, one without a
 * fingerprint, or the same one in the next period, is.
 */
static void
test_fingerprint(redisContext *c)
{
	const char *d = "fp.example", *a = "ip=192.0.2.30", *b =
	    "ip=192.0.2.31";
	dm_update first[3] = { mkfp("fp1", 1, d, a, 'a'),
	    mkfp("fp1", 2, d, a, 'b'), mk("fp1", 3, d, b, 1) };
	/* the restarted milter: a retry of 'a' (evaluated to another row),
	 * one of 'b', a new 'c', two without fingerprint */
	dm_update again[5] = { mkfp("fp2", 1, d, b, 'a'),
	    mkfp("fp2", 2, d, a, 'b'), mkfp("fp2", 3, d, a, 'c'),
	    mk("fp2", 4, d, b, 1), mk("fp2", 5, d, b, 1) };
	dm_update later = mkfp("fp2", 6, d, a, 'a');
	dm_redis *r = open_server(&srv_main, "", 1000);
	char k[512], fk[512], pid[17];
	size_t done;

	tap_is_int(dm_redis_apply(r, first, 3, &done), DM_OK,
	    "fingerprints: three messages");
	tap_is_int(dm_redis_apply(r, again, 5, &done), DM_OK,
	    "fingerprints: two of them again, from a new writer, and three "
	    "more");
	tap_is_int((long)done, 5, "fingerprints: all 5 committed");
	tap_is_int(row_count(c, "dmarc:", d, a), 3, "fingerprints: row a "
	    "counts 'a', 'b' once each and 'c' (want 3)");
	tap_is_int(row_count(c, "dmarc:", d, b), 3, "fingerprints: row b "
	    "counts the three without a fingerprint, not the retry of 'a'");
	tap_is_int(adm_int(c, "HGET %s fp2", key(k, sizeof(k), "dmarc:", d,
	    "writers")), 5, "fingerprints: a skipped repeat still records "
	    "its writer's sequence");
	test_policy_id(POLICY, pid);
	snprintf(fk, sizeof(fk), "dmarc:{%s}:fp:%" PRId64 ":%s", d, day_begin,
	    pid);
	tap_is_int(adm_int(c, "SCARD %s", fk), 3, "fingerprints: the group's "
	    "set holds the 3 distinct messages (bounded by the messages)");
	check_ttl(c, fk, "fingerprints: the set", day_end + TTL);
	later.begin = day_end;
	later.end = day_end + DAY;
	tap_is_int(dm_redis_apply(r, &later, 1, &done), DM_OK,
	    "fingerprints: 'a' in the next period");
	tap_is_int(adm_int(c, "HGET %s %s", key_at(k, sizeof(k), "dmarc:", d,
	    "rows", day_end), a), 1, "fingerprints: a new period counts it "
	    "(the window is the group)");
	dm_redis_free(r);
}

static void
test_writers(redisContext *c)
{
	const char *d = "mix.example", *e = "mix2.example";
	const char *x = "ip=192.0.2.20";
	dm_update u[] = { mk("a", 1, d, x, 1), mk("b", 1, d, x, 1),
	    mk("a", 2, e, x, 1), mk("b", 2, d, x, 1), mk("a", 3, d, x, 1),
	    mk("b", 3, e, x, 1), mk("a", 4, d, x, 1), mk("b", 4, d, x, 1) };
	dm_update again[] = { mk("b", 2, d, x, 1), mk("a", 3, d, x, 1),
	    mk("b", 3, e, x, 1), mk("a", 4, d, x, 1), mk("b", 4, d, x, 1),
	    mk("a", 5, e, x, 1), mk("b", 5, d, x, 1) };
	dm_redis *r = open_server(&srv_main, "", 1000);
	char k[512];
	size_t done;

	tap_is_int(dm_redis_apply(r, u, 8, &done), DM_OK,
	    "writers a and b interleaved over two domains");
	tap_is_int(row_count(c, "dmarc:", d, x), 6, "%s: 6", d);
	tap_is_int(row_count(c, "dmarc:", e, x), 2, "%s: 2", e);
	tap_is_int(dm_redis_apply(r, again, 7, &done), DM_OK,
	    "a replay overlapping both writers");
	tap_is_int((long)done, 7, "all 7 committed");
	tap_is_int(row_count(c, "dmarc:", d, x), 7, "%s: only b5 added", d);
	tap_is_int(row_count(c, "dmarc:", e, x), 3, "%s: only a5 added", e);
	key(k, sizeof(k), "dmarc:", d, "writers");
	tap_ok(adm_int(c, "HGET %s a", k) == 4 && adm_int(c, "HGET %s b",
	    k) == 5, "%s writers: a 4, b 5", d);
	dm_redis_free(r);
}

/* ---- 1,000 in one pipeline ---------------------------------------------- */

static void
test_bulk(redisContext *c)
{
	static const char *const doms[3] = { "b0.example", "b1.example",
	    "b2.example" };
	char rows[10][32];
	long want[3][10] = { { 0 } };
	dm_update *u = calloc(1000, sizeof(*u));
	dm_redis *r = open_server(&srv_main, "", 1000);
	size_t done, i, j, bad = 0;

	if (u == NULL)
		tap_bail("calloc");
	for (i = 0; i < 10; i++)
		snprintf(rows[i], sizeof(rows[i]), "ip=198.51.100.%zu", i);
	for (i = 0; i < 1000; i++) {
		u[i] = mk("bulk", i + 1, doms[i % 3], rows[i % 10],
		    (uint32_t)(1 + i % 4));
		want[i % 3][i % 10] += (long)(1 + i % 4);
	}
	tap_is_int(dm_redis_apply(r, u, 1000, &done), DM_OK,
	    "1,000 updates in one pipeline");
	tap_is_int((long)done, 1000, "all committed");
	for (i = 0; i < 3; i++)
		for (j = 0; j < 10; j++)
			if (row_count(c, "dmarc:", doms[i], rows[j]) !=
			    want[i][j])
				bad++;
	tap_is_int((long)bad, 0, "30 (domain, row) counts are exact");
	free(u);
	dm_redis_free(r);
}

/* ---- NOSCRIPT, SELECT, bad updates -------------------------------------- */

static void
test_noscript(redisContext *c)
{
	const char *d = "flush.example", *x = "ip=192.0.2.30";
	dm_update u[4] = { mk("f", 1, d, x, 1), mk("f", 2, d, x, 1),
	    mk("f", 3, d, x, 1), mk("f", 4, d, x, 1) };
	dm_redis *r = open_server(&srv_main, "", 1000);
	char ok[16];
	size_t done;

	tap_is_int(dm_redis_apply(r, u, 1, &done), DM_OK, "before the flush");
	tap_is_str(adm_str(c, ok, sizeof(ok), "SCRIPT FLUSH"), "OK",
	    "SCRIPT FLUSH");
	tap_is_int(dm_redis_apply(r, u + 1, 3, &done), DM_OK,
	    "after SCRIPT FLUSH: reloaded and retried");
	tap_is_int((long)done, 3, "all 3 committed");
	tap_is_int(row_count(c, "dmarc:", d, x), 4, "counted exactly once");
	dm_redis_free(r);
}

static void
test_select(redisContext *c)
{
	const char *d = "db3.example", *x = "ip=192.0.2.40";
	dm_update u = mk("s", 1, d, x, 5);
	dm_redis *r = open_server(&srv_main, "?db=3", 1000);
	char ok[16];
	size_t done;

	tap_is_int(dm_redis_apply(r, &u, 1, &done), DM_OK, "apply with ?db=3");
	adm_str(c, ok, sizeof(ok), "SELECT 3");
	tap_is_int(row_count(c, "dmarc:", d, x), 5, "the row is in db 3");
	adm_str(c, ok, sizeof(ok), "SELECT 0");
	tap_is_int(row_count(c, "dmarc:", d, x), -1, "and not in db 0");
	dm_redis_free(r);
}

static void
test_bad_update(redisContext *c)
{
	const char *d = "bad.example", *x = "ip=192.0.2.50";
	dm_update u[5] = { mk("x", 1, d, x, 1), mk("x", 2, d, x, 1),
	    mk("x", 0, d, x, 1), mk("x", 3, "{x}.example", x, 1),
	    mk("x", 4, d, x, 1) };
	dm_redis *r = open_server(&srv_main, "", 1000);
	char log[1024];
	size_t done;

	tap_is_int(apply_logged(r, u, 5, &done, log, sizeof(log)), DM_OK,
	    "two updates that can never be stored among good ones");
	tap_is_int((long)done, 5, "all 5 dealt with");
	tap_is_int(row_count(c, "dmarc:", d, x), 3, "the 3 good ones counted");
	tap_ok(strstr(log, "x#0 dropped") != NULL &&
	    strstr(log, "x#3 dropped") != NULL, "each drop is logged");
	u[0].domain = (char *)"";
	tap_is_int(apply_logged(r, u, 1, &done, log, sizeof(log)), DM_OK,
	    "an empty domain alone");
	tap_ok(done == 1 && strstr(log, "bad policy domain") != NULL,
	    "dropped and logged: %.*s", (int)strcspn(log, "\n"), log);
	dm_redis_free(r);
}

/* ---- a server killed mid-batch ------------------------------------------ */

#define KILL_N 20000

struct killer {
	const char *key;
	long long at;
	double killed;
};

static void *
killer_run(void *arg)
{
	struct killer *k = arg;
	redisContext *c = admin(&srv_kill);
	long long v = 0;
	int i;

	for (i = 0; c != NULL && i < 30000 && v < k->at; i++) {
		v = adm_int(c, "HGET %s k", k->key);
		if (v < k->at)
			usleep(1000);
	}
	kill(srv_kill.pid, SIGKILL);
	k->killed = now_ms();
	redisFree(c);
	return NULL;
}

static long long
kill_committed(redisContext *c, const char *const *doms)
{
	long long v, max = 0;
	char k[512];
	int i;

	for (i = 0; i < 4; i++) {
		v = adm_int(c, "HGET %s k", key(k, sizeof(k), "dmarc:",
		    doms[i], "writers"));
		if (v > max)
			max = v;
	}
	return max;
}

static long long
kill_total(redisContext *c, const char *const *doms, char rows[8][32])
{
	long long v, sum = 0;
	int i, j;

	for (i = 0; i < 4; i++)
		for (j = 0; j < 8; j++)
			if ((v = row_count(c, "dmarc:", doms[i], rows[j])) > 0)
				sum += v;
	return sum;
}

static void
kill_mid_batch(dm_redis *r, dm_update *u, size_t *total)
{
	char k[512];
	struct killer kl = { k, 100, 0 };
	pthread_t th;
	size_t done;
	dm_status st;
	double t;

	key(k, sizeof(k), "dmarc:", u[0].domain, "writers");
	kl.at = (long long)u[400].seq;
	pthread_create(&th, NULL, killer_run, &kl);
	st = dm_redis_apply(r, u + *total, KILL_N - *total, &done);
	t = now_ms();
	pthread_join(th, NULL);
	waitpid(srv_kill.pid, NULL, 0);
	srv_kill.pid = 0;
	tap_is_int(st, DM_TEMPFAIL, "SIGKILL mid-batch: TEMPFAIL");
	tap_ok(t - kl.killed < 1000, "returned %.0f ms after the kill",
	    t - kl.killed);
	tap_ok(done < KILL_N - *total, "done %zu of %zu", done,
	    KILL_N - *total);
	*total += done;
	t = now_ms();
	st = dm_redis_apply(r, u + *total, 10, &done);
	tap_ok(st == DM_TEMPFAIL && done == 0 && now_ms() - t < 1000,
	    "while it is down: TEMPFAIL in %.0f ms", now_ms() - t);
}

static void
test_killed(void)
{
	static const char *const doms[4] = { "k0.example", "k1.example",
	    "k2.example", "k3.example" };
	char rows[8][32];
	dm_update *u = calloc(KILL_N, sizeof(*u));
	dm_redis *r;
	redisContext *c;
	size_t i, total = 0, done;

	if (u == NULL || !server_start(&srv_kill))
		tap_bail("calloc or the AOF redis-server");
	for (i = 0; i < 8; i++)
		snprintf(rows[i], sizeof(rows[i]), "ip=203.0.113.%zu", i);
	for (i = 0; i < KILL_N; i++)
		u[i] = mk("k", i + 1, doms[i % 4], rows[i % 8], 1);
	r = open_server(&srv_kill, "", 1000);
	tap_is_int(dm_redis_apply(r, u, 100, &total), DM_OK, "first 100");
	kill_mid_batch(r, u, &total);
	if (!server_start(&srv_kill) || (c = admin(&srv_kill)) == NULL)
		tap_bail("restarting redis-server");
	tap_ok((long long)total <= kill_committed(c, doms), "done (%zu) <= "
	    "committed before the kill (%lld)", total,
	    kill_committed(c, doms));
	tap_is_int(dm_redis_apply(r, u + total, KILL_N - total, &done), DM_OK,
	    "after the restart: reconnected, the rest applied");
	tap_is_int((long)done, (long)(KILL_N - total), "all of the rest");
	tap_is_int(kill_total(c, doms, rows), KILL_N,
	    "counts sum to exactly %d", KILL_N);
	redisFree(c);
	dm_redis_free(r);
	free(u);
}

/* ---- a stopped server --------------------------------------------------- */

static void
stopped_call(dm_redis *r, const dm_update *u, const char *what)
{
	size_t done = 99;
	double t = now_ms();
	dm_status st = dm_redis_apply(r, u, 10, &done);

	t = now_ms() - t;
	tap_is_int(st, DM_TEMPFAIL, "SIGSTOP, %s: TEMPFAIL", what);
	tap_ok(t < 600 && done == 0, "in %.0f ms (timeout 300), done %zu", t,
	    done);
}

static void
test_stopped(redisContext *c)
{
	const char *d = "stop.example", *x = "ip=192.0.2.60";
	dm_update u[11];
	dm_redis *r = open_server(&srv_main, "", 300);
	size_t i, done;

	for (i = 0; i < 11; i++)
		u[i] = mk("st", i + 1, d, x, 1);
	tap_is_int(dm_redis_apply(r, u, 1, &done), DM_OK, "connected");
	kill(srv_main.pid, SIGSTOP);
	stopped_call(r, u + 1, "connected");
	stopped_call(r, u + 1, "reconnecting");
	tap_is_int(dm_redis_ping(r), DM_TEMPFAIL, "PING: TEMPFAIL");
	kill(srv_main.pid, SIGCONT);
	tap_is_int(dm_redis_apply(r, u + 1, 10, &done), DM_OK,
	    "after SIGCONT: applied");
	tap_is_int(row_count(c, "dmarc:", d, x), 11,
	    "counted exactly once despite the abandoned pipelines");
	dm_redis_free(r);
}

/* ---- AUTH --------------------------------------------------------------- */

static void
auth_case(const char *url, dm_status ping, dm_status apply, const char *what)
{
	dm_update u = mk("au", 1, "auth.example", "ip=192.0.2.70", 1);
	dm_redis *r = open_redis(url, NULL, 1000);
	size_t done;

	tap_is_int(dm_redis_ping(r), ping, "%s: PING", what);
	tap_is_int(dm_redis_apply(r, &u, 1, &done), apply, "%s: apply", what);
	dm_redis_free(r);
}

static void
test_auth(void)
{
	char url[300], ok[16];
	redisContext *c;
	int i;

	for (i = 0; i < 5; i++) {
		srv_auth.port = free_port();
		if (server_start(&srv_auth))
			break;
	}
	if (srv_auth.pid == 0 || (c = admin(&srv_auth)) == NULL)
		tap_bail("the requirepass redis-server did not start");
	snprintf(url, sizeof(url), "redis://:%s@127.0.0.1:%d/2", PASSWORD,
	    srv_auth.port);
	auth_case(url, DM_OK, DM_OK, "TCP, right password, db 2");
	snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%d",
	    srv_auth.port);
	auth_case(url, DM_PERMFAIL, DM_TEMPFAIL, "wrong password");
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", srv_auth.port);
	auth_case(url, DM_PERMFAIL, DM_TEMPFAIL, "no password");
	snprintf(url, sizeof(url), "unix://%s?password=%s&db=1",
	    srv_auth.sock, PASSWORD);
	auth_case(url, DM_OK, DM_OK, "unix socket, ?password=&db=1");
	adm_str(c, ok, sizeof(ok), "SELECT 2");
	tap_is_int(row_count(c, "dmarc:", "auth.example", "ip=192.0.2.70"), 1,
	    "counted in db 2");
	adm_str(c, ok, sizeof(ok), "SELECT 1");
	tap_is_int(row_count(c, "dmarc:", "auth.example", "ip=192.0.2.70"), 1,
	    "counted in db 1");
	redisFree(c);
	server_kill(&srv_auth, SIGKILL);
}

static void
test_down(void)
{
	char url[300];
	dm_update u = mk("dn", 1, "down.example", "ip=192.0.2.80", 1);
	dm_redis *r;
	size_t done = 99;

	snprintf(url, sizeof(url), "unix://%s/nothing.sock", tmpdir);
	r = open_redis(url, NULL, 300);
	tap_is_int(dm_redis_ping(r), DM_TEMPFAIL, "no server: PING TEMPFAIL");
	tap_is_int(dm_redis_apply(r, &u, 1, &done), DM_TEMPFAIL,
	    "no server: apply TEMPFAIL");
	tap_is_int((long)done, 0, "no server: done 0");
	dm_redis_free(r);
}

/* ---- figures ------------------------------------------------------------ */

static void
bench_rows(char (*rows)[128], size_t n, const char *dom)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(rows[i], sizeof(rows[i]), "ip=198.51.%zu.%zu;hf=%s;"
		    "ef=%s;disp=none;dkim=pass;spf=pass;ad=%s/s2024/pass;"
		    "as=%s/mfrom/pass", i / 250, i % 250, dom, dom, dom, dom);
}

static double
bench_apply(dm_redis *r, const dm_update *u, size_t n, size_t *failed)
{
	size_t i, m, done;
	double t = now_ms();

	for (i = 0; i < n; i += 256) {
		m = n - i < 256 ? n - i : 256;
		if (dm_redis_apply(r, u + i, m, &done) != DM_OK)
			(*failed)++;
	}
	return now_ms() - t;
}

static long long
used_memory(redisContext *c)
{
	redisReply *rep = redisCommand(c, "INFO memory");
	const char *p = rep != NULL && rep->type == REDIS_REPLY_STRING ?
	    strstr(rep->str, "used_memory:") : NULL;
	long long v = p != NULL ? strtoll(p + 12, NULL, 10) : -1;

	freeReplyObject(rep);
	return v;
}

static void
bench(redisContext *c)
{
	static const char *const doms[10] = { "a.example", "b.example",
	    "c.example", "d.example", "e.example", "f.example", "g.example",
	    "h.example", "i.example", "j.example" };
	char (*rows)[128] = calloc(10000, sizeof(*rows));
	dm_update *u = calloc(100000, sizeof(*u));
	dm_redis *r = open_server(&srv_main, "", 1000);
	size_t i, failed = 0;
	long long before, after;
	double ms;

	if (rows == NULL || u == NULL)
		tap_bail("calloc");
	bench_rows(rows, 1000, "bench.example");
	for (i = 0; i < 100000; i++)
		u[i] = mk("bench", i + 1, doms[i % 10], rows[i % 1000], 1);
	ms = bench_apply(r, u, 100000, &failed);
	tap_is_int((long)failed, 0, "benchmark batches all applied");
	tap_diag("%.0f updates/s (100,000 updates, 1,000 rows x 10 domains, "
	    "batches of 256, unix socket, one connection)", 1e5 / (ms / 1e3));
	bench_rows(rows, 10000, "mem.example");
	for (i = 0; i < 10000; i++)
		u[i] = mk("mem", i + 1, "mem.example", rows[i], 1);
	before = used_memory(c);
	bench_apply(r, u, 10000, &failed);
	after = used_memory(c);
	tap_diag("used_memory per distinct row: %.0f bytes (10,000 rows of "
	    "~%zu bytes, one group)", (double)(after - before) / 1e4,
	    strlen(rows[0]));
	free(rows);
	free(u);
	dm_redis_free(r);
}

int
main(void)
{
	redisContext *c;
	time_t now = time(NULL);

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!have_redis_server()) {
		printf("1..0 # SKIP redis-server not installed\n");
		return 0;
	}
	day_begin = (int64_t)now - (int64_t)now % DAY;
	day_end = day_begin + DAY;
	if (mkdtemp(tmpdir) == NULL)
		tap_bail("mkdtemp: %s", strerror(errno));
	atexit(cleanup);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	test_urls();
	if (!server_start(&srv_main) || (c = admin(&srv_main)) == NULL)
		tap_bail("redis-server did not start (see %s/redis.log)",
		    srv_main.dir);
	test_down();
	test_one(c);
	test_expiry(c);
	test_twice(c);
	test_fingerprint(c);
	test_writers(c);
	test_bulk(c);
	test_noscript(c);
	test_select(c);
	test_bad_update(c);
	test_oom(c);
	test_stopped(c);
	test_auth();
	test_killed();
	bench(c);
	redisFree(c);
	return tap_done();
}
