/*
 * lib/journal.c - the local append-only journal of updates: segment
 * files in one directory, written by one thread per process, read back
 * linearly and tolerantly (a torn or damaged record is skipped, logged
 * with its file and byte offset, and reading goes on at the next line).
 *
 * Files in a journal directory:
 *   seg-<time>-<pid>-<n>.open  the segment a writer appends to. The
 *                              writer holds flock(LOCK_EX) on it while it
 *                              has it open; unlocked, its writer is gone
 *                              (crashed) and it must be replayed.
 *   seg-<time>-<pid>-<n>.log   a closed segment.
 *   tmp-seg-...                a segment being created: it is locked
 *                              before it is linked to its .open name, so
 *                              a live writer's .open is never seen
 *                              unlocked. A crash at that moment can leave
 *                              an empty tmp- file behind (harmless).
 * <time> (UTC seconds, never going back within a process), <pid> and
 * <n> (a process-wide counter) are zero-padded: names sort in write
 * order within a process and are unique among processes.
 *
 * A record is one line, "<crc32 %08x> <payload length> <payload>\n",
 * written with one write(2). The payload is the fields writer seq domain
 * begin end count policy row [fp], separated by one space, each with
 * '%', space and control bytes written as %XX. The fingerprint field is
 * written only when the update has one, so that a journal without
 * fingerprints reads the same in older and newer versions.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <zlib.h>

#include "dm_hex.h"
#include "dm_journal.h"
#include "dm_log.h"

#define SEG_PREFIX	"seg-"
#define SEG_OPEN	".open"
#define SEG_LOG		".log"
#define TMP_PREFIX	"tmp-"
#define STEM_MAX	64		/* "seg-" + 10 + 1 + 10 + 1 + 10 */
#define NAME_MAX_LEN	(STEM_MAX + 16)
#define HDR_MAX		32	/* "%08x %zu ": 8 + 1 + 20 + 1 */
#define NFIELDS		9	/* the last one (fp) optional */
#define START_TRIES	16

struct dm_journal {
	char *dir;
	int dirfd;
	int fd;			/* the segment being written, or -1 */
	char stem[STEM_MAX];	/* its name without the suffix */
	size_t size;		/* bytes of whole records in it */
	size_t seg_bytes;	/* rotate when size reaches this; 0: never */
	int sync_ms, sync_records;
	int pending;		/* records written since the last sync */
	struct timespec first_pending;
	char *buf;		/* the record being built */
	size_t cap;
};

/* Segment names of this process: time never goes back, n only grows. */
static pthread_mutex_t name_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t name_time;
static uint32_t name_count;

static void
seg_stem(char *out, size_t len)
{
	int64_t t = (int64_t)time(NULL);
	uint32_t n;

	pthread_mutex_lock(&name_lock);
	if (t < name_time)
		t = name_time;
	name_time = t;
	n = ++name_count;
	pthread_mutex_unlock(&name_lock);
	snprintf(out, len, SEG_PREFIX "%010" PRId64 "-%010ld-%010" PRIu32, t,
	    (long)getpid(), n);
}

static void
seg_name(char *out, size_t len, const char *prefix, const char *stem,
    const char *suffix)
{
	snprintf(out, len, "%s%s%s", prefix, stem, suffix);
}

static bool
seg_exists(int dirfd, const char *stem, const char *suffix)
{
	char name[NAME_MAX_LEN];

	seg_name(name, sizeof(name), "", stem, suffix);
	return faccessat(dirfd, name, F_OK, 0) == 0;
}

/*
 * Create a segment as tmp-<stem>, lock it, link it to <stem>.open (which
 * fails if that exists) and drop the tmp name. 0, or an errno value
 * (EEXIST: try another stem).
 */
static int
seg_create(dm_journal *j, const char *stem)
{
	char tmp[NAME_MAX_LEN], name[NAME_MAX_LEN];
	bool linked = false;
	int fd, e = 0;

	seg_name(tmp, sizeof(tmp), TMP_PREFIX, stem, "");
	seg_name(name, sizeof(name), "", stem, SEG_OPEN);
	fd = openat(j->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_APPEND |
	    O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	if (flock(fd, LOCK_EX) != 0)
		e = errno;
	else if (seg_exists(j->dirfd, stem, SEG_LOG))
		e = EEXIST;
	else if (linkat(j->dirfd, tmp, j->dirfd, name, 0) != 0)
		e = errno;
	else
		linked = true;
	unlinkat(j->dirfd, tmp, 0);
	/* The new name must survive a crash as long as the data synced. */
	if (linked && fsync(j->dirfd) != 0) {
		e = errno;
		unlinkat(j->dirfd, name, 0);
	}
	if (e != 0) {
		close(fd);
		return e;
	}
	j->fd = fd;
	strlcpy(j->stem, stem, sizeof(j->stem));
	j->size = 0;
	j->pending = 0;
	return 0;
}

static int
seg_start(dm_journal *j)
{
	char stem[STEM_MAX];
	int e = EEXIST, tries;

	for (tries = 0; tries < START_TRIES && e == EEXIST; tries++) {
		seg_stem(stem, sizeof(stem));
		e = seg_create(j, stem);
	}
	return e;
}

/* seg_start with a log line: for the writer, after open. */
static dm_status
seg_need(dm_journal *j)
{
	int e;

	if (j->fd >= 0)
		return DM_OK;
	if ((e = seg_start(j)) == 0)
		return DM_OK;
	dm_err("journal %s: cannot start a segment: %s", j->dir, strerror(e));
	return DM_TEMPFAIL;
}

static dm_status
seg_sync(dm_journal *j)
{
	if (j->fd < 0 || j->pending == 0)
		return DM_OK;
	if (fdatasync(j->fd) != 0) {
		dm_err("journal %s/%s" SEG_OPEN ": fdatasync: %s", j->dir,
		    j->stem, strerror(errno));
		return DM_TEMPFAIL;
	}
	j->pending = 0;
	return DM_OK;
}

/*
 * Sync and close the segment being written: renamed to .log, or removed
 * when it holds nothing. Should the rename fail, the .open left behind is
 * unlocked once closed, so it is still listed and replayed.
 */
static dm_status
seg_finish(dm_journal *j)
{
	char open_name[NAME_MAX_LEN], log_name[NAME_MAX_LEN];
	dm_status st;
	int rc;

	if (j->fd < 0)
		return DM_OK;
	st = seg_sync(j);
	seg_name(open_name, sizeof(open_name), "", j->stem, SEG_OPEN);
	seg_name(log_name, sizeof(log_name), "", j->stem, SEG_LOG);
	if (j->size == 0)
		rc = unlinkat(j->dirfd, open_name, 0);
	else
		rc = renameat(j->dirfd, open_name, j->dirfd, log_name);
	if (rc != 0 || fsync(j->dirfd) != 0)
		dm_warn("journal %s/%s: closing: %s", j->dir, open_name,
		    strerror(errno));
	close(j->fd);
	j->fd = -1;
	j->size = 0;
	j->pending = 0;
	return st;
}

/* mkdir -p, mode 0700 for what it creates; 0 or an errno value. */
static int
dir_make(const char *dir)
{
	char *copy, *p, c;
	int e = 0;

	if (*dir == '\0')
		return ENOENT;
	if ((copy = strdup(dir)) == NULL)
		return ENOMEM;
	for (p = copy + 1; e == 0; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (mkdir(copy, 0700) != 0 && errno != EEXIST)
			e = errno;
		*p = c;
		if (c == '\0')
			break;
	}
	free(copy);
	return e;
}

dm_journal *
dm_journal_open(const char *dir, size_t seg_bytes, int sync_ms,
    int sync_records, char *err, size_t errlen)
{
	dm_journal *j;
	int e;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	j->dirfd = j->fd = -1;
	j->seg_bytes = seg_bytes;
	j->sync_ms = sync_ms;
	j->sync_records = sync_records;
	if ((j->dir = strdup(dir)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((e = dir_make(dir)) != 0 || (j->dirfd = open(dir, O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(e ? e : errno));
		goto fail;
	}
	if ((e = seg_start(j)) != 0) {
		snprintf(err, errlen, "%s: cannot start a segment: %s", dir,
		    strerror(e));
		goto fail;
	}
	return j;
fail:
	dm_journal_close(j);
	return NULL;
}

void
dm_journal_close(dm_journal *j)
{
	if (j == NULL)
		return;
	seg_finish(j);
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j->buf);
	free(j->dir);
	free(j);
}

/* --- writing records --------------------------------------------------- */

static bool
esc_needed(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == ' ' || c == '%';
}

static size_t
esc_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += esc_needed((unsigned char)*s) ? 3 : 1;
	return n;
}

static char *
esc_put(char *p, const char *s)
{
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (!esc_needed(c))
			*p++ = (char)c;
		else {
			dm_hex_escape(c, p);	/* its NUL is overwritten next */
			p += 3;
		}
	}
	return p;
}

static bool
update_valid(const dm_update *u)
{
	return memchr(u->writer, '\0', sizeof(u->writer)) != NULL &&
	    u->writer[0] != '\0' && u->seq > 0 && u->domain != NULL &&
	    u->domain[0] != '\0' && u->policy != NULL && u->row != NULL &&
	    memchr(u->fp, '\0', sizeof(u->fp)) != NULL;
}

/* The whole line of u in j->buf: *rec, *len. */
static dm_status
record_build(dm_journal *j, const dm_update *u, const char **rec,
    size_t *len)
{
	char seq[24], begin[24], end[24], count[16], hdr[HDR_MAX + 1];
	const char *f[NFIELDS] = { u->writer, seq, u->domain, begin, end,
	    count, u->policy, u->row, u->fp };
	size_t nf = u->fp[0] != '\0' ? NFIELDS : NFIELDS - 1;
	size_t plen = nf - 1, i;
	char *payload, *p;
	int h;

	snprintf(seq, sizeof(seq), "%" PRIu64, u->seq);
	snprintf(begin, sizeof(begin), "%" PRId64, u->begin);
	snprintf(end, sizeof(end), "%" PRId64, u->end);
	snprintf(count, sizeof(count), "%" PRIu32, u->count);
	for (i = 0; i < nf; i++)
		plen += esc_len(f[i]);
	if (HDR_MAX + plen + 1 > j->cap) {
		size_t ncap = HDR_MAX + plen + 1 + 256;

		if ((p = realloc(j->buf, ncap)) == NULL)
			dm_log_oom();
		j->buf = p;
		j->cap = ncap;
	}
	payload = p = j->buf + HDR_MAX;
	for (i = 0; i < nf; i++) {
		if (i > 0)
			*p++ = ' ';
		p = esc_put(p, f[i]);
	}
	*p = '\n';
	h = snprintf(hdr, sizeof(hdr), "%08lx %zu ",
	    (unsigned long)crc32_z(0, (const Bytef *)payload, plen), plen);
	memcpy(payload - h, hdr, (size_t)h);
	*rec = payload - h;
	*len = (size_t)h + plen + 1;
	return DM_OK;
}

/*
 * One write(2) of the whole record. A short write (disk full) is cut off
 * again so that the next record starts a line; if even that fails, the
 * segment is closed with the torn piece as its tail, where readers expect
 * one.
 */
static dm_status
record_write(dm_journal *j, const char *rec, size_t len)
{
	ssize_t n;
	int e;

	do
		n = write(j->fd, rec, len);
	while (n < 0 && errno == EINTR);
	if (n >= 0 && (size_t)n == len) {
		j->size += len;
		return DM_OK;
	}
	e = n < 0 ? errno : ENOSPC;
	dm_err("journal %s/%s" SEG_OPEN ": write: %s", j->dir, j->stem,
	    strerror(e));
	if (n > 0 && ftruncate(j->fd, (off_t)j->size) != 0)
		seg_finish(j);
	return DM_TEMPFAIL;
}

static bool
sync_due(const dm_journal *j)
{
	struct timespec now;
	int64_t ms;

	if (j->sync_records > 0 && j->pending >= j->sync_records)
		return true;
	if (j->sync_ms <= 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (int64_t)(now.tv_sec - j->first_pending.tv_sec) * 1000 +
	    (now.tv_nsec - j->first_pending.tv_nsec) / 1000000;
	return ms >= j->sync_ms;
}

dm_status
dm_journal_append(dm_journal *j, const dm_update *u)
{
	const char *rec;
	size_t len;
	dm_status st;

	if (!update_valid(u)) {
		dm_err("journal %s: refused an update without writer, "
		    "sequence, domain, policy or row", j->dir);
		return DM_PERMFAIL;
	}
	if ((st = seg_need(j)) != DM_OK ||
	    (st = record_build(j, u, &rec, &len)) != DM_OK ||
	    (st = record_write(j, rec, len)) != DM_OK)
		return st;
	if (j->pending++ == 0)
		clock_gettime(CLOCK_MONOTONIC, &j->first_pending);
	/* The record is written: failures below are logged, not returned. */
	if (sync_due(j))
		seg_sync(j);
	if (j->seg_bytes > 0 && j->size >= j->seg_bytes)
		dm_journal_rotate(j);
	return DM_OK;
}

dm_status
dm_journal_sync(dm_journal *j)
{
	return seg_sync(j);
}

dm_status
dm_journal_rotate(dm_journal *j)
{
	dm_status st;

	if (j->fd >= 0 && j->size == 0)
		return DM_OK;
	st = seg_finish(j);
	if (seg_need(j) != DM_OK)
		return DM_TEMPFAIL;
	return st;
}

int
dm_journal_sync_fd(const dm_journal *j)
{
	if (j->fd < 0) {
		errno = EBADF;
		return -1;
	}
	return fcntl(j->fd, F_DUPFD_CLOEXEC, 0);
}

bool
dm_journal_closed_path(const dm_journal *j, char *out, size_t len)
{
	if (j->fd < 0 || j->size == 0)
		return false;
	return (size_t)snprintf(out, len, "%s/%s" SEG_LOG, j->dir, j->stem) <
	    len;
}

size_t
dm_journal_bytes(const dm_journal *j)
{
	return j->fd < 0 ? 0 : j->size;
}

/* --- listing and removing segments -------------------------------------- */

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A .open segment whose writer is gone: nobody holds its lock. */
static bool
seg_orphan(int dirfd, const char *name)
{
	bool unlocked;
	int fd;

	if ((fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return false;
	unlocked = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return unlocked;
}

static bool
seg_listed(int dirfd, const char *name, const dm_journal *writing)
{
	char open_name[NAME_MAX_LEN];

	if (strncmp(name, SEG_PREFIX, strlen(SEG_PREFIX)) != 0)
		return false;
	if (has_suffix(name, SEG_LOG))
		return true;
	if (!has_suffix(name, SEG_OPEN))
		return false;
	if (writing != NULL && writing->fd >= 0) {
		seg_name(open_name, sizeof(open_name), "", writing->stem,
		    SEG_OPEN);
		if (strcmp(name, open_name) == 0)
			return false;
	}
	return seg_orphan(dirfd, name);
}

static int
seg_cmp(const void *a, const void *b)
{
	return strcmp(((const dm_journal_seg *)a)->path,
	    ((const dm_journal_seg *)b)->path);
}

dm_status
dm_journal_segments(const char *dir, const dm_journal *writing,
    dm_journal_seg **out, size_t *n)
{
	dm_journal_seg *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	dm_status st = DM_OK;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*n = 0;
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return DM_OK;
		dm_err("journal %s: %s", dir, strerror(errno));
		return DM_TEMPFAIL;
	}
	while (errno = 0, (de = readdir(d)) != NULL) {
		if (!seg_listed(dirfd(d), de->d_name, writing))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL)
				dm_log_oom();
			v = nv;
		}
		if (snprintf(v[cnt].path, sizeof(v[cnt].path), "%s/%s", dir,
		    de->d_name) >= (int)sizeof(v[cnt].path)) {
			dm_err("journal %s: path too long", dir);
			st = DM_PERMFAIL;
			break;
		}
		cnt++;
	}
	if (st == DM_OK && de == NULL && errno != 0) {
		dm_err("journal %s: readdir: %s", dir, strerror(errno));
		st = DM_TEMPFAIL;
	}
	closedir(d);
	if (st != DM_OK) {
		free(v);
		return st;
	}
	if (cnt > 0)
		qsort(v, cnt, sizeof(*v), seg_cmp);
	*out = v;
	*n = cnt;
	return DM_OK;
}

dm_status
dm_journal_remove(const char *path)
{
	char dir[4096], *slash;
	int dfd;

	if (unlink(path) != 0 && errno != ENOENT) {
		dm_err("journal %s: unlink: %s", path, strerror(errno));
		return DM_TEMPFAIL;
	}
	/* A removed segment must not come back after a crash. */
	if (strlcpy(dir, path, sizeof(dir)) >= sizeof(dir))
		return DM_OK;
	if ((slash = strrchr(dir, '/')) == NULL)
		strlcpy(dir, ".", sizeof(dir));
	else
		slash[slash == dir ? 1 : 0] = '\0';
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return DM_OK;
}

/* --- reading records ---------------------------------------------------- */

/*
 * Unescape n bytes of s into out, NUL-terminated; the end of out, or NULL
 * for a raw control byte, a bad %XX or an escaped NUL.
 */
static char *
unesc(const char *s, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20)
			return NULL;
	/* decoding never lengthens: the caller's n + 1 bytes are room */
	if (!dm_hex_decode(s, n, out, n + 1))
		return NULL;
	return out + strlen(out) + 1;
}

/* Decimal digits only, at most max. */
static bool
num_u64(const char *s, uint64_t max, uint64_t *v)
{
	uint64_t n = 0, d;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		d = (uint64_t)(*s - '0');
		if (n > (max - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*v = n;
	return true;
}

static bool
num_i64(const char *s, int64_t *v)
{
	uint64_t m;

	if (*s != '-') {
		if (!num_u64(s, INT64_MAX, &m))
			return false;
		*v = (int64_t)m;
		return true;
	}
	if (!num_u64(s + 1, (uint64_t)INT64_MAX + 1, &m))
		return false;
	*v = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
	return true;
}

/* The fields of a payload of n bytes into u, strings in out (n + 1). */
static const char *
payload_decode(const char *p, size_t n, dm_update *u, char *out)
{
	const char *end = p + n, *sp;
	char *f[NFIELDS] = { NULL };
	uint64_t v;
	size_t i;

	for (i = 0; i < NFIELDS; i++) {
		if ((sp = memchr(p, ' ', (size_t)(end - p))) == NULL)
			sp = end;
		if ((i < NFIELDS - 2 && sp == end) ||
		    (i == NFIELDS - 1 && sp != end))
			return "wrong number of fields";
		f[i] = out;
		if ((out = unesc(p, (size_t)(sp - p), out)) == NULL)
			return "bad escaping";
		if (sp == end)
			break;
		p = sp + 1;
	}
	if (f[8] != NULL && (strlen(f[8]) != DM_FP_LEN ||
	    f[8][strspn(f[8], "0123456789abcdef")] != '\0'))
		return "bad fingerprint";
	/* dm_update.h's alphabet: an escaped space or byte is no writer. */
	if (f[0][0] == '\0' || f[0][strspn(f[0], "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-")] != '\0' ||
	    strlcpy(u->writer, f[0], sizeof(u->writer)) >= sizeof(u->writer))
		return "bad writer";
	if (!num_u64(f[1], UINT64_MAX, &u->seq) || u->seq == 0)
		return "bad sequence number";
	if (f[2][0] == '\0')
		return "no domain";
	if (!num_i64(f[3], &u->begin) || !num_i64(f[4], &u->end))
		return "bad period";
	if (!num_u64(f[5], UINT32_MAX, &v))
		return "bad count";
	u->domain = f[2];
	u->count = (uint32_t)v;
	u->policy = f[6];
	u->row = f[7];
	if (f[8] != NULL)
		memcpy(u->fp, f[8], DM_FP_LEN + 1);
	return NULL;
}

/* One line of n bytes (without its '\n'); NULL, or why it is bad. */
static const char *
record_parse(const char *line, size_t n, dm_update *u, char *out)
{
	uint64_t len = 0;
	uint32_t crc = 0;
	int v;
	size_t i;

	if (n < 11)
		return "too short";
	for (i = 0; i < 8; i++) {
		if ((v = dm_hex_value(line[i])) < 0)
			return "bad checksum field";
		crc = crc << 4 | (uint32_t)v;
	}
	if (line[8] != ' ')
		return "bad checksum field";
	for (i = 9; i < n && line[i] >= '0' && line[i] <= '9'; i++) {
		if (i - 9 == 19)
			return "bad length field";
		len = len * 10 + (uint64_t)(line[i] - '0');
	}
	if (i == 9 || i == n || line[i] != ' ')
		return "bad length field";
	i++;
	if (len != n - i)
		return "length mismatch";
	if (crc32_z(0, (const Bytef *)line + i, n - i) != crc)
		return "checksum mismatch";
	return payload_decode(line + i, n - i, u, out);
}

static void
record_bad(const char *path, size_t off, const char *why, size_t *bad)
{
	(*bad)++;
	dm_warn("journal %s: record at byte offset %zu skipped: %s", path, off,
	    why);
}

int
dm_journal_parse(const char *name, const char *buf, size_t size,
    dm_journal_fn fn, void *arg, size_t *bad)
{
	char *out = NULL, *nout;
	size_t off = 0, n, cap = 0, nbad;
	const char *nl, *why;
	dm_update u;
	int rc = 0;

	if (bad == NULL)
		bad = &nbad;
	*bad = 0;
	while (rc == 0 && off < size) {
		if ((nl = memchr(buf + off, '\n', size - off)) == NULL) {
			record_bad(name, off, "incomplete last record", bad);
			break;
		}
		n = (size_t)(nl - buf) - off;
		if (n + 1 > cap) {
			if ((nout = realloc(out, n + 1)) == NULL)
				dm_log_oom();
			out = nout;
			cap = n + 1;
		}
		memset(&u, 0, sizeof(u));
		if ((why = record_parse(buf + off, n, &u, out)) != NULL)
			record_bad(name, off, why, bad);
		else
			rc = fn(&u, arg);
		off += n + 1;
	}
	free(out);
	return rc;
}

int
dm_journal_read(const char *path, dm_journal_fn fn, void *arg,
    size_t *bad)
{
	void *map = MAP_FAILED;
	size_t size = 0;
	struct stat sb;
	int fd, rc = -1, e;

	if (bad != NULL)
		*bad = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0)
		goto out;
	if ((size = (size_t)sb.st_size) == 0) {
		rc = 0;
		goto out;
	}
	if ((map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0)) ==
	    MAP_FAILED)
		goto out;
	madvise(map, size, MADV_SEQUENTIAL);
	rc = dm_journal_parse(path, map, size, fn, arg, bad);
out:
	e = errno;
	if (rc == -1)
		dm_warn("journal %s: cannot read: %s", path, strerror(e));
	if (map != MAP_FAILED)
		munmap(map, size);
	if (fd >= 0)
		close(fd);
	errno = e;
	return rc;
}
