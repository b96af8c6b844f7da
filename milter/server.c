/*
 * milter/server.c - the milter protocol server's I/O: the listening
 * socket (unix, inet, inet6), a few I/O threads each with its own epoll
 * and its own connections, non-blocking sockets, the limits (connection
 * count, idle and per-command timeouts) and the stop.
 *
 * On each wake-up a connection's bytes are read, every complete packet
 * in the buffer is handled (dispatch.c), and the replies of that
 * wake-up leave in one write. The end of a message goes to an
 * evaluation thread (worker.c); meanwhile the connection is out of its
 * epoll, and the result comes back through the thread's eventfd.
 *
 * Memory of an idle connection: struct conn, its mlt_disp and session
 * (about 1.5 KB in all) and an input buffer of at most SRV_IDLE_BUF
 * bytes; a larger one (a long header, a body chunk) is freed once its
 * packets are handled.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "dm_log.h"
#include "mlt.h"
#include "mltproto.h"

#define SRV_IDLE_BUF	4096
#define SRV_READ_MIN	4096
#define SRV_OVER	64	/* refused with a reply past MaxConnections */

struct iot;

struct conn {
	char peer[80];		/* for log lines */
	int fd;
	struct iot *t;
	mlt_disp *d;
	unsigned char *in;
	size_t inlen, incap;
	mlt_obuf out;
	size_t outoff;
	time_t last;		/* bytes last received */
	atomic_bool busy;	/* evaluating: a worker's, out of the epoll */
	bool closing;		/* close once the replies are out */
	bool wantout;		/* EPOLLOUT asked for */
	struct conn *prev, *next, *done_next;
};

/* One I/O thread. */
struct iot {
	pthread_t tid;
	int ep, evfd;
	pthread_mutex_t lock;	/* done */
	struct conn *done;	/* evaluated, back from a worker */
	struct conn *conns;	/* this thread's, for timeouts */
	bool listening;
};

static int srv_lfd = -1;
static bool srv_local;
static mlt_server_opts srv_o;
static struct iot *srv_t;
static atomic_int srv_nconns;
static atomic_bool srv_quiesce, srv_stop;
static atomic_ulong srv_ids;
static atomic_long srv_warned;	/* when MaxConnections was last logged */

static int
srv_inet(const char *spec, int family, char *err, size_t errlen)
{
	char port[32], *at;
	const char *host = NULL;
	struct addrinfo hints = { 0 }, *ai = NULL;
	int fd = -1, on = 1, rc;

	strlcpy(port, spec, sizeof(port));
	if ((at = strchr(port, '@')) != NULL) {
		*at = '\0';
		host = spec + (at - port) + 1;
	}
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "%s", gai_strerror(rc));
		return -1;
	}
	if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int
srv_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { 0 };
	int fd;

	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	(void)unlink(path);	/* a stale socket of an earlier run */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int
mlt_server_setup(const char *socket, char *err, size_t errlen)
{
	char why[256] = "";

	srv_local = false;
	if (strncmp(socket, "unix:", 5) == 0 ||
	    strncmp(socket, "local:", 6) == 0 || socket[0] == '/') {
		srv_local = true;
		srv_lfd = srv_unix(socket + (socket[0] == '/' ? 0 :
		    strchr(socket, ':') - socket + 1), why, sizeof(why));
	} else if (strncmp(socket, "inet:", 5) == 0)
		srv_lfd = srv_inet(socket + 5, AF_INET, why, sizeof(why));
	else if (strncmp(socket, "inet6:", 6) == 0)
		srv_lfd = srv_inet(socket + 6, AF_INET6, why, sizeof(why));
	else {
		snprintf(err, errlen, "Socket %s: not a milter socket", socket);
		return -1;
	}
	if (srv_lfd < 0 || listen(srv_lfd, SOMAXCONN) != 0) {
		snprintf(err, errlen, "Socket %s: cannot listen: %s", socket,
		    why[0] ? why : strerror(errno));
		return -1;
	}
	return 0;
}

static void
srv_wake(struct iot *t)
{
	uint64_t one = 1;

	(void)!write(t->evfd, &one, sizeof(one));
}

static void
conn_free(struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (c->t->conns == c)
		c->t->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	close(c->fd);	/* also out of the epoll */
	mlt_disp_free(c->d);
	free(c->in);
	mlt_obuf_free(&c->out);
	free(c);
	atomic_fetch_sub(&srv_nconns, 1);
}

static int
conn_events(struct conn *c, int op)
{
	struct epoll_event ev = { 0 };

	ev.events = EPOLLIN | (c->wantout ? EPOLLOUT : 0);
	ev.data.ptr = c;
	return epoll_ctl(c->t->ep, op, c->fd, &ev);
}

/* The replies so far, in one write; -1 when the connection is gone. */
static int
conn_flush(struct conn *c)
{
	ssize_t n;
	bool want;

	while (c->outoff < c->out.len) {
		n = send(c->fd, c->out.p + c->outoff, c->out.len - c->outoff,
		    MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return -1;
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->out.len) {
		c->outoff = c->out.len = 0;
		if (c->out.cap > SRV_IDLE_BUF)
			mlt_obuf_free(&c->out);
	}
	want = c->out.len > 0;
	if (want != c->wantout && !c->busy) {
		c->wantout = want;
		if (conn_events(c, EPOLL_CTL_MOD) != 0)
			return -1;
	}
	return 0;
}

/*
 * On a worker: the evaluation, and its replies written from here, so
 * that the I/O thread is not woken for them. The connection goes back
 * into its epoll (epoll_ctl may be called from any thread) and only
 * then stops being busy: an event in between finds it busy and comes
 * again. When more is owed (input already read, a partial write, a
 * close), the I/O thread takes it back through its eventfd.
 */
static void
conn_eval_job(void *arg)
{
	struct conn *c = arg;
	struct iot *t = c->t;

	mlt_disp_eval(c->d);
	mlt_disp_eval_done(c->d, &c->out);
	c->wantout = false;
	if (!c->closing && c->inlen == 0 && conn_flush(c) == 0 &&
	    c->out.len == 0) {
		c->last = time(NULL);
		if (conn_events(c, EPOLL_CTL_ADD) == 0) {
			atomic_store(&c->busy, false);
			return;
		}
	}
	pthread_mutex_lock(&t->lock);
	c->done_next = t->done;
	t->done = c;
	pthread_mutex_unlock(&t->lock);
	srv_wake(t);
}

/* Every complete packet in the buffer; -1: close the connection. */
static int
conn_process(struct conn *c)
{
	mlt_pkt p;
	size_t off = 0, used;
	const char *why;
	int r = 1, d = MLT_DISP_OK;

	while (!c->busy && (r = mlt_proto_next(c->in + off, c->inlen - off,
	    MLT_PROTO_MAX, &p, &used, &why)) == 1) {
		off += used;
		d = mlt_disp_packet(c->d, &p, &c->out);
		if (d == MLT_DISP_CLOSE)
			break;
		if (d == MLT_DISP_EVAL) {
			c->busy = true;
			(void)epoll_ctl(c->t->ep, EPOLL_CTL_DEL, c->fd, NULL);
		}
	}
	if (r < 0)
		dm_warn("%s: closing the connection: %s", c->peer, why);
	if (off > 0) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
	if (c->inlen == 0 && c->incap > SRV_IDLE_BUF) {
		free(c->in);
		c->in = NULL;
		c->incap = 0;
	}
	if (r < 0 || d == MLT_DISP_CLOSE)
		c->closing = true;
	if (c->busy) {
		/* the replies before the end of the message go now */
		if (c->out.len > 0)
			(void)conn_flush(c);
		mlt_worker_submit(conn_eval_job, c);
	}
	return 0;
}

/* Room to read into: at least SRV_READ_MIN, the whole largest packet. */
static int
conn_room(struct conn *c)
{
	size_t cap = c->incap ? c->incap : SRV_IDLE_BUF;
	unsigned char *p;

	while (cap - c->inlen < SRV_READ_MIN && cap < MLT_PROTO_MAX + 8)
		cap *= 2;
	if (cap - c->inlen == 0)
		return -1;
	if (cap != c->incap) {
		if ((p = realloc(c->in, cap)) == NULL)
			dm_log_oom();
		c->in = p;
		c->incap = cap;
	}
	return 0;
}

static void
conn_readable(struct conn *c)
{
	ssize_t n;
	size_t room;

	if (atomic_load(&c->busy))
		return;	/* a worker is putting it back: the event comes again */
	for (;;) {
		if (conn_room(c) != 0) {
			dm_warn("%s: closing the connection: input over the "
			    "packet limit", c->peer);
			c->closing = true;
			break;
		}
		room = c->incap - c->inlen;
		n = recv(c->fd, c->in + c->inlen, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			c->closing = true;
			break;
		}
		c->inlen += (size_t)n;
		c->last = time(NULL);
		if ((size_t)n < room)
			break;	/* the socket is empty */
	}
	if (c->inlen > 0)
		(void)conn_process(c);
	if (c->busy)
		return;	/* the worker owns it until it comes back */
	if (conn_flush(c) != 0 || c->closing)
		conn_free(c);
}

static void
conn_event(struct conn *c, uint32_t events)
{
	if (atomic_load(&c->busy))
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_readable(c);
	else if (conn_flush(c) != 0)
		conn_free(c);
}

static void
srv_accept_one(struct iot *t, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64] = "unix", peer[80];
	struct conn *c;
	int on = 1, n = atomic_fetch_add(&srv_nconns, 1);
	bool refused = n >= srv_o.max_conns;
	long now = (long)time(NULL);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    ss.ss_family != AF_UNIX) {
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on));
		(void)getnameinfo((struct sockaddr *)&ss, sl, host,
		    sizeof(host), NULL, 0, NI_NUMERICHOST);
	}
	snprintf(peer, sizeof(peer), "connection %lu (%s)",
	    atomic_fetch_add(&srv_ids, 1) + 1, host);
	if (refused && atomic_exchange(&srv_warned, now) != now)
		dm_warn("%s: MaxConnections (%d) reached: %s", peer,
		    srv_o.max_conns, n >= srv_o.max_conns + SRV_OVER ?
		    "closed" : "a temporary failure at connect");
	if (n >= srv_o.max_conns + SRV_OVER) {
		close(fd);
		atomic_fetch_sub(&srv_nconns, 1);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		dm_log_oom();
	strlcpy(c->peer, peer, sizeof(c->peer));
	c->fd = fd;
	c->t = t;
	c->last = time(NULL);
	c->d = mlt_disp_new(peer, srv_local, refused);
	if ((c->next = t->conns) != NULL)
		t->conns->prev = c;
	t->conns = c;
	if (conn_events(c, EPOLL_CTL_ADD) != 0)
		conn_free(c);
}

static void
srv_accept(struct iot *t)
{
	int fd, i;

	for (i = 0; i < 64; i++) {
		fd = accept4(srv_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				dm_warn("accept: %s", strerror(errno));
			return;
		}
		srv_accept_one(t, fd);
	}
}

/* Evaluations finished: their replies out, the connection back. */
static void
srv_done(struct iot *t)
{
	struct conn *c, *next;
	uint64_t v;

	(void)!read(t->evfd, &v, sizeof(v));
	pthread_mutex_lock(&t->lock);
	c = t->done;
	t->done = NULL;
	pthread_mutex_unlock(&t->lock);
	for (; c != NULL; c = next) {
		next = c->done_next;
		c->busy = false;
		if (c->closing || conn_events(c, EPOLL_CTL_ADD) != 0) {
			(void)conn_flush(c);
			conn_free(c);
			continue;
		}
		if (c->inlen > 0)
			(void)conn_process(c);
		if (!c->busy && (conn_flush(c) != 0 || c->closing))
			conn_free(c);
	}
	if (atomic_load(&srv_quiesce) && t->listening) {
		(void)epoll_ctl(t->ep, EPOLL_CTL_DEL, srv_lfd, NULL);
		t->listening = false;
	}
}

/* Idle connections and commands begun but not finished. */
static void
srv_timeouts(struct iot *t, time_t now)
{
	struct conn *c, *next;
	const char *why;

	for (c = t->conns; c != NULL; c = next) {
		next = c->next;
		if (c->busy)
			continue;
		if (c->inlen > 0 && now - c->last >= srv_o.cmd_sec)
			why = "a command unfinished";
		else if (now - c->last >= srv_o.idle_sec)
			why = "idle";
		else
			continue;
		dm_info("%s: closing the connection after %ld s: %s",
		    c->peer, (long)(now - c->last), why);
		conn_free(c);
	}
}

static void *
srv_thread(void *arg)
{
	struct iot *t = arg;
	struct epoll_event ev[64];
	time_t now, checked = time(NULL);
	int n, i;

	while (!atomic_load(&srv_stop)) {
		n = epoll_wait(t->ep, ev, 64, 1000);
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == &srv_lfd)
				srv_accept(t);
			else if (ev[i].data.ptr == t)
				srv_done(t);
			else
				conn_event(ev[i].data.ptr, ev[i].events);
		}
		if ((now = time(NULL)) != checked) {
			srv_timeouts(t, now);
			checked = now;
		}
	}
	return NULL;
}

static int
srv_thread_init(struct iot *t)
{
	struct epoll_event ev = { 0 };

	pthread_mutex_init(&t->lock, NULL);
	if ((t->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -1;
	ev.events = EPOLLIN;
	ev.data.ptr = t;
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, t->evfd, &ev) != 0)
		return -1;
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.ptr = &srv_lfd;
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, srv_lfd, &ev) != 0)
		return -1;
	t->listening = true;
	return pthread_create(&t->tid, NULL, srv_thread, t) == 0 ? 0 : -1;
}

/* Descriptors for every connection allowed, and some to spare. */
static void
srv_nofile(int conns)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)conns + SRV_OVER + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		dm_warn("MaxConnections %d: only %lu descriptors allowed",
		    conns, (unsigned long)rl.rlim_cur);
}

/* After the threads: whatever is left, evaluated ones included. */
static void
srv_free_all(int n)
{
	struct conn *c, *next;
	int i;

	for (i = 0; i < n; i++) {
		for (c = srv_t[i].done; c != NULL; c = next) {
			next = c->done_next;
			c->busy = false;
			(void)conn_flush(c);
		}
		while (srv_t[i].conns != NULL)
			conn_free(srv_t[i].conns);
		close(srv_t[i].ep);
		close(srv_t[i].evfd);
		pthread_mutex_destroy(&srv_t[i].lock);
	}
	free(srv_t);
	srv_t = NULL;
}

int
mlt_server_run(const mlt_server_opts *o)
{
	int i, n = 0, rc = 0;

	srv_o = *o;
	srv_nofile(o->max_conns);
	if ((srv_t = calloc((size_t)o->io_threads, sizeof(*srv_t))) == NULL)
		dm_log_oom();
	if (mlt_worker_start(o->eval_threads) != 0)
		rc = -1;
	for (i = 0; rc == 0 && i < o->io_threads; i++, n++)
		if (srv_thread_init(&srv_t[i]) != 0) {
			dm_err("cannot start an I/O thread: %s",
			    strerror(errno));
			atomic_store(&srv_stop, true);
			rc = -1;
		}
	for (i = 0; i < n; i++) {
		if (srv_t[i].tid != 0)
			pthread_join(srv_t[i].tid, NULL);
	}
	mlt_worker_stop();
	srv_free_all(n);
	close(srv_lfd);
	srv_lfd = -1;
	return rc;
}

/* Set one of the flags the I/O threads check, and wake them to see it. */
static void
srv_raise(atomic_bool *flag)
{
	int i;

	atomic_store(flag, true);
	for (i = 0; srv_t != NULL && i < srv_o.io_threads; i++)
		srv_wake(&srv_t[i]);
}

void
mlt_server_quiesce(void)
{
	srv_raise(&srv_quiesce);
}

void
mlt_server_wait_closed(int ms)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	for (; ms > 0 && atomic_load(&srv_nconns) > 0; ms -= 10)
		nanosleep(&tick, NULL);
}

void
mlt_server_stop(void)
{
	srv_raise(&srv_stop);
}
