/*
 * dm_config.h - the configuration: one declarative table of options
 * (name, type, default, bounds, doc) in config.c yields an immutable,
 * reference-counted dm_config. A reload builds a new one and swaps it;
 * work in flight keeps its reference to the old one.
 */
#ifndef DM_CONFIG_H
#define DM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "dm_status.h"

typedef struct dm_config dm_config;

/* Every option, in the order of the table. */
typedef enum dm_opt {
	DM_OPT_AUTHSERV_ID = 0,
	DM_OPT_DNS_CONFIG,
	DM_OPT_DNS_TIMEOUT,
	DM_OPT_ORG_DOMAIN_METHOD,
	DM_OPT_PSL_FILE,
	DM_OPT_HONOR_PCT,
	DM_OPT_MULTIPLE_FROM,
	DM_OPT_LOG_LEVEL,
	DM_OPT_COUNT
} dm_opt;

/* MultipleFrom values. */
enum { DM_MULTIFROM_STRICTEST = 0, DM_MULTIFROM_REJECT, DM_MULTIFROM_FIRST };

/* Defaults only. */
dm_config *dm_config_new(void);
/*
 * Read FILE ("Name value" lines, # comments) over the defaults. Errors
 * name file:line and the option. DM_PERMFAIL on any error.
 */
dm_status dm_config_load(const char *file, dm_config **out, char *err,
    size_t errlen);
/* Set one option by name (command-line overrides), before use. */
dm_status dm_config_set(dm_config *c, const char *name, const char *value,
    char *err, size_t errlen);

dm_config *dm_config_ref(dm_config *c);
void dm_config_unref(dm_config *c);

const char *dm_config_str(const dm_config *c, dm_opt o);	/* may be NULL */
long dm_config_int(const dm_config *c, dm_opt o);	/* int, enum index */
bool dm_config_bool(const dm_config *c, dm_opt o);

/* Write the option table as man-page text (docs are generated from it). */
void dm_config_dump_doc(int fd);

#endif
