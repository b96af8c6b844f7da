/*
 * dm_config.h - the configuration: one declarative table of options
 * (name, type, default, bounds, doc) in config.c yields an immutable,
 * reference-counted dm_config. A reload builds a new one and swaps it;
 * work in flight keeps its reference to the old one.
 */
#ifndef DM_CONFIG_H
#define DM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "dm_status.h"

typedef struct dm_config dm_config;

/* Every option, in the order of the table. */
typedef enum dm_opt {
	DM_OPT_AUTHSERV_ID = 0,
	DM_OPT_DNS_CONFIG,
	DM_OPT_DNS_TIMEOUT,
	DM_OPT_ORG_DOMAIN_METHOD,
	DM_OPT_PSL_FILE,
	DM_OPT_HONOR_PCT,
	DM_OPT_MULTIPLE_FROM,
	DM_OPT_MALFORMED_FROM_ACTION,
	DM_OPT_NO_AUTHOR_ACTION,
	DM_OPT_LOG_LEVEL,
	DM_OPT_SOCKET,
	DM_OPT_USER_ID,
	DM_OPT_PID_FILE,
	DM_OPT_UMASK,
	DM_OPT_SYSLOG_FACILITY,
	DM_OPT_TRUSTED_AUTHSERV_IDS,
	DM_OPT_IGNORE_HOSTS,
	DM_OPT_IGNORE_AUTH_CLIENTS,
	DM_OPT_IGNORE_DOMAINS,
	DM_OPT_TRUSTED_FORWARDERS,
	DM_OPT_MODE,
	DM_OPT_REJECT_TEXT,
	DM_OPT_QUARANTINE_ACTION,
	DM_OPT_QUARANTINE_HEADER,
	DM_OPT_TEMP_ERROR_ACTION,
	DM_OPT_MAILING_LIST_ACTION,
	DM_OPT_REJECT_POLICY,
	DM_OPT_ON_INTERNAL_ERROR,
	DM_OPT_REDIS_URL,
	DM_OPT_REDIS_KEY_PREFIX,
	DM_OPT_REDIS_TIMEOUT,
	DM_OPT_REDIS_TTL,
	DM_OPT_STATE_DIR,
	DM_OPT_REPORT_PERIOD,
	DM_OPT_HONOR_RI,
	DM_OPT_REPORT_ENVELOPE_TO,
	DM_OPT_COUNTER_QUEUE,
	DM_OPT_REPORT_ORG_NAME,
	DM_OPT_REPORT_EMAIL,
	DM_OPT_REPORT_CONTACT_INFO,
	DM_OPT_REPORT_FROM,
	DM_OPT_REPORT_FORMAT,
	DM_OPT_SENDMAIL_PATH,
	DM_OPT_NO_REPORT_DOMAINS,
	DM_OPT_SMTP_RELAY,
	DM_OPT_SMTP_RELAY_TLS,
	DM_OPT_SMTP_RELAY_USER,
	DM_OPT_SMTP_RELAY_PASSWORD_FILE,
	DM_OPT_SMTP_RELAY_CA_FILE,
	DM_OPT_DKIM_PARTIAL_BODY,
	DM_OPT_MAX_CONNECTIONS,
	DM_OPT_IDLE_TIMEOUT,
	DM_OPT_COMMAND_TIMEOUT,
	DM_OPT_EVAL_THREADS,
	DM_OPT_IO_THREADS,
	DM_OPT_COUNTER_SYNC,
	DM_OPT_METRICS_SOCKET,
	DM_OPT_COUNT
} dm_opt;

/* Mode values. */
enum { DM_MODE_ENFORCE = 0, DM_MODE_MONITOR };
/* QuarantineAction values. */
enum { DM_QACT_HEADER = 0, DM_QACT_HOLD, DM_QACT_BOTH };
/* TemporaryErrorAction values. */
enum { DM_TEMPACT_AUTO = 0, DM_TEMPACT_TEMPFAIL, DM_TEMPACT_ACCEPT };
/* MailingListAction values. */
enum { DM_LISTACT_QUARANTINE = 0, DM_LISTACT_NONE };
/* RejectPolicy values. */
enum { DM_REJPOL_REJECT = 0, DM_REJPOL_QUARANTINE };
/* SMTPRelayTLS values. */
enum { DM_RELAY_STARTTLS = 0, DM_RELAY_SMTPS, DM_RELAY_NONE };
/* OnInternalError values. */
enum { DM_INTERR_ACCEPT = 0, DM_INTERR_TEMPFAIL, DM_INTERR_REJECT };

/* MultipleFrom values. */
enum { DM_MULTIFROM_STRICTEST = 0, DM_MULTIFROM_REJECT, DM_MULTIFROM_FIRST };
/* MalformedFromAction values. */
enum { DM_MALFROM_REJECT = 0, DM_MALFROM_PERMISSIVE };
/* NoAuthorAction values. */
enum { DM_NOAUTHOR_ACCEPT = 0, DM_NOAUTHOR_REJECT };

/* Defaults only. */
dm_config *dm_config_new(void);
/*
 * Read FILE ("Name value" lines, # comments) over the defaults. Errors
 * name file:line and the option. DM_PERMFAIL on any error.
 */
dm_status dm_config_load(const char *file, dm_config **out, char *err,
    size_t errlen);
/* Set one option by name (command-line overrides), before use. */
dm_status dm_config_set(dm_config *c, const char *name, const char *value,
    char *err, size_t errlen);

dm_config *dm_config_ref(dm_config *c);
void dm_config_unref(dm_config *c);

const char *dm_config_str(const dm_config *c, dm_opt o);	/* may be NULL */
long dm_config_int(const dm_config *c, dm_opt o);	/* int, enum index */
bool dm_config_bool(const dm_config *c, dm_opt o);

#endif
