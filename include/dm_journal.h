/*
 * dm_journal.h - the local append-only journal of updates: the embedded
 * store when no Redis is configured, and the spool while Redis is away.
 *
 * A journal is a directory (StateDir/journal) of segment files, each
 * named so that lexical order is write order within a process, unique
 * among the processes sharing the directory:
 *   seg-<unix time>-<pid>-<counter>.open   being written (flock held)
 *   seg-<unix time>-<pid>-<counter>.log    closed
 * A .open file whose lock nobody holds was left by a writer that died;
 * it is listed with the closed ones, since it must be replayed too.
 *
 * A record is one line, written with a single write(2):
 *   "<crc32 8 hex> <length> <payload>\n"
 * with the payload the update's fields writer seq domain begin end count
 * policy row, separated by one space, each escaped as %XX for '%', space
 * and bytes below 0x20 (and 0x7f), so that it holds no newline. The CRC
 * (zlib crc32) and the length cover the payload. A record whose line is
 * incomplete or whose CRC, length or escaping is wrong (a torn tail
 * after a crash) is skipped with a log line naming the file and byte
 * offset, and reading goes on with the next line.
 *
 * One journal (dm_journal *) is used by one thread at a time; there is
 * no locking inside. Several journals may write the same directory, in
 * one process or several. Listing, reading and removing may run in
 * other threads or processes.
 */
#ifndef DM_JOURNAL_H
#define DM_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "dm_status.h"
#include "dm_update.h"

typedef struct dm_journal dm_journal;

/*
 * Open for appending, creating the directory (and missing parents) mode
 * 0700. A new segment is started at open and whenever the current one
 * reaches seg_bytes (0: no size limit). fdatasync happens once
 * sync_records records are unsynced, or at the first append when the
 * oldest unsynced record is sync_ms milliseconds old, whichever comes
 * first; a value <= 0 turns that trigger off. The time trigger is only
 * looked at when appending: an idle writer calls dm_journal_sync (cheap
 * when nothing is pending). NULL with a message in err on failure.
 */
dm_journal *dm_journal_open(const char *dir, size_t seg_bytes, int sync_ms,
    int sync_records, char *err, size_t errlen);
/* Syncs; the segment becomes .log (or is removed if it holds nothing). */
void dm_journal_close(dm_journal *j);
/*
 * DM_OK: the record is written (a later fdatasync failure is only
 * logged). DM_TEMPFAIL: not written (disk full, I/O error: with a log
 * line). DM_PERMFAIL: an update without writer, seq, domain, policy or
 * row (NULL).
 */
dm_status dm_journal_append(dm_journal *j, const dm_update *u);
/* fdatasync now if anything is unsynced; DM_TEMPFAIL on I/O error. */
dm_status dm_journal_sync(dm_journal *j);
/*
 * Close the current segment so that it can be replayed; start a new one.
 * Nothing happens when the current segment is empty.
 */
dm_status dm_journal_rotate(dm_journal *j);

/*
 * Group commit: a new descriptor of the segment being written (-1 when
 * there is none, errno set), for an fdatasync by a thread that does not
 * hold the journal's lock while others append. Records written before
 * the call are durable once that fdatasync returns 0, even if the
 * segment is closed meanwhile (closing syncs it too). The caller closes
 * it.
 */
int dm_journal_sync_fd(const dm_journal *j);

/*
 * The path the segment being written gets when it is closed (its .log
 * name), so that its writer can remove it once everything in it is
 * committed elsewhere; false when it holds no record.
 */
bool dm_journal_closed_path(const dm_journal *j, char *out, size_t len);

/* Bytes of whole records in the segment being written. */
size_t dm_journal_bytes(const dm_journal *j);

/* Reading: the closed segments of a directory, oldest first. */
typedef struct dm_journal_seg {
	char path[4096];
} dm_journal_seg;

/*
 * The closed segments (.log) and those a dead writer left (.open with no
 * lock held), sorted by name; never writing's current one (writing may be
 * NULL: a live writer's segment is still left out, by its lock). *out is
 * freed by the caller (NULL when *n is 0). A missing directory has none.
 */
dm_status dm_journal_segments(const char *dir, const dm_journal *writing,
    dm_journal_seg **out, size_t *n);

/*
 * Call fn for every good record of one segment, in order; the update's
 * strings live until fn returns. Stops early when fn returns non-zero
 * and returns that (use positive values); 0 when all was read; -1 when
 * the file could not be read at all (logged, errno set: ENOENT if it is
 * gone). *bad (may be NULL) counts skipped records, each logged
 * once with the file and byte offset. The file is mapped: it must not be
 * truncated while being read (closed segments never are).
 */
typedef int (*dm_journal_fn)(const dm_update *u, void *arg);
int dm_journal_read(const char *path, dm_journal_fn fn, void *arg,
    size_t *bad);
/*
 * The parser under dm_journal_read: the size bytes of a segment at buf,
 * as dm_journal_read says (name only names it in log lines), never -1:
 * no I/O here, and memory follows dm_log_oom. The fuzz target's entry.
 */
int dm_journal_parse(const char *name, const char *buf, size_t size,
    dm_journal_fn fn, void *arg, size_t *bad);

/* A segment whose updates are all committed elsewhere (gone: DM_OK). */
dm_status dm_journal_remove(const char *path);

#endif
