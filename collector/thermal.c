/* Temperatures, throttle counters and the CPU governor, from sysfs. */
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"
#include "log.h"
#include "xmalloc.h"

#define THERMAL_MIN_MC	(-60000)	/* readings outside are broken */
#define THERMAL_MAX_MC	250000
#define THERMAL_MAX_PKGS 64

struct thermal {
	int	*fds;
	size_t	 n;
};

/* Opens every file matching pattern and adds it to the sensors. */
static void
thermal_add(struct thermal *t, const char *pattern)
{
	glob_t g;
	size_t i;
	int fd;

	if (glob(pattern, 0, NULL, &g) == 0) {
		t->fds = xreallocarray(t->fds, t->n + g.gl_pathc,
		    sizeof(*t->fds));
		for (i = 0; i < g.gl_pathc; i++) {
			fd = open(g.gl_pathv[i], O_RDONLY | O_CLOEXEC);
			if (fd >= 0)
				t->fds[t->n++] = fd;
			else
				log_debug("cannot open sensor '%s'",
				    g.gl_pathv[i]);
		}
	}
	globfree(&g);
}

int
thermal_open(struct thermal **out, const char *sysfs)
{
	struct thermal *t;
	char pat[PATH_MAX];

	t = xcalloc(1, sizeof(*t));
	snprintf(pat, sizeof(pat), "%s/class/thermal/thermal_zone*/temp",
	    sysfs);
	thermal_add(t, pat);
	snprintf(pat, sizeof(pat), "%s/class/hwmon/hwmon*/temp*_input",
	    sysfs);
	thermal_add(t, pat);
	*out = t;
	return 0;
}

size_t
thermal_count(const struct thermal *t)
{
	return t->n;
}

int
thermal_read(double *out, struct thermal *t)
{
	long long v, max = LLONG_MIN;
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (sysfs_pread_int(&v, t->fds[i]) < 0)
			continue;
		if (v < THERMAL_MIN_MC || v > THERMAL_MAX_MC)
			continue;
		if (v > max)
			max = v;
	}
	if (max == LLONG_MIN) {
		*out = NAN;
		return BL_ENOTFOUND;
	}
	*out = (double)max / 1000.0;
	return 0;
}

void
thermal_close(struct thermal *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		close(t->fds[i]);
	free(t->fds);
	free(t);
}

/*
 * Core counters are per CPU and are summed.  A package counter shows under
 * every CPU of its package, so it is taken once per physical_package_id.
 */
int
thermal_throttle_count(int64_t *out, const char *sysfs)
{
	long long pkgs[THERMAL_MAX_PKGS], v, id;
	char pat[PATH_MAX], path[PATH_MAX];
	size_t i, npkg = 0, k;
	int64_t sum = 0;
	int found = 0;
	glob_t g;

	snprintf(pat, sizeof(pat), "%s/devices/system/cpu/cpu[0-9]*", sysfs);
	if (glob(pat, GLOB_ONLYDIR, NULL, &g) == 0) {
		for (i = 0; i < g.gl_pathc; i++) {
			snprintf(path, sizeof(path),
			    "%s/thermal_throttle/core_throttle_count",
			    g.gl_pathv[i]);
			if (sysfs_read_int(&v, path) == 0 && v >= 0) {
				sum += v;
				found = 1;
			}
			snprintf(path, sizeof(path),
			    "%s/thermal_throttle/package_throttle_count",
			    g.gl_pathv[i]);
			if (sysfs_read_int(&v, path) < 0 || v < 0)
				continue;
			found = 1;
			snprintf(path, sizeof(path),
			    "%s/topology/physical_package_id", g.gl_pathv[i]);
			if (sysfs_read_int(&id, path) < 0)
				id = -1;
			for (k = 0; k < npkg && pkgs[k] != id; k++)
				;
			if (k < npkg || npkg == THERMAL_MAX_PKGS)
				continue;
			pkgs[npkg++] = id;
			sum += v;
		}
	}
	globfree(&g);
	if (!found)
		return BL_ENOTFOUND;
	*out = sum;
	return 0;
}

int
thermal_cpu_governor(char *out, size_t len, const char *sysfs)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path),
	    "%s/devices/system/cpu/cpu0/cpufreq/scaling_governor", sysfs);
	if (sysfs_read_str(out, len, path) == 0)
		return 0;
	if (len > 0)
		out[0] = '\0';
	return BL_ENOTFOUND;
}
