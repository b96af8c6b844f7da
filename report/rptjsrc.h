/*
 * report/rptjsrc.h - the report groups of the embedded store: what the
 * milter's journal (StateDir/journal, see dm_journal.h) holds when no
 * RedisURL is set, folded into one file per group so that each report
 * is read on its own.
 *
 * StateDir/reports/ is dmarc-report's:
 *   lock                      flock'ed for a whole run: one generator
 *                             at a time, released when it exits or dies
 *   groups/<domain>/<begin>-<end>-<polid>.g   the group's counts
 *   groups/<domain>/<begin>-<end>-<polid>.st  its report id, tries, next
 *                             attempt, and "sent" once sent
 *
 * Folding: each closed journal segment is read whole (at most the
 * journal's segment size in memory), its counts summed per group and
 * row, and appended to each group file as one chunk named after the
 * segment and checked by a CRC; then the file system is synced and the
 * segment removed. A crash in between folds the segment again; a group
 * file counts only the first complete chunk of each segment, so no
 * count is lost or doubled. Reading a group costs that group's file.
 */
#ifndef RPTJSRC_H
#define RPTJSRC_H

#include <stddef.h>

#include "dm_status.h"
#include "rptsrc.h"

typedef struct rpt_jsrc rpt_jsrc;

/*
 * Open StateDir's report area, creating it, and take the run lock.
 * DM_NOTFOUND: another dmarc-report holds it. NULL *out otherwise, err.
 */
dm_status rpt_jsrc_open(const char *state_dir, rpt_jsrc **out, char *err,
    size_t errlen);
void rpt_jsrc_close(rpt_jsrc *j);

/*
 * Fold every closed segment of StateDir/journal. *nseg and *nrec (may
 * be NULL) count the segments and the records folded. DM_TEMPFAIL when
 * a segment could not be folded (logged; it stays for the next run).
 */
dm_status rpt_jsrc_fold(rpt_jsrc *j, size_t *nseg, size_t *nrec);

/* The embedded store as a source (j stays the caller's). */
void rpt_jsrc_source(rpt_jsrc *j, rpt_source *out);

#endif
