/*
 * lib/config.c - the configuration: one declarative table of options
 * (name, type, default, bounds, doc) and the immutable, reference-counted
 * dm_config it yields. The file format is OpenDMARC's: "Name value" lines,
 * '#' comments, names case-insensitive, the last setting wins.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <bsd/string.h>

#include "dm_config.h"
#include "dm_log.h"

enum cfg_type { CFG_STR, CFG_INT, CFG_OCTAL, CFG_BOOL, CFG_ENUM };

struct cfg_def {
	dm_opt id;
	const char *name;
	enum cfg_type type;
	const char *def;	/* default, as it would be written in a file */
	long min, max;		/* CFG_INT bounds */
	const char *const *names;	/* CFG_ENUM values, NULL-terminated */
	const char *doc;
};

static const char *const cfg_org_methods[] = { "treewalk", "psl", NULL };
static const char *const cfg_multifrom[] = { "strictest", "reject",
    "first", NULL };
static const char *const cfg_malfrom[] = { "reject", "permissive", NULL };
static const char *const cfg_noauthor[] = { "accept", "reject", NULL };
static const char *const cfg_levels[] = { "err", "warning", "notice",
    "info", "debug", NULL };

static const char *const cfg_modes[] = { "enforce", "monitor", NULL };
static const char *const cfg_qact[] = { "header", "hold", "both", NULL };
static const char *const cfg_tempact[] = { "auto", "tempfail", "accept",
    NULL };
static const char *const cfg_listact[] = { "quarantine", "none", NULL };
static const char *const cfg_rejpol[] = { "reject", "quarantine", NULL };
static const char *const cfg_interr[] = { "accept", "tempfail", "reject",
    NULL };
static const char *const cfg_rptfmt[] = { "rfc7489", "rfc9990", NULL };
static const char *const cfg_sync[] = { "disk", "written", NULL };
static const char *const cfg_relaytls[] = { "starttls", "smtps", "none",
    NULL };

static const struct cfg_def cfg_table[DM_OPT_COUNT] = {
	{ DM_OPT_AUTHSERV_ID, "AuthservID", CFG_STR, NULL, 0, 0, NULL,
	  "authserv-id of the Authentication-Results header; default: the "
	  "host name" },
	{ DM_OPT_DNS_CONFIG, "DNSConfig", CFG_STR, NULL, 0, 0, NULL,
	  "an unbound.conf file for the resolver (forwarders, local-zone, "
	  "local-data); default: /etc/resolv.conf" },
	{ DM_OPT_DNS_TIMEOUT, "DNSTimeout", CFG_INT, "5", 1, 120, NULL,
	  "seconds one DNS lookup may take before it is a temporary error" },
	{ DM_OPT_ORG_DOMAIN_METHOD, "OrgDomainMethod", CFG_ENUM, "treewalk",
	  0, 0, cfg_org_methods,
	  "treewalk (RFC 9989 DNS tree walk) or psl (RFC 7489, public "
	  "suffix list)" },
	{ DM_OPT_PSL_FILE, "PSLFile", CFG_STR, DM_PSL_FILE, 0, 0, NULL,
	  "public suffix list used by OrgDomainMethod psl" },
	{ DM_OPT_HONOR_PCT, "HonorPct", CFG_BOOL, "yes", 0, 0, NULL,
	  "apply pct= sampling: a failing message not sampled gets the next "
	  "lower policy (reason sampled_out)" },
	{ DM_OPT_MULTIPLE_FROM, "MultipleFrom", CFG_ENUM, "strictest", 0, 0,
	  cfg_multifrom,
	  "several From fields or mailboxes: evaluate every author domain "
	  "and apply the strictest outcome, reject the message, or use the "
	  "first mailbox only" },
	{ DM_OPT_MALFORMED_FROM_ACTION, "MalformedFromAction", CFG_ENUM,
	  "reject", 0, 0, cfg_malfrom, "a From field that shows a reader a "
	  "domain that is no domain name (control, invisible or bidi "
	  "characters, an empty label): reject (550 5.7.1, From field "
	  "malformed), or permissive (evaluate the other author domains, "
	  "as if that one were not there). Malformed fields whose domains "
	  "can be read are evaluated either way" },
	{ DM_OPT_NO_AUTHOR_ACTION, "NoAuthorAction", CFG_ENUM, "accept", 0, 0,
	  cfg_noauthor, "a message whose From shows no author domain at "
	  "all (no From field, \"From: alice\", \"<alice@>\"): accept it "
	  "outside DMARC (it impersonates nobody), or reject it (RFC 5322 "
	  "requires a From field)" },
	{ DM_OPT_LOG_LEVEL, "LogLevel", CFG_ENUM, "info", 0, 0, cfg_levels,
	  "the least important level logged" },
	{ DM_OPT_SOCKET, "Socket", CFG_STR, "unix:/run/dmarc-milter/sock", 0,
	  0, NULL, "where the milter listens: unix:/path, or inet:port@addr "
	  "(inet6:port@addr)" },
	{ DM_OPT_USER_ID, "UserID", CFG_STR, NULL, 0, 0, NULL,
	  "user (and :group) to run as once the socket is open" },
	{ DM_OPT_PID_FILE, "PidFile", CFG_STR, NULL, 0, 0, NULL,
	  "file the daemon writes its process ID to" },
	{ DM_OPT_UMASK, "UMask", CFG_OCTAL, "007", 0, 0777, NULL,
	  "umask, in octal, for the socket and files" },
	{ DM_OPT_SYSLOG_FACILITY, "SyslogFacility", CFG_STR, "mail", 0, 0,
	  NULL, "syslog facility: mail, daemon, user, local0 .. local7" },
	{ DM_OPT_TRUSTED_AUTHSERV_IDS, "TrustedAuthservIDs", CFG_STR, NULL,
	  0, 0, NULL, "authserv-ids of upstream hosts whose "
	  "Authentication-Results are believed: the topmost such field's "
	  "spf= result replaces our own SPF check (for an MTA behind a "
	  "relay, which sees only the relay's address); none by default, "
	  "so no sender-supplied header ever changes a verdict; our own "
	  "AuthservID is never trusted" },
	{ DM_OPT_IGNORE_HOSTS, "IgnoreHosts", CFG_STR, "127.0.0.0/8 ::1", 0,
	  0, NULL, "client addresses (CIDRs, or a file of them) whose mail "
	  "is not evaluated" },
	{ DM_OPT_IGNORE_AUTH_CLIENTS, "IgnoreAuthenticatedClients", CFG_BOOL,
	  "yes", 0, 0, NULL, "do not evaluate mail from SMTP-authenticated "
	  "clients" },
	{ DM_OPT_IGNORE_DOMAINS, "IgnoreDomains", CFG_STR, NULL, 0, 0, NULL,
	  "From domains never enforced (evaluated and reported, header "
	  "only)" },
	{ DM_OPT_TRUSTED_FORWARDERS, "TrustedForwarders", CFG_STR, NULL, 0, 0,
	  NULL, "client CIDRs whose failing mail is quarantined, not "
	  "rejected (reason trusted_forwarder)" },
	{ DM_OPT_MODE, "Mode", CFG_ENUM, "enforce", 0, 0, cfg_modes,
	  "enforce, or monitor (headers and logs only, nothing refused)" },
	{ DM_OPT_REJECT_TEXT, "RejectText", CFG_STR,
	  "Message rejected by the DMARC policy of %d", 0, 0, NULL,
	  "text of the 550 5.7.1 reply; %d is the author domain" },
	{ DM_OPT_QUARANTINE_ACTION, "QuarantineAction", CFG_ENUM, "header", 0,
	  0, cfg_qact, "header (accept, add QuarantineHeader), hold (the "
	  "MTA's quarantine), or both" },
	{ DM_OPT_QUARANTINE_HEADER, "QuarantineHeader", CFG_STR,
	  "X-DMARC-Quarantine: yes", 0, 0, NULL,
	  "the header field added to quarantined mail" },
	{ DM_OPT_TEMP_ERROR_ACTION, "TemporaryErrorAction", CFG_ENUM, "auto",
	  0, 0, cfg_tempact, "on dmarc=temperror: auto (451 4.7.x when the "
	  "policy is known to be quarantine or reject, else accept), "
	  "tempfail, or accept" },
	{ DM_OPT_MAILING_LIST_ACTION, "MailingListAction", CFG_ENUM,
	  "quarantine", 0, 0, cfg_listact, "a p=reject failure carrying "
	  "List-Id or List-Post: quarantine (reason mailing_list, RFC 9989 "
	  "7.4) or none (apply the policy as published)" },
	{ DM_OPT_REJECT_POLICY, "RejectPolicy", CFG_ENUM, "reject", 0, 0,
	  cfg_rejpol, "reject, or quarantine (never reject: the strict RFC "
	  "9989 reading)" },
	{ DM_OPT_ON_INTERNAL_ERROR, "OnInternalError", CFG_ENUM, "accept", 0,
	  0, cfg_interr, "what an internal failure does to the message "
	  "(always with dmarc=temperror in the header and a log line)" },
	{ DM_OPT_REDIS_URL, "RedisURL", CFG_STR, NULL, 0, 0, NULL,
	  "where the aggregate-report counters go: redis://[:password@]host"
	  "[:port][/db] or unix:///path[?db=N]; unset: the local journal in "
	  "StateDir is the store (one machine). Read at start-up only" },
	{ DM_OPT_REDIS_KEY_PREFIX, "RedisKeyPrefix", CFG_STR, "dmarc:", 0, 0,
	  NULL, "prefix of every Redis key (several sites on one Redis). "
	  "Read at start-up only" },
	{ DM_OPT_REDIS_TIMEOUT, "RedisTimeout", CFG_INT, "500", 10, 60000,
	  NULL, "milliseconds Redis may take to connect or answer before the "
	  "counts go to the journal (mail never waits for Redis)" },
	{ DM_OPT_REDIS_TTL, "RedisTTL", CFG_INT, "604800", 86400, 31536000,
	  NULL, "seconds counters are kept in Redis after their period ends, "
	  "a safety net for data no report ever took (reported data is "
	  "removed by dmarc-report)" },
	{ DM_OPT_STATE_DIR, "StateDir", CFG_STR, "/var/lib/dmarc-milter", 0,
	  0, NULL, "the local journal of counts (StateDir/journal): the "
	  "store without Redis, the spool while Redis is away. Read at "
	  "start-up only" },
	{ DM_OPT_REPORT_PERIOD, "ReportPeriod", CFG_INT, "86400", 3600, 86400,
	  NULL, "seconds in one report period, a divisor of 86400 (UTC days "
	  "by default)" },
	{ DM_OPT_HONOR_RI, "HonorRi", CFG_BOOL, "yes", 0, 0, NULL,
	  "a record's ri= shorter than ReportPeriod gives shorter periods, "
	  "on whole hours dividing the day (RFC 7489 7.2)" },
	{ DM_OPT_REPORT_ENVELOPE_TO, "ReportEnvelopeTo", CFG_BOOL, "no", 0, 0,
	  NULL, "count the first envelope recipient's domain in report rows "
	  "(envelope_to; more distinct rows)" },
	{ DM_OPT_COUNTER_QUEUE, "CounterQueueSize", CFG_INT, "65536", 16,
	  16777216, NULL, "counts held in memory for the Redis writer; when "
	  "full they go to the journal at once" },
	{ DM_OPT_REPORT_ORG_NAME, "ReportOrgName", CFG_STR, NULL, 0, 0, NULL,
	  "dmarc-report: org_name of the reports; default: the host name" },
	{ DM_OPT_REPORT_EMAIL, "ReportEmail", CFG_STR, NULL, 0, 0, NULL,
	  "dmarc-report: the reporter's contact address in the reports "
	  "(report_metadata email); its domain is the submitter; required "
	  "to report" },
	{ DM_OPT_REPORT_CONTACT_INFO, "ReportContactInfo", CFG_STR, NULL, 0,
	  0, NULL, "dmarc-report: extra_contact_info of the reports" },
	{ DM_OPT_REPORT_FROM, "ReportFrom", CFG_STR, NULL, 0, 0, NULL,
	  "dmarc-report: the From of report mail (it must pass DMARC "
	  "itself: sign it outbound); default: ReportEmail" },
	{ DM_OPT_REPORT_FORMAT, "ReportFormat", CFG_ENUM, "rfc7489", 0, 0,
	  cfg_rptfmt, "dmarc-report: rfc7489 (Appendix C) or rfc9990 "
	  "(urn:ietf:params:xml:ns:dmarc-2.0)" },
	{ DM_OPT_SENDMAIL_PATH, "SendmailPath", CFG_STR, "/usr/sbin/sendmail",
	  0, 0, NULL, "dmarc-report: the local MTA's sendmail program, run "
	  "as SENDMAIL -i -f FROM -- RCPT... (no shell)" },
	{ DM_OPT_NO_REPORT_DOMAINS, "NoReportDomains", CFG_STR, NULL, 0, 0,
	  NULL, "dmarc-report: policy domains never sent a report (their "
	  "counts are dropped when their period ends)" },
	{ DM_OPT_SMTP_RELAY, "SMTPRelay", CFG_STR, NULL, 0, 0, NULL,
	  "dmarc-report: send through this SMTP server (host:port) instead "
	  "of SendmailPath" },
	{ DM_OPT_SMTP_RELAY_TLS, "SMTPRelayTLS", CFG_ENUM, "starttls", 0, 0,
	  cfg_relaytls, "dmarc-report: starttls (required, never plain "
	  "text), smtps (TLS from the start) or none" },
	{ DM_OPT_SMTP_RELAY_USER, "SMTPRelayUser", CFG_STR, NULL, 0, 0, NULL,
	  "dmarc-report: the AUTH user name at SMTPRelay; none: no AUTH" },
	{ DM_OPT_SMTP_RELAY_PASSWORD_FILE, "SMTPRelayPasswordFile", CFG_STR,
	  NULL, 0, 0, NULL, "dmarc-report: a file whose first line is the "
	  "AUTH password (kept out of this file)" },
	{ DM_OPT_SMTP_RELAY_CA_FILE, "SMTPRelayCAFile", CFG_STR, NULL, 0, 0,
	  NULL, "dmarc-report: CA certificates that verify SMTPRelay's "
	  "certificate; default: the system's" },
	{ DM_OPT_DKIM_PARTIAL_BODY, "DKIMAcceptPartialBody", CFG_BOOL, "no",
	  0, 0, NULL, "a DKIM signature whose l= leaves part of the body "
	  "unsigned may pass (RFC 6376); no: it is dkim=policy" },
	{ DM_OPT_MAX_CONNECTIONS, "MaxConnections", CFG_INT, "2000", 1,
	  1000000, NULL, "MTA connections served at once; past it a "
	  "connection gets a temporary failure (and a log line)" },
	{ DM_OPT_IDLE_TIMEOUT, "IdleTimeout", CFG_INT, "300", 1, 86400, NULL,
	  "seconds of MTA silence after which a connection is closed" },
	{ DM_OPT_COMMAND_TIMEOUT, "CommandTimeout", CFG_INT, "30", 1, 3600,
	  NULL, "seconds an MTA may take to send the rest of a command "
	  "begun" },
	{ DM_OPT_EVAL_THREADS, "EvalThreads", CFG_INT, "16", 1, 1024, NULL,
	  "threads that evaluate messages at their end (they wait on DNS "
	  "up to DNSTimeout)" },
	{ DM_OPT_IO_THREADS, "IOThreads", CFG_INT, "1", 1, 64, NULL,
	  "threads that read and write the MTA connections" },
	{ DM_OPT_COUNTER_SYNC, "CounterSync", CFG_ENUM, "disk", 0, 0,
	  cfg_sync, "what a count is before the MTA gets the reply: disk "
	  "(fdatasync'd: survives a power loss) or written (survives a "
	  "killed milter, not a power loss)" },
	{ DM_OPT_METRICS_SOCKET, "MetricsSocket", CFG_STR, NULL, 0, 0, NULL,
	  "inet:PORT@ADDR where /metrics is served for Prometheus; none: "
	  "not served (read at start-up)" },
};

struct cfg_value {
	char *s;
	long i;
	bool set;
};

struct dm_config {
	atomic_int refs;
	struct cfg_value v[DM_OPT_COUNT];
};

static const struct cfg_def *
cfg_find(const char *name)
{
	size_t i;

	for (i = 0; i < DM_OPT_COUNT; i++)
		if (strcasecmp(cfg_table[i].name, name) == 0)
			return &cfg_table[i];
	return NULL;
}

static int
cfg_parse_bool(const char *s)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

static dm_status
cfg_parse_int(const struct cfg_def *d, const char *s, long *out, char *err,
    size_t errlen)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, d->type == CFG_OCTAL ? 8 : 10);
	if (errno != 0 || end == s || *end != '\0') {
		snprintf(err, errlen, "%s: '%s' is not a number", d->name, s);
		return DM_PERMFAIL;
	}
	if (n < d->min || n > d->max) {
		snprintf(err, errlen, "%s: %ld is outside %ld..%ld", d->name,
		    n, d->min, d->max);
		return DM_PERMFAIL;
	}
	*out = n;
	return DM_OK;
}

static dm_status
cfg_parse_enum(const struct cfg_def *d, const char *s, long *out, char *err,
    size_t errlen)
{
	long i;

	for (i = 0; d->names[i] != NULL; i++)
		if (strcasecmp(s, d->names[i]) == 0) {
			*out = i;
			return DM_OK;
		}
	snprintf(err, errlen, "%s: '%s' is not one of", d->name, s);
	for (i = 0; d->names[i] != NULL; i++) {
		strlcat(err, " ", errlen);
		strlcat(err, d->names[i], errlen);
	}
	return DM_PERMFAIL;
}

static dm_status
cfg_assign(dm_config *c, const struct cfg_def *d, const char *value,
    char *err, size_t errlen)
{
	struct cfg_value *v = &c->v[d->id];
	dm_status st = DM_OK;
	long n = 0;
	int b;

	switch (d->type) {
	case CFG_INT:
	case CFG_OCTAL:
		st = cfg_parse_int(d, value, &n, err, errlen);
		/* Periods must tile the UTC day, or days would straddle. */
		if (st == DM_OK && d->id == DM_OPT_REPORT_PERIOD &&
		    86400 % n != 0) {
			snprintf(err, errlen, "%s: %ld does not divide 86400",
			    d->name, n);
			st = DM_PERMFAIL;
		}
		break;
	case CFG_ENUM:
		st = cfg_parse_enum(d, value, &n, err, errlen);
		break;
	case CFG_BOOL:
		if ((b = cfg_parse_bool(value)) < 0) {
			snprintf(err, errlen, "%s: '%s' is not yes or no",
			    d->name, value);
			st = DM_PERMFAIL;
		}
		n = b;
		break;
	case CFG_STR:
		break;
	}
	if (st != DM_OK)
		return st;
	free(v->s);
	if ((v->s = strdup(value)) == NULL)
		dm_log_oom();
	v->i = n;
	v->set = true;
	return DM_OK;
}

dm_config *
dm_config_new(void)
{
	dm_config *c;
	char err[256];
	size_t i;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		dm_log_oom();
	atomic_init(&c->refs, 1);
	for (i = 0; i < DM_OPT_COUNT; i++) {
		if (cfg_table[i].def == NULL)
			continue;
		if (cfg_assign(c, &cfg_table[i], cfg_table[i].def, err,
		    sizeof(err)) != DM_OK) {
			dm_config_unref(c);
			return NULL;
		}
		c->v[i].set = false;
	}
	return c;
}

dm_status
dm_config_set(dm_config *c, const char *name, const char *value, char *err,
    size_t errlen)
{
	const struct cfg_def *d;

	if ((d = cfg_find(name)) == NULL) {
		snprintf(err, errlen, "unknown option '%s'", name);
		return DM_PERMFAIL;
	}
	return cfg_assign(c, d, value, err, errlen);
}

/* Split one line into name and value; false for blank and comments. */
static bool
cfg_split(char *line, char **name, char **value)
{
	char *p, *end;

	if ((p = strchr(line, '#')) != NULL)
		*p = '\0';
	for (p = line; isspace((unsigned char)*p); p++)
		;
	if (*p == '\0')
		return false;
	*name = p;
	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	if (*p != '\0')
		*p++ = '\0';
	while (isspace((unsigned char)*p))
		p++;
	end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = '\0';
	*value = p;
	return true;
}

static dm_status
cfg_read(FILE *fp, const char *file, dm_config *c, char *err, size_t errlen)
{
	char *line = NULL, *name, *value, why[256];
	size_t cap = 0;
	unsigned lineno = 0;
	dm_status st = DM_OK;

	while (getline(&line, &cap, fp) >= 0) {
		lineno++;
		if (!cfg_split(line, &name, &value))
			continue;
		if (*value == '\0') {
			snprintf(why, sizeof(why), "%s: no value", name);
			st = DM_PERMFAIL;
		} else
			st = dm_config_set(c, name, value, why, sizeof(why));
		if (st != DM_OK) {
			snprintf(err, errlen, "%s:%u: %s", file, lineno, why);
			break;
		}
	}
	free(line);
	return st;
}

dm_status
dm_config_load(const char *file, dm_config **out, char *err, size_t errlen)
{
	dm_config *c;
	FILE *fp = NULL;
	dm_status st;

	*out = NULL;
	if ((c = dm_config_new()) == NULL) {
		snprintf(err, errlen, "the built-in defaults do not load");
		return DM_PERMFAIL;
	}
	if (file == NULL) {
		*out = c;
		return DM_OK;
	}
	if ((fp = fopen(file, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		st = DM_PERMFAIL;
		goto done;
	}
	st = cfg_read(fp, file, c, err, errlen);
done:
	if (fp != NULL)
		fclose(fp);
	if (st == DM_OK)
		*out = c;
	else
		dm_config_unref(c);
	return st;
}

dm_config *
dm_config_ref(dm_config *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

void
dm_config_unref(dm_config *c)
{
	size_t i;

	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (i = 0; i < DM_OPT_COUNT; i++)
		free(c->v[i].s);
	free(c);
}

/* AuthservID defaults to the host name, read once per config. */
static const char *
cfg_hostname(void)
{
	static char host[256];

	if (host[0] == '\0' && gethostname(host, sizeof(host) - 1) != 0)
		strlcpy(host, "localhost", sizeof(host));
	return host;
}

const char *
dm_config_str(const dm_config *c, dm_opt o)
{
	if (o == DM_OPT_AUTHSERV_ID && c->v[o].s == NULL)
		return cfg_hostname();
	return c->v[o].s;
}

long
dm_config_int(const dm_config *c, dm_opt o)
{
	return c->v[o].i;
}

bool
dm_config_bool(const dm_config *c, dm_opt o)
{
	return c->v[o].i != 0;
}
