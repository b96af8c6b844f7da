/*
 * milter/mlt.h - the milter daemon's own modules: the engine in use and
 * its replacement on SIGHUP (reload.c), one SMTP connection and its
 * messages (session.c), the milter protocol (mltproto.c framing,
 * dispatch.c commands, server.c I/O, worker.c evaluation threads) and
 * start-up (main.c). lib/ knows nothing of the protocol.
 */
#ifndef MLT_H
#define MLT_H

#include <stdbool.h>
#include <stddef.h>

#include "dm_action.h"
#include "dm_config.h"
#include "dm_engine.h"
#include "dm_status.h"
#include "dm_store.h"

/*
 * A config and the engine built from it. Each message holds a reference
 * from MAIL FROM to its end, so a reload never pulls an engine from
 * under a message in flight; the last reference frees it.
 */
typedef struct mlt_runtime mlt_runtime;

/* Load the config and build the first engine; -1 with err. */
int mlt_runtime_init(const char *conf_file, char *err, size_t errlen);
mlt_runtime *mlt_runtime_get(void);
void mlt_runtime_put(mlt_runtime *rt);
dm_engine *mlt_runtime_engine(mlt_runtime *rt);
const dm_config *mlt_runtime_config(mlt_runtime *rt);
/* Re-read the config file; on any error the running one stays. */
int mlt_runtime_reload(char *err, size_t errlen);
/*
 * The signal thread: SIGHUP reloads; SIGTERM (or SIGINT) stops taking
 * connections, drains the messages in flight (at most drain_sec), then
 * stops the server. All are blocked in every thread and waited for
 * here only.
 */
int mlt_signal_thread_start(int drain_sec);
void mlt_runtime_shutdown(void);

/*
 * SIGTERM's drain: once begun, new connections and messages get a
 * temporary failure, and the messages in flight are waited for (up to
 * timeout_sec) before the server is told to stop.
 */
bool mlt_drain_begin(void);
bool mlt_draining(void);
void mlt_messages_wait(int timeout_sec);

/*
 * What the milter must do to the message at its end, filled by
 * mlt_msg_eom and carried out by the callback.
 */
typedef struct mlt_outcome {
	dm_action action;
	const char *authres;	/* field body (valid until mlt_msg_end), */
				/* NULL: none (message not evaluated) */
	const int *delete_idx;	/* forged A-R fields, 1-based among A-R */
	size_t ndelete;		/* (valid until mlt_msg_end) */
	const char *qheader;	/* QuarantineHeader, "Name: value" */
	char quarantine_reason[300];
} mlt_outcome;

typedef struct mlt_session mlt_session;

mlt_session *mlt_session_new(const char *ip);
void mlt_session_free(mlt_session *s);
void mlt_session_helo(mlt_session *s, const char *helo);

/*
 * Message steps. mlt_msg_begin returns DM_NOTFOUND when the message is
 * not evaluated (IgnoreHosts, authenticated client); its header is
 * still read, since a forged A-R of our authserv-id must go from every
 * message, and mlt_msg_eoh then returns DM_NOTFOUND when there is none
 * (accept there: the body never crosses the socket). A failure on the
 * way is kept (mlt_msg_fail) and the steps return DM_OK: only at the end
 * of the message can headers be added, so the end applies
 * OnInternalError with its dmarc=temperror header.
 */
dm_status mlt_msg_begin(mlt_session *s, const char *qid,
    const char *mail_from, bool authenticated);
void mlt_msg_rcpt(mlt_session *s, const char *rcpt);
dm_status mlt_msg_header(mlt_session *s, const char *name,
    const char *value);
dm_status mlt_msg_eoh(mlt_session *s);
dm_status mlt_msg_body(mlt_session *s, const unsigned char *p, size_t len);
void mlt_msg_eom(mlt_session *s, const char *qid, mlt_outcome *out);
void mlt_msg_fail(mlt_session *s, const char *what);
void mlt_msg_end(mlt_session *s);

/*
 * The counters' store, made once at start-up (it outlives reloads: a
 * new RedisURL or StateDir needs a restart); NULL counts nothing.
 */
void mlt_counters_set(dm_store *st);

/*
 * /metrics over HTTP (metrics_http.c), on MetricsSocket's address; the
 * store's figures come from st (may be NULL), redis_up only when redis.
 */
int mlt_metrics_start(const char *spec, dm_store *st, int redis,
    char *err, size_t errlen);
void mlt_metrics_stop(void);
/* Is spec a MetricsSocket we can listen on? (-n, and before daemon()) */
int mlt_metrics_check(const char *spec, char *err, size_t errlen);

/*
 * One MTA connection at the protocol level (dispatch.c). peer names it
 * in log lines; refused: over MaxConnections, every step gets a
 * temporary failure.
 */
typedef struct mlt_disp mlt_disp;
struct mlt_pkt;
struct mlt_obuf;

enum { MLT_DISP_OK, MLT_DISP_EVAL, MLT_DISP_CLOSE };

mlt_disp *mlt_disp_new(const char *peer, bool local, bool refused);
void mlt_disp_free(mlt_disp *d);
/*
 * One packet; its replies appended to o. MLT_DISP_EVAL: the end of a
 * message, to be evaluated by mlt_disp_eval off the I/O thread (it may
 * wait on DNS), then written by mlt_disp_eval_done; MLT_DISP_CLOSE: the
 * connection ends (a log line says why when the MTA was at fault).
 */
int mlt_disp_packet(mlt_disp *d, const struct mlt_pkt *p,
    struct mlt_obuf *o);
void mlt_disp_eval(mlt_disp *d);
void mlt_disp_eval_done(mlt_disp *d, struct mlt_obuf *o);

/*
 * The evaluation threads (worker.c): fn(arg) runs on one of them, then
 * done(arg) is called there too (it hands the result back to the
 * connection's I/O thread).
 */
int mlt_worker_start(int nthreads);
void mlt_worker_submit(void (*fn)(void *), void *arg);
void mlt_worker_stop(void);

/*
 * The protocol server (server.c): the socket is opened before
 * privileges are dropped; mlt_server_run serves until mlt_server_stop.
 */
typedef struct mlt_server_opts {
	int max_conns;		/* MaxConnections */
	int idle_sec;		/* MTA silence between commands */
	int cmd_sec;		/* a command begun and not finished */
	int io_threads;
	int eval_threads;
} mlt_server_opts;

int mlt_server_setup(const char *socket, char *err, size_t errlen);
int mlt_server_run(const mlt_server_opts *o);
/* Stop taking connections (SIGTERM's drain begins). */
void mlt_server_quiesce(void);
/*
 * After the drain: up to ms for the MTAs to end their connections (QUIT)
 * before we close them, so that one whose last message we just answered
 * is not cut off while it says goodbye. Returns at once when none is
 * open.
 */
void mlt_server_wait_closed(int ms);
/* End mlt_server_run: every connection is closed. */
void mlt_server_stop(void);

#endif
