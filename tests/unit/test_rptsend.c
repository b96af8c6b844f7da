/*
 * tests/unit/test_rptsend.c - handing a mail to sendmail: fake sendmail
 * scripts in a temporary directory record their argv, input, descriptors
 * and signal state, or fail, hang, die or leave without reading, and the
 * sender must report each case right and survive it (no SIGPIPE death).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rptsend.h"
#include "tap.h"

static char dir[] = "/tmp/test_rptsend.XXXXXX";

/* Every script records into $D (the temp dir), given as its dirname. */
static const struct script {
	const char *name, *body;
} scripts[] = {
	{ "ok", "D=$(dirname \"$0\")\n"
	    "for a in \"$0\" \"$@\"; do printf '%s\\n' \"$a\"; done > \"$D/argv\"\n"
	    "for fd in 3 4 50; do [ -e /proc/$$/fd/$fd ] && echo $fd; done "
	    "> \"$D/fds\"\n"
	    "cat > \"$D/stdin\"\nexit 0\n" },
	/* its own state, not the shell's, which blocks signals to fork */
	{ "sigcheck", "D=$(dirname \"$0\")\n"
	    "exec grep -E '^Sig(Blk|Ign):' /proc/self/status > \"$D/sig\"\n" },
	{ "fail75", "cat > /dev/null\n"
	    "echo 'sendmail: fatal: dmarc@r.example: queue file write "
	    "error' >&2\necho 'second line' >&2\nexit 75\n" },
	{ "hang", "D=$(dirname \"$0\")\n"
	    "sleep 1000 &\necho $! > \"$D/bgpid\"\nsleep 1000\n" },
	{ "noread0", "exit 0\n" },
	{ "noread75", "echo 'not today' >&2\nexit 75\n" },
	{ "signal", "cat > /dev/null\nkill -TERM $$\nsleep 10\n" },
	/* a lot of output before it reads: both pipes full at once */
	{ "chatty", "D=$(dirname \"$0\")\n"
	    "head -c 1000000 /dev/zero | tr '\\000' x >&2\n"
	    "cat > \"$D/stdin\"\nexit 0\n" },
	{ "quiet1", "cat > /dev/null\nexit 1\n" },
};

static void
path_of(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

/* An executable script (or not, by mode) for the tests. */
static void
write_script(const char *path, const char *text, mode_t mode)
{
	if (tap_write_file(path, text, strlen(text)) != 0 ||
	    chmod(path, mode) != 0)
		tap_bail("cannot write %s", path);
}

static void
setup(void)
{
	char path[256], body[2048];
	size_t i;

	if (mkdtemp(dir) == NULL)
		tap_bail("mkdtemp");
	for (i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
		path_of(path, sizeof(path), scripts[i].name);
		snprintf(body, sizeof(body), "#!/bin/sh\n%s", scripts[i].body);
		write_script(path, body, 0755);
	}
	path_of(path, sizeof(path), "notexec");
	write_script(path, "#!/bin/sh\nexit 0\n", 0644);
}

static void
cleanup(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
}

static char *
message(size_t n)
{
	char *m = malloc(n + 1);
	size_t i;

	if (m == NULL)
		tap_bail("malloc");
	for (i = 0; i < n; i++)
		m[i] = (i % 77 == 76) ? '\n' : (char)('A' + (i * 7 + i / 77) %
		    26);
	m[n] = '\0';
	return m;
}

static const char *const rcpts[] = { "dmarc-rua@example.com",
	"-oQ/tmp/evil", "reports@thirdparty.example" };

/* argv, bytes, descriptors and signals of one good run */
static void
test_ok(void)
{
	char path[256], err[512] = "", want[1024], *got;
	char *msg = message(300 * 1024 + 3);	/* more than a pipe holds */
	size_t gotlen = 0;
	sigset_t block, old;
	int fd50, rc;

	path_of(path, sizeof(path), "ok");
	/* a descriptor without close-on-exec the child must not see */
	if ((fd50 = dup2(1, 50)) != 50)
		tap_bail("dup2");
	rc = rpt_send_sendmail(path, "dmarc@r.example", rcpts, 3, msg,
	    strlen(msg), 10, err, sizeof(err));
	close(fd50);
	tap_ok(rc == 0, "a sendmail that exits 0: success (%s)", err);
	snprintf(want, sizeof(want), "%s\n-i\n-f\ndmarc@r.example\n--\n"
	    "dmarc-rua@example.com\n-oQ/tmp/evil\nreports@thirdparty.example\n",
	    path);
	got = tap_slurp_in(dir, "argv", NULL);
	tap_is_str(got, want, "argv is exactly SENDMAIL -i -f FROM -- RCPT...");
	free(got);
	got = tap_slurp_in(dir, "stdin", &gotlen);
	tap_ok(got != NULL && gotlen == strlen(msg) && memcmp(got, msg,
	    gotlen) == 0, "sendmail read every byte (%zu of %zu)", gotlen,
	    strlen(msg));
	free(got);
	got = tap_slurp_in(dir, "fds", NULL);
	tap_is_str(got, "", "no descriptor but 0, 1, 2 reaches sendmail");
	free(got);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	signal(SIGUSR2, SIG_IGN);
	path_of(path, sizeof(path), "sigcheck");
	rc = rpt_send_sendmail(path, "dmarc@r.example", rcpts, 1, "x\n", 2,
	    10, err, sizeof(err));
	signal(SIGUSR2, SIG_DFL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	got = tap_slurp_in(dir, "sig", NULL);
	tap_ok(rc == 0, "the signal check ran (%s)", err);
	tap_ok(got != NULL && strstr(got, "SigBlk:\t0000000000000000") != NULL,
	    "sendmail starts with no signal blocked");
	/* SIGUSR2 is 12: bit 11 of SigIgn */
	tap_ok(got != NULL && strstr(got, "SigIgn:") != NULL &&
	    (strtoull(strstr(got, "SigIgn:") + 7, NULL, 16) & (1ull << 11)) ==
	    0, "nor a signal the caller ignores ignored");
	free(got);
	free(msg);

	/* an empty message is still a run */
	path_of(path, sizeof(path), "ok");
	rc = rpt_send_sendmail(path, "dmarc@r.example", rcpts, 1, "", 0, 10,
	    err, sizeof(err));
	got = tap_slurp_in(dir, "stdin", &gotlen);
	tap_ok(rc == 0 && got != NULL && gotlen == 0,
	    "an empty message: success, nothing read");
	free(got);
}

static bool
pid_gone(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *fp;
	size_t n;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return true;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && p[1] == ' ' && p[2] == 'Z';	/* a zombie */
}

static void
test_failures(void)
{
	char path[256], err[512], want[512], *msg, *bg;
	struct timespec t0, pause = { 0, 20 * 1000 * 1000 };
	pid_t bgpid;
	sigset_t set;
	int rc, i;

	path_of(path, sizeof(path), "fail75");
	rc = rpt_send_sendmail(path, "dmarc@r.example", rcpts, 1, "x\n", 2,
	    10, err, sizeof(err));
	tap_ok(rc == DM_TEMPFAIL, "exit status 75: failure");
	tap_ok(strstr(err, "exited with status 75: sendmail: fatal: "
	    "dmarc@r.example: queue file write error") != NULL &&
	    strstr(err, "second line") == NULL,
	    "the error names the status and the first line: %s", err);

	path_of(path, sizeof(path), "quiet1");
	rpt_send_sendmail(path, "dmarc@r.example", rcpts, 1, "x\n", 2, 10,
	    err, sizeof(err));
	snprintf(want, sizeof(want), "%s exited with status 1", path);
	tap_is_str(err, want, "a silent failure: just the status");

	path_of(path, sizeof(path), "signal");
	rc = rpt_send_sendmail(path, "dmarc@r.example", rcpts, 1, "x\n", 2,
	    10, err, sizeof(err));
	tap_ok(rc == DM_TEMPFAIL && strstr(err, "killed by signal 15") != NULL,
	    "killed by a signal: %s", err);

	/* exits without reading 4 MB: EPIPE, not SIGPIPE */
	msg = message(4 * 1024 * 1024);
	path_of(path, sizeof(path), "noread0");
	rc = rpt_send_sendmail(path, "dmarc@r.example", rcpts, 1, msg,
	    strlen(msg), 10, err, sizeof(err));
	tap_ok(rc == DM_TEMPFAIL && strstr(err, "without reading the whole message") !=
	    NULL, "exit 0 without reading: failure, and we live: %s", err);
	sigpending(&set);
	tap_ok(!sigismember(&set, SIGPIPE), "no SIGPIPE left pending");
	sigprocmask(SIG_BLOCK, NULL, &set);
	tap_ok(!sigismember(&set, SIGPIPE), "SIGPIPE not left blocked");
	path_of(path, sizeof(path), "noread75");
	rc = rpt_send_sendmail(path, "dmarc@r.example", rcpts, 1, msg,
	    strlen(msg), 10, err, sizeof(err));
	tap_ok(rc == DM_TEMPFAIL && strstr(err, "exited with status 75: not today") !=
	    NULL, "exit 75 without reading: its status: %s", err);

	/* much output before reading much input: no deadlock */
	path_of(path, sizeof(path), "chatty");
	rc = rpt_send_sendmail(path, "dmarc@r.example", rcpts, 1, msg,
	    1000 * 1000, 20, err, sizeof(err));
	{
		size_t n = 0;
		char *got = tap_slurp_in(dir, "stdin", &n);

		tap_ok(rc == 0 && n == 1000 * 1000 && got != NULL &&
		    memcmp(got, msg, n) == 0,
		    "1 MB out while 1 MB goes in: all read, success (%s)", err);
		free(got);
	}

	/* hangs: killed at the deadline with what it started */
	path_of(path, sizeof(path), "hang");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = rpt_send_sendmail(path, "dmarc@r.example", rcpts, 1, "x\n", 2, 1,
	    err, sizeof(err));
	tap_ok(rc == DM_TEMPFAIL && strstr(err, "did not finish within 1 s and was "
	    "killed") != NULL, "a hung sendmail: %s", err);
	tap_ok(tap_seconds_since(&t0) < 5.0, "killed after about 1 s (%.2f s)",
	    tap_seconds_since(&t0));
	bg = tap_slurp_in(dir, "bgpid", NULL);
	bgpid = bg != NULL ? (pid_t)atoi(bg) : 0;
	free(bg);
	for (i = 0; i < 250 && bgpid > 0 && !pid_gone(bgpid); i++)
		nanosleep(&pause, NULL);	/* init reaps it */
	tap_ok(bgpid > 0 && pid_gone(bgpid),
	    "the process it started in the background is killed too");
	free(msg);
}

static void
test_refused(void)
{
	static const char *const bad_rcpt[] = { "a@b.example\nX: y" };
	static const char *const empty_rcpt[] = { "" };
	char path[256], err[512];

	path_of(path, sizeof(path), "nonexistent");
	tap_ok(rpt_send_sendmail(path, "d@r.example", rcpts, 1, "x", 1, 10,
	    err, sizeof(err)) == DM_TEMPFAIL && strstr(err, "cannot execute") != NULL &&
	    strstr(err, "No such file") != NULL, "no such program: %s", err);
	path_of(path, sizeof(path), "notexec");
	tap_ok(rpt_send_sendmail(path, "d@r.example", rcpts, 1, "x", 1, 10,
	    err, sizeof(err)) == DM_TEMPFAIL && strstr(err, "Permission denied") !=
	    NULL, "not executable: %s", err);
	path_of(path, sizeof(path), "ok");
	tap_ok(rpt_send_sendmail("sendmail", "d@r.example", rcpts, 1, "x", 1,
	    10, err, sizeof(err)) == DM_PERMFAIL, "a relative path is refused: %s", err);
	tap_ok(rpt_send_sendmail(path, "", rcpts, 1, "x", 1, 10, err,
	    sizeof(err)) == DM_PERMFAIL, "an empty sender is refused: %s", err);
	tap_ok(rpt_send_sendmail(path, "d@r.example\r\n", rcpts, 1, "x", 1,
	    10, err, sizeof(err)) == DM_PERMFAIL, "a sender with CRLF is refused");
	tap_ok(rpt_send_sendmail(path, "d@r.example", bad_rcpt, 1, "x", 1, 10,
	    err, sizeof(err)) == DM_PERMFAIL, "a recipient with LF is refused: %s",
	    err);
	tap_ok(rpt_send_sendmail(path, "d@r.example", empty_rcpt, 1, "x", 1,
	    10, err, sizeof(err)) == DM_PERMFAIL, "an empty recipient is refused");
	tap_ok(rpt_send_sendmail(path, "d@r.example", rcpts, 0, "x", 1, 10,
	    err, sizeof(err)) == DM_PERMFAIL, "no recipients is refused");
}

int
main(void)
{
	/* the default action, so a SIGPIPE that got through would kill us */
	signal(SIGPIPE, SIG_DFL);
	setup();
	test_ok();
	test_failures();
	test_refused();
	cleanup();
	return tap_done();
}
