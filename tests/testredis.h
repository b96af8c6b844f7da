/*
 * tests/testredis.h - a private redis-server for one unit test: a unix
 * socket in a temporary directory, no TCP port, no persistence, killed
 * by PID when the test exits (also when it bails out).
 */
#ifndef TESTREDIS_H
#define TESTREDIS_H

#include <stdbool.h>

/* false (with a TAP plan "1..0 # SKIP" printed) when redis-server is missing. */
bool testredis_available(void);
/* Start it; the URL (unix:///...) of its socket. Bails out on failure. */
const char *testredis_start(void);

#endif
