/*
 * tests/unit/test_cidr.c - network lists: parsing, matching both
 * families, v4-mapped v6, prefixes on and off byte boundaries, files.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dm_cidr.h"
#include "tap.h"

static const struct row {
	const char *spec;
	const char *ip;
	bool want;
} rows[] = {
	{ "127.0.0.0/8 ::1", "127.0.0.1", true },
	{ "127.0.0.0/8 ::1", "127.255.1.2", true },
	{ "127.0.0.0/8 ::1", "128.0.0.1", false },
	{ "127.0.0.0/8 ::1", "::1", true },
	{ "127.0.0.0/8 ::1", "::2", false },
	{ "127.0.0.0/8 ::1", "::ffff:127.0.0.9", true },
	{ "192.0.2.0/25", "192.0.2.127", true },
	{ "192.0.2.0/25", "192.0.2.128", false },
	{ "192.0.2.7", "192.0.2.7", true },
	{ "192.0.2.7", "192.0.2.8", false },
	{ "2001:db8::/32", "2001:db8:ffff::1", true },
	{ "2001:db8::/33", "2001:db8:8000::1", false },
	{ "2001:db8::/33", "2001:db8:7fff::1", true },
	{ "0.0.0.0/0", "203.0.113.5", true },
	{ "0.0.0.0/0", "2001:db8::1", false },
	{ "::/0", "2001:db8::1", true },
	{ "10.0.0.0/8,172.16.0.0/12", "172.31.255.255", true },
	{ "10.0.0.0/8,172.16.0.0/12", "172.32.0.0", false },
	{ "", "127.0.0.1", false },
	{ "10.0.0.0/8", "not-an-ip", false },
	{ "10.0.0.0/8", "", false },
};

static const char *const bad[] = {
	"10.0.0.0/33", "::/129", "10.0.0.1/", "10.0.0.1/x", "10.0.0.1/-1",
	"example.com", "1.2.3.4.5", "/nonexistent/file",
};

static void
test_file(void)
{
	char path[] = "/tmp/test_cidr.XXXXXX", spec[64], err[256] = "";
	dm_cidrlist *l = NULL;
	FILE *fp;
	int fd;

	if ((fd = mkstemp(path)) < 0 || (fp = fdopen(fd, "w")) == NULL)
		tap_bail("mkstemp");
	fputs("# forwarders\n198.51.100.0/24  # one\n2001:db8::/48\n", fp);
	fclose(fp);
	snprintf(spec, sizeof(spec), "10.1.1.1, %s", path);
	tap_is_int(dm_cidrlist_parse(spec, &l, err, sizeof(err)), DM_OK,
	    "a list naming a file parses");
	tap_is_int((long)dm_cidrlist_count(l), 3, "file items are added");
	tap_ok(dm_cidrlist_match(l, "198.51.100.77"), "file item matches");
	tap_ok(dm_cidrlist_match(l, "10.1.1.1"), "inline item matches");
	dm_cidrlist_free(l);
	if ((fp = fopen(path, "w")) == NULL)
		tap_bail("reopen");
	fputs("198.51.100.0/24\nbogus\n", fp);
	fclose(fp);
	tap_is_int(dm_cidrlist_parse(path, &l, err, sizeof(err)), DM_PERMFAIL,
	    "a bad line in a file fails");
	tap_ok(strstr(err, ":2: 'bogus'") != NULL, "error names file:line: %s",
	    err);
	unlink(path);
}

int
main(void)
{
	char err[256];
	dm_cidrlist *l;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (dm_cidrlist_parse(rows[i].spec, &l, err, sizeof(err)) !=
		    DM_OK) {
			tap_ok(0, "parse '%s': %s", rows[i].spec, err);
			continue;
		}
		tap_is_int(dm_cidrlist_match(l, rows[i].ip), rows[i].want,
		    "'%s' %s '%s'", rows[i].ip, rows[i].want ? "in" : "not in",
		    rows[i].spec);
		dm_cidrlist_free(l);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		tap_is_int(dm_cidrlist_parse(bad[i], &l, err, sizeof(err)),
		    DM_PERMFAIL, "'%s' is refused (%s)", bad[i], err);
	}
	tap_ok(!dm_cidrlist_match(NULL, "127.0.0.1"), "NULL list matches none");
	test_file();
	return tap_done();
}
