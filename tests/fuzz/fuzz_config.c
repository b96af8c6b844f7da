/*
 * tests/fuzz/fuzz_config.c - libFuzzer target: the bytes as a
 * configuration file through dm_config_load (from a memfd, so nothing
 * touches the disk), then through what reads the values at start-up:
 * the override lists (dm_override_new: CIDR lists, domain lists), the
 * log level, and the SMTP replies (dm_action_*), whose text must stay
 * printable ASCII without '%' (libmilter reads it as a format).
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dm_action.h"
#include "dm_config.h"
#include "dm_log.h"
#include "dm_override.h"
#include "fuzz.h"

/* The replies for the three dispositions, and for internal errors. */
static void
check_actions(const dm_config *c)
{
	dm_author au = { .domain = "example.com", .discovery = DM_OK,
	    .pv = { .requested = DM_POLICY_REJECT } };
	dm_verdict v = { .authors = &au, .nauthors = 1 };
	dm_action a;
	int d;

	for (d = DM_DISP_NONE; d <= DM_DISP_REJECT; d++) {
		v.disposition = (dm_disposition)d;
		v.result = d == DM_DISP_NONE ? DM_DMARC_TEMPERROR :
		    DM_DMARC_FAIL;
		dm_action_decide(c, &v, &a);
		fuzz_check_reply(&a);
	}
	dm_action_internal_error(c, &a);
	fuzz_check_reply(&a);
}

/*
 * A CIDR list item starting with '/' names a file to read: the fuzzer
 * would open /dev/stdin and the like. Those lists are not built.
 */
static bool
names_file(const char *list)
{
	const char *p;

	if (list == NULL)
		return false;
	for (p = list; *p != '\0'; p++)
		if (*p == '/' && (p == list || strchr(" \t\r\n,", p[-1])))
			return true;
	return false;
}

static void
check_config(const dm_config *c)
{
	dm_override *o;
	char err[512];
	int i;

	for (i = 0; i < DM_OPT_COUNT; i++)
		if (dm_config_str(c, (dm_opt)i) != NULL)
			(void)strlen(dm_config_str(c, (dm_opt)i));
	if (dm_config_str(c, DM_OPT_LOG_LEVEL) != NULL)
		(void)dm_log_level_from_name(dm_config_str(c,
		    DM_OPT_LOG_LEVEL));
	if (!names_file(dm_config_str(c, DM_OPT_IGNORE_HOSTS)) &&
	    !names_file(dm_config_str(c, DM_OPT_TRUSTED_FORWARDERS)) &&
	    (o = dm_override_new(c, err, sizeof(err))) != NULL) {
		(void)dm_override_ignored_host(o, "192.0.2.1");
		(void)dm_override_ignored_host(o, "2001:db8::1");
		dm_override_free(o);
	}
	check_actions(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[512] = "";
	dm_config *c = NULL;
	int fd;

	fuzz_quiet_log();
	if ((fd = fuzz_memfile(data, size, path, sizeof(path))) < 0)
		fuzz_fail("memfd: cannot write the input");
	if (dm_config_load(path, &c, err, sizeof(err)) == DM_OK) {
		if (c == NULL)
			fuzz_fail("DM_OK and no config");
		check_config(c);
		dm_config_unref(c);
	} else if (c != NULL)
		fuzz_fail("an error and a config");
	close(fd);
	return 0;
}
