/*
 * tests/testdns.h - the resolver of a unit test, serving one fixture
 * zone file from tests/fixtures (unbound local-data, no network).
 */
#ifndef TESTDNS_H
#define TESTDNS_H

#include "dm_orgdomain.h"
#include "dm_resolver.h"

/* A resolver over tests/fixtures/NAME; bails out of the test if none. */
dm_resolver *testdns_resolver(const char *name, int timeout_ms);
/* An Organizational Domain finder over r (the default PSL file); bails
 * out of the test if none. */
dm_org *testdns_org(dm_resolver *r, dm_org_method m);

#endif
