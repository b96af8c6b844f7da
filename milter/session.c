/*
 * milter/session.c - one SMTP connection and its messages, between
 * the protocol layer and the engine. Everything here is plain C on
 * plain strings: dispatch.c marshals the MTA's commands in and carries
 * the outcome (reply, header edits) out.
 *
 * Each message pins the runtime (config and engine) current at its
 * MAIL FROM, so a reload in the middle changes nothing for it.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <bsd/string.h>

#include "dm_authres.h"
#include "dm_domain.h"
#include "dm_log.h"
#include "dm_metrics.h"
#include "dm_row.h"
#include "dm_store.h"
#include "mlt.h"

struct mlt_session {
	char ip[64];
	char helo[256];
	bool ignored;		/* IgnoreHosts: nothing evaluated */
	/* the message in progress */
	mlt_runtime *rt;
	bool skipped;		/* not evaluated; forged A-R still removed */
	dm_msg *msg;
	char qid[64];
	char rcpt_domain[DM_DOMAIN_MAX];	/* of the first RCPT */
	char failed[64];	/* an internal failure, reported at EOM */
	char *authres;		/* the field we add */
	int nauthres;		/* Authentication-Results fields seen */
	int *forged;		/* 1-based indexes of ours among them */
	size_t nforged, capforged;
	dm_fp *fp;		/* the message's fingerprint, being fed */
};

static void msg_internal_error(mlt_session *s, mlt_outcome *out);

static dm_store *counters;

void
mlt_counters_set(dm_store *st)
{
	counters = st;
}

/* Messages between MAIL FROM and their end, for SIGTERM's drain. */
static pthread_mutex_t msg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t msg_cond = PTHREAD_COND_INITIALIZER;
static unsigned long msg_inflight;
static bool msg_draining;

mlt_session *
mlt_session_new(const char *ip)
{
	mlt_session *s;
	mlt_runtime *rt;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		dm_log_oom();
	strlcpy(s->ip, ip != NULL ? ip : "", sizeof(s->ip));
	rt = mlt_runtime_get();
	s->ignored = ip != NULL &&
	    dm_engine_ignored_host(mlt_runtime_engine(rt), ip);
	mlt_runtime_put(rt);
	return s;
}

void
mlt_session_free(mlt_session *s)
{
	if (s == NULL)
		return;
	mlt_msg_end(s);
	free(s->forged);
	dm_fp_free(s->fp);
	free(s);
}

/* Stop taking new messages; false if already draining. */
bool
mlt_drain_begin(void)
{
	bool was;

	pthread_mutex_lock(&msg_lock);
	was = msg_draining;
	msg_draining = true;
	pthread_mutex_unlock(&msg_lock);
	return !was;
}

bool
mlt_draining(void)
{
	bool d;

	pthread_mutex_lock(&msg_lock);
	d = msg_draining;
	pthread_mutex_unlock(&msg_lock);
	return d;
}

void
mlt_messages_wait(int timeout_sec)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_sec;
	pthread_mutex_lock(&msg_lock);
	while (msg_inflight > 0 &&
	    pthread_cond_timedwait(&msg_cond, &msg_lock, &until) == 0)
		;
	if (msg_inflight > 0)
		dm_warn("stopping with %lu messages unfinished", msg_inflight);
	pthread_mutex_unlock(&msg_lock);
}

static void
msg_inflight_add(int d)
{
	pthread_mutex_lock(&msg_lock);
	msg_inflight += (unsigned long)d;
	if (msg_inflight == 0)
		pthread_cond_broadcast(&msg_cond);
	pthread_mutex_unlock(&msg_lock);
}

void
mlt_session_helo(mlt_session *s, const char *helo)
{
	strlcpy(s->helo, helo != NULL ? helo : "", sizeof(s->helo));
}

dm_status
mlt_msg_begin(mlt_session *s, const char *qid, const char *mail_from,
    bool authenticated)
{
	dm_status st;

	mlt_msg_end(s);
	strlcpy(s->qid, qid != NULL && *qid ? qid : "NOQUEUE",
	    sizeof(s->qid));
	s->rt = mlt_runtime_get();
	msg_inflight_add(1);
	if (s->fp == NULL && (s->fp = dm_fp_new()) == NULL)
		dm_log_oom();
	dm_fp_reset(s->fp);
	dm_fp_field(s->fp, 'I', s->ip);
	dm_fp_field(s->fp, 'M', mail_from);
	if (s->ignored || (authenticated &&
	    dm_config_bool(mlt_runtime_config(s->rt),
	    DM_OPT_IGNORE_AUTH_CLIENTS))) {
		dm_log_qid(DM_LOG_INFO, s->qid, "ip=%s action=accept "
		    "reasons=%s (not evaluated)", s->ip, s->ignored ?
		    "IgnoreHosts" : "IgnoreAuthenticatedClients");
		dm_metric_inc(DM_MET_SKIPPED, 0, 0, 0);
		s->skipped = true;
		return DM_NOTFOUND;
	}
	if ((s->msg = dm_msg_new(mlt_runtime_engine(s->rt), s->qid)) == NULL) {
		mlt_msg_fail(s, "cannot start a message");
		return DM_OK;
	}
	if ((st = dm_msg_client(s->msg, s->ip, s->helo)) != DM_OK ||
	    (st = dm_msg_mail_from(s->msg, mail_from)) != DM_OK)
		mlt_msg_fail(s, dm_status_str(st));
	return DM_OK;
}

/* The first recipient's domain, for envelope_to (ReportEnvelopeTo). */
void
mlt_msg_rcpt(mlt_session *s, const char *rcpt)
{
	const char *at;

	if (s->rt != NULL)
		dm_fp_field(s->fp, 'R', rcpt);
	if (s->rt == NULL || s->rcpt_domain[0] != '\0' || rcpt == NULL ||
	    (at = strrchr(rcpt, '@')) == NULL)
		return;
	at++;
	if (dm_domain_normalize(at, strcspn(at, ">"), s->rcpt_domain,
	    sizeof(s->rcpt_domain)) != DM_OK)
		s->rcpt_domain[0] = '\0';
}

/*
 * One count per policy domain that asked for reports, with the
 * message's fingerprint, so that a message counted whose reply was lost
 * (we died before answering) is not counted again when it is retried.
 * The store takes the rows and never waits on Redis.
 */
static void
msg_count(mlt_session *s, const dm_verdict *v, const dm_config *c)
{
	static const char *const methods[] = { "treewalk", "psl" };
	dm_row_ctx rc = { 0 };
	char fp[DM_FP_LEN + 1];
	dm_update *u;
	size_t n, i;

	if (counters == NULL)
		return;
	rc.ip = s->ip;
	rc.envelope_to = dm_config_bool(c, DM_OPT_REPORT_ENVELOPE_TO) ?
	    s->rcpt_domain : NULL;
	rc.now = (int64_t)time(NULL);
	rc.period = dm_config_int(c, DM_OPT_REPORT_PERIOD);
	rc.honor_ri = dm_config_bool(c, DM_OPT_HONOR_RI);
	rc.method = methods[dm_config_int(c, DM_OPT_ORG_DOMAIN_METHOD) == 1];
	if (dm_row_build(v, &rc, &u, &n) != DM_OK)
		dm_log_oom();
	dm_fp_final(s->fp, fp);
	for (i = 0; i < n; i++)
		memcpy(u[i].fp, fp, sizeof(fp));
	/* Returns once the count is on disk: before the MTA hears us. */
	if (n > 0 && dm_store_put(counters, u, n) != DM_OK)
		dm_err("%s: count lost: the journal could not write or sync it",
		    s->qid);
	free(u);
}

/*
 * Every header field a retried message repeats byte for byte: all but
 * Received, which the MTA prepends anew at each attempt (with its queue
 * id and time).
 */
static void
msg_fp_header(mlt_session *s, const char *name, const char *value)
{
	if (strcasecmp(name, "Received") == 0)
		return;
	dm_fp_field(s->fp, 'H', name);
	dm_fp_field(s->fp, 'V', value);
}

/* Note an Authentication-Results field that carries our authserv-id. */
static void
msg_note_authres(mlt_session *s, const char *value)
{
	const char *ours = dm_config_str(mlt_runtime_config(s->rt),
	    DM_OPT_AUTHSERV_ID);
	char id[256];
	int *n;

	s->nauthres++;
	if (dm_authres_servid(value, id, sizeof(id)) != DM_OK ||
	    ours == NULL || strcasecmp(id, ours) != 0)
		return;
	if (s->nforged == s->capforged) {
		s->capforged = s->capforged ? s->capforged * 2 : 4;
		n = reallocarray(s->forged, s->capforged, sizeof(*n));
		if (n == NULL)
			dm_log_oom();
		s->forged = n;
	}
	s->forged[s->nforged++] = s->nauthres;
}

dm_status
mlt_msg_header(mlt_session *s, const char *name, const char *value)
{
	if (s->rt != NULL)
		msg_fp_header(s, name, value);
	if (s->rt != NULL &&
	    strcasecmp(name, "Authentication-Results") == 0)
		msg_note_authres(s, value);
	if (s->msg == NULL || s->failed[0] != '\0')
		return DM_OK;
	return dm_msg_header(s->msg, name, value);
}

dm_status
mlt_msg_eoh(mlt_session *s)
{
	if (s->skipped)
		return s->nforged == 0 ? DM_NOTFOUND : DM_OK;
	if (s->msg == NULL || s->failed[0] != '\0')
		return DM_OK;
	return dm_msg_eoh(s->msg);
}

dm_status
mlt_msg_body(mlt_session *s, const unsigned char *p, size_t len)
{
	if (s->rt != NULL)
		dm_fp_body(s->fp, p, len);
	if (s->msg == NULL || s->failed[0] != '\0')
		return DM_OK;
	return dm_msg_body(s->msg, p, len);
}

/* "r1,r2" of the decisive author's reasons, for the log line. */
static void
reasons_text(const dm_verdict *v, char *out, size_t len)
{
	const dm_policy_verdict *pv;
	size_t i;

	strlcpy(out, "", len);
	if (v->nauthors == 0) {
		/* No author to carry it: the From field's fault itself. */
		if (v->from_why != NULL)
			snprintf(out, len, "%s(%s)", v->from_refused != NULL ?
			    "local_policy" : "none", v->from_why);
		return;
	}
	pv = &v->authors[v->decisive].pv;
	for (i = 0; i < pv->nreasons; i++) {
		if (i > 0)
			strlcat(out, ",", len);
		strlcat(out, dm_reason_type_str(pv->reasons[i].type), len);
		if (pv->reasons[i].comment[0] != '\0') {
			strlcat(out, "(", len);
			strlcat(out, pv->reasons[i].comment, len);
			strlcat(out, ")", len);
		}
	}
}

/* "pass:d=example.com,fail:d=other.example" */
static void
dkim_text(const dm_verdict *v, char *out, size_t len)
{
	size_t i;

	strlcpy(out, v->nsigs ? "" : "none", len);
	for (i = 0; i < v->nsigs; i++) {
		if (i > 0)
			strlcat(out, ",", len);
		strlcat(out, dm_dkim_result_str(v->sigs[i]->result), len);
		strlcat(out, ":", len);
		strlcat(out, v->sigs[i]->domain, len);
	}
}

/*
 * The A-R field as long as the results need (200 signatures get their
 * 200 dkim= results), up to a megabyte; past that the verdict still
 * applies, with a field that says the results were too long to list.
 */
#define MSG_AUTHRES_MAX	(1024 * 1024)

static void
msg_format_authres(mlt_session *s, const dm_verdict *v, const dm_config *c)
{
	const char *id = dm_config_str(c, DM_OPT_AUTHSERV_ID);
	size_t len;

	free(s->authres);
	s->authres = dm_authres_format(v, id, "\n", &len);
	if (len <= MSG_AUTHRES_MAX)
		return;
	free(s->authres);
	if (asprintf(&s->authres, " %s;\n\tdmarc=%s (results too long to "
	    "list)", id, dm_dmarc_result_str(v->result)) < 0)
		dm_log_oom();
}

/* The one info line per message. */
static void
msg_log(const mlt_session *s, const dm_verdict *v, const dm_action *a)
{
	char reasons[512], dkim[512];
	const dm_author *au = v->nauthors ? &v->authors[v->decisive] : NULL;

	reasons_text(v, reasons, sizeof(reasons));
	dkim_text(v, dkim, sizeof(dkim));
	dm_log_qid(DM_LOG_INFO, s->qid, "ip=%s from=%s policy_domain=%s "
	    "spf=%s dkim=%s dmarc=%s disposition=%s action=%s reasons=%s",
	    s->ip, au ? au->domain : "-",
	    au && au->disc.policy_domain[0] ? au->disc.policy_domain : "-",
	    dm_spf_result_str(v->spf.result), dkim,
	    dm_dmarc_result_str(v->result),
	    dm_disposition_str(v->disposition), dm_action_kind_str(a->kind),
	    reasons[0] ? reasons : "-");
}

/* The figures of the log line, for /metrics (lib/metrics.c). */
static void
msg_metrics(const dm_verdict *v, const dm_action *a)
{
	const dm_policy_verdict *pv;
	size_t i;

	dm_metric_inc(DM_MET_MESSAGES, (int)v->result, (int)v->disposition,
	    (int)a->kind);
	dm_metric_inc(DM_MET_SPF, (int)v->spf.result, 0, 0);
	if (v->nsigs == 0)
		dm_metric_inc(DM_MET_DKIM, DM_DKIM_NONE, 0, 0);
	for (i = 0; i < v->nsigs; i++)
		dm_metric_inc(DM_MET_DKIM, (int)v->sigs[i]->result, 0, 0);
	if (v->nauthors == 0)
		return;
	pv = &v->authors[v->decisive].pv;
	for (i = 0; i < pv->nreasons; i++)
		dm_metric_inc(DM_MET_OVERRIDES, (int)pv->reasons[i].type, 0,
		    0);
}

/*
 * A message not evaluated that carried forged fields of our
 * authserv-id: they go, nothing of ours is added, and it is accepted.
 */
static void
msg_skipped_eom(mlt_session *s, mlt_outcome *out)
{
	out->action.kind = DM_ACT_ACCEPT;
	out->delete_idx = s->forged;
	out->ndelete = s->nforged;
	dm_log_qid(DM_LOG_INFO, s->qid, "removed %zu forged "
	    "Authentication-Results (not evaluated)", s->nforged);
}

void
mlt_msg_eom(mlt_session *s, const char *qid, mlt_outcome *out)
{
	const dm_config *c;
	const dm_verdict *v;
	dm_status st;

	memset(out, 0, sizeof(*out));
	if (qid != NULL && *qid)
		strlcpy(s->qid, qid, sizeof(s->qid));
	if (s->skipped) {
		msg_skipped_eom(s, out);
		return;
	}
	if (s->msg == NULL)
		mlt_msg_fail(s, "no message in progress");
	if (s->failed[0] == '\0' && (st = dm_msg_eom(s->msg, &v)) != DM_OK)
		mlt_msg_fail(s, dm_status_str(st));
	if (s->failed[0] != '\0') {
		msg_internal_error(s, out);
		return;
	}
	c = mlt_runtime_config(s->rt);
	dm_action_decide(c, v, &out->action);
	msg_format_authres(s, v, c);
	out->qheader = dm_config_str(c, DM_OPT_QUARANTINE_HEADER);
	out->authres = s->authres;
	out->delete_idx = s->forged;
	out->ndelete = s->nforged;
	snprintf(out->quarantine_reason, sizeof(out->quarantine_reason),
	    "DMARC policy of %s", v->nauthors ?
	    v->authors[v->decisive].disc.policy_domain : "the author");
	msg_log(s, v, &out->action);
	msg_metrics(v, &out->action);
	/* Counted at its final disposition: a 4xx is not one (a retry is). */
	if (out->action.kind != DM_ACT_TEMPFAIL)
		msg_count(s, v, c);
}

void
mlt_msg_fail(mlt_session *s, const char *what)
{
	if (s->failed[0] == '\0')
		strlcpy(s->failed, what, sizeof(s->failed));
}

/*
 * OnInternalError, with a header that says so: the administrator sees
 * dmarc=temperror in the message and the reason in the log.
 */
static void
msg_internal_error(mlt_session *s, mlt_outcome *out)
{
	mlt_runtime *rt = s->rt != NULL ? s->rt : mlt_runtime_get();
	const dm_config *c = mlt_runtime_config(rt);

	memset(out, 0, sizeof(*out));
	dm_action_internal_error(c, &out->action);
	free(s->authres);
	if (asprintf(&s->authres, " %s;\n\tdmarc=temperror (internal error)",
	    dm_config_str(c, DM_OPT_AUTHSERV_ID)) < 0)
		dm_log_oom();
	out->authres = s->authres;
	out->delete_idx = s->forged;
	out->ndelete = s->nforged;
	dm_err("%s: internal error (%s): action %s", s->qid, s->failed,
	    dm_action_kind_str(out->action.kind));
	dm_metric_inc(DM_MET_INTERNAL, (int)out->action.kind, 0, 0);
	if (rt != s->rt)
		mlt_runtime_put(rt);
}

void
mlt_msg_end(mlt_session *s)
{
	if (s->rt != NULL)
		msg_inflight_add(-1);
	dm_msg_free(s->msg);
	s->msg = NULL;
	mlt_runtime_put(s->rt);
	s->rt = NULL;
	s->skipped = false;
	free(s->authres);
	s->authres = NULL;
	s->nauthres = 0;
	s->nforged = 0;
	s->qid[0] = '\0';
	s->rcpt_domain[0] = '\0';
	s->failed[0] = '\0';
}
