/*
 * report/rptsrc.c - reading and claiming report groups in Redis (see
 * rptsrc.h for the life of a group). Every step that must be atomic is
 * one Lua script on the keys of one {domain}, so it also holds in a
 * Redis Cluster.
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bsd/string.h>
#include <hiredis/hiredis.h>

#include "dm_log.h"
#include "rptsrc.h"

#define SRC_KEY_MAX 640

/*
 * KEYS: claim, state. ARGV: owner, lease ms, now, fresh report id.
 * Returns {report_id, tries} or 0 (held by another / backing off).
 */
static const char src_claim_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "local nxt = tonumber(redis.call('HGET', KEYS[2], 'next') or '0')\n"
    "if nxt > tonumber(ARGV[3]) then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "redis.call('HSETNX', KEYS[2], 'id', ARGV[4])\n"
    "local st = redis.call('HMGET', KEYS[2], 'id', 'tries')\n"
    "return {st[1], st[2] or '0'}\n";

/*
 * KEYS: claim, state, rows, meta, groups, sent. ARGV: owner, member,
 * report id, sent ttl. 1 done, 0 the lease was not ours.
 */
static const char src_done_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[1])\n"
    "redis.call('ZREM', KEYS[5], ARGV[2])\n"
    "redis.call('SET', KEYS[6], ARGV[3], 'EX', ARGV[4])\n"
    "return 1\n";

/* KEYS: claim, state. ARGV: owner, next attempt time. */
static const char src_failed_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "redis.call('HINCRBY', KEYS[2], 'tries', 1)\n"
    "redis.call('HSET', KEYS[2], 'next', ARGV[2])\n"
    "redis.call('DEL', KEYS[1])\n"
    "return 1\n";

/* KEYS: claim. ARGV: owner, lease ms. */
static const char src_renew_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "return 1\n";

/* KEYS: claim. ARGV: owner. */
static const char src_release_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return 1\n";

/* "P{dom}:what:G" for a group's key, "P{dom}:what" for the domain's. */
static void
src_key(char *out, const dm_redis *r, const rpt_group *g, const char *what,
    bool per_group)
{
	snprintf(out, SRC_KEY_MAX, "%s{%s}:%s%s%s", dm_redis_prefix(r),
	    g->domain, what, per_group ? ":" : "", per_group ? g->member : "");
}

/* Fill g from a domain and an index member "<begin>:<polid>". */
static bool
src_group(rpt_group *g, const char *domain, const char *member, double end)
{
	const char *colon = strchr(member, ':');

	memset(g, 0, sizeof(*g));
	if (colon == NULL || strlen(colon + 1) != 16 ||
	    strlcpy(g->domain, domain, sizeof(g->domain)) >= sizeof(g->domain)
	    || strlcpy(g->member, member, sizeof(g->member)) >=
	    sizeof(g->member))
		return false;
	g->begin = strtoll(member, NULL, 10);
	g->end = (int64_t)end;
	strlcpy(g->polid, colon + 1, sizeof(g->polid));
	return true;
}

/* The ended groups of one domain, appended to *out. */
static dm_status
src_list_domain(dm_redis *r, const char *domain, int64_t now,
    rpt_group **out, size_t *n, size_t *cap)
{
	char key[SRC_KEY_MAX], max[32];
	const char *argv[5] = { "ZRANGEBYSCORE", key, "-inf", max,
	    "WITHSCORES" };
	redisReply *rep;
	rpt_group g, *ng;
	size_t i;
	dm_status st;

	snprintf(key, sizeof(key), "%s{%s}:groups", dm_redis_prefix(r),
	    domain);
	snprintf(max, sizeof(max), "%" PRId64, now);
	if ((st = dm_redis_command(r, 5, argv, &rep)) != DM_OK)
		return st;
	for (i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements;
	    i += 2) {
		if (!src_group(&g, domain, rep->element[i]->str,
		    strtod(rep->element[i + 1]->str, NULL))) {
			dm_warn("report: {%s}: odd group %s skipped", domain,
			    rep->element[i]->str);
			continue;
		}
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			if ((ng = reallocarray(*out, *cap, sizeof(*ng))) == NULL)
				dm_log_oom();
			*out = ng;
		}
		(*out)[(*n)++] = g;
	}
	freeReplyObject(rep);
	return DM_OK;
}

dm_status
rpt_src_list(dm_redis *r, int64_t now, const char *only_domain,
    rpt_group **out, size_t *n)
{
	char key[SRC_KEY_MAX];
	const char *argv[2] = { "SMEMBERS", key };
	redisReply *rep = NULL;
	size_t i, cap = 0;
	dm_status st = DM_OK;

	*out = NULL;
	*n = 0;
	if (only_domain != NULL)
		return src_list_domain(r, only_domain, now, out, n, &cap);
	snprintf(key, sizeof(key), "%sdomains", dm_redis_prefix(r));
	if ((st = dm_redis_command(r, 2, argv, &rep)) != DM_OK)
		return st;
	for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements &&
	    st == DM_OK; i++)
		st = src_list_domain(r, rep->element[i]->str, now, out, n,
		    &cap);
	freeReplyObject(rep);
	return st;
}

/* EVAL script with the keys and args; the reply for the caller. */
static dm_status
src_eval(dm_redis *r, const char *script, int nkeys, const char **keys,
    int nargs, const char **args, redisReply **rep)
{
	const char *argv[16];
	char nk[8];
	int argc = 0, i;

	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[argc++] = "EVAL";
	argv[argc++] = script;
	argv[argc++] = nk;
	for (i = 0; i < nkeys; i++)
		argv[argc++] = keys[i];
	for (i = 0; i < nargs; i++)
		argv[argc++] = args[i];
	return dm_redis_command(r, argc, argv, rep);
}

void
rpt_report_id(char *out, size_t len, const rpt_group *g, int64_t now)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, len, "b%" PRId64 "p%st%" PRId64 "u%06ld", g->begin,
	    g->polid, now, (long)(ts.tv_nsec / 1000));
}

dm_status
rpt_src_claim(dm_redis *r, const rpt_group *g, const char *owner,
    int64_t now, long lease_ms, rpt_claim *c)
{
	char claim[SRC_KEY_MAX], state[SRC_KEY_MAX], lease[32], t[32],
	    id[96];
	const char *keys[2] = { claim, state }, *args[4] = { owner, lease, t,
	    id };
	redisReply *rep;
	dm_status st;

	src_key(claim, r, g, "claim", true);
	src_key(state, r, g, "state", true);
	snprintf(lease, sizeof(lease), "%ld", lease_ms);
	snprintf(t, sizeof(t), "%" PRId64, now);
	rpt_report_id(id, sizeof(id), g, now);	/* kept if one is fixed */
	if ((st = src_eval(r, src_claim_lua, 2, keys, 4, args, &rep)) != DM_OK)
		return st;
	st = DM_NOTFOUND;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_STRING) {
		strlcpy(c->report_id, rep->element[0]->str,
		    sizeof(c->report_id));
		c->tries = rep->element[1]->type == REDIS_REPLY_STRING ?
		    strtol(rep->element[1]->str, NULL, 10) : 0;
		st = DM_OK;
	}
	freeReplyObject(rep);
	return st;
}

/* HGETALL-like, in HSCAN pages, so one huge group is read piecewise. */
static dm_status
src_read_rows(dm_redis *r, const char *key, rpt_rowc **rows, size_t *n)
{
	char cursor[32] = "0";
	const char *argv[5] = { "HSCAN", key, cursor, "COUNT", "1000" };
	redisReply *rep, *kv;
	size_t i, cap = 0;
	rpt_rowc *nr;
	dm_status st;

	do {
		if ((st = dm_redis_command(r, 5, argv, &rep)) != DM_OK)
			return st;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
			freeReplyObject(rep);
			return DM_TEMPFAIL;
		}
		strlcpy(cursor, rep->element[0]->str, sizeof(cursor));
		kv = rep->element[1];
		for (i = 0; i + 1 < kv->elements; i += 2) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 256;
				nr = reallocarray(*rows, cap, sizeof(*nr));
				if (nr == NULL)
					dm_log_oom();
				*rows = nr;
			}
			if (((*rows)[*n].row = strdup(kv->element[i]->str)) ==
			    NULL)
				dm_log_oom();
			(*rows)[(*n)++].count = strtoull(kv->element[i + 1]->str,
			    NULL, 10);
		}
		freeReplyObject(rep);
	} while (strcmp(cursor, "0") != 0);
	return DM_OK;
}

dm_status
rpt_src_read(dm_redis *r, const rpt_group *g, char **policy, rpt_rowc **rows,
    size_t *n)
{
	char key[SRC_KEY_MAX];
	const char *argv[3] = { "HGET", key, "policy" };
	redisReply *rep;
	dm_status st;

	*policy = NULL;
	*rows = NULL;
	*n = 0;
	src_key(key, r, g, "meta", true);
	if ((st = dm_redis_command(r, 3, argv, &rep)) != DM_OK)
		return st;
	if (rep->type == REDIS_REPLY_STRING && (*policy = strdup(rep->str)) ==
	    NULL)
		dm_log_oom();
	freeReplyObject(rep);
	if (*policy == NULL)
		return DM_NOTFOUND;	/* expired (RedisTTL) or done */
	src_key(key, r, g, "rows", true);
	if ((st = src_read_rows(r, key, rows, n)) != DM_OK) {
		rpt_src_rows_free(*rows, *n);
		free(*policy);
		*policy = NULL;
		*rows = NULL;
		*n = 0;
	}
	return st;
}

void
rpt_src_rows_free(rpt_rowc *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(rows[i].row);
	free(rows);
}

/* Run a script that answers 1 (done) or 0 (the lease was not ours). */
static dm_status
src_owned(dm_redis *r, const char *script, int nkeys, const char **keys,
    int nargs, const char **args)
{
	redisReply *rep;
	dm_status st;

	if ((st = src_eval(r, script, nkeys, keys, nargs, args, &rep)) !=
	    DM_OK)
		return st;
	st = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1 ? DM_OK :
	    DM_NOTFOUND;
	freeReplyObject(rep);
	return st;
}

dm_status
rpt_src_done(dm_redis *r, const rpt_group *g, const char *owner,
    const char *report_id, long sent_ttl)
{
	char k[6][SRC_KEY_MAX], ttl[32];
	const char *keys[6] = { k[0], k[1], k[2], k[3], k[4], k[5] };
	const char *args[4] = { owner, g->member, report_id, ttl };

	src_key(k[0], r, g, "claim", true);
	src_key(k[1], r, g, "state", true);
	src_key(k[2], r, g, "rows", true);
	src_key(k[3], r, g, "meta", true);
	src_key(k[4], r, g, "groups", false);
	src_key(k[5], r, g, "sent", true);
	snprintf(ttl, sizeof(ttl), "%ld", sent_ttl > 0 ? sent_ttl : 1);
	return src_owned(r, src_done_lua, 6, keys, 4, args);
}

dm_status
rpt_src_failed(dm_redis *r, const rpt_group *g, const char *owner,
    int64_t now, long backoff_sec)
{
	char claim[SRC_KEY_MAX], state[SRC_KEY_MAX], next[32];
	const char *keys[2] = { claim, state }, *args[2] = { owner, next };

	src_key(claim, r, g, "claim", true);
	src_key(state, r, g, "state", true);
	snprintf(next, sizeof(next), "%" PRId64, now + backoff_sec);
	return src_owned(r, src_failed_lua, 2, keys, 2, args);
}

dm_status
rpt_src_renew(dm_redis *r, const rpt_group *g, const char *owner,
    long lease_ms)
{
	char claim[SRC_KEY_MAX], lease[32];
	const char *keys[1] = { claim }, *args[2] = { owner, lease };

	src_key(claim, r, g, "claim", true);
	snprintf(lease, sizeof(lease), "%ld", lease_ms);
	return src_owned(r, src_renew_lua, 1, keys, 2, args);
}

dm_status
rpt_src_release(dm_redis *r, const rpt_group *g, const char *owner)
{
	char claim[SRC_KEY_MAX];
	const char *keys[1] = { claim }, *args[1] = { owner };

	src_key(claim, r, g, "claim", true);
	return src_owned(r, src_release_lua, 1, keys, 1, args);
}

/* ---- as an rpt_source ---------------------------------------------------- */

static dm_status
src_list(void *h, int64_t now, const char *only, rpt_group **out, size_t *n)
{
	return rpt_src_list(h, now, only, out, n);
}

static dm_status
src_claim(void *h, const rpt_group *g, const char *owner, int64_t now,
    long lease_ms, rpt_claim *c)
{
	return rpt_src_claim(h, g, owner, now, lease_ms, c);
}

static dm_status
src_read(void *h, const rpt_group *g, char **policy, rpt_rowc **rows,
    size_t *n)
{
	return rpt_src_read(h, g, policy, rows, n);
}

static dm_status
src_done(void *h, const rpt_group *g, const char *owner, const char *id,
    long ttl)
{
	return rpt_src_done(h, g, owner, id, ttl);
}

static dm_status
src_failed(void *h, const rpt_group *g, const char *owner, int64_t now,
    long backoff_sec)
{
	return rpt_src_failed(h, g, owner, now, backoff_sec);
}

static dm_status
src_renew(void *h, const rpt_group *g, const char *owner, long lease_ms)
{
	return rpt_src_renew(h, g, owner, lease_ms);
}

static dm_status
src_release(void *h, const rpt_group *g, const char *owner)
{
	return rpt_src_release(h, g, owner);
}

void
rpt_src_redis(dm_redis *r, rpt_source *out)
{
	out->h = r;
	out->list = src_list;
	out->claim = src_claim;
	out->read = src_read;
	out->done = src_done;
	out->failed = src_failed;
	out->renew = src_renew;
	out->release = src_release;
}
