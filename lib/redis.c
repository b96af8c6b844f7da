/*
 * lib/redis.c - the Redis backend of the counters: the RedisURL parser,
 * one lazily (re)made hiredis connection with AUTH, SELECT and the
 * update script loaded, and the pipelined application of a batch of
 * updates, each one atomic in a server-side Lua script.
 *
 * Exactly-once: the script skips an update whose sequence is at or below
 * the writer's highest sequence applied for that policy domain. So that
 * "highest" also means "all below it", an update applies only when the
 * one before it in the batch for the same (writer, domain) has: if a
 * script call fails in a pipeline (NOSCRIPT after a SCRIPT FLUSH, say)
 * a later one for the same domain cannot run ahead of it, even when
 * someone else reloads the script meanwhile or the dropped connection's
 * commands are still executed by the server after we gave up on them.
 *
 * Once per message: an update with a fingerprint (dm_update.h) whose
 * fingerprint the group's set holds already is a message offered again
 * after its reply was lost; the script then only records the sequence.
 * The set expires with the group's rows.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/un.h>

#include <bsd/string.h>
#include <hiredis/hiredis.h>

#include "dm_hex.h"
#include "dm_log.h"
#include "dm_redis.h"

#define REDIS_PREFIX_MAX 128
#define REDIS_DOMAIN_MAX 255
#define REDIS_KEY_MAX (REDIS_PREFIX_MAX + REDIS_DOMAIN_MAX + 64)
#define REDIS_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
#define REDIS_SENTINELS_MAX 8
#define REDIS_HOST_MAX 256

struct redis_node {
	char host[REDIS_HOST_MAX];
	int port;
};

struct dm_redis {
	char host[REDIS_HOST_MAX];	/* TCP host, "" for a unix socket */
	int port;
	struct redis_node sentinel[REDIS_SENTINELS_MAX];
	int nsentinels;			/* 0: not behind Sentinel */
	int next_sentinel;		/* the one to ask first */
	char master[128];		/* the master's name at the sentinels */
	char sentinel_password[256];
	long wait;			/* replicas to WAIT for, each batch */
	char path[REDIS_PATH_MAX];	/* unix socket, "" for TCP */
	char user[128], password[256];
	long db;
	char prefix[REDIS_PREFIX_MAX];
	char domains_key[REDIS_PREFIX_MAX + 8];
	char where[REDIS_SENTINELS_MAX * 270 + 512];	/* secrets masked */
	int timeout_ms;
	long ttl;
	redisContext *c;		/* NULL: connect at the next call */
	char sha[41];			/* the script, loaded on c */
	bool down;			/* failing: log only the first time */
};

/*
 * KEYS: writers rows meta groups fps. ARGV: writer seq prev row count
 * policy begin end group ttl fp. prev is the sequence of the update
 * before this
 * one in the same batch for the same writer and domain ("0": none).
 * Sequences are compared as decimal strings: exact for all of uint64.
 * Expiry times are set only when something is created (a row field, the
 * meta hash, a group, a writer), which halves the commands per update.
 * Returns 0 (already applied), 1 (applied), 2 (prev not applied: not
 * applied, retry from prev), 3 (a repeat of a message counted already:
 * only the sequence recorded).
 */
static const char redis_script[] =
    "local function lt(a, b)\n"
    "  if #a ~= #b then return #a < #b end\n"
    "  return a < b\n"
    "end\n"
    "local cur = redis.call('HGET', KEYS[1], ARGV[1]) or '0'\n"
    "if not lt(cur, ARGV[2]) then return 0 end\n"
    "if lt(cur, ARGV[3]) then return 2 end\n"
    "local ttl = tonumber(ARGV[10])\n"
    "local at = string.format('%d', tonumber(ARGV[8]) + ttl)\n"
    "local fresh = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "if ARGV[11] ~= '' then\n"
    "  if redis.call('SADD', KEYS[5], ARGV[11]) == 0 then\n"
    "    if fresh > 0 and ttl > 0 and\n"
    "        redis.call('TTL', KEYS[1]) == -1 then\n"
    "      redis.call('EXPIREAT', KEYS[1], at)\n"
    "    end\n"
    "    return 3\n"
    "  end\n"
    "  if ttl > 0 and redis.call('SCARD', KEYS[5]) == 1 then\n"
    "    redis.call('EXPIREAT', KEYS[5], at)\n"
    "  end\n"
    "end\n"
    "if redis.call('HINCRBY', KEYS[2], ARGV[4], ARGV[5]) ==\n"
    "    tonumber(ARGV[5]) and ttl > 0 then\n"
    "  redis.call('EXPIREAT', KEYS[2], at)\n"
    "end\n"
    "if redis.call('HSET', KEYS[3], 'policy', ARGV[6], 'begin', ARGV[7],\n"
    "    'end', ARGV[8]) > 0 and ttl > 0 then\n"
    "  redis.call('EXPIREAT', KEYS[3], at)\n"
    "end\n"
    "fresh = fresh + redis.call('ZADD', KEYS[4], ARGV[8], ARGV[9])\n"
    "if fresh > 0 and ttl > 0 then\n"
    "  local top = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')\n"
    "  local last = string.format('%d', tonumber(top[2]) + ttl)\n"
    "  redis.call('EXPIREAT', KEYS[4], last)\n"
    "  redis.call('EXPIREAT', KEYS[1], last)\n"
    "end\n"
    "return 1\n";

/* ---- RedisURL ----------------------------------------------------------- */

static bool
url_number(const char *s, size_t len, long max, long *out)
{
	long v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

static bool
url_host_ok(const char *h, bool v6)
{
	const char *ok = v6 ? "0123456789abcdefABCDEF:." :
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";

	return *h != '\0' && h[strspn(h, ok)] == '\0';
}

/* "[user]:password" of a redis:// URL, [s, end). */
static const char *
url_userinfo(dm_redis *r, const char *s, const char *end)
{
	const char *colon = memchr(s, ':', (size_t)(end - s));

	if (colon == NULL)
		return "the user info needs ':' before the password "
		    "(redis://:password@host)";
	if (!dm_hex_decode(s, (size_t)(colon - s), r->user, sizeof(r->user)) ||
	    !dm_hex_decode(colon + 1, (size_t)(end - colon - 1), r->password,
	    sizeof(r->password)))
		return "bad %-escape or too long a user or password";
	if (r->password[0] == '\0')
		return "empty password";
	return NULL;
}

/* host[:port] or [v6][:port], [h, end), into n; port by default. */
static const char *
url_hostport(struct redis_node *n, long port, const char *h,
    const char *end)
{
	const char *p, *hs = h;
	size_t hlen;
	bool v6 = *h == '[';

	if (v6) {
		if ((p = memchr(h, ']', (size_t)(end - h))) == NULL)
			return "'[' without ']' around an IPv6 address";
		hs = h + 1;
		hlen = (size_t)(p - hs);
		p++;
	} else {
		p = h + strcspn(h, ":/");
		if (p > end)
			p = end;
		hlen = (size_t)(p - h);
	}
	if (hlen == 0 || hlen >= sizeof(n->host))
		return "no host, or too long a host";
	memcpy(n->host, hs, hlen);
	n->host[hlen] = '\0';
	if (!url_host_ok(n->host, v6))
		return "bad characters in the host";
	if (p < end && (*p != ':' ||
	    !url_number(p + 1, (size_t)(end - p - 1), 65535, &port) ||
	    port == 0))
		return "the port must be a number from 1 to 65535";
	n->port = (int)port;
	return NULL;
}

static const char *
url_tcp(dm_redis *r, const char *s)
{
	const char *end = s + strcspn(s, "/?#"), *at = NULL, *p, *why;
	struct redis_node n;

	if (*end == '?' || *end == '#')
		return "no query or fragment in a redis:// URL "
		    "(the database goes in the path: redis://host/2)";
	for (p = s; p < end; p++)
		if (*p == '@')
			at = p;
	if (at != NULL && (why = url_userinfo(r, s, at)) != NULL)
		return why;
	if ((why = url_hostport(&n, 6379, at != NULL ? at + 1 : s, end)) !=
	    NULL)
		return why;
	memcpy(r->host, n.host, sizeof(r->host));
	r->port = n.port;
	if (*end == '/' && end[1] != '\0' &&
	    !url_number(end + 1, strlen(end + 1), 2147483647L, &r->db))
		return "the path must be a database number (redis://host/2)";
	return NULL;
}

/* One query parameter; the sentinel ones only for redis-sentinel://. */
static const char *
url_param(dm_redis *r, const char *s, size_t len)
{
	bool sent = r->nsentinels > 0;

	if (sent && len > 18 && strncmp(s, "sentinel_password=", 18) == 0) {
		if (!dm_hex_decode(s + 18, len - 18, r->sentinel_password,
		    sizeof(r->sentinel_password)))
			return "bad %-escape or too long a sentinel_password";
		return NULL;
	}
	if (sent && len > 5 && strncmp(s, "wait=", 5) == 0) {
		if (!url_number(s + 5, len - 5, 64, &r->wait))
			return "wait= must be a number of replicas, 0 to 64";
		return NULL;
	}
	if (len > 3 && strncmp(s, "db=", 3) == 0) {
		if (!url_number(s + 3, len - 3, 2147483647L, &r->db))
			return "db= must be a database number";
		return NULL;
	}
	if (len > 9 && strncmp(s, "password=", 9) == 0) {
		if (!dm_hex_decode(s + 9, len - 9, r->password,
		    sizeof(r->password)))
			return "bad %-escape or too long a password";
		return NULL;
	}
	return sent ? "unknown parameter (only db=, password=, "
	    "sentinel_password= and wait=)" :
	    "unknown parameter (only db= and password=)";
}

/* "?a=1&b=2" or "": the parameters after a path. */
static const char *
url_query(dm_redis *r, const char *q)
{
	const char *why;
	size_t len;

	while (*q != '\0') {
		q++;
		len = strcspn(q, "&");
		if ((why = url_param(r, q, len)) != NULL)
			return why;
		q += len;
	}
	return NULL;
}

static const char *
url_unix(dm_redis *r, const char *s)
{
	size_t len = strcspn(s, "?");
	const char *q = s + len;

	if (*s != '/')
		return "a unix socket needs an absolute path "
		    "(unix:///run/redis/redis.sock)";
	if (len >= sizeof(r->path))
		return "too long a socket path";
	memcpy(r->path, s, len);
	r->path[len] = '\0';
	return url_query(r, q);
}

/* host[:port],host[:port]... of a redis-sentinel:// URL, [s, end). */
static const char *
url_sentinels(dm_redis *r, const char *s, const char *end)
{
	const char *p, *why;

	for (;; s = p + 1) {
		if ((p = memchr(s, ',', (size_t)(end - s))) == NULL)
			p = end;
		if (r->nsentinels == REDIS_SENTINELS_MAX)
			return "more than 8 sentinels";
		if ((why = url_hostport(&r->sentinel[r->nsentinels++], 26379,
		    s, p)) != NULL)
			return why;
		if (p == end)
			return NULL;
	}
}

/*
 * redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/name
 * [?db=N][&password=P][&sentinel_password=P][&wait=N]
 */
static const char *
url_sentinel(dm_redis *r, const char *s)
{
	const char *end = s + strcspn(s, "/?#"), *at = NULL, *p, *why;
	size_t len;

	r->wait = 1;
	for (p = s; p < end; p++)
		if (*p == '@')
			at = p;
	if (at != NULL && (why = url_userinfo(r, s, at)) != NULL)
		return why;
	if ((why = url_sentinels(r, at != NULL ? at + 1 : s, end)) != NULL)
		return why;
	if (*end != '/')
		return "the master's name must follow the sentinels "
		    "(redis-sentinel://host:26379/mymaster)";
	s = end + 1;
	len = strcspn(s, "?#");
	if (len == 0 || len >= sizeof(r->master) ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-_") != len)
		return "the master's name must be letters, digits, '.', '-' "
		    "or '_', under 128 bytes";
	memcpy(r->master, s, len);
	r->master[len] = '\0';
	if (s[len] == '#')
		return "no fragment in a redis-sentinel:// URL";
	return url_query(r, s + len);
}

/* ?db=1&password=***... of a redis-sentinel:// URL for where. */
static void
url_where_sentinel(dm_redis *r)
{
	char q[160] = "";
	size_t len;
	int i;

	if (r->db != 0)
		snprintf(q, sizeof(q), "&db=%ld", r->db);
	if (r->password[0] != '\0' && r->user[0] == '\0')
		strlcat(q, "&password=***", sizeof(q));
	if (r->sentinel_password[0] != '\0')
		strlcat(q, "&sentinel_password=***", sizeof(q));
	if (r->wait != 1)
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "&wait=%ld",
		    r->wait);
	if (q[0] != '\0')
		q[0] = '?';
	snprintf(r->where, sizeof(r->where), "redis-sentinel://%s%s",
	    r->user, r->user[0] != '\0' ? ":***@" : "");
	for (i = 0; i < r->nsentinels; i++) {
		len = strlen(r->where);
		snprintf(r->where + len, sizeof(r->where) - len, "%s%s%s%s:%d",
		    i > 0 ? "," : "",
		    strchr(r->sentinel[i].host, ':') != NULL ? "[" : "",
		    r->sentinel[i].host,
		    strchr(r->sentinel[i].host, ':') != NULL ? "]" : "",
		    r->sentinel[i].port);
	}
	len = strlen(r->where);
	snprintf(r->where + len, sizeof(r->where) - len, "/%s%s", r->master,
	    q);
}

static void
url_where(dm_redis *r)
{
	char db[24] = "";
	const char *sep = r->user[0] != '\0' || r->password[0] != '\0' ?
	    ":***@" : "";

	if (r->nsentinels > 0) {
		url_where_sentinel(r);
		return;
	}
	if (r->path[0] != '\0') {
		if (r->db != 0)
			snprintf(db, sizeof(db), "?db=%ld", r->db);
		snprintf(r->where, sizeof(r->where), "unix://%s%s%s", r->path,
		    db, r->password[0] == '\0' ? "" : r->db != 0 ?
		    "&password=***" : "?password=***");
		return;
	}
	if (r->db != 0)
		snprintf(db, sizeof(db), "/%ld", r->db);
	snprintf(r->where, sizeof(r->where), "redis://%s%s%s%s%s:%d%s",
	    r->user, sep, strchr(r->host, ':') != NULL ? "[" : "", r->host,
	    strchr(r->host, ':') != NULL ? "]" : "", r->port, db);
}

/* The URL never goes into err: it may hold the password. */
static dm_status
url_parse(dm_redis *r, const char *url, char *err, size_t errlen)
{
	const char *why;

	if (url == NULL || *url == '\0')
		why = "no URL";
	else if (strncasecmp(url, "redis://", 8) == 0)
		why = url_tcp(r, url + 8);
	else if (strncasecmp(url, "unix://", 7) == 0)
		why = url_unix(r, url + 7);
	else if (strncasecmp(url, "redis-sentinel://", 17) == 0)
		why = url_sentinel(r, url + 17);
	else if (strncasecmp(url, "rediss://", 9) == 0)
		why = "rediss:// (TLS) is not supported: use a unix socket or "
		    "a TLS tunnel";
	else
		why = "the URL must start with redis://, unix:// or "
		    "redis-sentinel://";
	if (why != NULL) {
		snprintf(err, errlen, "RedisURL: %s", why);
		return DM_PERMFAIL;
	}
	url_where(r);
	return DM_OK;
}

dm_redis *
dm_redis_new(const char *url, const char *prefix, int timeout_ms,
    long ttl_sec, char *err, size_t errlen)
{
	dm_redis *r;

	if (prefix == NULL)
		prefix = "dmarc:";
	if (timeout_ms <= 0 || ttl_sec < 0 ||
	    strlen(prefix) >= REDIS_PREFIX_MAX) {
		snprintf(err, errlen, "Redis: timeout must be > 0, ttl >= 0, "
		    "key prefix under %d bytes", REDIS_PREFIX_MAX);
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "Redis: out of memory");
		return NULL;
	}
	if (url_parse(r, url, err, errlen) != DM_OK) {
		dm_redis_free(r);
		return NULL;
	}
	strlcpy(r->prefix, prefix, sizeof(r->prefix));
	snprintf(r->domains_key, sizeof(r->domains_key), "%sdomains", prefix);
	r->timeout_ms = timeout_ms;
	r->ttl = ttl_sec;
	return r;
}

void
dm_redis_free(dm_redis *r)
{
	if (r == NULL)
		return;
	if (r->c != NULL)
		redisFree(r->c);
	explicit_bzero(r->password, sizeof(r->password));
	explicit_bzero(r->sentinel_password, sizeof(r->sentinel_password));
	free(r);
}

const char *
dm_redis_where(const dm_redis *r)
{
	return r->where;
}

/* ---- the connection ----------------------------------------------------- */

/*
 * Drop the connection and log why: a warning the first time, debug while
 * it keeps failing, an error for a configuration mistake.
 */
static dm_status
redis_fail(dm_redis *r, dm_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static dm_status
redis_fail(dm_redis *r, dm_status st, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int level = st == DM_PERMFAIL ? DM_LOG_ERR :
	    r->down ? DM_LOG_DEBUG : DM_LOG_WARNING;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->c != NULL)
		redisFree(r->c);
	r->c = NULL;
	r->down = true;
	dm_log(level, "redis %s: %s", r->where, msg);
	return st;
}

static void
redis_good(dm_redis *r)
{
	if (r->down)
		dm_log(DM_LOG_NOTICE, "redis %s: working again", r->where);
	r->down = false;
}

static const char *
redis_ioerr(const redisContext *c, int saved_errno)
{
	if (c->err == REDIS_ERR_IO &&
	    (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
		return "no reply in time (RedisTimeout)";
	return c->errstr;
}

static struct timeval
redis_tv(int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* A refusal that retrying cannot cure: wrong password, db, ACL. */
static bool
redis_config_error(const char *cmd, const char *msg)
{
	if (strncmp(msg, "NOAUTH", 6) == 0 ||
	    strncmp(msg, "WRONGPASS", 9) == 0 ||
	    strncmp(msg, "NOPERM", 6) == 0)
		return true;
	return strcmp(cmd, "SCRIPT") != 0 && strncmp(msg, "ERR", 3) == 0;
}

/* One set-up command; *out gets the reply when it is no error. */
static dm_status
redis_setup(dm_redis *r, int argc, const char **argv, redisReply **out)
{
	redisReply *rep;
	dm_status st;
	int e;

	rep = redisCommandArgv(r->c, argc, argv, NULL);
	e = errno;
	if (rep == NULL)
		return redis_fail(r, DM_TEMPFAIL, "%s: %s", argv[0],
		    redis_ioerr(r->c, e));
	if (rep->type == REDIS_REPLY_ERROR) {
		st = redis_config_error(argv[0], rep->str) ? DM_PERMFAIL :
		    DM_TEMPFAIL;
		st = redis_fail(r, st, "%s refused: %s", argv[0], rep->str);
		freeReplyObject(rep);
		return st;
	}
	*out = rep;
	return DM_OK;
}

static dm_status
redis_login(dm_redis *r)
{
	char db[24];
	const char *auth[3] = { "AUTH" }, *sel[2] = { "SELECT", db };
	redisReply *rep;
	dm_status st;
	int n = 1;

	if (r->password[0] != '\0') {
		if (r->user[0] != '\0')
			auth[n++] = r->user;
		auth[n++] = r->password;
		if ((st = redis_setup(r, n, auth, &rep)) != DM_OK)
			return st;
		freeReplyObject(rep);
	}
	if (r->db != 0) {
		snprintf(db, sizeof(db), "%ld", r->db);
		if ((st = redis_setup(r, 2, sel, &rep)) != DM_OK)
			return st;
		freeReplyObject(rep);
	}
	return DM_OK;
}

static dm_status
redis_load(dm_redis *r)
{
	const char *argv[3] = { "SCRIPT", "LOAD", redis_script };
	redisReply *rep;
	dm_status st;

	if ((st = redis_setup(r, 3, argv, &rep)) != DM_OK)
		return st;
	if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
		freeReplyObject(rep);
		return redis_fail(r, DM_TEMPFAIL, "SCRIPT LOAD: odd reply");
	}
	memcpy(r->sha, rep->str, 40);
	r->sha[40] = '\0';
	freeReplyObject(rep);
	return DM_OK;
}

/* ---- Sentinel ---------------------------------------------------------- */

/* One sentinel's answer for the master's address into r->host, r->port. */
static bool
sentinel_ask(dm_redis *r, const struct redis_node *n, struct timeval tv)
{
	const char *auth[2] = { "AUTH", r->sentinel_password };
	const char *get[3] = { "SENTINEL", "get-master-addr-by-name",
	    r->master };
	redisContext *c;
	redisReply *rep = NULL;
	long port;
	bool ok = false;

	if ((c = redisConnectWithTimeout(n->host, n->port, tv)) == NULL)
		return false;
	if (c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK)
		goto out;
	if (r->sentinel_password[0] != '\0') {
		rep = redisCommandArgv(c, 2, auth, NULL);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
			goto out;
		freeReplyObject(rep);
	}
	rep = redisCommandArgv(c, 3, get, NULL);
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_STRING ||
	    rep->element[0]->len >= sizeof(r->host) ||
	    !url_number(rep->element[1]->str, rep->element[1]->len, 65535,
	    &port) || port == 0)
		goto out;
	memcpy(r->host, rep->element[0]->str, rep->element[0]->len + 1);
	r->port = (int)port;
	ok = true;
out:
	if (rep != NULL)
		freeReplyObject(rep);
	redisFree(c);
	return ok;
}

/*
 * Ask the sentinels in turn, starting with the one that answered last,
 * for the master's address: on every (re)connect, so that a failover is
 * followed.
 */
static dm_status
sentinel_discover(dm_redis *r)
{
	struct timeval tv = redis_tv(r->timeout_ms);
	char old[REDIS_HOST_MAX];
	int i, k, oldport = r->port;

	memcpy(old, r->host, sizeof(old));
	for (i = 0; i < r->nsentinels; i++) {
		k = (r->next_sentinel + i) % r->nsentinels;
		if (!sentinel_ask(r, &r->sentinel[k], tv))
			continue;
		r->next_sentinel = k;
		if (strcmp(old, r->host) != 0 || oldport != r->port)
			dm_log(DM_LOG_NOTICE, "redis %s: master %s is at "
			    "%s:%d (sentinel %s:%d)", r->where, r->master,
			    r->host, r->port, r->sentinel[k].host,
			    r->sentinel[k].port);
		return DM_OK;
	}
	return redis_fail(r, DM_TEMPFAIL, "no sentinel answered for "
	    "master %s", r->master);
}

/* The server we reached must be the master: never write to a replica. */
static dm_status
sentinel_check_role(dm_redis *r)
{
	const char *argv[1] = { "ROLE" };
	redisReply *rep;
	dm_status st;
	bool master;

	if ((st = redis_setup(r, 1, argv, &rep)) != DM_OK)
		return st;
	master = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
	    rep->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(rep->element[0]->str, "master") == 0;
	freeReplyObject(rep);
	if (!master)
		return redis_fail(r, DM_TEMPFAIL, "%s:%d is not the master "
		    "(yet): asking the sentinels again", r->host, r->port);
	return DM_OK;
}

/*
 * Replication is asynchronous: a write the master acknowledged can die
 * with it. So an update counts as committed only once wait replicas
 * have it too; until then it is retried (the sequence test makes that
 * harmless) and stays in the journal. The number is the URL's, never
 * what the master says it has: an old master the sentinels are about to
 * demote has lost its replicas and still says ROLE master, and what it
 * takes then is thrown away when it resyncs as a replica.
 */
static long
sentinel_waits(const dm_redis *r)
{
	return r->nsentinels > 0 ? r->wait : 0;
}

static dm_status
sentinel_wait(dm_redis *r)
{
	char n[24], ms[24];
	const char *argv[3] = { "WAIT", n, ms };
	redisReply *rep;
	dm_status st;
	long long got;
	long want = sentinel_waits(r);

	if (want == 0)
		return DM_OK;
	snprintf(n, sizeof(n), "%ld", want);
	/* within the socket's timeout, so that its 0 is read, not lost */
	snprintf(ms, sizeof(ms), "%d", r->timeout_ms / 2 + 1);
	if ((st = redis_setup(r, 3, argv, &rep)) != DM_OK)
		return st;
	got = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
	freeReplyObject(rep);
	if (got < want)
		return redis_fail(r, DM_TEMPFAIL, "WAIT: %lld of %ld replicas "
		    "have the updates in time", got, want);
	return DM_OK;
}

static dm_status
redis_connect(dm_redis *r)
{
	struct timeval tv = redis_tv(r->timeout_ms);
	dm_status st;

	if (r->nsentinels > 0 && (st = sentinel_discover(r)) != DM_OK)
		return st;
	if (r->path[0] != '\0')
		r->c = redisConnectUnixWithTimeout(r->path, tv);
	else
		r->c = redisConnectWithTimeout(r->host, r->port, tv);
	if (r->c == NULL)
		return redis_fail(r, DM_TEMPFAIL, "connect: out of memory");
	if (r->c->err != 0)
		return redis_fail(r, DM_TEMPFAIL, "connect: %s", r->c->errstr);
	if (redisSetTimeout(r->c, tv) != REDIS_OK)
		return redis_fail(r, DM_TEMPFAIL, "set timeout: %s",
		    r->c->errstr);
	if ((st = redis_login(r)) != DM_OK)
		return st;
	if (r->nsentinels > 0 && (st = sentinel_check_role(r)) != DM_OK)
		return st;
	return redis_load(r);
}

/*
 * hiredis writes with write(2): a server gone away would raise SIGPIPE.
 * Block it in this thread while we talk, and swallow one we caused.
 */
struct redis_sigpipe {
	sigset_t old;
	bool pending;
};

static void
redis_sigpipe_block(struct redis_sigpipe *sp)
{
	sigset_t set, pend;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigemptyset(&pend);
	sigpending(&pend);
	sp->pending = sigismember(&pend, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &sp->old);
}

static void
redis_sigpipe_restore(const struct redis_sigpipe *sp)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t set, pend;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigemptyset(&pend);
	if (!sp->pending && sigpending(&pend) == 0 &&
	    sigismember(&pend, SIGPIPE) == 1)
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &sp->old, NULL);
}

/* ---- updates ------------------------------------------------------------ */

/* What the script cannot store; NULL when u is fine. */
static const char *
redis_bad_update(const dm_update *u)
{
	size_t len;

	if (u->domain == NULL || (len = strlen(u->domain)) == 0 ||
	    len > REDIS_DOMAIN_MAX || strpbrk(u->domain, "{}") != NULL)
		return "bad policy domain";
	if (u->writer[0] == '\0' || memchr(u->writer, '\0',
	    sizeof(u->writer)) == NULL)
		return "no writer id";
	if (u->seq == 0)
		return "sequence 0";
	if (u->policy == NULL || u->row == NULL)
		return "no policy or row";
	if (memchr(u->fp, '\0', sizeof(u->fp)) == NULL)
		return "bad fingerprint";
	if (u->end <= u->begin || u->begin < 0)
		return "empty period";
	return NULL;
}

struct redis_args {
	char writers[REDIS_KEY_MAX], rows[REDIS_KEY_MAX];
	char meta[REDIS_KEY_MAX], groups[REDIS_KEY_MAX], fps[REDIS_KEY_MAX];
	char group[48], seq[24], prev[24], count[16];
	char begin[24], end[24], ttl[24];
};

/*
 * The sequence of the update before u[i] in u[] for the same writer and
 * domain, 0 if none (everything before u[0] is committed).
 */
static uint64_t
redis_prev_seq(const dm_update *u, size_t i)
{
	size_t j = i;

	while (j-- > 0)
		if (strcmp(u[j].domain, u[i].domain) == 0 &&
		    strcmp(u[j].writer, u[i].writer) == 0)
			return u[j].seq;
	return 0;
}

static void
redis_fill(const dm_redis *r, const dm_update *u, uint64_t prev,
    struct redis_args *a)
{
	char pid[17];

	dm_update_policy_id(u->policy, pid);
	snprintf(a->group, sizeof(a->group), "%" PRId64 ":%s", u->begin, pid);
	snprintf(a->writers, sizeof(a->writers), "%s{%s}:writers", r->prefix,
	    u->domain);
	snprintf(a->rows, sizeof(a->rows), "%s{%s}:rows:%s", r->prefix,
	    u->domain, a->group);
	snprintf(a->meta, sizeof(a->meta), "%s{%s}:meta:%s", r->prefix,
	    u->domain, a->group);
	snprintf(a->groups, sizeof(a->groups), "%s{%s}:groups", r->prefix,
	    u->domain);
	snprintf(a->fps, sizeof(a->fps), "%s{%s}:fp:%s", r->prefix,
	    u->domain, a->group);
	snprintf(a->seq, sizeof(a->seq), "%" PRIu64, u->seq);
	snprintf(a->prev, sizeof(a->prev), "%" PRIu64, prev);
	snprintf(a->count, sizeof(a->count), "%" PRIu32, u->count);
	snprintf(a->begin, sizeof(a->begin), "%" PRId64, u->begin);
	snprintf(a->end, sizeof(a->end), "%" PRId64, u->end);
	snprintf(a->ttl, sizeof(a->ttl), "%ld", r->ttl);
}

/* SADD and EVALSHA for u[i] into the output buffer. */
static bool
redis_append(dm_redis *r, const dm_update *u, size_t i)
{
	struct redis_args a;
	const char *sadd[3] = { "SADD", r->domains_key, u[i].domain };
	const char *eval[19] = { "EVALSHA", r->sha, "5", a.writers, a.rows,
	    a.meta, a.groups, a.fps, u[i].writer, a.seq, a.prev, u[i].row,
	    a.count, u[i].policy, a.begin, a.end, a.group, a.ttl, u[i].fp };

	redis_fill(r, &u[i], redis_prev_seq(u, i), &a);
	return redisAppendCommandArgv(r->c, 3, sadd, NULL) == REDIS_OK &&
	    redisAppendCommandArgv(r->c, 19, eval, NULL) == REDIS_OK;
}

/* One reply: SADD's (script false) or the script's. */
static dm_status
redis_check(dm_redis *r, const redisReply *rep, bool script,
    bool *noscript)
{
	if (rep->type == REDIS_REPLY_ERROR) {
		if (script && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
			*noscript = true;
			dm_log(DM_LOG_INFO, "redis %s: script cache flushed, "
			    "loading the script again", r->where);
			redisFree(r->c);
			r->c = NULL;
			return DM_TEMPFAIL;
		}
		return redis_fail(r, DM_TEMPFAIL, "%s: %s",
		    script ? "EVALSHA" : "SADD", rep->str);
	}
	if (rep->type != REDIS_REPLY_INTEGER)
		return redis_fail(r, DM_TEMPFAIL, "%s: unexpected reply type %d",
		    script ? "EVALSHA" : "SADD", rep->type);
	if (script && rep->integer == 2)
		return redis_fail(r, DM_TEMPFAIL, "an update is held back: the "
		    "one before it for its domain was not applied");
	if (script && rep->integer != 0 && rep->integer != 1 &&
	    rep->integer != 3)
		return redis_fail(r, DM_TEMPFAIL, "EVALSHA: unexpected %lld",
		    rep->integer);
	return DM_OK;
}

/* Pipeline u[0..n): append all, then read all replies in order. */
static dm_status
redis_batch(dm_redis *r, const dm_update *u, size_t n, size_t *done,
    bool *noscript)
{
	redisReply *rep;
	dm_status st;
	size_t i, k = 0;
	int e;
	bool hold = sentinel_waits(r) > 0;

	for (i = 0; i < n; i++)
		if (!redis_append(r, u, i))
			return redis_fail(r, DM_TEMPFAIL, "pipeline: %s",
			    r->c->errstr);
	for (i = 0; i < 2 * n; i++) {
		rep = NULL;
		if (redisGetReply(r->c, (void **)&rep) != REDIS_OK) {
			e = errno;
			return redis_fail(r, DM_TEMPFAIL, "%s",
			    redis_ioerr(r->c, e));
		}
		st = redis_check(r, rep, i % 2 == 1, noscript);
		freeReplyObject(rep);
		if (st != DM_OK)
			return st;
		if (i % 2 == 1 && !hold)
			(*done)++;
		else if (i % 2 == 1)
			k++;
	}
	if ((st = sentinel_wait(r)) == DM_OK)
		*done += k;
	return st;
}

/* n good updates from u[], pipelined; one retry after NOSCRIPT. */
static dm_status
redis_apply_good(dm_redis *r, const dm_update *u, size_t n, size_t *done)
{
	bool noscript = false;
	dm_status st = DM_TEMPFAIL;
	int tries;

	*done = 0;
	for (tries = 0; tries < 2; tries++) {
		if (r->c == NULL && redis_connect(r) != DM_OK)
			return DM_TEMPFAIL;
		noscript = false;
		st = redis_batch(r, u + *done, n - *done, done, &noscript);
		if (st == DM_OK || !noscript)
			break;
	}
	if (st != DM_OK && noscript)
		return redis_fail(r, DM_TEMPFAIL,
		    "the script was lost again (NOSCRIPT)");
	return st;
}

/* An update no store can hold (a bug upstream): log it, drop it. */
static bool
redis_drop_bad(const dm_redis *r, const dm_update *u)
{
	const char *why = redis_bad_update(u);

	if (why == NULL)
		return false;
	dm_log(DM_LOG_ERR, "redis %s: update %.*s#%" PRIu64 " dropped, it "
	    "can never be stored: %s", r->where, (int)sizeof(u->writer),
	    u->writer, u->seq, why);
	return true;
}

dm_status
dm_redis_apply(dm_redis *r, const dm_update *u, size_t n, size_t *done)
{
	struct redis_sigpipe sp;
	dm_status st = DM_OK;
	size_t run, k;
	bool sent = false;

	*done = 0;
	redis_sigpipe_block(&sp);
	while (st == DM_OK && *done < n) {
		if (redis_drop_bad(r, &u[*done])) {
			(*done)++;
			continue;
		}
		for (run = 1; *done + run < n &&
		    redis_bad_update(&u[*done + run]) == NULL; run++)
			;
		st = redis_apply_good(r, u + *done, run, &k);
		*done += k;
		sent = true;
	}
	redis_sigpipe_restore(&sp);
	if (st == DM_OK && sent)
		redis_good(r);
	return st;
}

dm_status
dm_redis_command(dm_redis *r, int argc, const char **argv,
    struct redisReply **out)
{
	struct redis_sigpipe sp;
	dm_status st = DM_OK;

	*out = NULL;
	redis_sigpipe_block(&sp);
	if (r->c == NULL)
		st = redis_connect(r);
	if (st == DM_OK)
		st = redis_setup(r, argc, argv, out);
	redis_sigpipe_restore(&sp);
	return st;
}

const char *
dm_redis_prefix(const dm_redis *r)
{
	return r->prefix;
}

dm_status
dm_redis_ping(dm_redis *r)
{
	const char *argv[1] = { "PING" };
	redisReply *rep = NULL;
	dm_status st;

	if ((st = dm_redis_command(r, 1, argv, &rep)) != DM_OK)
		return st;
	if (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "PONG") != 0)
		st = redis_fail(r, DM_TEMPFAIL, "PING: odd reply");
	freeReplyObject(rep);
	if (st == DM_OK)
		redis_good(r);
	return st;
}
