/*
 * lib/status.c - names of the shared status codes, for log lines.
 */
#include "config.h"

#include "dm_status.h"

const char *
dm_status_str(dm_status st)
{
	switch (st) {
	case DM_OK:		return "ok";
	case DM_NOTFOUND:	return "not found";
	case DM_TEMPFAIL:	return "temporary failure";
	case DM_PERMFAIL:	return "permanent failure";
	}
	return "unknown status";
}
