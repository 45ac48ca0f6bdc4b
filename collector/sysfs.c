/* Reads small sysfs files that hold one integer or one word. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"

/* Reads fd from offset 0 into buf and NUL-terminates it. */
ssize_t
sysfs_pread(int fd, char *buf, size_t size)
{
	ssize_t n;

	do
		n = pread(fd, buf, size - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* Parses a whole buffer as one decimal integer. */
static int
sysfs_parse_int(long long *out, const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno != 0)
		return -1;
	while (*end == '\n' || *end == ' ')
		end++;
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

int
sysfs_pread_int(long long *out, int fd)
{
	char buf[64];

	if (sysfs_pread(fd, buf, sizeof(buf)) <= 0)
		return -1;
	return sysfs_parse_int(out, buf);
}

int
sysfs_read_int(long long *out, const char *path)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	rc = sysfs_pread_int(out, fd);
	close(fd);
	return rc;
}

int
sysfs_read_str(char *out, size_t len, const char *path)
{
	char buf[256];
	ssize_t n;
	int fd;

	if (len == 0 || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = sysfs_pread(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0)
		return -1;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n == 0 || (size_t)n >= len)
		return -1;
	memcpy(out, buf, (size_t)n + 1);
	return 0;
}
