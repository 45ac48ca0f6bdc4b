/* Unit tests for collector/power.c: fake RAPL, fake nvidia-smi, /sys. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glob.h>
#include <math.h>
#include <sys/wait.h>

#include "collector.h"
#include "sysfs_tree.h"

#define MAX_PKG	"262143328850"
#define MAX_DRAM "65712999613"

static char *root;

static int
setup(void **state)
{
	(void)state;
	root = tree_new();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tree_remove(root);
	root = NULL;
	return 0;
}

static void
put_zone(const char *zone, const char *name, const char *uj,
    const char *max)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "class/powercap/%s/name", zone);
	tree_put(root, rel, name);
	snprintf(rel, sizeof(rel), "class/powercap/%s/energy_uj", zone);
	tree_put(root, rel, uj);
	if (max != NULL) {
		snprintf(rel, sizeof(rel),
		    "class/powercap/%s/max_energy_range_uj", zone);
		tree_put(root, rel, max);
	}
}

static void
set_uj(const char *zone, const char *uj)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "class/powercap/%s/energy_uj", zone);
	tree_put(root, rel, uj);
}

/* No child of this test process may be left behind, dead or alive. */
static void
assert_no_children(void)
{
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/*
 * Package and DRAM zones add up; core, uncore and psys would count twice
 * and are left out; the mmio copy of the package is not matched.
 */
static void
test_rapl(void **state)
{
	struct power_reading r;
	struct power *p;

	(void)state;
	put_zone("intel-rapl:0", "package-0\n", "1000000\n", MAX_PKG "\n");
	put_zone("intel-rapl:0:0", "core\n", "700\n", MAX_PKG "\n");
	put_zone("intel-rapl:0:1", "uncore\n", "700\n", MAX_PKG "\n");
	put_zone("intel-rapl:0:2", "dram\n", "500000\n", MAX_DRAM "\n");
	put_zone("intel-rapl:1", "psys\n", "9000000\n", MAX_PKG "\n");
	put_zone("intel-rapl-mmio:0", "package-0\n", "5\n", MAX_PKG "\n");
	assert_int_equal(power_open(&p, root, NULL, 0.1), 0);
	assert_int_equal(power_sources(p), POWER_SRC_RAPL);

	/* The first reading only takes the starting counts. */
	assert_int_equal(power_read(&r, p, 100.0), BL_ENOTFOUND);
	assert_true(isnan(r.w) && isnan(r.j));

	set_uj("intel-rapl:0", "3000000\n");		/* +2 J */
	set_uj("intel-rapl:0:2", "1500000\n");		/* +1 J */
	set_uj("intel-rapl:0:0", "99999999\n");		/* ignored */
	set_uj("intel-rapl:1", "99999999\n");		/* ignored */
	assert_int_equal(power_read(&r, p, 100.5), 0);
	assert_int_equal(r.sources, POWER_SRC_RAPL);
	assert_true(fabs(r.j - 3.0) < 1e-9);
	assert_true(fabs(r.w - 6.0) < 1e-9);

	/* The package counter wraps: the range gives the difference. */
	set_uj("intel-rapl:0", "500000\n");
	assert_int_equal(power_read(&r, p, 101.5), 0);
	assert_true(fabs(r.j - (262143328850.0 - 3000000 + 500000) / 1e6) <
	    1e-6);
	power_close(p);
	power_close(NULL);
}

/* A counter going down with no known range gives no reading, not junk. */
static void
test_rapl_no_range(void **state)
{
	struct power_reading r;
	struct power *p;

	(void)state;
	put_zone("intel-rapl:0", "package-0\n", "1000000\n", NULL);
	assert_int_equal(power_open(&p, root, NULL, 0.1), 0);
	assert_int_equal(power_read(&r, p, 1.0), BL_ENOTFOUND);
	set_uj("intel-rapl:0", "2000000\n");
	assert_int_equal(power_read(&r, p, 2.0), 0);
	assert_true(fabs(r.w - 1.0) < 1e-9);
	set_uj("intel-rapl:0", "10\n");
	assert_int_equal(power_read(&r, p, 3.0), BL_ENOTFOUND);
	assert_true(isnan(r.w));
	set_uj("intel-rapl:0", "4000010\n");
	assert_int_equal(power_read(&r, p, 4.0), 0);
	assert_true(fabs(r.w - 4.0) < 1e-9);
	power_close(p);
}

/*
 * One unreadable package makes RAPL absent: a partial sum would lie.  A
 * counter that opens but fails to read (here a directory) works as root;
 * one that cannot be opened (mode 0, as for users since Linux 5.10) needs
 * a user whom file modes apply to.
 */
static void
test_rapl_unreadable(void **state)
{
	char path[PATH_MAX];
	struct power *p;

	(void)state;
	put_zone("intel-rapl:0", "package-0\n", "1000000\n", MAX_PKG "\n");
	tree_put(root, "class/powercap/intel-rapl:1/name", "package-1\n");
	snprintf(path, sizeof(path), "%s/class/powercap/intel-rapl:1/"
	    "energy_uj", root);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(power_open(&p, root, NULL, 0.1), 0);
	assert_int_equal(power_sources(p), 0);
	power_close(p);

	if (geteuid() == 0) {
		print_message("running as root: mode 0 is not tested\n");
		return;
	}
	assert_int_equal(rmdir(path), 0);
	tree_put(root, "class/powercap/intel-rapl:1/energy_uj", "1000000\n");
	assert_int_equal(chmod(path, 0), 0);
	assert_int_equal(power_open(&p, root, NULL, 0.1), 0);
	assert_int_equal(power_sources(p), 0);
	power_close(p);
}

/* Writes an executable script at <root>/<name>; returns its path. */
static char *
put_script(const char *name, const char *body)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	tree_put(root, name, body);
	assert_int_equal(chmod(path, 0755), 0);
	return strdup(path);
}

/*
 * A fake nvidia-smi: GPU power is the sum over GPUs of the latest
 * power.draw, "[N/A]" means no reading, and closing reaps the child.
 */
static void
test_nvidia(void **state)
{
	struct power_reading r;
	struct power *p;
	char *smi;
	int i;

	(void)state;
	smi = put_script("nvidia-smi", "#!/bin/sh\n"
	    "while :; do echo '0, 50.00'; echo '1, [N/A]'; "
	    "echo '2, 25.50'; sleep 0.05; done\n");
	assert_int_equal(power_open(&p, root, smi, 0.1), 0);
	assert_int_equal(power_sources(p), POWER_SRC_NVIDIA);
	assert_int_equal(power_read(&r, p, 10.0), BL_ENOTFOUND);
	for (i = 0; i < 100; i++) {
		usleep(20000);
		if (power_read(&r, p, 10.0 + (i + 1) * 0.02) == 0)
			break;
	}
	assert_true(i < 100);
	assert_int_equal(r.sources, POWER_SRC_NVIDIA);
	assert_true(fabs(r.w - 75.5) < 1e-9);
	assert_true(fabs(r.j - 75.5 * 0.02) < 1e-9);
	power_close(p);
	assert_no_children();
	free(smi);
}

/* nvidia-smi found on PATH, with RAPL beside it: the two add up. */
static void
test_nvidia_on_path_with_rapl(void **state)
{
	struct power_reading r;
	struct power *p;
	char *oldpath, newpath[8192], *smi;
	double t = 0;
	int i;

	(void)state;
	smi = put_script("nvidia-smi", "#!/bin/sh\n"
	    "while :; do echo '0, 100'; sleep 0.05; done\n");
	put_zone("intel-rapl:0", "package-0\n", "0\n", MAX_PKG "\n");
	oldpath = strdup(getenv("PATH"));
	snprintf(newpath, sizeof(newpath), "%s:%s", root, oldpath);
	setenv("PATH", newpath, 1);
	assert_int_equal(power_open(&p, root, "nvidia-smi", 0.1), 0);
	setenv("PATH", oldpath, 1);
	assert_int_equal(power_sources(p), POWER_SRC_RAPL | POWER_SRC_NVIDIA);
	assert_int_equal(power_read(&r, p, t), BL_ENOTFOUND);
	for (i = 0; i < 100; i++) {
		usleep(20000);
		t += 0.02;
		if (power_read(&r, p, t) == 0 &&
		    (r.sources & POWER_SRC_NVIDIA))
			break;
	}
	assert_true(i < 100);
	set_uj("intel-rapl:0", "1000000\n");	/* 1 J in the next 1 s */
	assert_int_equal(power_read(&r, p, t + 1.0), 0);
	assert_int_equal(r.sources, POWER_SRC_RAPL | POWER_SRC_NVIDIA);
	assert_true(fabs(r.w - 101.0) < 1e-9);
	power_close(p);
	assert_no_children();
	free(oldpath);
	free(smi);
}

/* An nvidia-smi that fails (no driver) or is missing gives no power. */
static void
test_nvidia_broken(void **state)
{
	struct power_reading r;
	struct power *p;
	char *smi;
	int i;

	(void)state;
	smi = put_script("nvidia-smi", "#!/bin/sh\n"
	    "echo 'NVIDIA-SMI has failed because it could not communicate "
	    "with the NVIDIA driver.'\nexit 9\n");
	assert_int_equal(power_open(&p, root, smi, 0.1), 0);
	power_read(&r, p, 0.0);
	for (i = 1; i <= 20; i++) {
		usleep(10000);
		assert_int_equal(power_read(&r, p, i * 0.01), BL_ENOTFOUND);
		assert_true(isnan(r.w));
	}
	power_close(p);
	assert_no_children();
	free(smi);

	assert_int_equal(power_open(&p, root, "/nonexistent/nvidia-smi", 0.1),
	    0);
	assert_int_equal(power_sources(p), 0);
	assert_int_equal(power_read(&r, p, 1.0), BL_ENOTFOUND);
	assert_int_equal(power_read(&r, p, 2.0), BL_ENOTFOUND);
	power_close(p);
}

/* On the real /sys: RAPL is there exactly when its counters can be read. */
static void
test_real_sys(void **state)
{
	struct power_reading r;
	struct power *p;
	long long v;
	size_t i;
	glob_t g;
	int readable = 0;

	(void)state;
	if (glob("/sys/class/powercap/intel-rapl:*/energy_uj", 0, NULL,
	    &g) == 0)
		for (i = 0; i < g.gl_pathc; i++)
			readable |= sysfs_read_int(&v, g.gl_pathv[i]) == 0;
	globfree(&g);
	assert_int_equal(power_open(&p, "/sys", NULL, 0.1), 0);
	print_message("/sys: rapl %s\n", power_sources(p) ? "present" :
	    "absent");
	assert_int_equal(power_sources(p) != 0, readable);
	power_read(&r, p, 1.0);
	usleep(100000);
	assert_int_equal(power_read(&r, p, 1.1) == 0, readable);
	power_close(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rapl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rapl_no_range, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rapl_unreadable, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_nvidia, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nvidia_on_path_with_rapl,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_nvidia_broken, setup,
		    teardown),
		cmocka_unit_test(test_real_sys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
