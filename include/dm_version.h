/*
 * dm_version.h - the program's version and those of the libraries it
 * runs with, for -V and bug reports.
 */
#ifndef DM_VERSION_H
#define DM_VERSION_H

#include <stddef.h>

/* "libopendkim 2.11.0, libunbound 1.17.1, libpsl ..." */
void dm_version_libs(char *buf, size_t len);

#endif
