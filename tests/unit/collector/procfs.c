/* Unit tests for collector/procfs.c against real processes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <sys/select.h>
#include <unistd.h>

#include "collector.h"
#include "kid.h"

static struct kid kid = { -1, -1, -1 };
static struct procfs_walk *w;

static int
teardown(void **state)
{
	(void)state;
	procfs_walk_free(w);
	w = NULL;
	kid_kill(&kid);
	return 0;
}

static struct procfs_tree_stat
sample_ok(struct procfs_walk *walk)
{
	struct procfs_tree_stat st;

	assert_int_equal(procfs_walk_sample(&st, walk), 0);
	return st;
}

/* The tree of a childless process is itself: compare with statm. */
static void
test_self(void **state)
{
	long long size, resident;
	int64_t rss;
	double cpu;
	FILE *f;

	(void)state;
	assert_int_equal(procfs_tree_rss(&rss, getpid()), 0);
	f = fopen("/proc/self/statm", "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lld %lld", &size, &resident), 2);
	fclose(f);
	resident *= sysconf(_SC_PAGESIZE);
	assert_true(rss > 0);
	assert_true(llabs(rss - resident) < 1024 * 1024);
	assert_int_equal(procfs_tree_cpu(&cpu, getpid()), 0);
	assert_true(cpu >= 0 && cpu < 60);
}

static void
test_missing(void **state)
{
	pid_t pid;
	int64_t rss;
	double cpu;

	(void)state;
	pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	assert_int_equal(procfs_tree_rss(&rss, pid), BL_ENOTFOUND);
	assert_int_equal(procfs_tree_cpu(&cpu, pid), BL_ENOTFOUND);
	assert_int_equal(procfs_tree_rss(&rss, 0), BL_EINVAL);
	assert_int_equal(procfs_tree_rss(&rss, -5), BL_EINVAL);
}

/* Each 10 MiB the child touches shows in the tree's RSS. */
static void
test_rss_steps(void **state)
{
	struct procfs_tree_stat st0, st, prev;
	int i;

	(void)state;
	kid_start(&kid);
	/*
	 * A forked child faults in the code it runs the first time (fork
	 * does not copy page tables of file mappings): a warm-up step keeps
	 * that out of the steps measured.
	 */
	kid_cmd(&kid, 'a');
	assert_int_equal(procfs_walk_new(&w, kid.pid, 0), 0);
	st0 = prev = sample_ok(w);
	assert_int_equal(st0.nprocs, 1);
	for (i = 0; i < 5; i++) {
		kid_cmd(&kid, 'a');
		st = sample_ok(w);
		assert_true(st.rss_bytes - prev.rss_bytes > 9 * KID_MIB);
		assert_true(st.rss_bytes - prev.rss_bytes < 11 * KID_MIB);
		prev = st;
	}
	print_message("rss rise after 5 x 10 MiB: %.2f MiB\n",
	    (double)(st.rss_bytes - st0.rss_bytes) / KID_MIB);
	assert_true(st.rss_bytes - st0.rss_bytes > 49 * KID_MIB);
	assert_true(st.rss_bytes - st0.rss_bytes < 53 * KID_MIB);
	procfs_walk_free(w);
	w = NULL;
	kid_quit(&kid, NULL);
}

/*
 * A grandchild forked after the walk began is found at the next sample,
 * its memory counts, and it leaves the tree when it dies.  Runs in both
 * discovery modes that this kernel offers.
 */
static void
grandchild(int flags)
{
	struct procfs_tree_stat st0, st1, st2;

	kid_start(&kid);
	assert_int_equal(procfs_walk_new(&w, kid.pid, flags), 0);
	st0 = sample_ok(w);
	assert_int_equal(st0.nprocs, 1);
	kid_cmd(&kid, 'g');
	st1 = sample_ok(w);
	assert_int_equal(st1.nprocs, 2);
	assert_true(st1.rss_bytes - st0.rss_bytes > KID_GRAND);
	kid_cmd(&kid, 'k');
	st2 = sample_ok(w);
	assert_int_equal(st2.nprocs, 1);
	assert_true(st1.rss_bytes - st2.rss_bytes > KID_GRAND);
	procfs_walk_free(w);
	w = NULL;
	kid_quit(&kid, NULL);
}

static void
test_grandchild_scan(void **state)
{
	(void)state;
	grandchild(PROCFS_SCAN);
}

static void
test_grandchild_scan_full(void **state)
{
	(void)state;
	grandchild(PROCFS_SCAN | PROCFS_FULL);
}

static void
test_grandchild_children(void **state)
{
	(void)state;
	if (!procfs_children_supported()) {
		print_message("no /proc/<pid>/task/<tid>/children here\n");
		skip();
	}
	grandchild(0);
}

/* The three ways of finding the tree find the same tree. */
static void
test_modes_agree(void **state)
{
	int flags[] = { PROCFS_SCAN, PROCFS_SCAN | PROCFS_FULL, 0 };
	struct procfs_tree_stat st[3];
	size_t i;

	(void)state;
	kid_start(&kid);
	kid_cmd(&kid, 'g');
	for (i = 0; i < 3; i++) {
		assert_int_equal(procfs_walk_new(&w, kid.pid, flags[i]), 0);
		st[i] = sample_ok(w);
		procfs_walk_free(w);
		w = NULL;
		assert_int_equal(st[i].nprocs, 2);
		assert_true(llabs(st[i].rss_bytes - st[0].rss_bytes) <
		    256 * 1024);
	}
	kid_quit(&kid, NULL);
}

/* CPU seconds while the child spins match what the kernel bills it. */
static void
test_cpu_spin(void **state)
{
	struct procfs_tree_stat st;
	struct rusage ru;
	double pct;

	(void)state;
	kid_start(&kid);
	assert_int_equal(procfs_walk_new(&w, kid.pid, 0), 0);
	sample_ok(w);
	pct = kid_cmd(&kid, 's');
	st = sample_ok(w);
	procfs_walk_free(w);
	w = NULL;
	kid_quit(&kid, &ru);
	print_message("spin: walk %.3f s, rusage %.3f s, child saw %.0f%%\n",
	    st.cpu_s, kid_cpu_s(&ru), pct);
	/* Against the kernel's bill, and the child's own clock. */
	assert_true(fabs(st.cpu_s - kid_cpu_s(&ru)) <= 0.03);
	assert_true(fabs(st.cpu_s - pct / 100) <= 0.05);
}

/*
 * Short-lived grandchildren that the child reaps move their time into the
 * child's cutime; sampled often, they must not be counted twice.
 */
static void
test_cpu_reaped(void **state)
{
	struct procfs_tree_stat st;
	struct rusage ru;
	char cmd = 'c';
	double ans;
	int n = 0;

	(void)state;
	kid_start(&kid);
	assert_int_equal(procfs_walk_new(&w, kid.pid, 0), 0);
	sample_ok(w);
	assert_int_equal(write(kid.to, &cmd, 1), 1);
	for (;;) {
		struct timeval tv = { 0, 10000 };
		fd_set rd;

		FD_ZERO(&rd);
		FD_SET(kid.from, &rd);
		if (select(kid.from + 1, &rd, NULL, NULL, &tv) > 0)
			break;
		st = sample_ok(w);
		n++;
	}
	assert_int_equal(read(kid.from, &ans, sizeof(ans)), sizeof(ans));
	st = sample_ok(w);
	procfs_walk_free(w);
	w = NULL;
	kid_quit(&kid, &ru);
	print_message("reaped children: %d samples, walk %.3f s, rusage "
	    "%.3f s\n", n, st.cpu_s, kid_cpu_s(&ru));
	assert_true(n > 10);
	assert_true(fabs(st.cpu_s - kid_cpu_s(&ru)) <= 0.05);
}

/* An exited root, zombie or reaped, ends the walk. */
static void
test_root_exit(void **state)
{
	struct procfs_tree_stat st;
	char cmd = 'q';
	int i;

	(void)state;
	kid_start(&kid);
	assert_int_equal(procfs_walk_new(&w, kid.pid, 0), 0);
	sample_ok(w);
	assert_int_equal(write(kid.to, &cmd, 1), 1);
	/*
	 * Polled fast through the exit: while exiting it has no memory and
	 * must already count as gone, never as alive with an RSS of 0.  Not
	 * reaped yet, it then stays a zombie.
	 */
	for (i = 0; i < 100000; i++) {
		if (procfs_walk_sample(&st, w) == BL_ENOTFOUND)
			break;
		assert_true(st.rss_bytes > 0);
		assert_int_equal(st.nprocs, 1);
	}
	assert_true(i < 100000);
	assert_int_equal(procfs_walk_sample(&st, w), BL_ENOTFOUND);
	kid_kill(&kid);
	assert_int_equal(procfs_walk_sample(&st, w), BL_ENOTFOUND);
	procfs_walk_free(w);
	w = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_missing),
		cmocka_unit_test_teardown(test_rss_steps, teardown),
		cmocka_unit_test_teardown(test_grandchild_scan, teardown),
		cmocka_unit_test_teardown(test_grandchild_scan_full, teardown),
		cmocka_unit_test_teardown(test_grandchild_children, teardown),
		cmocka_unit_test_teardown(test_modes_agree, teardown),
		cmocka_unit_test_teardown(test_cpu_spin, teardown),
		cmocka_unit_test_teardown(test_cpu_reaped, teardown),
		cmocka_unit_test_teardown(test_root_exit, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
