/*
 * tests/unit/test_config.c - the option table: defaults, each type,
 * bounds, errors naming file:line and the option.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dm_config.h"
#include "tap.h"

static const struct row {
	const char *name;
	const char *text;	/* the config file */
	dm_status want;
	const char *want_err;	/* substring of the error, or NULL */
	dm_opt opt;
	long want_int;		/* for int, bool and enum options */
	const char *want_str;	/* for string options */
} rows[] = {
	{ "empty file gives defaults", "", DM_OK, NULL,
	  DM_OPT_DNS_TIMEOUT, 5, NULL },
	{ "HonorPct defaults to yes", "# nothing\n", DM_OK, NULL,
	  DM_OPT_HONOR_PCT, 1, NULL },
	{ "OrgDomainMethod defaults to treewalk", "", DM_OK, NULL,
	  DM_OPT_ORG_DOMAIN_METHOD, 0, NULL },
	{ "MultipleFrom defaults to strictest", "", DM_OK, NULL,
	  DM_OPT_MULTIPLE_FROM, DM_MULTIFROM_STRICTEST, NULL },
	{ "int option", "DNSTimeout 12\n", DM_OK, NULL,
	  DM_OPT_DNS_TIMEOUT, 12, NULL },
	{ "names are case-insensitive", "dnstimeout 7\n", DM_OK, NULL,
	  DM_OPT_DNS_TIMEOUT, 7, NULL },
	{ "last setting wins", "DNSTimeout 7\nDNSTimeout 9\n", DM_OK, NULL,
	  DM_OPT_DNS_TIMEOUT, 9, NULL },
	{ "comment after value", "DNSTimeout 3 # short\n", DM_OK, NULL,
	  DM_OPT_DNS_TIMEOUT, 3, NULL },
	{ "int below bounds", "\nDNSTimeout 0\n", DM_PERMFAIL,
	  "t.conf:2: DNSTimeout: 0 is outside 1..120", DM_OPT_DNS_TIMEOUT,
	  0, NULL },
	{ "int above bounds", "DNSTimeout 121\n", DM_PERMFAIL,
	  "outside", DM_OPT_DNS_TIMEOUT, 0, NULL },
	{ "int not a number", "DNSTimeout 5s\n", DM_PERMFAIL,
	  "t.conf:1: DNSTimeout: '5s' is not a number", DM_OPT_DNS_TIMEOUT,
	  0, NULL },
	{ "bool no", "HonorPct no\n", DM_OK, NULL, DM_OPT_HONOR_PCT, 0, NULL },
	{ "bool false", "HonorPct false\n", DM_OK, NULL, DM_OPT_HONOR_PCT, 0,
	  NULL },
	{ "bool garbage", "HonorPct maybe\n", DM_PERMFAIL,
	  "HonorPct: 'maybe' is not yes or no", DM_OPT_HONOR_PCT, 0, NULL },
	{ "enum psl", "OrgDomainMethod PSL\n", DM_OK, NULL,
	  DM_OPT_ORG_DOMAIN_METHOD, 1, NULL },
	{ "enum unknown value", "MultipleFrom random\n", DM_PERMFAIL,
	  "MultipleFrom: 'random' is not one of strictest reject first",
	  DM_OPT_MULTIPLE_FROM, 0, NULL },
	{ "string keeps inner spaces", "AuthservID  mx 1.example \n", DM_OK,
	  NULL, DM_OPT_AUTHSERV_ID, 0, "mx 1.example" },
	{ "DNSConfig path", "DNSConfig /etc/dm/unbound.conf\n", DM_OK, NULL,
	  DM_OPT_DNS_CONFIG, 0, "/etc/dm/unbound.conf" },
	{ "UMask is octal", "UMask 022\n", DM_OK, NULL, DM_OPT_UMASK, 022,
	  NULL },
	{ "UMask default 007", "", DM_OK, NULL, DM_OPT_UMASK, 07, NULL },
	{ "UMask rejects 8", "UMask 8\n", DM_PERMFAIL, "not a number",
	  DM_OPT_UMASK, 0, NULL },
	{ "Mode monitor", "Mode monitor\n", DM_OK, NULL, DM_OPT_MODE,
	  DM_MODE_MONITOR, NULL },
	{ "IgnoreHosts default", "", DM_OK, NULL, DM_OPT_IGNORE_HOSTS, 0,
	  "127.0.0.0/8 ::1" },
	{ "unknown option", "\n\nNoSuchOption 1\n", DM_PERMFAIL,
	  "t.conf:3: unknown option 'NoSuchOption'", DM_OPT_DNS_TIMEOUT, 0,
	  NULL },
	{ "option without value", "HonorPct\n", DM_PERMFAIL,
	  "t.conf:1: HonorPct: no value", DM_OPT_HONOR_PCT, 0, NULL },
};

static void
run_row(const char *dir, const struct row *w)
{
	char path[4096], err[512] = "";
	dm_config *c = NULL;
	dm_status st;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/t.conf", dir);
	if ((fp = fopen(path, "w")) == NULL)
		tap_bail("cannot write %s", path);
	fputs(w->text, fp);
	fclose(fp);
	/* Errors are compared relative to the name "t.conf". */
	if (chdir(dir) != 0)
		tap_bail("chdir %s", dir);
	st = dm_config_load("t.conf", &c, err, sizeof(err));
	tap_is_str(dm_status_str(st), dm_status_str(w->want), "%s: status",
	    w->name);
	if (w->want_err != NULL)
		tap_ok(strstr(err, w->want_err) != NULL,
		    "%s: error '%s' contains '%s'", w->name, err, w->want_err);
	else if (w->want_str != NULL)
		tap_is_str(c ? dm_config_str(c, w->opt) : NULL, w->want_str,
		    "%s: value", w->name);
	else
		tap_is_int(c ? dm_config_int(c, w->opt) : -1, w->want_int,
		    "%s: value", w->name);
	dm_config_unref(c);
}

static void
test_missing_file_and_refs(void)
{
	char err[512] = "";
	dm_config *c = NULL;

	tap_is_int(dm_config_load("/nonexistent/x.conf", &c, err, sizeof(err)),
	    DM_PERMFAIL, "missing file is a permanent error");
	tap_ok(strstr(err, "/nonexistent/x.conf") != NULL,
	    "missing file error names the file: %s", err);
	tap_is_int(dm_config_load(NULL, &c, err, sizeof(err)), DM_OK,
	    "no file: defaults");
	tap_ok(dm_config_str(c, DM_OPT_AUTHSERV_ID) != NULL &&
	    *dm_config_str(c, DM_OPT_AUTHSERV_ID) != '\0',
	    "AuthservID defaults to the host name");
	tap_is_str(dm_config_str(c, DM_OPT_PSL_FILE), DM_PSL_FILE,
	    "PSLFile default");
	dm_config_ref(c);
	dm_config_unref(c);
	tap_is_int(dm_config_int(c, DM_OPT_DNS_TIMEOUT), 5,
	    "a config outlives one of two unrefs");
	dm_config_unref(c);
}

int
main(void)
{
	char dir[] = "/tmp/test_config.XXXXXX";
	char path[4096];
	size_t i;

	if (mkdtemp(dir) == NULL)
		tap_bail("mkdtemp");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(dir, &rows[i]);
	test_missing_file_and_refs();
	snprintf(path, sizeof(path), "%s/t.conf", dir);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
