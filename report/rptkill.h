/*
 * report/rptkill.h - the crash points of dmarc-report's exactly-once
 * test: with DMARC_REPORT_KILL_AT=<step> in its environment the program
 * kills itself with SIGKILL when it reaches that step, as a power cut
 * or an OOM kill would, so the test can prove that the next run neither
 * loses a count nor sends a report twice. Steps: fold-group, claimed,
 * built, sent, done-marked.
 */
#ifndef RPTKILL_H
#define RPTKILL_H

void rpt_killpoint(const char *step);

#endif
