/*
 * tests/unit/test_journal.c - the local journal and the update record:
 * every awkward byte round trips; segments rotate by size and are listed
 * in write order without the one being written; a crashed writer's
 * segment is listed and read; torn, corrupted and garbage records are
 * skipped with a warning naming the file and offset; batched fdatasync
 * (counted through the linker's --wrap=fdatasync); policy ids; and a
 * 100,000-record round trip whose time is printed, never asserted.
 * Everything happens in a mkdtemp directory removed at the end.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>
#include <zlib.h>

#include "dm_journal.h"
#include "dm_update.h"
#include "tap.h"

#define PERIOD_BEGIN	INT64_C(1767225600)	/* 2026-01-01 UTC */

static char base[] = "/tmp/test_journal.XXXXXX";

/* --- fdatasync, counted (the program is linked with --wrap=fdatasync) --- */

int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
static int syncs;

int
__wrap_fdatasync(int fd)
{
	syncs++;
	return __real_fdatasync(fd);
}

/* --- helpers ------------------------------------------------------------ */

static void
path_in(char *out, size_t len, const char *name)
{
	if (snprintf(out, len, "%s/%s", base, name) >= (int)len)
		tap_bail("path too long: %s", name);
}

static dm_update
mk(const char *writer, uint64_t seq, const char *domain, const char *policy,
    const char *row)
{
	dm_update u;

	memset(&u, 0, sizeof(u));
	strlcpy(u.writer, writer, sizeof(u.writer));
	u.seq = seq;
	u.domain = (char *)domain;
	u.begin = PERIOD_BEGIN;
	u.end = PERIOD_BEGIN + 86400;
	u.policy = (char *)policy;
	u.row = (char *)row;
	u.count = 1;
	return u;
}

static bool
same_update(const dm_update *a, const dm_update *b)
{
	return strcmp(a->writer, b->writer) == 0 && a->seq == b->seq &&
	    strcmp(a->domain, b->domain) == 0 && a->begin == b->begin &&
	    a->end == b->end && a->count == b->count &&
	    strcmp(a->policy, b->policy) == 0 && strcmp(a->row, b->row) == 0 &&
	    strcmp(a->fp, b->fp) == 0;
}

/* Copies of what dm_journal_read hands over. */
struct got {
	dm_update *v;
	size_t n, cap;
	size_t stop_after;	/* return 7 after this many; 0: never */
};

static int
collect(const dm_update *u, void *arg)
{
	struct got *g = arg;
	dm_update *nv;

	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		if ((nv = realloc(g->v, g->cap * sizeof(*nv))) == NULL)
			tap_bail("out of memory");
		g->v = nv;
	}
	dm_update_copy(&g->v[g->n], u);
	g->n++;
	return g->stop_after != 0 && g->n == g->stop_after ? 7 : 0;
}

static void
got_free(struct got *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		dm_update_clear(&g->v[i]);
	free(g->v);
	memset(g, 0, sizeof(*g));
}

/* "1 2 3": the sequence numbers read. */
static void
got_seqs(const struct got *g, char *out, size_t len)
{
	size_t i, off = 0;

	out[0] = '\0';
	for (i = 0; i < g->n && off < len; i++)
		off += (size_t)snprintf(out + off, len - off, "%s%" PRIu64,
		    i ? " " : "", g->v[i].seq);
}

/* Counts records and checks that seq goes 1, 2, 3 ... (no copies). */
struct order {
	uint64_t next;
	size_t n;
	bool ok;
};

static int
in_order(const dm_update *u, void *arg)
{
	struct order *o = arg;

	if (u->seq != o->next)
		o->ok = false;
	o->next = u->seq + 1;
	o->n++;
	return 0;
}

static size_t
list(const char *dir, const dm_journal *writing, dm_journal_seg **segs)
{
	size_t n;

	if (dm_journal_segments(dir, writing, segs, &n) != DM_OK)
		tap_bail("dm_journal_segments %s", dir);
	return n;
}

/* Read every listed segment; the number of segments. */
static size_t
read_dir(const char *dir, const dm_journal *writing, dm_journal_fn fn,
    void *arg, size_t *bad)
{
	dm_journal_seg *segs;
	size_t n, i, b;

	n = list(dir, writing, &segs);
	*bad = 0;
	for (i = 0; i < n; i++) {
		if (dm_journal_read(segs[i].path, fn, arg, &b) != 0)
			tap_bail("dm_journal_read %s", segs[i].path);
		*bad += b;
	}
	free(segs);
	return n;
}

static size_t
count_files(const char *dir, const char *prefix, const char *suffix)
{
	struct dirent *de;
	size_t n = 0, l, m = strlen(suffix);
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		tap_bail("opendir %s", dir);
	while ((de = readdir(d)) != NULL) {
		l = strlen(de->d_name);
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 &&
		    l >= m && strcmp(de->d_name + l - m, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static bool
digits(const char *s, size_t n)
{
	while (n-- > 0)
		if (*s < '0' || *s++ > '9')
			return false;
	return true;
}

/* seg-<10 digits>-<10 digits>-<10 digits><suffix> */
static bool
name_ok(const char *path, const char *suffix)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	return strlen(b) == 4 + 32 + strlen(suffix) &&
	    strncmp(b, "seg-", 4) == 0 && digits(b + 4, 10) && b[14] == '-' &&
	    digits(b + 15, 10) && b[25] == '-' && digits(b + 26, 10) &&
	    strcmp(b + 36, suffix) == 0;
}

/* The path of the one .open segment in dir ("" if none). */
static void
live_path(const char *dir, char *out, size_t len)
{
	struct dirent *de;
	DIR *d;

	out[0] = '\0';
	if ((d = opendir(dir)) == NULL)
		tap_bail("opendir %s", dir);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".open") != NULL &&
		    snprintf(out, len, "%s/%s", dir, de->d_name) >= (int)len)
			tap_bail("path too long");
	closedir(d);
}

static char *
slurp(const char *path, size_t *len)
{
	struct stat sb;
	char *buf;
	int fd;

	if ((fd = open(path, O_RDONLY)) < 0 || fstat(fd, &sb) != 0 ||
	    (buf = malloc((size_t)sb.st_size + 1)) == NULL ||
	    read(fd, buf, (size_t)sb.st_size) != sb.st_size)
		tap_bail("cannot read %s", path);
	close(fd);
	buf[sb.st_size] = '\0';
	*len = (size_t)sb.st_size;
	return buf;
}

static void
spill(const char *path, const char *buf, size_t len)
{
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    write(fd, buf, len) != (ssize_t)len || close(fd) != 0)
		tap_bail("cannot write %s", path);
}

/* Log lines go to stderr: catch them in a file for a while. */
static int saved_stderr = -1;

static void
capture_start(void)
{
	char path[4200];
	int fd;

	path_in(path, sizeof(path), "stderr.txt");
	fflush(stderr);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    (saved_stderr = dup(2)) < 0 || dup2(fd, 2) < 0)
		tap_bail("cannot capture stderr");
	close(fd);
}

static char *
capture_end(void)
{
	char path[4200];
	size_t len;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	path_in(path, sizeof(path), "stderr.txt");
	return slurp(path, &len);
}

static size_t
count_str(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* --- dm_update ---------------------------------------------------------- */

static const struct {
	const char *policy;
	const char *id;
} ids[] = {
	{ "", "cbf29ce484222325" },
	{ NULL, "cbf29ce484222325" },
	{ "a", "af63dc4c8601ec8c" },
	{ "foobar", "85944171f73967e8" },
	{ "p=reject;sp=none;np=;pct=100", "573b9206cf80747a" },
};

static void
test_update(void)
{
	dm_update a = mk("w1", 5, "example.com", "p=none", "ip=192.0.2.1"), b,
	    z;
	char id[17];
	size_t i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		dm_update_policy_id(ids[i].policy, id);
		tap_is_str(id, ids[i].id, "policy id of '%s'",
		    ids[i].policy ? ids[i].policy : "(null)");
	}
	dm_update_copy(&b, &a);
	tap_ok(same_update(&a, &b) && b.domain != a.domain &&
	    b.policy != a.policy && b.row != a.row,
	    "the copy is equal and deep");
	dm_update_clear(&b);
	memset(&z, 0, sizeof(z));
	tap_ok(memcmp(&b, &z, sizeof(z)) == 0, "dm_update_clear zeroes");
	a.policy = a.row = NULL;
	dm_update_copy(&b, &a);
	tap_ok(b.policy == NULL &&
	    b.row == NULL && strcmp(b.domain, "example.com") == 0,
	    "NULL strings stay NULL");
	dm_update_clear(&b);
	dm_update_clear(NULL);
}

/* --- round trip of awkward bytes ---------------------------------------- */

static const struct {
	const char *writer;
	const char *domain;
	const char *policy;
	const char *row;
} awkward[] = {
	{ "host1:123:1", "example.com", "p=reject;sp=none",
	    "ip=192.0.2.1;hf=example.com" },
	{ "w", "example.com", "", "" },
	{ "w", "example.com", "a b  c ", " leading and trailing " },
	{ "w", "example.com", "100%", "%25 %zz % %%" },
	{ "w", "example.com", "line\nbreak\r\n", "\ttab\x01\x1f\x7f end" },
	{ "w", "example.com", "\xc3\xa9t\xc3\xa9 \xff\xfe\x80",
	    "8-bit \xe2\x82\xac" },
	{ "w", "xn--bcher-kva.example", "   ", "\n" },
	{ "w", "dom ain%\n.example", "-", "x" },
	{ "abcdefghijklmnopqrstuvwxyz.ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789",
	    "example.net", "p=none", "r=%0a" },
};

static void
test_round_trip(void)
{
	char dir[4200], err[256], *big, *file;
	size_t n = sizeof(awkward) / sizeof(awkward[0]), i, bad, len, lines;
	dm_update want[sizeof(awkward) / sizeof(awkward[0]) + 1];
	struct got g = { 0 };
	dm_journal *j;
	bool ok = true;

	path_in(dir, sizeof(dir), "rt");
	if ((big = malloc(20001)) == NULL)
		tap_bail("out of memory");
	for (i = 0; i < 20000; i++)
		big[i] = (char)(i % 255 + 1);
	big[20000] = '\0';
	for (i = 0; i < n; i++)
		want[i] = mk(awkward[i].writer, i + 1, awkward[i].domain,
		    awkward[i].policy, awkward[i].row);
	want[0].seq = UINT64_MAX - 1;
	want[1].begin = INT64_MIN;
	want[1].end = INT64_MAX;
	want[2].count = UINT32_MAX;
	want[3].count = 0;
	want[4].begin = -1;
	/* a fingerprint (issue 16) rides along; the others have none */
	memcpy(want[5].fp, "00ff00ff00ff00ff00ff00ff00ff00ff", DM_FP_LEN + 1);
	want[n] = mk("w", 1000, "example.org", big, big);
	n++;
	if ((j = dm_journal_open(dir, 0, 0, 0, err, sizeof(err))) == NULL)
		tap_bail("dm_journal_open: %s", err);
	for (i = 0; i < n; i++)
		ok &= dm_journal_append(j, &want[i]) == DM_OK;
	tap_ok(ok, "%zu awkward updates appended", n);
	dm_journal_close(j);
	tap_is_int((long)read_dir(dir, NULL, collect, &g, &bad), 1,
	    "one segment after close");
	tap_is_int((long)g.n, (long)n, "every update read back");
	tap_is_int((long)bad, 0, "no bad records");
	for (i = 0; i < n && i < g.n; i++)
		tap_ok(same_update(&g.v[i], &want[i]),
		    "update %zu round trips (writer '%s')", i, want[i].writer);
	got_free(&g);
	/* One line per record, and nothing but newlines below 0x20. */
	{
		dm_journal_seg *segs;

		if (list(dir, NULL, &segs) != 1)
			tap_bail("segment vanished");
		file = slurp(segs[0].path, &len);
		free(segs);
	}
	for (i = lines = 0; i < len; i++) {
		if (file[i] == '\n')
			lines++;
		else if ((unsigned char)file[i] < 0x20)
			ok = false;
	}
	tap_is_int((long)lines, (long)n, "one line per record");
	tap_ok(ok, "no raw control bytes in the file");
	free(file);
	free(big);
}

/* --- invalid updates, directories, empty journals ----------------------- */

static void
test_refused(void)
{
	char dir[4200], err[256];
	dm_update u[7];
	dm_journal *j;
	size_t i;

	u[0] = mk("", 1, "example.com", "", "");
	u[1] = mk("w", 0, "example.com", "", "");
	u[2] = mk("w", 1, NULL, "", "");
	u[3] = mk("w", 1, "", "", "");
	u[4] = mk("w", 1, "example.com", NULL, "");
	u[5] = mk("w", 1, "example.com", "", NULL);
	u[6] = mk("w", 1, "example.com", "", "");
	memset(u[6].writer, 'a', sizeof(u[6].writer));
	path_in(dir, sizeof(dir), "refused");
	if ((j = dm_journal_open(dir, 0, 0, 0, err, sizeof(err))) == NULL)
		tap_bail("dm_journal_open: %s", err);
	capture_start();
	for (i = 0; i < sizeof(u) / sizeof(u[0]); i++)
		tap_is_int(dm_journal_append(j, &u[i]), DM_PERMFAIL,
		    "incomplete update %zu refused", i);
	free(capture_end());
	dm_journal_close(j);
	tap_is_int((long)(count_files(dir, "seg-", "") +
	    count_files(dir, "tmp-", "")), 0,
	    "closing a journal with no records leaves no file");
}

static void
test_dirs(void)
{
	char dir[4200], file[4200], before[4300], after[4300], err[256] = "";
	dm_journal_seg *segs = (dm_journal_seg *)1;
	struct stat sb;
	dm_journal *j;
	size_t n = 99;

	path_in(dir, sizeof(dir), "a/b/c");
	tap_is_int(dm_journal_segments(dir, NULL, &segs, &n), DM_OK,
	    "a missing directory lists");
	tap_ok(n == 0 && segs == NULL, "... no segments");
	j = dm_journal_open(dir, 0, 0, 0, err, sizeof(err));
	tap_ok(j != NULL, "open creates the directory and its parents %s", err);
	tap_ok(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    (sb.st_mode & 07777) == 0700, "... mode 0700");
	live_path(dir, before, sizeof(before));
	tap_is_int(dm_journal_rotate(j), DM_OK, "rotating an empty segment");
	live_path(dir, after, sizeof(after));
	tap_ok(count_files(dir, "seg-", "") == 1 && *before != '\0' &&
	    strcmp(before, after) == 0, "... keeps it and starts no new one");
	dm_journal_close(j);
	path_in(file, sizeof(file), "plainfile");
	spill(file, "x", 1);
	j = dm_journal_open(file, 0, 0, 0, err, sizeof(err));
	tap_ok(j == NULL && strstr(err, file) != NULL,
	    "a file as the directory fails: %s", err);
	dm_journal_close(NULL);
}

/* --- rotation and listing ----------------------------------------------- */

static void
test_rotation(void)
{
	const size_t total = 22;
	char dir[4200], err[256], row[64];
	struct order o = { 1, 0, true };
	dm_journal_seg *segs;
	size_t i, n, live, closed, bad, seg_bytes = 300;
	struct stat sb;
	dm_journal *j;
	dm_update u;
	bool ok = true;

	path_in(dir, sizeof(dir), "rot");
	if ((j = dm_journal_open(dir, seg_bytes, 0, 0, err, sizeof(err))) ==
	    NULL)
		tap_bail("dm_journal_open: %s", err);
	for (i = 1; i <= total; i++) {
		snprintf(row, sizeof(row), "ip=192.0.2.%zu;hf=example.com", i);
		u = mk("rot", i, "example.com", "p=none", row);
		ok &= dm_journal_append(j, &u) == DM_OK;
	}
	tap_ok(ok, "%zu records appended with segments of %zu bytes", total,
	    seg_bytes);
	live = list(dir, j, &segs);
	tap_ok(live >= 5, "%zu closed segments while writing", live);
	for (i = 0, ok = true; i < live; i++)
		ok &= name_ok(segs[i].path, ".log");
	tap_ok(ok, "closed segments are seg-<time>-<pid>-<n>.log");
	for (i = 0, ok = true; i < live; i++)
		ok &= stat(segs[i].path, &sb) == 0 &&
		    (size_t)sb.st_size >= seg_bytes &&
		    (size_t)sb.st_size < seg_bytes + 200;
	tap_ok(ok, "each was closed once it reached %zu bytes", seg_bytes);
	for (i = 1, ok = true; i < live; i++)
		ok &= strcmp(segs[i - 1].path, segs[i].path) < 0;
	tap_ok(ok, "listed in name order");
	free(segs);
	tap_is_int((long)list(dir, NULL, &segs), (long)live,
	    "the live segment is left out by its lock too");
	free(segs);
	tap_is_int((long)count_files(dir, "seg-", ".open"), 1,
	    "one segment is being written");
	read_dir(dir, j, in_order, &o, &bad);
	tap_ok(o.ok && bad == 0 && o.n >= 2 * live,
	    "closed segments hold seq 1..%zu in order", o.n);
	closed = o.n;
	dm_journal_close(j);
	o = (struct order){ 1, 0, true };
	n = read_dir(dir, NULL, in_order, &o, &bad);
	tap_is_int((long)n, (long)live + (closed < total),
	    "after close, %s", closed < total ? "one more segment" :
	    "no more (the live one was empty)");
	tap_ok(o.ok && o.n == total && bad == 0,
	    "all %zu read in order across segments", o.n);
	tap_is_int((long)count_files(dir, "", ".open") +
	    (long)count_files(dir, "tmp-", ""), 0, "no .open or tmp- left");
	n = list(dir, NULL, &segs);
	for (i = 0; i < n; i++)
		tap_is_int(dm_journal_remove(segs[i].path), DM_OK,
		    "remove segment %zu", i);
	tap_is_int(dm_journal_remove(segs[0].path), DM_OK,
	    "removing a removed segment is fine");
	free(segs);
	tap_is_int((long)list(dir, NULL, &segs), 0, "nothing left to list");
	free(segs);
}

/* --- a writer that crashes ---------------------------------------------- */

static void
crash_child(const char *dir, int ready, int go)
{
	char err[256], c = 'x';
	dm_journal *j;
	dm_update u;
	int i;

	if ((j = dm_journal_open(dir, 0, 0, 0, err, sizeof(err))) == NULL)
		_exit(2);
	for (i = 1; i <= 3; i++) {
		u = mk("child", (uint64_t)i, "example.com", "p=none", "r");
		if (dm_journal_append(j, &u) != DM_OK)
			_exit(3);
	}
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1)
		_exit(4);
	kill(getpid(), SIGKILL);	/* a crash: no dm_journal_close */
	_exit(5);
}

static void
test_crash(void)
{
	char dir[4200], err[256], c = 'x';
	int ready[2], go[2], status;
	struct got g = { 0 };
	dm_journal_seg *segs;
	dm_journal *j;
	dm_update u;
	size_t n, bad;
	pid_t pid;

	path_in(dir, sizeof(dir), "crash");
	if (pipe(ready) != 0 || pipe(go) != 0)
		tap_bail("pipe");
	fflush(stdout);
	if ((pid = fork()) < 0)
		tap_bail("fork");
	if (pid == 0)
		crash_child(dir, ready[1], go[0]);
	if (read(ready[0], &c, 1) != 1)
		tap_bail("the child writer failed");
	if ((j = dm_journal_open(dir, 0, 0, 0, err, sizeof(err))) == NULL)
		tap_bail("dm_journal_open: %s", err);
	u = mk("parent", 1, "example.com", "p=none", "r");
	dm_journal_append(j, &u);
	tap_is_int((long)count_files(dir, "seg-", ".open"), 2,
	    "two writers, two .open segments");
	tap_is_int((long)list(dir, j, &segs), 0,
	    "a live writer's segment in another process is not listed");
	free(segs);
	if (write(go[1], &c, 1) != 1 || waitpid(pid, &status, 0) != pid)
		tap_bail("the child writer is lost");
	tap_ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "the child wrote and was killed without closing (status %#x)",
	    status);
	n = list(dir, j, &segs);
	tap_is_int((long)n, 1, "the dead writer's segment is listed");
	if (n == 1) {
		tap_ok(name_ok(segs[0].path, ".open"), "... as .open: %s",
		    segs[0].path);
		tap_is_int(dm_journal_read(segs[0].path, collect, &g, &bad), 0,
		    "... and read");
		tap_ok(g.n == 3 && bad == 0 && strcmp(g.v[0].writer, "child") ==
		    0 && g.v[2].seq == 3, "... with its 3 records");
		tap_is_int(dm_journal_remove(segs[0].path), DM_OK,
		    "... and removed");
	}
	free(segs);
	got_free(&g);
	dm_journal_close(j);
	n = read_dir(dir, NULL, collect, &g, &bad);
	tap_ok(n == 1 && g.n == 1 && strcmp(g.v[0].writer, "parent") == 0,
	    "then only the parent's closed segment is left");
	got_free(&g);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
}

/* --- damaged files ------------------------------------------------------ */

enum mut_kind { M_NONE, M_TRUNC, M_FLIP, M_INSERT, M_EMPTY };

static const struct mut {
	const char *name;
	enum mut_kind kind;
	int line;		/* the line hit (inserts go before it) */
	size_t at;		/* TRUNC: bytes kept; FLIP: byte xor 1 */
	const char *text;	/* INSERT: the bytes, or a payload if craft */
	bool craft;		/* make text a record with a correct CRC */
	const char *seqs;	/* what is read */
	size_t bad;
} muts[] = {
	{ "intact", M_NONE, 0, 0, NULL, false, "1 2 3", 0 },
	{ "torn tail", M_TRUNC, 2, 30, NULL, false, "1 2", 1 },
	{ "tail without its newline", M_TRUNC, 2, (size_t)-1, NULL, false,
	    "1 2", 1 },
	{ "flipped payload byte", M_FLIP, 1, 40, NULL, false, "1 3", 1 },
	{ "flipped checksum digit", M_FLIP, 1, 3, NULL, false, "1 3", 1 },
	{ "flipped length digit", M_FLIP, 1, 9, NULL, false, "1 3", 1 },
	{ "garbage line", M_INSERT, 1, 0, "this is not a record\n", false,
	    "1 2 3", 1 },
	{ "empty line", M_INSERT, 1, 0, "\n", false, "1 2 3", 1 },
	{ "binary line", M_INSERT, 2, 0, "\x01\xff\x80 0 \n", false, "1 2 3",
	    1 },
	{ "huge length", M_INSERT, 1, 0, "00000000 99999999999999999999999 x\n",
	    false, "1 2 3", 1 },
	{ "empty file", M_EMPTY, 0, 0, NULL, false, "", 0 },
	{ "crafted good record", M_INSERT, 1, 0,
	    "hand 9 example.org -5 5 2 p%20x%25 %0a", true, "1 9 2 3", 0 },
	{ "raw control byte", M_INSERT, 1, 0,
	    "hand 9 example.org 0 1 1 p\x01 r", true, "1 2 3", 1 },
	{ "seven fields", M_INSERT, 1, 0, "hand 9 example.org 0 1 1 p", true,
	    "1 2 3", 1 },
	{ "nine fields, the ninth no fingerprint", M_INSERT, 1, 0,
	    "hand 9 example.org 0 1 1 p r x", true, "1 2 3", 1 },
	{ "a fingerprint", M_INSERT, 1, 0, "hand 9 example.org 0 1 1 p r "
	    "0123456789abcdef0123456789abcdef", true, "1 9 2 3", 0 },
	{ "an empty fingerprint", M_INSERT, 1, 0,
	    "hand 9 example.org 0 1 1 p r ", true, "1 2 3", 1 },
	{ "a fingerprint one digit short", M_INSERT, 1, 0,
	    "hand 9 example.org 0 1 1 p r 0123456789abcdef0123456789abcde",
	    true, "1 2 3", 1 },
	{ "a fingerprint in capitals", M_INSERT, 1, 0,
	    "hand 9 example.org 0 1 1 p r 0123456789ABCDEF0123456789ABCDEF",
	    true, "1 2 3", 1 },
	{ "ten fields", M_INSERT, 1, 0, "hand 9 example.org 0 1 1 p r "
	    "0123456789abcdef0123456789abcdef x", true, "1 2 3", 1 },
	{ "escaped NUL", M_INSERT, 1, 0, "hand 9 example.org 0 1 1 p%00 r",
	    true, "1 2 3", 1 },
	{ "bad escape", M_INSERT, 1, 0, "hand 9 example.org 0 1 1 p%2 r", true,
	    "1 2 3", 1 },
	{ "seq not a number", M_INSERT, 1, 0, "hand 9x example.org 0 1 1 p r",
	    true, "1 2 3", 1 },
	{ "seq 0", M_INSERT, 1, 0, "hand 0 example.org 0 1 1 p r", true,
	    "1 2 3", 1 },
	{ "count over 32 bits", M_INSERT, 1, 0,
	    "hand 9 example.org 0 1 4294967296 p r", true, "1 2 3", 1 },
	{ "begin over 64 bits", M_INSERT, 1, 0,
	    "hand 9 example.org 9223372036854775808 1 1 p r", true, "1 2 3",
	    1 },
	{ "empty domain", M_INSERT, 1, 0, "hand 9  0 1 1 p r", true, "1 2 3",
	    1 },
	{ "writer with an escaped space", M_INSERT, 1, 0,
	    "ha%20nd 9 example.org 0 1 1 p r", true, "1 2 3", 1 },
	{ "writer too long", M_INSERT, 1, 0,
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    " 9 example.org 0 1 1 p r", true, "1 2 3", 1 },
};

/* The bytes of case m, made from a file of three good records. */
static char *
mutate(const struct mut *m, const char *src, size_t len,
    const size_t off[4], size_t *outlen)
{
	size_t line = (size_t)m->line, keep, tl;
	char rec[512], *out;

	if ((out = malloc(len + sizeof(rec))) == NULL)
		tap_bail("out of memory");
	*outlen = len;
	memcpy(out, src, len);
	switch (m->kind) {
	case M_NONE:
		break;
	case M_EMPTY:
		*outlen = 0;
		break;
	case M_TRUNC:
		keep = m->at < off[line + 1] - off[line] ? m->at :
		    off[line + 1] - off[line] - 1;
		*outlen = off[line] + keep;
		break;
	case M_FLIP:
		out[off[line] + m->at] ^= 1;
		break;
	case M_INSERT:
		if (m->craft)
			tl = (size_t)snprintf(rec, sizeof(rec),
			    "%08lx %zu %s\n", crc32(0, (const Bytef *)m->text,
			    (uInt)strlen(m->text)), strlen(m->text), m->text);
		else
			tl = strlcpy(rec, m->text, sizeof(rec));
		memcpy(out + off[line], rec, tl);
		memcpy(out + off[line] + tl, src + off[line], len - off[line]);
		*outlen = len + tl;
		break;
	}
	return out;
}

static void
test_damage(void)
{
	char dir[4200], path[4300], err[256], want_off[64], seqs[256], *src,
	    *out, *log;
	size_t len, outlen, off[4], i, k, bad;
	struct got g = { 0 };
	dm_journal_seg *segs;
	dm_journal *j;
	dm_update u;
	int rc;

	path_in(dir, sizeof(dir), "damage");
	if ((j = dm_journal_open(dir, 0, 0, 0, err, sizeof(err))) == NULL)
		tap_bail("dm_journal_open: %s", err);
	for (i = 1; i <= 3; i++) {
		u = mk("w", i, "example.com", "p=quarantine;pct=50",
		    "ip=2001:db8::1;hf=example.com;dkim=pass;spf=fail");
		dm_journal_append(j, &u);
	}
	dm_journal_close(j);
	if (list(dir, NULL, &segs) != 1)
		tap_bail("no segment");
	src = slurp(segs[0].path, &len);
	dm_journal_remove(segs[0].path);
	free(segs);
	for (i = k = 0, off[0] = 0; i < len && k < 3; i++)
		if (src[i] == '\n')
			off[++k] = i + 1;
	if (k != 3 || off[3] != len)
		tap_bail("the base file is not three lines");
	for (i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
		snprintf(path, sizeof(path), "%s/seg-case-%02zu.log", dir, i);
		out = mutate(&muts[i], src, len, off, &outlen);
		spill(path, out, outlen);
		free(out);
		capture_start();
		rc = dm_journal_read(path, collect, &g, &bad);
		log = capture_end();
		got_seqs(&g, seqs, sizeof(seqs));
		tap_ok(rc == 0 && strcmp(seqs, muts[i].seqs) == 0,
		    "%s: records '%s' read (want '%s')", muts[i].name, seqs,
		    muts[i].seqs);
		tap_is_int((long)bad, (long)muts[i].bad, "%s: %zu bad",
		    muts[i].name, muts[i].bad);
		snprintf(want_off, sizeof(want_off), "offset %zu ",
		    off[muts[i].line]);
		tap_ok(count_str(log, "skipped") == muts[i].bad &&
		    (muts[i].bad == 0 || (strstr(log, path) != NULL &&
		    strstr(log, want_off) != NULL)),
		    "%s: %s", muts[i].name, muts[i].bad ? "warning names file "
		    "and offset" : "no warning");
		if (*log != '\0')
			tap_diag("%.*s", (int)strcspn(log, "\n"), log);
		free(log);
		if (strcmp(muts[i].name, "a fingerprint") == 0 && g.n == 4)
			tap_is_str(g.v[1].fp, "0123456789abcdef"
			    "0123456789abcdef", "%s: read back", muts[i].name);
		else if (muts[i].craft && g.n == 4)
			tap_ok(g.v[1].begin == -5 && g.v[1].end == 5 &&
			    g.v[1].count == 2 &&
			    strcmp(g.v[1].policy, "p x%") == 0 &&
			    strcmp(g.v[1].row, "\n") == 0,
			    "the documented format is what is read");
		got_free(&g);
	}
	free(src);
	g.stop_after = 2;
	snprintf(path, sizeof(path), "%s/seg-case-00.log", dir);
	tap_is_int(dm_journal_read(path, collect, &g, NULL), 7,
	    "a callback's non-zero return stops reading and is returned");
	tap_is_int((long)g.n, 2, "... after 2 records");
	got_free(&g);
	snprintf(path, sizeof(path), "%s/no-such-segment.log", dir);
	capture_start();
	rc = dm_journal_read(path, collect, &g, &bad);
	tap_ok(rc == -1 && errno == ENOENT,
	    "a missing file reads as -1, ENOENT");
	free(capture_end());
}

/* --- batched fdatasync -------------------------------------------------- */

static void
wait_ms(long ms)
{
	struct timespec t0, now, nap = { 0, 1000000 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		nanosleep(&nap, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - t0.tv_sec) * 1000 +
	    (now.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static void
test_sync(void)
{
	char dir[4200], err[256], path[4300];
	struct order o = { 1, 0, true };
	dm_journal_seg *segs;
	dm_journal *j;
	dm_update u;
	size_t i, bad;
	int s0;

	path_in(dir, sizeof(dir), "sync");
	if ((j = dm_journal_open(dir, 0, 0, 4, err, sizeof(err))) == NULL)
		tap_bail("dm_journal_open: %s", err);
	s0 = syncs;
	for (i = 1; i <= 10; i++) {
		u = mk("s", i, "example.com", "p=none", "r");
		dm_journal_append(j, &u);
	}
	tap_is_int(syncs - s0, 2, "every 4 records: 2 fdatasync for 10");
	tap_is_int(dm_journal_sync(j), DM_OK, "dm_journal_sync");
	tap_is_int(syncs - s0, 3, "... syncs the 2 pending");
	dm_journal_sync(j);
	tap_is_int(syncs - s0, 3, "... and nothing when nothing is pending");
	live_path(dir, path, sizeof(path));	/* read from another fd */
	tap_ok(dm_journal_read(path, in_order, &o, &bad) == 0 && o.ok &&
	    o.n == 10 && bad == 0, "after sync all 10 read from the file");
	dm_journal_close(j);
	tap_is_int(syncs - s0, 3, "closing with nothing pending: no sync");
	dm_journal_segments(dir, NULL, &segs, &i);
	while (i-- > 0)
		dm_journal_remove(segs[i].path);
	free(segs);

	if ((j = dm_journal_open(dir, 0, 0, 0, err, sizeof(err))) == NULL)
		tap_bail("dm_journal_open: %s", err);
	s0 = syncs;
	for (i = 1; i <= 5; i++) {
		u = mk("s", i, "example.com", "p=none", "r");
		dm_journal_append(j, &u);
	}
	tap_is_int(syncs - s0, 0, "both triggers off: no sync on append");
	dm_journal_close(j);
	tap_is_int(syncs - s0, 1, "... close syncs");

	if ((j = dm_journal_open(dir, 0, 50, 0, err, sizeof(err))) == NULL)
		tap_bail("dm_journal_open: %s", err);
	s0 = syncs;
	u = mk("t", 1, "example.com", "p=none", "r");
	dm_journal_append(j, &u);
	tap_is_int(syncs - s0, 0, "50 ms trigger: no sync at once");
	wait_ms(60);
	u.seq = 2;
	dm_journal_append(j, &u);
	tap_is_int(syncs - s0, 1, "... the append 60 ms later syncs");
	dm_journal_close(j);
}

/* --- 100,000 records ---------------------------------------------------- */

static double
secs_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	    (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
test_many(void)
{
	const size_t total = 100000;
	char dir[4200], err[256], row[128];
	struct order o = { 1, 0, true };
	struct timespec t0;
	double t_append, t_read;
	dm_journal *j;
	dm_update u;
	size_t i, n, bad;
	bool ok = true;

	path_in(dir, sizeof(dir), "many");
	if ((j = dm_journal_open(dir, 1 << 20, 200, 1000, err, sizeof(err))) ==
	    NULL)
		tap_bail("dm_journal_open: %s", err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 1; i <= total; i++) {
		snprintf(row, sizeof(row), "ip=198.51.100.%zu;hf=example.com;"
		    "ef=bounce%zu.example;disp=none;dkim=pass;spf=pass",
		    i % 256, i % 97);
		u = mk("bulk:1", i, "example.com", "p=none;pct=100;rua="
		    "mailto%3Ad%40example.com", row);
		ok &= dm_journal_append(j, &u) == DM_OK;
	}
	dm_journal_close(j);
	t_append = secs_since(&t0);
	tap_ok(ok, "%zu records appended", total);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = read_dir(dir, NULL, in_order, &o, &bad);
	t_read = secs_since(&t0);
	tap_ok(o.ok && o.n == total && bad == 0,
	    "%zu records read back in order from %zu segments", o.n, n);
	tap_diag("%zu records: append+close %.3f s (%.0f/s), read %.3f s "
	    "(%.0f/s)", total, t_append, (double)total / t_append, t_read,
	    (double)total / t_read);
}

int
main(void)
{
	if (mkdtemp(base) == NULL)
		tap_bail("mkdtemp: %s", strerror(errno));
	test_update();
	test_round_trip();
	test_refused();
	test_dirs();
	test_rotation();
	test_crash();
	test_damage();
	test_sync();
	test_many();
	if (nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		tap_diag("could not remove %s", base);
	return tap_done();
}
