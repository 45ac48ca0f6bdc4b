/* Unit tests for collector/collector.c against real processes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "clock.h"
#include "collector.h"
#include "kid.h"

static struct kid kid = { -1, -1, -1 };
static struct collector *coll;

static int
teardown(void **state)
{
	(void)state;
	collector_free(coll);
	coll = NULL;
	kid_kill(&kid);
	return 0;
}

static void
test_invalid(void **state)
{
	pid_t pid;

	(void)state;
	assert_int_equal(collector_start(&coll, getpid(), 0, 100), BL_EINVAL);
	assert_int_equal(collector_start(&coll, getpid(), 1001, 100),
	    BL_EINVAL);
	assert_int_equal(collector_start(&coll, getpid(), NAN, 100),
	    BL_EINVAL);
	assert_int_equal(collector_start(&coll, getpid(), 10, 1), BL_EINVAL);
	assert_int_equal(collector_start(&coll, 0, 10, 100), BL_EINVAL);
	assert_null(coll);
	pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	assert_int_equal(collector_start(&coll, pid, 10, 100), BL_ENOTFOUND);
	assert_null(coll);
}

/* While it runs there is no series or summary; stopping twice fails. */
static void
test_running_state(void **state)
{
	const struct collector_sample *s;
	struct collector_summary sum;

	(void)state;
	assert_int_equal(collector_start(&coll, getpid(), 50, 100), 0);
	assert_int_equal(collector_samples(coll, &s), 0);
	assert_null(s);
	assert_int_equal(collector_summary(&sum, coll), BL_ECONFLICT);
	kid_sleep(0.2);
	assert_int_equal(collector_stop(coll), 0);
	assert_int_equal(collector_stop(coll), -1);
	assert_true(collector_samples(coll, &s) >= 1);
	assert_int_equal(collector_summary(&sum, coll), 0);
	assert_false(sum.root_exited);
}

/* Mean of cpu_pct over the samples whose interval lies in [from, to]. */
static double
mean_cpu(const struct collector_sample *s, size_t n, double from, double to,
    int *count)
{
	double sum = 0, prev = 0;
	size_t i;

	*count = 0;
	for (i = 0; i < n; prev = s[i].t_s, i++) {
		if (prev < from || s[i].t_s > to || isnan(s[i].cpu_pct))
			continue;
		sum += s[i].cpu_pct;
		(*count)++;
	}
	return *count ? sum / *count : NAN;
}

/*
 * The whole life of an engine-like child: memory grows by 5 x 10 MiB, it
 * spins a core for a second, counts requests, exits.  The collector must
 * see the RSS rise, the CPU near what the kernel gave the child, and stop
 * by itself when the child goes.
 */
static void
test_lifecycle(void **state)
{
	const struct collector_sample *s;
	struct collector_summary sum;
	struct rusage ru;
	double t0, spin_from, spin_to, pct, mean, t_exit, t_reaped;
	int64_t prev_rss;
	size_t n, i;
	int count;

	(void)state;
	kid_start(&kid);
	t0 = clock_mono_s();
	assert_int_equal(collector_start(&coll, kid.pid, 20, 10000), 0);
	for (i = 0; i < 5; i++) {
		kid_sleep(0.1);
		kid_cmd(&kid, 'a');
		collector_mark(coll, 1, 100);
	}
	kid_sleep(0.1);
	spin_from = clock_mono_s() - t0;
	pct = kid_cmd(&kid, 's');
	spin_to = clock_mono_s() - t0;
	kid_sleep(0.1);
	t_exit = clock_mono_s() - t0;
	kid_quit(&kid, &ru);
	t_reaped = clock_mono_s() - t0;
	kid_sleep(0.3);
	assert_int_equal(collector_stop(coll), 0);
	assert_int_equal(collector_summary(&sum, coll), 0);
	n = collector_samples(coll, &s);

	/* Every tick is stored at this length; the last says "gone". */
	assert_int_equal(n, sum.ticks);
	assert_true(n >= 30);
	assert_true(sum.root_exited);
	assert_int_equal(s[n - 1].rss_bytes, -1);
	assert_int_equal(s[n - 1].nprocs, 0);
	assert_true(isnan(s[n - 1].cpu_pct));
	/* Seen gone between the request to exit and a few ticks after. */
	assert_true(s[n - 1].t_s > t_exit);
	assert_true(s[n - 1].t_s < t_reaped + 0.3);
	for (i = 0; i + 1 < n; i++) {
		assert_true(s[i].rss_bytes > 0);
		assert_int_equal(s[i].nprocs, 1);
		if (i > 0) {
			assert_true(s[i].t_s > s[i - 1].t_s);
			assert_true(s[i].requests >= s[i - 1].requests);
		}
	}
	assert_int_equal(s[n - 1].requests, 5);
	assert_int_equal(s[n - 1].tokens, 500);
	assert_int_equal(sum.requests, 5);
	assert_int_equal(sum.tokens, 500);

	/* RSS: rises in steps, never down, by 50 MiB in all. */
	print_message("rss start %.1f MiB, peak %.1f MiB, rise %.2f MiB\n",
	    (double)sum.rss_start_bytes / KID_MIB,
	    (double)sum.rss_peak_bytes / KID_MIB,
	    (double)(sum.rss_peak_bytes - sum.rss_start_bytes) / KID_MIB);
	assert_true(sum.rss_peak_bytes - sum.rss_start_bytes > 49 * KID_MIB);
	assert_true(sum.rss_peak_bytes - sum.rss_start_bytes < 53 * KID_MIB);
	/*
	 * No sample reads short.  Small dips are real: an allocator (also
	 * valgrind's, when the child runs under it) may give memory back.
	 */
	for (prev_rss = 0, i = 0; i + 1 < n; prev_rss = s[i].rss_bytes, i++)
		assert_true(s[i].rss_bytes >= prev_rss - 2 * KID_MIB);

	/* CPU: near what the child itself measured while it spun. */
	mean = mean_cpu(s, n, spin_from + 0.05, spin_to - 0.05, &count);
	print_message("spin: collector %.1f%% over %d samples, child saw "
	    "%.1f%%; run cpu %.3f s vs rusage %.3f s\n", mean, count, pct,
	    sum.cpu_s, kid_cpu_s(&ru));
	assert_true(count >= 10);
	assert_true(fabs(mean - pct) < 15);
	assert_true(fabs(sum.cpu_s - kid_cpu_s(&ru)) < 0.05);
	assert_true(sum.self_cpu_s > 0 && sum.self_cpu_s < sum.cpu_s);
}

/* A grandchild's memory is part of the tree. */
static void
test_grandchild(void **state)
{
	const struct collector_sample *s;
	struct collector_summary sum;
	double t0, t_fork;
	size_t n;

	(void)state;
	kid_start(&kid);
	t0 = clock_mono_s();
	assert_int_equal(collector_start(&coll, kid.pid, 50, 1000), 0);
	kid_sleep(0.3);
	t_fork = clock_mono_s() - t0;
	kid_cmd(&kid, 'g');
	kid_sleep(0.3);
	assert_int_equal(collector_stop(coll), 0);
	assert_int_equal(collector_summary(&sum, coll), 0);
	n = collector_samples(coll, &s);
	assert_true(n >= 2);
	/* A loaded machine may delay ticks: judge s[0] if it came first. */
	if (s[0].t_s < t_fork) {
		assert_int_equal(s[0].nprocs, 1);
		assert_true(s[n - 1].rss_bytes - s[0].rss_bytes > KID_GRAND);
	}
	assert_int_equal(s[n - 1].nprocs, 2);
	assert_true(sum.rss_peak_bytes - sum.rss_start_bytes > KID_GRAND);
	kid_quit(&kid, NULL);
}

/*
 * 200 Hz for 1.2 s into 17 slots (16 usable): the store stays bounded, in
 * time order, evenly spaced, and its time-weighted CPU matches the run's.
 */
static void
test_decimation(void **state)
{
	const struct collector_sample *s;
	struct collector_summary sum;
	double prev = 0, wsum = 0, wcpu, gap, worst = 0;
	size_t n, i;

	(void)state;
	kid_start(&kid);
	assert_int_equal(collector_start(&coll, kid.pid, 200, 17), 0);
	kid_cmd(&kid, 's');
	kid_sleep(0.2);
	assert_int_equal(collector_stop(coll), 0);
	assert_int_equal(collector_summary(&sum, coll), 0);
	n = collector_samples(coll, &s);
	print_message("%llu ticks (%llu late) stored as %zu samples every "
	    "%.3f s\n", (unsigned long long)sum.ticks,
	    (unsigned long long)sum.overruns, n, sum.sample_interval_s);
	assert_true(sum.ticks >= 150);
	assert_true(n >= 8 && n <= 16);
	assert_int_equal(sum.nsamples, n);
	assert_true(sum.sample_interval_s >= 8.0 / 200);
	for (i = 0; i < n; prev = s[i].t_s, i++) {
		assert_true(s[i].t_s > prev);
		gap = s[i].t_s - prev;
		if (fabs(gap / sum.sample_interval_s - 1) > worst)
			worst = fabs(gap / sum.sample_interval_s - 1);
		wsum += s[i].cpu_pct * gap;
	}
	wcpu = wsum / s[n - 1].t_s;
	print_message("worst spacing error %.0f%%; series cpu %.1f%%, "
	    "summary %.1f%%\n", worst * 100, wcpu, sum.cpu_mean_pct);
	if (sum.overruns == 0)
		assert_true(worst < 0.25);
	assert_true(s[n - 1].t_s <= sum.duration_s);
	assert_true(sum.duration_s - s[n - 1].t_s < sum.sample_interval_s);
	/* The series ends up to one stored interval before the run. */
	assert_true(fabs(wcpu - sum.cpu_mean_pct) <
	    100 * sum.sample_interval_s / sum.duration_s + 2);
	kid_quit(&kid, NULL);
}

/* Whether a file matching pattern holds a usable reading. */
static int
any_reading(const char *pattern, long long lo, long long hi)
{
	long long v;
	glob_t g;
	size_t i;
	int found = 0;

	if (glob(pattern, 0, NULL, &g) == 0)
		for (i = 0; i < g.gl_pathc && !found; i++)
			found = sysfs_read_int(&v, g.gl_pathv[i]) == 0 &&
			    v >= lo && v <= hi;
	globfree(&g);
	return found;
}

static int
on_path(const char *name)
{
	char path[4096], *dirs, *dir, *save = NULL;
	const char *env = getenv("PATH");
	int found = 0;

	if (env == NULL)
		return 0;
	dirs = strdup(env);
	for (dir = strtok_r(dirs, ":", &save); dir != NULL && !found;
	    dir = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		found = access(path, X_OK) == 0;
	}
	free(dirs);
	return found;
}

/*
 * Sensors: the collector must report what this machine has, no more.  The
 * expectations come from /sys itself rather than from assumptions.
 */
static void
test_sensors_match_sys(void **state)
{
	const struct collector_sample *s;
	struct collector_summary sum;
	int want_temp, want_rapl, want_throttle, want_gov, maybe_gpu;
	size_t n, i;

	(void)state;
	want_temp = any_reading("/sys/class/thermal/thermal_zone*/temp",
	    -60000, 250000) || any_reading(
	    "/sys/class/hwmon/hwmon*/temp*_input", -60000, 250000);
	want_rapl = any_reading("/sys/class/powercap/intel-rapl:*/energy_uj",
	    0, INT64_MAX);
	want_throttle = access("/sys/devices/system/cpu/cpu0/thermal_throttle",
	    F_OK) == 0;
	want_gov = access("/sys/devices/system/cpu/cpu0/cpufreq/"
	    "scaling_governor", R_OK) == 0;
	maybe_gpu = on_path("nvidia-smi");
	print_message("this machine: temperature %s, rapl %s, nvidia-smi %s, "
	    "throttle counters %s, governor %s\n", want_temp ? "yes" : "no",
	    want_rapl ? "yes" : "no", maybe_gpu ? "yes" : "no",
	    want_throttle ? "yes" : "no", want_gov ? "yes" : "no");

	assert_int_equal(collector_start(&coll, getpid(), 20, 100), 0);
	kid_sleep(0.5);
	assert_int_equal(collector_stop(coll), 0);
	assert_int_equal(collector_summary(&sum, coll), 0);
	n = collector_samples(coll, &s);
	assert_true(n >= 3);

	assert_int_equal(sum.has_temp, want_temp);
	if (!want_temp)
		assert_true(isnan(sum.temp_max_c));
	for (i = 0; i < n; i++)
		assert_int_equal(!isnan(s[i].temp_c), want_temp);
	if (!want_rapl && !maybe_gpu) {
		assert_false(sum.has_power);
		assert_int_equal(sum.power_sources, 0);
		assert_true(isnan(sum.energy_j));
		assert_true(isnan(sum.power_mean_w));
		for (i = 0; i < n; i++)
			assert_true(isnan(s[i].power_w));
	}
	if (want_rapl && !maybe_gpu)
		assert_int_equal(sum.has_power,
		    (sum.power_sources & POWER_SRC_RAPL) != 0);
	if (sum.has_power)
		assert_true(sum.energy_j >= 0 && sum.power_mean_w >= 0);
	assert_int_equal(sum.has_throttle, want_throttle);
	if (!want_throttle)
		assert_int_equal(sum.throttle_events, 0);
	assert_int_equal(sum.governor[0] != '\0', want_gov);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_invalid, teardown),
		cmocka_unit_test_teardown(test_running_state, teardown),
		cmocka_unit_test_teardown(test_lifecycle, teardown),
		cmocka_unit_test_teardown(test_grandchild, teardown),
		cmocka_unit_test_teardown(test_decimation, teardown),
		cmocka_unit_test_teardown(test_sensors_match_sys, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
