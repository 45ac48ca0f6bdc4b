/* Unit tests for collector/thermal.c on fake sysfs trees and /sys. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glob.h>
#include <math.h>

#include "collector.h"
#include "sysfs_tree.h"

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

/* The hottest of the zones and hwmon inputs; broken readings left out. */
static void
test_max_over_sensors(void **state)
{
	struct thermal *t;
	double c;

	(void)state;
	tree_put(root, "class/thermal/thermal_zone0/temp", "45000\n");
	tree_put(root, "class/thermal/thermal_zone1/temp", "61500\n");
	tree_put(root, "class/thermal/thermal_zone2/temp", "garbage\n");
	tree_put(root, "class/thermal/cooling_device0/cur_state", "99000\n");
	tree_put(root, "class/hwmon/hwmon0/temp1_input", "30000\n");
	tree_put(root, "class/hwmon/hwmon0/temp2_input", "-273150\n");
	tree_put(root, "class/hwmon/hwmon1/temp1_input", "999000\n");
	tree_put(root, "class/hwmon/hwmon1/fan1_input", "120000\n");
	assert_int_equal(thermal_open(&t, root), 0);
	assert_int_equal(thermal_count(t), 6);
	assert_int_equal(thermal_read(&c, t), 0);
	assert_true(fabs(c - 61.5) < 1e-9);

	/* Sensors are re-read through the open files. */
	tree_put(root, "class/hwmon/hwmon0/temp1_input", "-5000\n");
	tree_put(root, "class/thermal/thermal_zone1/temp", "70250\n");
	assert_int_equal(thermal_read(&c, t), 0);
	assert_true(fabs(c - 70.25) < 1e-9);

	/* Nothing valid left: absent, not zero. */
	tree_put(root, "class/thermal/thermal_zone0/temp", "\n");
	tree_put(root, "class/thermal/thermal_zone1/temp", "N/A\n");
	tree_put(root, "class/hwmon/hwmon0/temp1_input", "300000\n");
	assert_int_equal(thermal_read(&c, t), BL_ENOTFOUND);
	assert_true(isnan(c));
	thermal_close(t);
}

static void
test_no_sensors(void **state)
{
	struct thermal *t;
	double c = 0;

	(void)state;
	assert_int_equal(thermal_open(&t, root), 0);
	assert_int_equal(thermal_count(t), 0);
	assert_int_equal(thermal_read(&c, t), BL_ENOTFOUND);
	assert_true(isnan(c));
	thermal_close(t);
	thermal_close(NULL);
}

/* Core counters add up; a package counter counts once per package. */
static void
test_throttle(void **state)
{
	int64_t n = -1;

	(void)state;
	assert_int_equal(thermal_throttle_count(&n, root), BL_ENOTFOUND);
	assert_int_equal(n, -1);
	tree_put(root, "devices/system/cpu/cpu0/thermal_throttle/"
	    "core_throttle_count", "3\n");
	tree_put(root, "devices/system/cpu/cpu0/thermal_throttle/"
	    "package_throttle_count", "5\n");
	tree_put(root, "devices/system/cpu/cpu0/topology/physical_package_id",
	    "0\n");
	tree_put(root, "devices/system/cpu/cpu1/thermal_throttle/"
	    "core_throttle_count", "4\n");
	tree_put(root, "devices/system/cpu/cpu1/thermal_throttle/"
	    "package_throttle_count", "5\n");
	tree_put(root, "devices/system/cpu/cpu1/topology/physical_package_id",
	    "0\n");
	tree_put(root, "devices/system/cpu/cpu12/thermal_throttle/"
	    "core_throttle_count", "1\n");
	tree_put(root, "devices/system/cpu/cpu12/thermal_throttle/"
	    "package_throttle_count", "2\n");
	tree_put(root, "devices/system/cpu/cpu12/topology/"
	    "physical_package_id", "1\n");
	tree_put(root, "devices/system/cpu/cpufreq/boost", "1\n");
	assert_int_equal(thermal_throttle_count(&n, root), 0);
	assert_int_equal(n, 3 + 4 + 1 + 5 + 2);
}

static void
test_governor(void **state)
{
	char gov[32] = "junk";

	(void)state;
	assert_int_equal(thermal_cpu_governor(gov, sizeof(gov), root),
	    BL_ENOTFOUND);
	assert_string_equal(gov, "");
	tree_put(root, "devices/system/cpu/cpu0/cpufreq/scaling_governor",
	    "schedutil\n");
	assert_int_equal(thermal_cpu_governor(gov, sizeof(gov), root), 0);
	assert_string_equal(gov, "schedutil");
	/* Too long for the caller's buffer: refused, not cut. */
	assert_int_equal(thermal_cpu_governor(gov, 5, root), BL_ENOTFOUND);
}

/* On the real /sys: as many sensors as readable files, and agreement. */
static void
test_real_sys(void **state)
{
	const char *pats[] = { "/sys/class/thermal/thermal_zone*/temp",
	    "/sys/class/hwmon/hwmon*/temp*_input" };
	size_t i, j, files = 0;
	struct thermal *t;
	int64_t n;
	glob_t g;
	double c;
	int rc;

	(void)state;
	for (i = 0; i < 2; i++) {
		if (glob(pats[i], 0, NULL, &g) == 0)
			for (j = 0; j < g.gl_pathc; j++)
				files += access(g.gl_pathv[j], R_OK) == 0;
		globfree(&g);
	}
	assert_int_equal(thermal_open(&t, "/sys"), 0);
	assert_int_equal(thermal_count(t), files);
	rc = thermal_read(&c, t);
	print_message("/sys: %zu temperature sensors, reading %s (%.1f C)\n",
	    files, rc == 0 ? "present" : "absent", c);
	if (files == 0)
		assert_int_equal(rc, BL_ENOTFOUND);
	assert_int_equal(rc == 0, !isnan(c));
	thermal_close(t);
	rc = thermal_throttle_count(&n, "/sys");
	assert_int_equal(rc == 0, access("/sys/devices/system/cpu/cpu0/"
	    "thermal_throttle", F_OK) == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_max_over_sensors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_sensors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_throttle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_governor, setup, teardown),
		cmocka_unit_test(test_real_sys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
