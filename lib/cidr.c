/*
 * lib/cidr.c - lists of networks, IPv4 and IPv6, parsed from
 * configuration text or files, matched against a client address.
 * An IPv4-mapped IPv6 address matches the IPv4 networks, since a dual-
 * stack MTA may hand either form over for the same client.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/stdlib.h>

#include "dm_cidr.h"
#include "dm_log.h"

struct cidr {
	int family;
	unsigned char addr[16];
	unsigned prefix;
};

struct dm_cidrlist {
	struct cidr *v;
	size_t n, cap;
};

/* Text to family and 16 bytes; v4-mapped v6 becomes v4. */
static bool
cidr_addr(const char *s, int *family, unsigned char *addr)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0xff, 0xff };

	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, addr) != 1)
		return false;
	*family = AF_INET6;
	if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		*family = AF_INET;
	}
	return true;
}

static dm_status
cidr_add(dm_cidrlist *l, const char *item, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	struct cidr c;
	unsigned long prefix;
	unsigned max;

	if (strlen(item) >= sizeof(buf))
		goto bad;
	strcpy(buf, item);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (!cidr_addr(buf, &c.family, c.addr))
		goto bad;
	max = c.family == AF_INET ? 32 : 128;
	c.prefix = max;
	if (slash != NULL) {
		errno = 0;
		prefix = strtoul(slash, &end, 10);
		if (errno != 0 || end == slash || *end != '\0' ||
		    prefix > max || !isdigit((unsigned char)*slash))
			goto bad;
		c.prefix = (unsigned)prefix;
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 8;
		struct cidr *v = reallocarray(l->v, ncap, sizeof(*v));

		if (v == NULL)
			dm_log_oom();
		l->v = v;
		l->cap = ncap;
	}
	l->v[l->n++] = c;
	return DM_OK;
bad:
	snprintf(err, errlen, "'%s' is not an address or network", item);
	return DM_PERMFAIL;
}

static dm_status cidr_parse_text(dm_cidrlist *l, const char *text,
    bool in_file, char *err, size_t errlen);

static dm_status
cidr_parse_file(dm_cidrlist *l, const char *path, char *err, size_t errlen)
{
	char *line = NULL, why[256];
	size_t cap = 0;
	unsigned lineno = 0;
	dm_status st = DM_OK;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return DM_PERMFAIL;
	}
	while (st == DM_OK && getline(&line, &cap, fp) >= 0) {
		lineno++;
		line[strcspn(line, "#")] = '\0';
		st = cidr_parse_text(l, line, true, why, sizeof(why));
		if (st == DM_PERMFAIL)
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
	}
	free(line);
	fclose(fp);
	return st;
}

/* Files may not name further files: no include loops. */
static dm_status
cidr_parse_text(dm_cidrlist *l, const char *text, bool in_file, char *err,
    size_t errlen)
{
	const char *p = text, *q;
	char item[512];
	dm_status st;
	size_t len;

	for (;;) {
		p += strspn(p, " \t\r\n,");
		if (*p == '\0')
			return DM_OK;
		q = p + strcspn(p, " \t\r\n,");
		len = (size_t)(q - p);
		if (len >= sizeof(item))
			len = sizeof(item) - 1;
		memcpy(item, p, len);
		item[len] = '\0';
		if (item[0] == '/' && !in_file)
			st = cidr_parse_file(l, item, err, errlen);
		else
			st = cidr_add(l, item, err, errlen);
		if (st != DM_OK)
			return st;
		p = q;
	}
}

dm_status
dm_cidrlist_parse(const char *spec, dm_cidrlist **out, char *err,
    size_t errlen)
{
	dm_cidrlist *l;
	dm_status st;

	*out = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		dm_log_oom();
	st = spec != NULL ? cidr_parse_text(l, spec, false, err, errlen) :
	    DM_OK;
	if (st != DM_OK) {
		dm_cidrlist_free(l);
		return st;
	}
	*out = l;
	return DM_OK;
}

void
dm_cidrlist_free(dm_cidrlist *l)
{
	if (l == NULL)
		return;
	free(l->v);
	free(l);
}

static bool
cidr_contains(const struct cidr *c, const unsigned char *addr)
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;
	unsigned char mask;

	if (memcmp(c->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (c->addr[full] & mask) == (addr[full] & mask);
}

bool
dm_cidrlist_match(const dm_cidrlist *l, const char *ip)
{
	unsigned char addr[16];
	int family;
	size_t i;

	if (l == NULL || ip == NULL || !cidr_addr(ip, &family, addr))
		return false;
	for (i = 0; i < l->n; i++)
		if (l->v[i].family == family && cidr_contains(&l->v[i], addr))
			return true;
	return false;
}

size_t
dm_cidrlist_count(const dm_cidrlist *l)
{
	return l != NULL ? l->n : 0;
}
