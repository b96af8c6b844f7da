/*
 * tests/testdns.c - one way for unit tests to get a resolver over their
 * fixture zones, so that a missing fixture reads the same everywhere.
 */
#include "config.h"

#include <stdio.h>

#include "tap.h"
#include "testdns.h"

dm_resolver *
testdns_resolver(const char *name, int timeout_ms)
{
	char conf[4096], err[256] = "";
	dm_resolver *r;

	snprintf(conf, sizeof(conf), "%s/%s", tap_fixture_dir(), name);
	if ((r = dm_resolver_new(conf, timeout_ms, err, sizeof(err))) == NULL)
		tap_bail("resolver over %s: %s", conf, err);
	return r;
}

dm_org *
testdns_org(dm_resolver *r, dm_org_method m)
{
	char err[256] = "";
	dm_org *o;

	if ((o = dm_org_new(m, r, NULL, err, sizeof(err))) == NULL)
		tap_bail("%s: %s", dm_org_method_str(m), err);
	return o;
}
