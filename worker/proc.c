/* Child processes: own process group, resource limits, captured output, timeouts, reaping. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "worker.h"

/* Parses "0-3,6" into a CPU set; returns -1 on a malformed list. */
static int
parse_cpus(cpu_set_t *set, const char *list)
{
	const char *p = list;
	char *end;
	long a, b;

	CPU_ZERO(set);
	while (*p != '\0') {
		a = strtol(p, &end, 10);
		if (end == p || a < 0 || a >= CPU_SETSIZE)
			return -1;
		b = a;
		if (*end == '-') {
			p = end + 1;
			b = strtol(p, &end, 10);
			if (end == p || b < a || b >= CPU_SETSIZE)
				return -1;
		}
		for (; a <= b; a++)
			CPU_SET((int)a, set);
		p = end;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return -1;
	}
	return 0;
}

static void
set_limit(int resource, rlim_t value)
{
	struct rlimit rl = { value, value };

	setrlimit(resource, &rl);
}

/* In the child: limits, group, affinity, descriptors, then exec. */
static void BL_NORETURN
child_exec(char *const argv[], const char *dir, const struct proc_limits *lim,
    int in_fd, int out_fd, int err_fd)
{
	cpu_set_t set;
	int i;

	setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if (lim != NULL) {
		if (lim->cpu_s > 0)
			set_limit(RLIMIT_CPU, (rlim_t)lim->cpu_s);
		if (lim->as_mb > 0)
			set_limit(RLIMIT_AS, (rlim_t)lim->as_mb << 20);
		if (lim->nofile > 0)
			set_limit(RLIMIT_NOFILE, (rlim_t)lim->nofile);
		if (lim->cpus != NULL && *lim->cpus != '\0' &&
		    parse_cpus(&set, lim->cpus) == 0)
			sched_setaffinity(0, sizeof(set), &set);
	}
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(126);
	for (i = 3; i < 1024; i++)
		close(i);
	if (dir != NULL && chdir(dir) < 0) {
		dprintf(2, "cannot enter '%s': %s\n", dir, strerror(errno));
		_exit(126);
	}
	execvp(argv[0], argv);
	dprintf(2, "cannot run '%s': %s\n", argv[0], strerror(errno));
	_exit(127);
}

int
proc_spawn(struct proc *out, char *const argv[], const char *dir,
    const struct proc_limits *lim, int flags, char *err, size_t errlen)
{
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	int devnull = -1;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	out->in_fd = out->out_fd = out->err_fd = -1;
	if (((flags & PROC_PIPE_STDIN) && pipe2(in, O_CLOEXEC) < 0) ||
	    ((flags & PROC_PIPE_STDOUT) && pipe2(outp, O_CLOEXEC) < 0) ||
	    pipe2(errp, O_CLOEXEC) < 0 ||
	    (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot make pipes for '%s': %s", argv[0],
		    strerror(errno));
		goto fail;
	}
	if ((pid = fork()) < 0) {
		snprintf(err, errlen, "cannot fork for '%s': %s", argv[0],
		    strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child_exec(argv, dir, lim, in[0] >= 0 ? in[0] : devnull,
		    outp[1] >= 0 ? outp[1] : errp[1], errp[1]);
	setpgid(pid, pid);	/* both sides, so there is no race */
	close(devnull);
	if (in[0] >= 0)
		close(in[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	close(errp[1]);
	out->pid = pid;
	out->in_fd = in[1];
	out->out_fd = outp[0];
	out->err_fd = errp[0];
	return 0;
fail:
	if (devnull >= 0)
		close(devnull);
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return BL_ERROR;
}

int
proc_poll(struct proc *p, struct rusage *ru)
{
	struct rusage local;
	pid_t r;

	if (p->reaped)
		return 1;
	r = wait4(p->pid, &p->status, WNOHANG, ru ? ru : &local);
	if (r == p->pid) {
		p->reaped = 1;
		return 1;
	}
	return 0;
}

void
proc_kill(struct proc *p, int grace_ms)
{
	int64_t deadline;

	if (p->pid <= 0)
		return;
	kill(-p->pid, SIGTERM);
	deadline = clock_mono_ms() + grace_ms;
	while (!proc_poll(p, NULL) && clock_mono_ms() < deadline)
		clock_sleep_ms(10);
	/* The group may hold more than the leader: kill it whole either way. */
	kill(-p->pid, SIGKILL);
	if (!p->reaped) {
		waitpid(p->pid, &p->status, 0);
		p->reaped = 1;
	}
}

void
proc_close_fds(struct proc *p)
{
	if (p->in_fd >= 0)
		close(p->in_fd);
	if (p->out_fd >= 0)
		close(p->out_fd);
	if (p->err_fd >= 0)
		close(p->err_fd);
	p->in_fd = p->out_fd = p->err_fd = -1;
}

const char *
proc_status_str(char *buf, size_t len, int status)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "wait status %d", status);
	return buf;
}

int
proc_run_shell(int *status, double *seconds, const char *cmd, const char *dir,
    const struct proc_limits *lim, int64_t timeout_s, struct tailbuf *log,
    volatile int *cancel, char *err, size_t errlen)
{
	char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };
	struct pollfd pfd;
	struct proc p;
	char chunk[4096];
	double t0 = clock_mono_s();
	int64_t deadline = clock_mono_ms() + timeout_s * 1000;
	ssize_t n;
	int rc = 0;

	if (proc_spawn(&p, argv, dir, lim, 0, err, errlen) < 0)
		return BL_ERROR;
	pfd.fd = p.err_fd;
	pfd.events = POLLIN;
	for (;;) {
		if (clock_mono_ms() >= deadline) {
			snprintf(err, errlen, "'%s' ran past %lld s and was "
			    "killed", cmd, (long long)timeout_s);
			rc = BL_ETOOBIG;
			break;
		}
		if (cancel != NULL && *cancel) {
			snprintf(err, errlen, "'%s' was cancelled", cmd);
			rc = BL_ECONFLICT;
			break;
		}
		if (poll(&pfd, 1, 200) > 0) {
			n = read(p.err_fd, chunk, sizeof(chunk));
			if (n > 0) {
				tailbuf_add(log, chunk, (size_t)n);
				continue;
			}
			if (n == 0)	/* every writer closed: wait for exit */
				pfd.fd = -1;
		}
		if (pfd.fd < 0 && proc_poll(&p, NULL))
			break;
	}
	if (rc < 0)
		proc_kill(&p, 2000);
	else
		/* Descendants left behind by the command go with it. */
		kill(-p.pid, SIGKILL);
	*status = p.status;
	*seconds = clock_mono_s() - t0;
	proc_close_fds(&p);
	return rc;
}
