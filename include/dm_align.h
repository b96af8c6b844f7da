/*
 * dm_align.h - identifier alignment (RFC 7489 3.1, RFC 9989 4.4):
 * strict = same domain; relaxed = same Organizational Domain.
 */
#ifndef DM_ALIGN_H
#define DM_ALIGN_H

#include <stdbool.h>

#include "dm_orgdomain.h"
#include "dm_record.h"
#include "dm_status.h"

/*
 * author and id are normalised domains. DM_OK with *aligned set, or
 * DM_TEMPFAIL when an Organizational Domain could not be determined.
 */
dm_status dm_align_check(dm_org *o, const char *author, const char *id,
    dm_align_mode mode, bool *aligned);

#endif
