/*
 * dm_spfmacro.h - SPF macro-strings (RFC 7208 7): their syntax and
 * their expansion. Pure: the values of the macro letters come in, the
 * one that needs DNS (%{p}) through a callback.
 */
#ifndef DM_SPFMACRO_H
#define DM_SPFMACRO_H

#include <stddef.h>

/* What a macro-string is used as. */
typedef enum dm_spf_mctx {
	DM_SPF_MDOMAIN = 0,	/* a domain-spec or modifier value */
	DM_SPF_MEXP		/* explanations: SP, %{c} %{r} %{t} too */
} dm_spf_mctx;

/* The values of the macro letters (7.3), NUL-terminated. */
typedef struct dm_spf_menv {
	const char *s, *l, *o, *d, *h;
	const char *i;		/* dotted octets, or 32 dotted nibbles */
	const char *c;		/* the address as text */
	const char *v;		/* "in-addr" or "ip6" */
	const char *r, *t;	/* explanations only */
	/* %{p}: asked once per expansion that holds it; NULL: "unknown" */
	const char *(*p)(void *arg);
	void *parg;
} dm_spf_menv;

/*
 * Syntax of a macro-string of len bytes: 0, or -1 with *why set.
 * *ends_macro = 1 when it ends with a macro-expand (a domain-end, 7.1).
 */
int dm_spf_macro_check(const char *s, size_t len, dm_spf_mctx m,
    const char **why, int *ends_macro);

/*
 * Expand a macro-string (checked first: -1 when it is not one) into out,
 * NUL-terminated. A domain (DM_SPF_MDOMAIN) loses a trailing dot and, past
 * 253 bytes, labels on the left until it fits (7.3); only its last
 * outlen-1 bytes are kept while expanding, so outlen must exceed 255.
 * An explanation is cut at outlen-1 bytes. Returns the length.
 */
int dm_spf_macro_expand(const char *s, size_t len, dm_spf_mctx m,
    const dm_spf_menv *env, char *out, size_t outlen);

#endif
