/*
 * tests/spfcheck.c - our SPF evaluator as a filter, for the differential
 * test against pyspf (tests/integration/spf_pyspf.py): one check per
 * line of stdin, "ip TAB helo TAB mail-from" ("-": the null sender),
 * answered with one line "result TAB explanation TAB comment" over the
 * zones of the unbound.conf file given as argument (local-data only).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dm_log.h"
#include "dm_resolver.h"
#include "dm_spf.h"

static void
check_line(dm_spf *s, char *line)
{
	char *ip = line, *helo, *from, exp[512];
	dm_spf_outcome out;

	line[strcspn(line, "\n")] = '\0';
	if ((helo = strchr(ip, '\t')) == NULL ||
	    (from = strchr(helo + 1, '\t')) == NULL) {
		printf("badline\t\t\n");
		return;
	}
	*helo++ = '\0';
	*from++ = '\0';
	if (strcmp(from, "-") == 0)
		from = NULL;
	if (dm_spf_check_exp(s, ip, helo, from, exp, sizeof(exp), &out) !=
	    DM_OK)
		printf("nomem\t\t\n");
	else
		printf("%s\t%s\t%s\n", dm_spf_result_str(out.result), exp,
		    out.comment);
}

int
main(int argc, char **argv)
{
	char err[256] = "", line[4096];
	dm_resolver *r;
	dm_spf *s;

	if (argc != 2) {
		fprintf(stderr, "usage: spfcheck UNBOUND-CONF < checks\n");
		return 2;
	}
	dm_log_set_level(DM_LOG_ERR);
	if ((r = dm_resolver_new(argv[1], 2000, err, sizeof(err))) == NULL ||
	    (s = dm_spf_new(r, err, sizeof(err))) == NULL) {
		fprintf(stderr, "spfcheck: %s\n", err);
		return 1;
	}
	dm_spf_set_receiver(s, "receiver.example");
	while (fgets(line, sizeof(line), stdin) != NULL) {
		check_line(s, line);
		fflush(stdout);
	}
	dm_spf_free(s);
	dm_resolver_free(r);
	return 0;
}
