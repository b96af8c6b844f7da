/*
 * tests/fuzz/regress_main.c - replays inputs through a fuzz target's
 * LLVMFuzzerTestOneInput in a normal build (no libFuzzer), so that every
 * crasher once found stays fixed in make check, and the seed corpus
 * keeps running in the sanitizer build.
 *
 * Linked with one target as tests/fuzz/regress_NAME. With arguments, the
 * files (or directories of files) named; without, every file of
 * $srcdir/tests/fuzz/regress/NAME/ and $srcdir/tests/fuzz/corpus/NAME/.
 * Prints TAP: one line per input. A finding aborts the program, after
 * a "# replaying FILE" line that names the input.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Defined by the targets that need set-up. */
extern int LLVMFuzzerInitialize(int *argc, char ***argv)
	__attribute__((weak));

struct list {
	char **v;
	size_t n, cap;
};

static void
list_add(struct list *l, const char *path)
{
	char **nv;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		if ((nv = realloc(l->v, l->cap * sizeof(*nv))) == NULL)
			fuzz_fail("out of memory");
		l->v = nv;
	}
	if ((l->v[l->n++] = strdup(path)) == NULL)
		fuzz_fail("out of memory");
}

static int
path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file, or the files of a directory (not its subdirectories). */
static void
collect(struct list *l, const char *path, int must_exist)
{
	char sub[4096];
	struct dirent *de;
	struct stat sb;
	DIR *d;

	if (stat(path, &sb) != 0) {
		if (must_exist)
			fuzz_fail("%s: %s", path, strerror(errno));
		return;
	}
	if (!S_ISDIR(sb.st_mode)) {
		list_add(l, path);
		return;
	}
	if ((d = opendir(path)) == NULL)
		fuzz_fail("%s: %s", path, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (de->d_name[0] != '.' && stat(sub, &sb) == 0 &&
		    S_ISREG(sb.st_mode))
			list_add(l, sub);
	}
	closedir(d);
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	unsigned char *buf = NULL, *nb;
	size_t cap = 0, n;
	FILE *fp;

	if ((fp = fopen(path, "rb")) == NULL)
		fuzz_fail("%s: %s", path, strerror(errno));
	*len = 0;
	do {
		if (*len == cap) {
			cap = cap ? cap * 2 : 4096;
			if ((nb = realloc(buf, cap)) == NULL)
				fuzz_fail("out of memory");
			buf = nb;
		}
		n = fread(buf + *len, 1, cap - *len, fp);
		*len += n;
	} while (n > 0);
	if (ferror(fp))
		fuzz_fail("%s: read error", path);
	fclose(fp);
	/* An exact-size copy: a read past the input shows in ASan. */
	if ((nb = malloc(*len ? *len : 1)) == NULL)
		fuzz_fail("out of memory");
	memcpy(nb, buf, *len);
	free(buf);
	return nb;
}

/* regress_NAME or fuzz_NAME: NAME. */
static const char *
target_name(const char *argv0)
{
	const char *base = strrchr(argv0, '/'), *us;

	base = base != NULL ? base + 1 : argv0;
	if (strncmp(base, "lt-", 3) == 0)
		base += 3;
	us = strchr(base, '_');
	return us != NULL ? us + 1 : base;
}

static void
default_inputs(struct list *l, const char *name)
{
	const char *srcdir = getenv("srcdir");
	char dir[4096];

	if (srcdir == NULL || *srcdir == '\0')
		srcdir = ".";
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/regress/%s", srcdir, name);
	collect(l, dir, 0);
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", srcdir, name);
	collect(l, dir, 0);
}

int
main(int argc, char **argv)
{
	struct list l = { NULL, 0, 0 };
	unsigned char *buf;
	size_t i, len;
	int j;

	for (j = 1; j < argc; j++)
		collect(&l, argv[j], 1);
	if (argc == 1)
		default_inputs(&l, target_name(argv[0]));
	if (l.n == 0) {
		printf("1..0 # SKIP no inputs for %s\n", target_name(argv[0]));
		return 0;
	}
	qsort(l.v, l.n, sizeof(*l.v), path_cmp);
	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	printf("1..%zu\n", l.n);
	for (i = 0; i < l.n; i++) {
		buf = slurp(l.v[i], &len);
		printf("# replaying %s\n", l.v[i]);
		fflush(stdout);
		LLVMFuzzerTestOneInput(buf, len);
		printf("ok %zu - %s\n", i + 1, l.v[i]);
		free(buf);
		free(l.v[i]);
	}
	free(l.v);
	return 0;
}
