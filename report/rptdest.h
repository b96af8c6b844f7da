/*
 * report/rptdest.h - report destinations that keep failing: after
 * RPT_DEST_FAILS sends to an address failed in a row it is left out of
 * reports for RPT_DEST_PAUSE seconds, with a log line, so that one dead
 * rua address does not hold back a domain's other destinations or make
 * every run retry it. A success forgets the failures.
 *
 * Kept in one small text file per host (StateDir/reports/destinations,
 * lines "<address> <failures in a row> <suppressed until>"), written
 * whole to a temporary file and renamed over. Several hosts on one
 * Redis each learn on their own; that only costs a few more attempts.
 */
#ifndef RPTDEST_H
#define RPTDEST_H

#include <stdbool.h>
#include <stdint.h>

#define RPT_DEST_FAILS	5
#define RPT_DEST_PAUSE	86400

typedef struct rpt_dests rpt_dests;

/* A missing or unreadable file gives an empty table (logged if bad). */
rpt_dests *rpt_dests_load(const char *path);
void rpt_dests_free(rpt_dests *d);
/* Is addr left out now? *until (may be NULL) says till when. */
bool rpt_dests_suppressed(const rpt_dests *d, const char *addr, int64_t now,
    int64_t *until);
/* The outcome of one send to addr; logs when it becomes suppressed. */
void rpt_dests_result(rpt_dests *d, const char *addr, int ok, int64_t now);
/* 0, or -1 (logged). Nothing is written when nothing changed. */
int rpt_dests_save(rpt_dests *d);

#endif
