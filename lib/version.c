/*
 * lib/version.c - which library versions the program runs with. The
 * run-time versions where the library tells them (a shared library can
 * be upgraded under the binary), else those it was built against.
 */
#include "config.h"

#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libpsl.h>
#include <opendkim/dkim.h>
#include <unbound.h>

#include "dm_version.h"

void
dm_version_libs(char *buf, size_t len)
{
	uint32_t d = dkim_libversion();

	snprintf(buf, len, "libopendkim %u.%u.%u, libunbound %s, libpsl %s",
	    (unsigned)(d >> 24), (unsigned)((d >> 16) & 0xff),
	    (unsigned)((d >> 8) & 0xff), ub_version(), psl_get_version());
}
