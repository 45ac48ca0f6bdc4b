/* Benchmark: the CPU cost of the collector's sampling thread. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "collector.h"

#define MAX_RUNS	15

/* One measured run of the collector. */
struct run {
	double	self_pct;	/* sampling thread, % of one core */
	double	us_per_tick;
	double	ratio;		/* sampling thread CPU / tree CPU */
	double	tree_pct;	/* the watched tree, % of one core */
	double	ticks;
};

static void
spin_forever(void)
{
	volatile unsigned long x = 0;

	for (;;)
		x++;
}

/*
 * Starts a tree of nprocs processes: a root that spins and nprocs - 1
 * children of it that sleep.  All die with this process.
 */
static pid_t
tree_start(int nprocs)
{
	pid_t root;
	int i;

	if ((root = fork()) < 0) {
		perror("fork");
		exit(1);
	}
	if (root > 0)
		return root;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (i = 1; i < nprocs; i++) {
		if (fork() == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
	}
	spin_forever();
	return 0;
}

static void *
idle_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Starts one sleeping process with nthreads threads. */
static pid_t
threads_start(int nthreads)
{
	pthread_t t;
	pid_t pid;
	int i;

	if ((pid = fork()) < 0) {
		perror("fork");
		exit(1);
	}
	if (pid > 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (i = 1; i < nthreads; i++)
		if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
			_exit(1);
	for (;;)
		pause();
	return 0;
}

/* Kills the root; its children follow through PR_SET_PDEATHSIG. */
static void
tree_stop(pid_t root)
{
	kill(root, SIGKILL);
	waitpid(root, NULL, 0);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int
measure(struct run *out, int nprocs, double hz, double seconds)
{
	struct collector_summary sum;
	struct collector *c;
	pid_t root;
	int rc;

	root = tree_start(nprocs);
	clock_sleep_ms(200);	/* let the children start */
	if ((rc = collector_start(&c, root, hz, 100000)) != 0) {
		fprintf(stderr, "collector_start: %d\n", rc);
		tree_stop(root);
		return -1;
	}
	clock_sleep_ms((int64_t)(seconds * 1000));
	collector_stop(c);
	collector_summary(&sum, c);
	collector_free(c);
	tree_stop(root);
	out->self_pct = sum.self_cpu_s / sum.duration_s * 100;
	out->us_per_tick = sum.self_cpu_s / (double)sum.ticks * 1e6;
	out->ratio = sum.self_cpu_s / sum.cpu_s;
	out->tree_pct = sum.cpu_mean_pct;
	out->ticks = (double)sum.ticks;
	return 0;
}

/* Median CPU microseconds of one procfs_walk_sample() in a mode. */
static double
walk_cost(pid_t root, int flags, int oneshot, int calls)
{
	struct procfs_tree_stat st;
	struct procfs_walk *w = NULL;
	struct timespec a, b;
	int64_t rss;
	int i;

	if (!oneshot && procfs_walk_new(&w, root, flags) != 0)
		return NAN;
	if (!oneshot)
		procfs_walk_sample(&st, w);	/* the first is a full one */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	for (i = 0; i < calls; i++) {
		if (oneshot)
			procfs_tree_rss(&rss, root);
		else
			procfs_walk_sample(&st, w);
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	procfs_walk_free(w);
	return ((double)(b.tv_sec - a.tv_sec) * 1e9 +
	    (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / calls;
}

static int
count_procs(void)
{
	char cmd[] = "ls /proc | grep -c '^[0-9]'";
	FILE *f = popen(cmd, "r");
	int n = -1;

	if (f != NULL) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

static void
usage(void)
{
	fprintf(stderr, "usage: overhead [-d seconds] [-r runs]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const int sizes[] = { 1, 10 };
	const double rates[] = { 10, 100 };
	const int threads[] = { 1, 4, 16, 64 };
	const struct {
		const char *name;
		int flags, oneshot;
	} modes[] = {
		{ "children files (default here)", 0, 0 },
		{ "scan /proc, new pids only", PROCFS_SCAN, 0 },
		{ "scan /proc, every stat (naive)", PROCFS_SCAN | PROCFS_FULL,
		    0 },
		{ "one-shot procfs_tree_rss()", 0, 1 },
	};
	double self[MAX_RUNS], us[MAX_RUNS], ratio[MAX_RUNS], tree[MAX_RUNS];
	double cost[MAX_RUNS], seconds = 5;
	struct run r;
	size_t si, ri, mi;
	int runs = 3, i, ch;
	pid_t root;

	while ((ch = getopt(argc, argv, "d:r:")) != -1) {
		switch (ch) {
		case 'd':
			seconds = atof(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (!(seconds > 0) || runs < 1 || runs > MAX_RUNS)
		usage();

	printf("collector overhead: busy root + idle children, %.0f s per "
	    "run, median of %d runs, %d processes in /proc, children files "
	    "%s\n", seconds, runs, count_procs(),
	    procfs_children_supported() ? "yes" : "no");
	printf("%-6s %6s %12s %10s %14s %10s\n", "procs", "hz", "sampler %",
	    "us/tick", "ratio to tree", "tree %");
	for (si = 0; si < BL_ARRAY_LEN(sizes); si++) {
		for (ri = 0; ri < BL_ARRAY_LEN(rates); ri++) {
			for (i = 0; i < runs; i++) {
				if (measure(&r, sizes[si], rates[ri],
				    seconds) < 0)
					return 1;
				self[i] = r.self_pct;
				us[i] = r.us_per_tick;
				ratio[i] = r.ratio;
				tree[i] = r.tree_pct;
			}
			printf("%-6d %6.0f %12.3f %10.1f %14.5f %10.1f\n",
			    sizes[si], rates[ri], median(self, runs),
			    median(us, runs), median(ratio, runs),
			    median(tree, runs));
			fflush(stdout);
		}
	}

	printf("\nCPU per tree sample (us), 10-process tree, median of %d x "
	    "2000 calls\n", runs);
	root = tree_start(10);
	clock_sleep_ms(200);
	for (mi = 0; mi < BL_ARRAY_LEN(modes); mi++) {
		if (modes[mi].flags == 0 && !modes[mi].oneshot &&
		    !procfs_children_supported())
			continue;
		for (i = 0; i < runs; i++)
			cost[i] = walk_cost(root, modes[mi].flags,
			    modes[mi].oneshot, 2000);
		printf("  %-34s %8.1f\n", modes[mi].name, median(cost, runs));
	}
	tree_stop(root);

	/*
	 * A child shows in the children file of the thread that forked it,
	 * so that walk reads one file per thread; the scan does not care.
	 */
	if (!procfs_children_supported())
		return 0;
	printf("\nCPU per tree sample (us), one process with n threads\n");
	printf("  %-8s %16s %16s\n", "threads", "children files",
	    "scan, new pids");
	for (si = 0; si < BL_ARRAY_LEN(threads); si++) {
		root = threads_start(threads[si]);
		clock_sleep_ms(200);
		for (i = 0; i < runs; i++)
			cost[i] = walk_cost(root, 0, 0, 2000);
		printf("  %-8d %16.1f", threads[si], median(cost, runs));
		for (i = 0; i < runs; i++)
			cost[i] = walk_cost(root, PROCFS_SCAN, 0, 2000);
		printf(" %16.1f\n", median(cost, runs));
		tree_stop(root);
	}
	return 0;
}
