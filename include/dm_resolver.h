/*
 * dm_resolver.h - ALL DNS of the project goes through here (libunbound).
 *
 * One context is shared by every thread: its cache serves SPF, DKIM, DMARC
 * and report-address lookups alike. Each lookup has a real timeout. The
 * upstream is /etc/resolv.conf unless an unbound.conf file is loaded
 * (DNSConfig): tests use local-zone/local-data there to serve their own
 * zones with no network.
 */
#ifndef DM_RESOLVER_H
#define DM_RESOLVER_H

#include <stddef.h>

typedef struct dm_resolver dm_resolver;

typedef enum dm_dns_status {
	DM_DNS_OK = 0,		/* at least one record of the type */
	DM_DNS_NODATA,		/* the name exists, no record of that type */
	DM_DNS_NXDOMAIN,	/* the name does not exist */
	DM_DNS_TEMPFAIL,	/* SERVFAIL, timeout, network: try later */
	DM_DNS_PERMFAIL		/* the query itself is invalid (bad name) */
} dm_dns_status;

/* One TXT record: its character-strings concatenated (may hold NULs). */
typedef struct dm_txt {
	char *data;	/* NUL-terminated copy, len bytes before the NUL */
	size_t len;
} dm_txt;

/* One resource record of any type: raw RDATA as on the wire. */
typedef struct dm_rr {
	unsigned char *data;
	size_t len;
} dm_rr;

/*
 * One TXT RDATA as it came from the wire (length-prefixed
 * character-strings) into out, joined: 0; -1 when malformed (a length
 * past the end, or empty), -2 when out of memory. The parser under
 * dm_resolver_txt, for its tests and fuzz target.
 */
int dm_txt_join(const unsigned char *p, size_t len, dm_txt *out);

/*
 * config_file: an unbound.conf file or NULL (then /etc/resolv.conf, and
 * /etc/hosts). timeout_ms: per lookup, >0. Returns NULL and fills err.
 */
dm_resolver *dm_resolver_new(const char *config_file, int timeout_ms,
    char *err, size_t errlen);
void dm_resolver_free(dm_resolver *r);

/* Any type (ns_t_* values). On DM_DNS_OK *rrs and *n hold the answer. */
dm_dns_status dm_resolver_lookup(dm_resolver *r, const char *name,
    int rrtype, dm_rr **rrs, size_t *n);
void dm_rr_free(dm_rr *rrs, size_t n);

/* TXT records of name. On DM_DNS_OK *recs and *n hold them. */
dm_dns_status dm_resolver_txt(dm_resolver *r, const char *name,
    dm_txt **recs, size_t *n);
void dm_txt_free(dm_txt *recs, size_t n);

/*
 * Does the name exist (RFC 9989 3.2.13, RFC 8020): DM_DNS_NXDOMAIN only
 * when the server says NXDOMAIN; DM_DNS_OK when it exists (with or
 * without data); DM_DNS_TEMPFAIL when nobody could tell.
 */
dm_dns_status dm_resolver_exists(dm_resolver *r, const char *name);

/*
 * The whole DNS reply packet (wire format), for libraries that parse it
 * themselves (libopendkim). *outlen = its length; DM_DNS_PERMFAIL when it
 * does not fit in buflen.
 */
dm_dns_status dm_resolver_packet(dm_resolver *r, const char *name,
    int rrtype, unsigned char *buf, size_t buflen, size_t *outlen);

const char *dm_dns_status_str(dm_dns_status st);

#endif
