/*
 * dm_cidr.h - lists of IPv4/IPv6 networks (IgnoreHosts,
 * TrustedForwarders): parsed once per configuration, matched per
 * connection.
 */
#ifndef DM_CIDR_H
#define DM_CIDR_H

#include <stdbool.h>
#include <stddef.h>

#include "dm_status.h"

typedef struct dm_cidrlist dm_cidrlist;

/*
 * spec: items separated by white space or commas; an item is an address,
 * address/prefix, or an absolute path of a file with such items (one or
 * more a line, '#' comments). NULL or "" gives an empty list.
 * DM_PERMFAIL with err naming the item.
 */
dm_status dm_cidrlist_parse(const char *spec, dm_cidrlist **out, char *err,
    size_t errlen);
void dm_cidrlist_free(dm_cidrlist *l);
/* ip as text (v4, v6, or v4-mapped v6). False for anything unparsable. */
bool dm_cidrlist_match(const dm_cidrlist *l, const char *ip);
size_t dm_cidrlist_count(const dm_cidrlist *l);

#endif
