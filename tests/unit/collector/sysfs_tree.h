/* Test helper: a fake sysfs tree in a temporary directory. */
#ifndef BL_TEST_SYSFS_TREE_H
#define BL_TEST_SYSFS_TREE_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates an empty tree; returns its root, which tree_remove() frees. */
static inline char *
tree_new(void)
{
	char tmpl[] = "/tmp/bl-sysfs-XXXXXX";

	if (mkdtemp(tmpl) == NULL)
		abort();
	return strdup(tmpl);
}

/*
 * Writes text to <root>/<rel>, creating the directories on the way.  The
 * file is rewritten in place, so a descriptor already open on it reads
 * the new text, as with a sysfs attribute.
 */
static inline void
tree_put(const char *root, const char *rel, const char *text)
{
	char path[PATH_MAX], *p;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			abort();
		*p = '/';
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		abort();
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
}

static inline void
tree_remove(char *root)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		abort();
	free(root);
}

#endif
