/* Test helper: a child process that allocates, spins and forks on command. */
#ifndef BL_TEST_KID_H
#define BL_TEST_KID_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

#define KID_MIB		(1024 * 1024)
#define KID_STEP	(10 * KID_MIB)	/* 'a' allocates this much */
#define KID_GRAND	(30 * KID_MIB)	/* a grandchild holds this much */

/*
 * A child that obeys one-byte commands on a pipe and answers each with a
 * double (command-specific, 0 when there is nothing to say):
 *   'a'  allocate and touch KID_STEP more bytes
 *   's'  spin for 1 s; answers the % of one core it got meanwhile
 *   'g'  fork a grandchild that touches KID_GRAND bytes and sleeps
 *   'k'  kill and reap that grandchild
 *   'c'  three times: fork a grandchild that spins 150 ms and exits, reap it
 *   'q'  exit (after a short idle pause, so its last CPU is sampled)
 * Children die with their parent (PR_SET_PDEATHSIG).
 */
struct kid {
	pid_t	 pid;
	int	 to;	/* commands */
	int	 from;	/* answers */
};

static inline double
kid_now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Maps len bytes and writes to every page, kept until exit on purpose.
 * Plain mmap rather than malloc, so that a sanitizer's allocator and
 * shadow memory do not add to the child's RSS.
 */
static inline void
kid_touch(size_t len)
{
	volatile char *p;
	long page = sysconf(_SC_PAGESIZE);
	size_t i;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(3);
	for (i = 0; i < len; i += (size_t)page)
		p[i] = 1;
}

/* Spins for wall seconds; returns the % of one core the process got. */
static inline double
kid_spin(double wall)
{
	volatile uint64_t x = 0;
	double t0 = kid_now(CLOCK_MONOTONIC);
	double c0 = kid_now(CLOCK_PROCESS_CPUTIME_ID);

	while (kid_now(CLOCK_MONOTONIC) - t0 < wall)
		x++;
	return (kid_now(CLOCK_PROCESS_CPUTIME_ID) - c0) /
	    (kid_now(CLOCK_MONOTONIC) - t0) * 100;
}

static inline void
kid_sleep(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Forks a grandchild that spins for wall seconds and exits. */
static inline pid_t
kid_fork_spin(double wall)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	kid_spin(wall);
	_exit(0);
}

/* The child's command loop. */
static inline void BL_NORETURN
kid_main(int in, int out)
{
	pid_t grand = -1, p;
	double ans;
	int ready[2], i;
	char cmd, b;

	while (read(in, &cmd, 1) == 1) {
		ans = 0;
		switch (cmd) {
		case 'a':
			kid_touch(KID_STEP);
			break;
		case 's':
			ans = kid_spin(1.0);
			break;
		case 'g':
			/* The grandchild says when its memory is touched. */
			if (pipe(ready) < 0)
				_exit(4);
			if ((grand = fork()) == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				kid_touch(KID_GRAND);
				b = 'r';
				if (write(ready[1], &b, 1) != 1)
					_exit(5);
				for (;;)
					pause();
			}
			if (read(ready[0], &b, 1) != 1)
				_exit(6);
			close(ready[0]);
			close(ready[1]);
			break;
		case 'k':
			if (grand > 0) {
				kill(grand, SIGKILL);
				waitpid(grand, NULL, 0);
				grand = -1;
			}
			break;
		case 'c':
			for (i = 0; i < 3; i++) {
				p = kid_fork_spin(0.15);
				waitpid(p, NULL, 0);
			}
			break;
		case 'q':
			if (grand > 0) {
				kill(grand, SIGKILL);
				waitpid(grand, NULL, 0);
			}
			kid_sleep(0.05);
			_exit(0);
		}
		if (write(out, &ans, sizeof(ans)) != sizeof(ans))
			_exit(2);
	}
	_exit(1);
}

static inline void
kid_start(struct kid *k)
{
	int to[2], from[2];

	if (pipe(to) < 0 || pipe(from) < 0)
		abort();
	if ((k->pid = fork()) < 0)
		abort();
	if (k->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(to[1]);
		close(from[0]);
		kid_main(to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	k->to = to[1];
	k->from = from[0];
}

/* Sends a command and waits for its answer. */
static inline double
kid_cmd(struct kid *k, char cmd)
{
	double ans = -1;

	if (write(k->to, &cmd, 1) != 1)
		return -1;
	if (cmd != 'q' && read(k->from, &ans, sizeof(ans)) != sizeof(ans))
		return -1;
	return ans;
}

/* Asks the child to exit and reaps it; ru gets its usage with children. */
static inline int
kid_quit(struct kid *k, struct rusage *ru)
{
	struct rusage dummy;
	int status = -1;

	if (k->pid <= 0)
		return -1;
	kid_cmd(k, 'q');
	wait4(k->pid, &status, 0, ru != NULL ? ru : &dummy);
	close(k->to);
	close(k->from);
	k->pid = -1;
	return status;
}

/* Kills the child if it is still there (teardown after a failure). */
static inline void
kid_kill(struct kid *k)
{
	if (k->pid <= 0)
		return;
	kill(k->pid, SIGKILL);
	waitpid(k->pid, NULL, 0);
	close(k->to);
	close(k->from);
	k->pid = -1;
}

static inline double
kid_cpu_s(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
	    (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
}

#endif
