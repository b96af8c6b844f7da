/*
 * report/rptsend.c - a report mail into the local MTA by exec'ing its
 * sendmail program (see rptsend.h). One poll loop writes the message and
 * reads the program's output at the same time, so neither side can block
 * the other, and it keeps the deadline.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dm_log.h"
#include "rptsend.h"

#define OUT_KEEP 1024		/* bytes of the program's output kept */
#define WRITE_CHUNK 65536
#define POLL_SLICE_MS 50	/* only without pidfd: how often to reap */

struct run {
	const char *path;
	int in, out, pidfd;	/* ours: message, output, exit notice */
	pid_t pid;
	size_t off, len;
	bool epipe, exited, timed_out;
	int status, write_errno;
	char keep[OUT_KEEP];
	size_t kept;
};

static bool
clean_arg(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
close_from(int lowfd, long maxfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
		return;
#endif
	for (; lowfd < maxfd; lowfd++)
		close(lowfd);
}

/*
 * In the child: fds 0 (message), 1 and 2 (output), 3 (exec failure
 * notice, close-on-exec), nothing else; default signals; then exec.
 * Only async-signal-safe calls: the parent may have threads.
 */
static void __attribute__((noreturn))
child(const char *path, char *const *argv, int in, int out, int ex,
    long maxfd)
{
	struct sigaction dfl;
	sigset_t none;
	int sig, e;

	setpgid(0, 0);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);	/* fails for KILL, STOP */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* above 3 first, so no dup2 below overwrites one still needed */
	if ((in = fcntl(in, F_DUPFD, 4)) < 0 ||
	    (out = fcntl(out, F_DUPFD, 4)) < 0 ||
	    (ex = fcntl(ex, F_DUPFD, 4)) < 0 || dup2(in, 0) < 0 ||
	    dup2(out, 1) < 0 || dup2(out, 2) < 0 || dup2(ex, 3) < 0 ||
	    fcntl(3, F_SETFD, FD_CLOEXEC) < 0) {
		e = errno;
		if (ex >= 0)
			(void)!write(ex, &e, sizeof(e));
		_exit(127);
	}
	close_from(4, maxfd);
	execv(path, argv);
	e = errno;
	(void)!write(3, &e, sizeof(e));
	_exit(127);
}

static void
keep_output(struct run *r, const char *p, size_t n)
{
	if (n > OUT_KEEP - r->kept)
		n = OUT_KEEP - r->kept;
	memcpy(r->keep + r->kept, p, n);
	r->kept += n;
}

/* Read what is there; false at EOF or error (then the fd is closed). */
static bool
read_output(struct run *r)
{
	char buf[4096];
	ssize_t got;

	for (;;) {
		got = read(r->out, buf, sizeof(buf));
		if (got > 0) {
			keep_output(r, buf, (size_t)got);
			continue;
		}
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN)
			return true;
		close(r->out);
		r->out = -1;
		return false;
	}
}

static void
write_message(struct run *r, const char *eml)
{
	ssize_t put;
	size_t chunk;

	while (r->off < r->len) {
		chunk = r->len - r->off;
		if (chunk > WRITE_CHUNK)
			chunk = WRITE_CHUNK;
		put = write(r->in, eml + r->off, chunk);
		if (put > 0) {
			r->off += (size_t)put;
			continue;
		}
		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0 && errno == EAGAIN)
			return;
		if (put < 0 && errno == EPIPE)
			r->epipe = true;
		else
			r->write_errno = put < 0 ? errno : EIO;
		break;
	}
	close(r->in);		/* all written, or the reader is gone */
	r->in = -1;
}

static bool
reap(struct run *r, int flags)
{
	pid_t w;

	if (r->exited)
		return true;
	do
		w = waitpid(r->pid, &r->status, flags);
	while (w < 0 && errno == EINTR);
	if (w == r->pid || (w < 0 && errno == ECHILD)) {
		if (w < 0)
			r->status = -1;		/* SIGCHLD ignored */
		r->exited = true;
	}
	return r->exited;
}

/* Until the child has exited (or is killed at the deadline). */
static void
run_loop(struct run *r, const char *eml, int64_t deadline)
{
	struct pollfd pfd[3];
	nfds_t nfd;
	int64_t left;
	int ms, in_at, out_at;

	for (;;) {
		if (reap(r, WNOHANG)) {
			if (r->out >= 0)
				read_output(r);	/* what it wrote before */
			return;
		}
		ms = -1;
		if (deadline > 0) {
			if ((left = deadline - now_ms()) <= 0) {
				kill(-r->pid, SIGKILL);
				kill(r->pid, SIGKILL);
				r->timed_out = true;
				reap(r, 0);
				return;
			}
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		if (r->pidfd < 0 && (ms < 0 || ms > POLL_SLICE_MS))
			ms = POLL_SLICE_MS;
		nfd = 0;
		in_at = out_at = -1;
		if (r->in >= 0) {
			pfd[nfd].fd = r->in;
			pfd[nfd].events = POLLOUT;
			in_at = (int)nfd++;
		}
		if (r->out >= 0) {
			pfd[nfd].fd = r->out;
			pfd[nfd].events = POLLIN;
			out_at = (int)nfd++;
		}
		if (r->pidfd >= 0) {	/* readable at exit: reaped above */
			pfd[nfd].fd = r->pidfd;
			pfd[nfd].events = POLLIN;
			nfd++;
		}
		if (poll(pfd, nfd, ms) <= 0)
			continue;	/* EINTR, or the time to look again */
		if (in_at >= 0 && pfd[in_at].revents != 0)
			write_message(r, eml);
		if (out_at >= 0 && pfd[out_at].revents != 0)
			read_output(r);
	}
}

/* The first line of the output, control bytes dropped. */
static void
first_line(const struct run *r, char *out, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < r->kept && r->keep[i] != '\n' && r->keep[i] != '\r';
	    i++)
		if ((unsigned char)r->keep[i] >= 0x20 && r->keep[i] != 0x7f &&
		    o + 1 < size)
			out[o++] = r->keep[i];
	out[o] = '\0';
}

static dm_status
verdict(const struct run *r, char *err, size_t errlen, int timeout_sec)
{
	char line[OUT_KEEP + 1], tail[OUT_KEEP + 4] = "";

	first_line(r, line, sizeof(line));
	if (line[0] != '\0')
		snprintf(tail, sizeof(tail), ": %s", line);
	if (r->timed_out) {
		snprintf(err, errlen, "%s did not finish within %d s and was "
		    "killed%s", r->path, timeout_sec, tail);
		return DM_TEMPFAIL;
	}
	if (r->status == -1) {
		snprintf(err, errlen, "%s: exit status unknown (SIGCHLD "
		    "ignored?)%s", r->path, tail);
		return DM_TEMPFAIL;
	}
	if (WIFSIGNALED(r->status)) {
		snprintf(err, errlen, "%s was killed by signal %d (%s)%s",
		    r->path, WTERMSIG(r->status), strsignal(WTERMSIG(r->status)),
		    tail);
		return DM_TEMPFAIL;
	}
	if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0) {
		snprintf(err, errlen, "%s exited with status %d%s", r->path,
		    WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1, tail);
		return DM_TEMPFAIL;
	}
	if (r->write_errno != 0) {
		snprintf(err, errlen, "writing the message to %s: %s", r->path,
		    strerror(r->write_errno));
		return DM_TEMPFAIL;
	}
	if (r->off < r->len) {
		snprintf(err, errlen, "%s exited with status 0 without reading "
		    "the whole message (%zu of %zu bytes)%s", r->path, r->off,
		    r->len, tail);
		return DM_TEMPFAIL;
	}
	return DM_OK;
}

/* The arguments become argv for execv, or NULL with err set. */
static char **
make_argv(const char *path, const char *from, const char *const *rcpts,
    size_t n, char *err, size_t errlen)
{
	char **argv;
	size_t i, a = 0;

	if (path == NULL || path[0] != '/' || !clean_arg(from) ||
	    rcpts == NULL || n == 0) {
		snprintf(err, errlen, "sendmail: need an absolute path, a "
		    "sender and recipients");
		return NULL;
	}
	for (i = 0; i < n; i++)
		if (!clean_arg(rcpts[i])) {
			snprintf(err, errlen, "sendmail: recipient %zu is empty "
			    "or has control characters", i + 1);
			return NULL;
		}
	if ((argv = calloc(n + 6, sizeof(*argv))) == NULL)
		dm_log_oom();
	argv[a++] = (char *)(uintptr_t)path;
	argv[a++] = (char *)(uintptr_t)"-i";
	argv[a++] = (char *)(uintptr_t)"-f";
	argv[a++] = (char *)(uintptr_t)from;
	argv[a++] = (char *)(uintptr_t)"--";
	for (i = 0; i < n; i++)
		argv[a++] = (char *)(uintptr_t)rcpts[i];
	return argv;
}

static void
close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	p[0] = p[1] = -1;
}

/*
 * fork and exec; on success r->pid, r->in (non-blocking, or -1 when
 * there is nothing to write), r->out and r->pidfd are set. The child's
 * exec failure comes back through a close-on-exec pipe.
 */
static int
spawn(struct run *r, char **argv, char *err, size_t errlen)
{
	int inp[2] = { -1, -1 }, outp[2] = { -1, -1 }, exp_[2] = { -1, -1 };
	long maxfd = sysconf(_SC_OPEN_MAX);
	ssize_t got;
	int e = 0, rc = -1;

	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	if (pipe2(inp, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0 ||
	    pipe2(exp_, O_CLOEXEC) < 0 || (r->pid = fork()) < 0) {
		snprintf(err, errlen, "cannot start %s: %s", r->path,
		    strerror(errno));
		goto out;
	}
	if (r->pid == 0)
		child(r->path, argv, inp[0], outp[1], exp_[1], maxfd);
	r->in = inp[1];
	r->out = outp[0];
	inp[1] = outp[0] = -1;
	setpgid(r->pid, r->pid);	/* also here: no race with a kill */
	close(exp_[1]);
	exp_[1] = -1;
	do
		got = read(exp_[0], &e, sizeof(e));
	while (got < 0 && errno == EINTR);
	if (got == (ssize_t)sizeof(e)) {
		reap(r, 0);
		snprintf(err, errlen, "cannot execute %s: %s", r->path,
		    strerror(e));
		goto out;
	}
#ifdef SYS_pidfd_open
	r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
#endif
	if (fcntl(r->in, F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(r->out, F_SETFL, O_NONBLOCK) < 0) {
		snprintf(err, errlen, "%s: fcntl: %s", r->path,
		    strerror(errno));
		kill(-r->pid, SIGKILL);
		kill(r->pid, SIGKILL);
		reap(r, 0);
		goto out;
	}
	rc = 0;
out:
	close_pair(inp);
	close_pair(outp);
	close_pair(exp_);
	return rc;
}

/*
 * Feed the message and wait, with SIGPIPE blocked in this thread: a
 * write to a reader that is gone must not kill us. A SIGPIPE our write
 * raised is consumed; one that was pending before is left alone.
 */
static void
run_guarded(struct run *r, const char *eml, int timeout_sec)
{
	struct timespec zero = { 0, 0 };
	sigset_t pipeset, old, pend;
	bool pipe_pending;

	sigemptyset(&pipeset);
	sigaddset(&pipeset, SIGPIPE);
	sigemptyset(&pend);
	sigpending(&pend);
	pipe_pending = sigismember(&pend, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipeset, &old);
	run_loop(r, eml, timeout_sec > 0 ? now_ms() + (int64_t)timeout_sec *
	    1000 : 0);
	if (r->epipe && !pipe_pending)
		while (sigtimedwait(&pipeset, NULL, &zero) < 0 &&
		    errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

dm_status
rpt_send_sendmail(const char *sendmail_path, const char *from,
    const char *const *rcpts, size_t n, const char *eml, size_t len,
    int timeout_sec, char *err, size_t errlen)
{
	struct run r;
	char **argv;
	dm_status rc = DM_TEMPFAIL;

	if (errlen > 0)
		err[0] = '\0';
	if (eml == NULL && len > 0) {
		snprintf(err, errlen, "sendmail: no message");
		return DM_PERMFAIL;
	}
	if ((argv = make_argv(sendmail_path, from, rcpts, n, err, errlen)) ==
	    NULL)
		return DM_PERMFAIL;
	memset(&r, 0, sizeof(r));
	r.path = sendmail_path;
	r.in = r.out = r.pidfd = -1;
	r.len = len;
	if (spawn(&r, argv, err, errlen) != 0)
		goto out;
	if (len == 0) {
		close(r.in);
		r.in = -1;
	}
	run_guarded(&r, eml, timeout_sec);
	rc = verdict(&r, err, errlen, timeout_sec);
out:
	if (r.in >= 0)
		close(r.in);
	if (r.out >= 0)
		close(r.out);
	if (r.pidfd >= 0)
		close(r.pidfd);
	free(argv);
	return rc;
}
