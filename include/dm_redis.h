/*
 * dm_redis.h - the Redis backend of the counters (hiredis): one atomic
 * server-side Lua script per update, pipelined; keys of one policy
 * domain share the {domain} hash tag.
 *
 * Keys (P = RedisKeyPrefix, default "dmarc:"; G = "<begin>:<policy id>"):
 *   P{dom}:rows:G     HASH  row -> count
 *   P{dom}:meta:G     HASH  policy, begin, end
 *   P{dom}:groups     ZSET  G scored by end: the pending groups
 *   P{dom}:writers    HASH  writer -> highest sequence applied
 *   P{dom}:fp:G       SET   fingerprints of the messages counted in G:
 *                           a repeat is not counted again (dm_update.h)
 *   Pdomains          SET   domains with pending groups (its own command,
 *                           sent before the script: cluster-safe)
 * rows, meta and fp expire ttl seconds after the period ends; groups and
 * writers are refreshed to the latest such time (ttl 0: no expiry).
 *
 * One dm_redis is one connection: use it from one thread at a time.
 * SIGPIPE is blocked in the calling thread while it talks to Redis (and
 * one it raised is swallowed), so callers need not ignore it.
 */
#ifndef DM_REDIS_H
#define DM_REDIS_H

#include <stddef.h>

#include "dm_status.h"
#include "dm_update.h"

typedef struct dm_redis dm_redis;

/*
 * url: redis://[[user]:password@]host[:port][/db] (host may be [IPv6];
 * user and password %XX-escaped; port 6379 by default) or
 * unix:///path[?db=N][&password=P] or
 * redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/name
 * [?db=N][&password=P][&sentinel_password=P][&wait=N] (up to 8
 * sentinels, port 26379 by default: the master is asked of them at every
 * connect and must say ROLE master; a batch is committed once WAIT says
 * wait replicas have it, 1 by default).
 * prefix NULL means "dmarc:".
 * Connects lazily; timeout_ms bounds connect and every reply. NULL with
 * a reason in err (which never repeats the URL: it may hold a password).
 */
dm_redis *dm_redis_new(const char *url, const char *prefix, int timeout_ms,
    long ttl_sec, char *err, size_t errlen);
void dm_redis_free(dm_redis *r);

/*
 * Apply n updates, pipelined, in order. *done is how many are known
 * committed (applied now, or found already applied: the sequence test).
 * DM_OK when all are; DM_TEMPFAIL when the connection failed or timed
 * out or Redis answered an error (the rest, from *done on, must be
 * retried later, in order: the connection is dropped and re-made at the
 * next call). An update no store can hold (a bug upstream: no domain or
 * one with '{' '}' or over 255 bytes, no writer, seq 0, no policy or
 * row, end <= begin) is dropped with an error log line and counted in
 * *done, so that it cannot block the updates behind it.
 *
 * u[] must hold each writer's updates in sequence order with none of
 * them left out in between, and everything of a writer before its first
 * update in u[] must be committed: what the retry rule above gives.
 */
dm_status dm_redis_apply(dm_redis *r, const dm_update *u, size_t n,
    size_t *done);

/*
 * PING (connecting first if needed); DM_OK when Redis answers,
 * DM_PERMFAIL when it refuses us for good (wrong password or db, ACL),
 * DM_TEMPFAIL otherwise.
 */
dm_status dm_redis_ping(dm_redis *r);

/* The URL for log lines, the password shown as "***". */
const char *dm_redis_where(const dm_redis *r);

/*
 * Any other command, on the same connection (the report generator's
 * reads and claims): DM_OK with *out the reply (never an error reply:
 * that is DM_TEMPFAIL, logged), to be freed with freeReplyObject().
 */
struct redisReply;
dm_status dm_redis_command(dm_redis *r, int argc, const char **argv,
    struct redisReply **out);
const char *dm_redis_prefix(const dm_redis *r);

#endif
