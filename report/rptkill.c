/*
 * report/rptkill.c - dmarc-report's crash points for tests (rptkill.h).
 * Nothing happens unless the variable names the step.
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rptkill.h"

void
rpt_killpoint(const char *step)
{
	const char *at = getenv("DMARC_REPORT_KILL_AT");

	if (at != NULL && strcmp(at, step) == 0)
		(void)kill(getpid(), SIGKILL);
}
