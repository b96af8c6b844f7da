/*
 * milter/sigwait.c - keeps SIGHUP and SIGTERM away from libmilter's
 * signal thread.
 *
 * smfi_main() starts a thread that sigwait()s for SIGHUP, SIGTERM and
 * SIGINT and stops the milter at once on any of them: a SIGHUP would end
 * the daemon instead of reloading it, a SIGTERM would abandon messages
 * in flight (libmilter serves no connection once stopping), and with two
 * threads waiting for one signal the kernel picks either. This
 * definition takes the place of libc's sigwait() for libmilter (the
 * dynamic linker binds the library's reference to the executable's
 * symbol) and drops both from the set it waits for; SIGINT stays
 * libmilter's. reload.c alone waits for SIGHUP and SIGTERM, with
 * sigwaitinfo(), which is not affected. Nothing else in the process
 * calls sigwait().
 */
#include "config.h"

#include <errno.h>
#include <signal.h>

int sigwait(const sigset_t *set, int *sig);

int
sigwait(const sigset_t *set, int *sig)
{
	sigset_t mine = *set;
	int rc;

	sigdelset(&mine, SIGHUP);
	sigdelset(&mine, SIGTERM);
	do
		rc = sigwaitinfo(&mine, NULL);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return errno;
	*sig = rc;
	return 0;
}
