/*
 * milter/main.c - dmarc-milter(8): start-up and shut-down.
 *
 * Order matters: the config is read and the engine built while errors
 * can still go to the terminal; the socket is opened while we are still
 * root; then the process detaches, writes its PidFile, drops to UserID,
 * and only then starts threads. SIGHUP is blocked from the first line so
 * that every thread inherits the mask and reload.c alone receives it.
 *
 * Usage: dmarc-milter [-c FILE] [-f] [-n] [-V]
 * Exit: 0 after SIGTERM or -n/-V success; 1 on a start-up error
 * (config, socket, privileges); 2 on bad usage.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bsd/string.h>

#include "dm_log.h"
#include "dm_store.h"
#include "dm_version.h"
#include "mlt.h"
#include "mltproto.h"

#define MAIN_DEFAULT_CONF	"/etc/dmarc-milter.conf"
#define MAIN_DRAIN_SECONDS	30

struct main_args {
	const char *conf;
	bool foreground, check, version;
};

static int
main_usage(void)
{
	fputs("usage: dmarc-milter [-c FILE] [-f] [-n] [-V]\n", stderr);
	return 2;
}

static int
main_parse(int argc, char **argv, struct main_args *a)
{
	int c;

	a->conf = MAIN_DEFAULT_CONF;
	while ((c = getopt(argc, argv, "c:fnV")) != -1) {
		switch (c) {
		case 'c': a->conf = optarg; break;
		case 'f': a->foreground = true; break;
		case 'n': a->check = true; break;
		case 'V': a->version = true; break;
		default: return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

static void
main_version(void)
{
	char libs[512];

	dm_version_libs(libs, sizeof(libs));
	printf("dmarc-milter %s\nmilter protocol %d to %d (our own), %s\n",
	    PACKAGE_VERSION, MLT_PROTO_VMIN, MLT_PROTO_VMAX, libs);
}

/* The path of a unix socket spec, or NULL for inet ones. */
static const char *
main_socket_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	return spec[0] == '/' ? spec : NULL;
}

/* "user" or "user:group" to ids. */
static int
main_lookup_user(const char *spec, uid_t *uid, gid_t *gid, char *err,
    size_t errlen)
{
	char user[256], *colon;
	struct passwd *pw;
	struct group *gr;

	strlcpy(user, spec, sizeof(user));
	if ((colon = strchr(user, ':')) != NULL)
		*colon++ = '\0';
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "UserID %s: no such user", user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (colon != NULL) {
		if ((gr = getgrnam(colon)) == NULL) {
			snprintf(err, errlen, "UserID %s: no such group",
			    colon);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

/*
 * A file or directory we opened as root by a path that UserID may be
 * able to write to (/run/dmarc-milter, /var/lib/dmarc-milter): it must
 * be what it claims and ours, or a planted link would make root
 * truncate or chown what it points to (/etc/shadow). The open used
 * O_NOFOLLOW; here the descriptor itself is checked.
 */
static int
main_own_fd(int fd, const char *what, const char *path, mode_t type,
    uid_t uid, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if ((st.st_mode & S_IFMT) != type || (type == S_IFREG &&
	    st.st_nlink != 1)) {
		snprintf(err, errlen, "%s %s: not a %s of its own, refused",
		    what, path, type == S_IFREG ? "file" : "directory");
		return -1;
	}
	if (st.st_uid != geteuid() && st.st_uid != uid) {
		snprintf(err, errlen, "%s %s: owned by uid %ld, refused", what,
		    path, (long)st.st_uid);
		return -1;
	}
	return 0;
}

/* open(2) with O_NOFOLLOW, saying so when the path is a link. */
static int
main_open_nofollow(const char *what, const char *path, int flags,
    char *err, size_t errlen)
{
	int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC, 0640), e = errno;
	struct stat st;

	/* With O_DIRECTORY, Linux says ENOTDIR for a link, not ELOOP. */
	if (fd < 0 && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		e = ELOOP;
	if (fd < 0)
		snprintf(err, errlen, "%s %s: %s", what, path, e == ELOOP ?
		    "a symbolic link, refused" : strerror(e));
	return fd;
}

/*
 * StateDir (the counters' journal) made if missing, and given to UserID
 * while we are still root: it must be writable after the drop.
 */
static int
main_statedir(const dm_config *c, uid_t uid, gid_t gid, char *err,
    size_t errlen)
{
	const char *dir = dm_config_str(c, DM_OPT_STATE_DIR);
	int fd, rc = -1;

	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "StateDir %s: %s", dir, strerror(errno));
		return -1;
	}
	fd = main_open_nofollow("StateDir", dir, O_RDONLY | O_DIRECTORY, err,
	    errlen);
	if (fd < 0)
		return -1;
	if (main_own_fd(fd, "StateDir", dir, S_IFDIR, uid, err, errlen) != 0)
		goto out;
	if (uid != (uid_t)-1 && fchown(fd, uid, gid) != 0) {
		snprintf(err, errlen, "chown %s: %s", dir, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* Give the socket and StateDir to UserID, then become UserID for good. */
static int
main_drop(const dm_config *c, char *err, size_t errlen)
{
	const char *spec = dm_config_str(c, DM_OPT_USER_ID);
	const char *path = main_socket_path(dm_config_str(c, DM_OPT_SOCKET));
	uid_t uid;
	gid_t gid;

	if (spec == NULL || *spec == '\0')
		return main_statedir(c, (uid_t)-1, (gid_t)-1, err, errlen);
	if (main_lookup_user(spec, &uid, &gid, err, errlen) != 0)
		return -1;
	/* lchown: a link planted in place of the socket changes nothing. */
	if (path != NULL && lchown(path, uid, gid) != 0) {
		snprintf(err, errlen, "chown %s: %s", path, strerror(errno));
		return -1;
	}
	if (main_statedir(c, uid, gid, err, errlen) != 0)
		return -1;
	if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		snprintf(err, errlen, "UserID %s: %s", spec, strerror(errno));
		return -1;
	}
	if (uid != 0 && setuid(0) == 0) {
		snprintf(err, errlen, "UserID %s: root could be regained",
		    spec);
		return -1;
	}
	return 0;
}

/* Written as root, so opened without following a link, and checked. */
static int
main_pidfile(const char *path, char *err, size_t errlen)
{
	char line[32];
	int fd, n, rc = -1;

	if (path == NULL || *path == '\0')
		return 0;
	fd = main_open_nofollow("PidFile", path, O_WRONLY | O_CREAT, err,
	    errlen);
	if (fd < 0)
		return -1;
	if (main_own_fd(fd, "PidFile", path, S_IFREG, geteuid(), err,
	    errlen) != 0)
		goto out;
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || write(fd, line, (size_t)n) != n ||
	    fchmod(fd, 0644) != 0) {
		snprintf(err, errlen, "PidFile %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (close(fd) != 0 && rc == 0) {
		snprintf(err, errlen, "PidFile %s: %s", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

/*
 * The counters' store: after the privileges are dropped (its journal
 * files belong to UserID) and after daemon() (it starts a thread).
 */
static dm_store *
main_store(const dm_config *c, char *err, size_t errlen)
{
	dm_store_opts o = { 0 };

	o.redis_url = dm_config_str(c, DM_OPT_REDIS_URL);
	o.prefix = dm_config_str(c, DM_OPT_REDIS_KEY_PREFIX);
	o.timeout_ms = (int)dm_config_int(c, DM_OPT_REDIS_TIMEOUT);
	o.ttl_sec = dm_config_int(c, DM_OPT_REDIS_TTL);
	o.state_dir = dm_config_str(c, DM_OPT_STATE_DIR);
	o.queue_max = (size_t)dm_config_int(c, DM_OPT_COUNTER_QUEUE);
	o.sync = (int)dm_config_int(c, DM_OPT_COUNTER_SYNC);
	return dm_store_new(&o, err, errlen);
}

static int
main_has_redis(const dm_config *c)
{
	const char *url = dm_config_str(c, DM_OPT_REDIS_URL);

	return url != NULL && *url != '\0';
}

/* The server's limits (read at start-up: a change needs a restart). */
static void
main_server_opts(const dm_config *c, mlt_server_opts *o)
{
	o->max_conns = (int)dm_config_int(c, DM_OPT_MAX_CONNECTIONS);
	o->idle_sec = (int)dm_config_int(c, DM_OPT_IDLE_TIMEOUT);
	o->cmd_sec = (int)dm_config_int(c, DM_OPT_COMMAND_TIMEOUT);
	o->eval_threads = (int)dm_config_int(c, DM_OPT_EVAL_THREADS);
	o->io_threads = (int)dm_config_int(c, DM_OPT_IO_THREADS);
}

/* Everything between reading the config and serving; -1 with err. */
static int
main_start(const struct main_args *a, const dm_config *c, dm_store **st,
    char *err, size_t errlen)
{
	sigset_t set;

	umask((mode_t)dm_config_int(c, DM_OPT_UMASK));
	if (mlt_server_setup(dm_config_str(c, DM_OPT_SOCKET), err, errlen))
		return -1;
	if (!a->foreground && daemon(0, 0) != 0) {
		snprintf(err, errlen, "daemon: %s", strerror(errno));
		return -1;
	}
	if (main_pidfile(dm_config_str(c, DM_OPT_PID_FILE), err, errlen) ||
	    main_drop(c, err, errlen))
		return -1;
	/*
	 * From here on threads exist: SIGTERM and SIGINT are blocked in
	 * all of them, so that only the thread that waits for them
	 * (reload.c) takes them, never the default action.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((*st = main_store(c, err, errlen)) == NULL)
		return -1;
	mlt_counters_set(*st);
	if (dm_config_str(c, DM_OPT_METRICS_SOCKET) != NULL &&
	    mlt_metrics_start(dm_config_str(c, DM_OPT_METRICS_SOCKET), *st,
	    main_has_redis(c), err, errlen) != 0)
		return -1;
	if (mlt_signal_thread_start(MAIN_DRAIN_SECONDS) != 0) {
		snprintf(err, errlen, "cannot start the signal thread");
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct main_args a = { 0 };
	char err[1024] = "";
	sigset_t hup;
	mlt_runtime *rt;
	const dm_config *c;
	char *pidfile = NULL, *sockpath = NULL;
	dm_store *store = NULL;
	mlt_server_opts so;
	int rc;

	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &hup, NULL);
	if (main_parse(argc, argv, &a) != 0)
		return main_usage();
	if (a.version) {
		main_version();
		return 0;
	}
	dm_log_open("dmarc-milter", NULL, DM_LOG_TO_STDERR);
	if (mlt_runtime_init(a.conf, err, sizeof(err)) != 0) {
		dm_err("%s", err);
		return 1;
	}
	rt = mlt_runtime_get();
	c = mlt_runtime_config(rt);
	if (dm_log_open("dmarc-milter", dm_config_str(c,
	    DM_OPT_SYSLOG_FACILITY), DM_LOG_TO_STDERR) != 0) {
		dm_err("%s: SyslogFacility %s: unknown facility", a.conf,
		    dm_config_str(c, DM_OPT_SYSLOG_FACILITY));
		return 1;
	}
	if (dm_config_str(c, DM_OPT_METRICS_SOCKET) != NULL &&
	    mlt_metrics_check(dm_config_str(c, DM_OPT_METRICS_SOCKET), err,
	    sizeof(err)) != 0) {
		dm_err("%s: %s", a.conf, err);
		return 1;
	}
	if (a.check) {
		printf("%s: configuration is valid\n", a.conf);
		return 0;
	}
	/* Under systemd, stderr is the journal already: one copy is enough. */
	dm_log_open("dmarc-milter", dm_config_str(c, DM_OPT_SYSLOG_FACILITY),
	    DM_LOG_TO_SYSLOG | (a.foreground && getenv("JOURNAL_STREAM") ==
	    NULL ? DM_LOG_TO_STDERR : 0));
	if (main_start(&a, c, &store, err, sizeof(err)) != 0) {
		dm_err("%s", err);
		return 1;
	}
	dm_log(DM_LOG_NOTICE, "dmarc-milter %s listening on %s",
	    PACKAGE_VERSION, dm_config_str(c, DM_OPT_SOCKET));
	if (dm_config_str(c, DM_OPT_PID_FILE) != NULL &&
	    (pidfile = strdup(dm_config_str(c, DM_OPT_PID_FILE))) == NULL)
		dm_log_oom();
	if (main_socket_path(dm_config_str(c, DM_OPT_SOCKET)) != NULL &&
	    (sockpath = strdup(main_socket_path(dm_config_str(c,
	    DM_OPT_SOCKET)))) == NULL)
		dm_log_oom();
	main_server_opts(c, &so);
	mlt_runtime_put(rt);
	rc = mlt_server_run(&so);
	/* These may fail once we are not root; a stale socket is harmless. */
	if (pidfile != NULL)
		(void)unlink(pidfile);
	if (sockpath != NULL)
		(void)unlink(sockpath);
	mlt_metrics_stop();	/* it reads the store's figures */
	/* The milter is stopped: what is queued goes to Redis or the journal. */
	mlt_counters_set(NULL);
	dm_store_free(store);
	mlt_runtime_shutdown();
	dm_log(DM_LOG_NOTICE, "stopped");
	free(pidfile);
	free(sockpath);
	return rc == 0 ? 0 : 1;
}
