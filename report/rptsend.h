/*
 * report/rptsend.h - handing a report mail to the local MTA through its
 * sendmail program (SendmailPath), the default way dmarc-report sends.
 */
#ifndef RPTSEND_H
#define RPTSEND_H

#include <stddef.h>

#include "dm_status.h"

/*
 * Runs "SENDMAIL -i -f FROM -- RCPT..." by fork and execv (no shell, no
 * PATH search: sendmail_path is used as given), writes the len bytes of
 * eml to its standard input, closes it and waits for it to exit.
 *
 * The child gets only fds 0 (the message), 1 and 2 (one pipe whose first
 * bytes are kept for the error text); every other descriptor is closed,
 * its signal mask is empty and all signals have their default action. It
 * runs in a process group of its own; after timeout_sec seconds (<= 0:
 * no limit) the whole group is killed with SIGKILL, so a hung MTA (or a
 * helper it started) cannot hang the generator.
 *
 * A sendmail that exits without reading all of its input does not kill
 * the caller with SIGPIPE (the signal is blocked in this thread while
 * writing and a pending one is consumed); that is a failure even with
 * exit status 0, since the MTA did not take the whole message.
 *
 * DM_OK: exit status 0 and every byte taken. DM_TEMPFAIL: the run
 * failed (the MTA may take it later), err says why, e.g.
 * "/usr/sbin/sendmail exited with status 75: <first line of its output>",
 * "... killed by signal 9", "... timed out after 30 s and was killed",
 * "cannot execute /usr/sbin/sendmail: No such file or directory".
 * DM_PERMFAIL: the arguments are refused (the same call would fail
 * again): from and every rcpt must be non-empty and free of control
 * bytes, n >= 1, the path absolute.
 * The caller must not have SIGCHLD set to SIG_IGN (the exit status would
 * be lost).
 */
dm_status rpt_send_sendmail(const char *sendmail_path, const char *from,
    const char *const *rcpts, size_t n, const char *eml, size_t len,
    int timeout_sec, char *err, size_t errlen);

#endif
