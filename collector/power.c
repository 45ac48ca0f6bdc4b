/* Power and energy from RAPL counters and a long-lived nvidia-smi. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "collector.h"
#include "log.h"
#include "xmalloc.h"

#define POWER_MAX_GPUS	64
#define POWER_MAX_W	100000.0	/* a GPU reading above is broken */

extern char **environ;

/* One RAPL counter. */
struct rapl_zone {
	int		 fd;		/* energy_uj */
	uint64_t	 max_uj;	/* max_energy_range_uj; 0: unknown */
	uint64_t	 last_uj;
	int		 have_last;
};

struct power {
	struct rapl_zone *zones;
	size_t		 nzones;

	pid_t		 nv_pid;	/* nvidia-smi, or -1 */
	int		 nv_pidfd;	/* a pidfd for it, or -1 */
	int		 nv_fd;		/* its stdout, non-blocking, or -1 */
	char		 nv_line[128];
	size_t		 nv_len;
	int		 nv_skip;	/* dropping an overlong line */
	double		 nv_w[POWER_MAX_GPUS];	/* latest draw, NaN: none */

	double		 last_t;
	int		 have_t;
	unsigned	 sources;
};

/*
 * Whether a powercap zone counts toward the total.  Packages and DRAM are
 * disjoint; core and uncore are parts of a package and psys contains the
 * packages, so adding those would count energy twice.
 */
static int
power_zone_wanted(const char *name)
{
	return strncmp(name, "package", 7) == 0 || strcmp(name, "dram") == 0;
}

/*
 * Opens the energy counter of every wanted zone.  The total is only right
 * when every one of them can be read, so one unreadable counter makes RAPL
 * absent as a whole.
 */
static void
power_open_rapl(struct power *p, const char *sysfs)
{
	char pat[PATH_MAX], path[PATH_MAX], name[64];
	struct rapl_zone *z;
	long long v;
	size_t i;
	glob_t g;
	int ok = 1, fd;

	snprintf(pat, sizeof(pat), "%s/class/powercap/intel-rapl:*", sysfs);
	if (glob(pat, GLOB_ONLYDIR, NULL, &g) != 0) {
		globfree(&g);
		return;
	}
	p->zones = xcalloc(g.gl_pathc, sizeof(*p->zones));
	for (i = 0; i < g.gl_pathc && ok; i++) {
		snprintf(path, sizeof(path), "%s/name", g.gl_pathv[i]);
		if (sysfs_read_str(name, sizeof(name), path) < 0 ||
		    !power_zone_wanted(name))
			continue;
		snprintf(path, sizeof(path), "%s/energy_uj", g.gl_pathv[i]);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			log_warn("rapl counter '%s' unreadable, power from "
			    "rapl is absent", path);
			ok = 0;
			break;
		}
		if (sysfs_pread_int(&v, fd) < 0 || v < 0) {
			log_warnx("rapl counter '%s' unreadable, power from "
			    "rapl is absent", path);
			close(fd);
			ok = 0;
			break;
		}
		z = &p->zones[p->nzones++];
		z->fd = fd;
		snprintf(path, sizeof(path), "%s/max_energy_range_uj",
		    g.gl_pathv[i]);
		if (sysfs_read_int(&v, path) == 0 && v > 0)
			z->max_uj = (uint64_t)v;
	}
	globfree(&g);
	if (!ok) {
		for (i = 0; i < p->nzones; i++)
			close(p->zones[i].fd);
		p->nzones = 0;
	}
	if (p->nzones > 0)
		p->sources |= POWER_SRC_RAPL;
}

/*
 * Finds an executable on PATH, or takes name as it is when it holds a '/'.
 * This is done before spawning because some posix_spawn implementations
 * (and valgrind's emulation of glibc's) report success when the exec
 * fails, which would look like a GPU whose meter died at once.
 */
static int
power_which(char *out, size_t len, const char *name)
{
	const char *path = getenv("PATH"), *p, *end;
	int n;

	if (strchr(name, '/') != NULL) {
		if (access(name, X_OK) < 0 ||
		    (size_t)snprintf(out, len, "%s", name) >= len)
			return -1;
		return 0;
	}
	for (p = path != NULL ? path : "/usr/bin:/bin"; ; p = end + 1) {
		end = strchrnul(p, ':');
		n = snprintf(out, len, "%.*s/%s", (int)(end - p), p, name);
		if (end > p && n > 0 && (size_t)n < len &&
		    access(out, X_OK) == 0)
			return 0;
		if (*end == '\0')
			return -1;
	}
}

/*
 * Starts nvidia-smi printing "index, watts" lines every period into a
 * pipe.  It is started once rather than at every sample because each run
 * of nvidia-smi costs tens of milliseconds.
 */
static void
power_start_nvidia(struct power *p, const char *nvsmi, double period_s)
{
	char lms[32], exe[PATH_MAX];
	char *argv[] = { exe, "--query-gpu=index,power.draw",
	    "--format=csv,noheader,nounits", "-lms", lms, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	pid_t pid;
	int pfd[2], rc;

	if (power_which(exe, sizeof(exe), nvsmi) < 0) {
		log_debug("no '%s' on PATH: no gpu power", nvsmi);
		return;
	}
	snprintf(lms, sizeof(lms), "%d", (int)(period_s * 1000 + 0.5));
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		log_warn("cannot start '%s'", nvsmi);
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
	    O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null",
	    O_WRONLY, 0);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGHUP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&pid, exe, &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		log_warnx("cannot start '%s': %s", exe, strerror(rc));
		return;
	}
	fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);
	p->nv_pid = pid;
	p->nv_pidfd = pidfd_open(pid, 0);
	p->nv_fd = pfd[0];
	p->sources |= POWER_SRC_NVIDIA;
}

/*
 * Ends nvidia-smi and reaps it.  The pidfd makes sure the signal reaches
 * it and not a process that got its pid after someone else reaped it.
 */
static void
power_stop_nvidia(struct power *p)
{
	siginfo_t si;
	int i, rc;

	if (p->nv_fd >= 0)
		close(p->nv_fd);
	p->nv_fd = -1;
	if (p->nv_pid <= 0)
		return;
	for (i = 0; i < POWER_MAX_GPUS; i++)
		p->nv_w[i] = NAN;
	for (i = 0; i < 400; i++) {
		if (i == 0 || i == 200) {
			if (p->nv_pidfd >= 0)
				pidfd_send_signal(p->nv_pidfd,
				    i == 0 ? SIGTERM : SIGKILL, NULL, 0);
			else
				kill(p->nv_pid, i == 0 ? SIGTERM : SIGKILL);
		}
		memset(&si, 0, sizeof(si));
		if (p->nv_pidfd >= 0)
			rc = waitid(P_PIDFD, (id_t)p->nv_pidfd, &si,
			    WEXITED | WNOHANG);
		else
			rc = waitid(P_PID, (id_t)p->nv_pid, &si,
			    WEXITED | WNOHANG);
		if (rc < 0 || si.si_pid != 0)
			break;
		clock_sleep_ms(5);
	}
	if (p->nv_pidfd >= 0)
		close(p->nv_pidfd);
	p->nv_pidfd = -1;
	p->nv_pid = -1;
}

/* Takes one "index, watts" line; "[N/A]" and the like mean no reading. */
static void
power_parse_nvidia(struct power *p, const char *line)
{
	char *end, *wend;
	long idx;
	double w;

	idx = strtol(line, &end, 10);
	if (end == line || *end != ',' || idx < 0 || idx >= POWER_MAX_GPUS)
		return;
	w = strtod(end + 1, &wend);
	while (*wend == ' ' || *wend == '\r')
		wend++;
	if (wend == end + 1 || *wend != '\0' || !(w >= 0 && w < POWER_MAX_W))
		p->nv_w[idx] = NAN;
	else
		p->nv_w[idx] = w;
}

/* Reads what nvidia-smi printed since the last call. */
static void
power_drain_nvidia(struct power *p)
{
	char buf[4096];
	ssize_t n, i;

	for (;;) {
		n = read(p->nv_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			log_warnx("nvidia-smi ended, gpu power is absent from "
			    "now on");
			power_stop_nvidia(p);
			return;
		}
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				p->nv_line[p->nv_len] = '\0';
				if (!p->nv_skip)
					power_parse_nvidia(p, p->nv_line);
				p->nv_len = 0;
				p->nv_skip = 0;
			} else if (p->nv_len < sizeof(p->nv_line) - 1)
				p->nv_line[p->nv_len++] = buf[i];
			else
				p->nv_skip = 1;
		}
	}
}

int
power_open(struct power **out, const char *sysfs, const char *nvsmi,
    double period_s)
{
	struct power *p;
	size_t i;

	p = xcalloc(1, sizeof(*p));
	p->nv_pid = -1;
	p->nv_pidfd = -1;
	p->nv_fd = -1;
	for (i = 0; i < POWER_MAX_GPUS; i++)
		p->nv_w[i] = NAN;
	power_open_rapl(p, sysfs);
	if (nvsmi != NULL) {
		if (!(period_s >= 0.1))
			period_s = 0.1;
		if (period_s > 1.0)
			period_s = 1.0;
		power_start_nvidia(p, nvsmi, period_s);
	}
	*out = p;
	return 0;
}

unsigned
power_sources(const struct power *p)
{
	return p->sources;
}

/*
 * Adds up the RAPL counters' increase since the last call into *out_j.
 * Returns 1 when every counter gave a usable difference, else 0.
 */
static int
power_read_rapl(double *out_j, struct power *p)
{
	struct rapl_zone *z;
	uint64_t d, cur, sum = 0;
	long long v;
	size_t i;
	int ok = p->nzones > 0;

	for (i = 0; i < p->nzones; i++) {
		z = &p->zones[i];
		if (sysfs_pread_int(&v, z->fd) < 0 || v < 0) {
			z->have_last = 0;
			ok = 0;
			continue;
		}
		cur = (uint64_t)v;
		d = 0;
		if (!z->have_last)
			ok = 0;
		else if (cur >= z->last_uj)
			d = cur - z->last_uj;
		else if (z->max_uj > 0 && z->last_uj <= z->max_uj)
			d = z->max_uj - z->last_uj + cur;
		else
			ok = 0;
		if (ok)
			sum += d;
		z->last_uj = cur;
		z->have_last = 1;
	}
	*out_j = (double)sum / 1e6;
	return ok;
}

int
power_read(struct power_reading *out, struct power *p, double now_s)
{
	double dt, rapl_j, gpu_w = 0;
	int rapl_ok, ngpu = 0, first;
	size_t i;

	out->w = out->j = NAN;
	out->sources = 0;
	rapl_ok = power_read_rapl(&rapl_j, p);
	if (p->nv_fd >= 0)
		power_drain_nvidia(p);
	for (i = 0; i < POWER_MAX_GPUS; i++) {
		if (!isnan(p->nv_w[i])) {
			gpu_w += p->nv_w[i];
			ngpu++;
		}
	}
	first = !p->have_t;
	dt = now_s - p->last_t;
	p->last_t = now_s;
	p->have_t = 1;
	if (first || !(dt > 0) || (!rapl_ok && ngpu == 0))
		return BL_ENOTFOUND;
	out->j = 0;
	if (rapl_ok) {
		out->j += rapl_j;
		out->sources |= POWER_SRC_RAPL;
	}
	if (ngpu > 0) {
		out->j += gpu_w * dt;
		out->sources |= POWER_SRC_NVIDIA;
	}
	out->w = out->j / dt;
	return 0;
}

void
power_close(struct power *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nzones; i++)
		close(p->zones[i].fd);
	free(p->zones);
	power_stop_nvidia(p);
	free(p);
}
