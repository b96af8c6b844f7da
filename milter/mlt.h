/*
 * milter/mlt.h - the milter daemon's own modules: the engine in use and
 * its replacement on SIGHUP (reload.c), one SMTP connection and its
 * messages (session.c), libmilter's callbacks (callbacks.c), start-up
 * (main.c). Only this directory includes libmilter; lib/ never does.
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
 * The signal thread: SIGHUP reloads; SIGTERM drains for drain_sec, then
 * stops libmilter. Both are blocked in every thread and waited for
 * here only.
 */
int mlt_signal_thread_start(int drain_sec);
void mlt_runtime_shutdown(void);

/*
 * SIGTERM's drain: once begun, new connections and messages get a
 * temporary failure, and the messages in flight are waited for (up to
 * timeout_sec) before libmilter is told to stop.
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
 * (accept there: the body never crosses the socket). A failure on the way is kept
 * (mlt_msg_fail) and the steps return DM_OK: only at the end of the
 * message can headers be added, so the end applies OnInternalError with
 * its dmarc=temperror header.
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

/* libmilter registration and main loop (callbacks.c). */
int mlt_milter_run(int timeout_sec);
/* Open the socket before privileges are dropped. */
int mlt_milter_setup(const char *socket, char *err, size_t errlen);

#endif
