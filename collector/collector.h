/* The collector: samples an engine's process tree and the sensors. */
#ifndef BL_COLLECTOR_H
#define BL_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/*
 * Units everywhere in this header: bytes, seconds, percent of one core,
 * degrees Celsius, watts and joules.  A sensor the machine does not have,
 * or cannot be read by this user, is reported absent: a has_ flag of 0 and
 * NaN in the value.  Nothing is ever estimated or made up.
 */

/* collector.c */

/*
 * A running sampler.  Opaque; created by collector_start(), freed by
 * collector_free().
 */
struct collector;

/*
 * One point of the stored series.  It describes the interval that ends at
 * t_s and begins at the previous sample's t_s (0 for the first sample):
 * the intervals of the series are contiguous, also after decimation.
 * Rates (cpu_pct, power_w) are means over that interval; the other values
 * are what was read at t_s.
 *
 * CPU time comes in clock ticks of 10 ms, so at high rates a single
 * sample's cpu_pct is coarse (at 100 Hz, 0 or 100 for one busy thread)
 * while means over several samples are right.  Temperature sensors are
 * read at most 10 times a second (some hwmon drivers are slow to read);
 * samples in between repeat the last reading.
 */
struct collector_sample {
	double	 t_s;		/* seconds since collector_start() */
	int64_t	 rss_bytes;	/* RSS summed over the tree; -1: root gone */
	double	 cpu_pct;	/* tree CPU over the interval, % of one
				   core (200 = two busy cores); NaN once
				   the root is gone */
	double	 temp_c;	/* hottest sensor; NaN when absent */
	double	 power_w;	/* mean power over the interval; NaN when
				   absent */
	int32_t	 nprocs;	/* processes in the tree; 0: root gone */
	uint64_t requests;	/* collector_mark() totals at t_s */
	uint64_t tokens;
};

/* Bits of collector_summary.power_sources. */
#define POWER_SRC_RAPL		0x1	/* /sys/class/powercap intel-rapl */
#define POWER_SRC_NVIDIA	0x2	/* nvidia-smi power.draw */

/*
 * Figures over a whole run, valid after collector_stop().  rss_peak_bytes
 * and temp_max_c are taken over every tick, not only the stored samples.
 */
struct collector_summary {
	double	 duration_s;	/* t_s of the last tick */
	uint64_t ticks;		/* samples taken */
	uint64_t overruns;	/* ticks skipped because one ran late */
	size_t	 nsamples;	/* samples stored */
	double	 sample_interval_s;	/* spacing of the stored series */
	int	 root_exited;	/* the root went away while sampling */

	int64_t	 rss_start_bytes;	/* at collector_start() */
	int64_t	 rss_peak_bytes;
	int64_t	 rss_end_bytes;	/* last reading with the root alive */
	double	 cpu_s;		/* tree CPU seconds during the run */
	double	 cpu_mean_pct;	/* cpu_s / duration_s, % of one core */

	int	 has_temp;
	double	 temp_max_c;	/* NaN when !has_temp */

	int	 has_power;
	unsigned power_sources;	/* POWER_SRC_ bits that gave readings */
	double	 energy_j;	/* integrated energy; NaN when !has_power */
	double	 power_mean_w;	/* energy_j over the time it covers;
				   NaN when !has_power */

	int	 has_throttle;
	int64_t	 throttle_events;	/* throttle count increase from start
					   to stop; 0 when !has_throttle */
	char	 governor[32];	/* cpu0 scaling governor at the start;
				   "" when absent */

	uint64_t requests;	/* collector_mark() totals */
	uint64_t tokens;

	double	 self_cpu_s;	/* CPU time of the sampling thread */
};

/*
 * Starts sampling the tree rooted at root (root and every descendant, found
 * again at each tick) at hz samples a second, 1 <= hz <= 1000, in a thread
 * of its own.  The first sample is taken one period after the start.
 *
 * At most max_samples (rounded down to an even number, at least 2) are
 * stored.  When the store is full, neighbouring pairs are merged into one
 * and from then on one tick in two is stored, so any run length keeps an
 * evenly spaced series of bounded size.  The sampling rate itself does not
 * change: peaks and energy are still taken at every tick.
 *
 * While it runs the collector holds the stat files of up to 256 of the
 * tree's processes and the sensor files open.  When nvidia-smi is on PATH
 * a long-lived "nvidia-smi -lms" child is started for power readings;
 * collector_stop() ends and reaps it.  A caller that reaps with
 * waitpid(-1) may collect it first: the collector signals it through a
 * pidfd (Linux 5.3 and later), so its pid being reused is harmless.
 *
 * collector_mark() may be called from any thread; the other functions
 * from the thread that owns the collector.
 *
 * Returns 0 and the collector in *out (caller frees with collector_free()),
 * BL_EINVAL for a bad root, hz or max_samples, BL_ENOTFOUND when root does
 * not exist or is exiting or a zombie, or -1.
 */
int	 collector_start(struct collector **out, pid_t root, double hz,
	    size_t max_samples);

/*
 * Adds to the request and token counters recorded in every later sample,
 * so throughput and energy per token can be lined up with the series.
 * Safe to call from any thread while the collector runs.
 */
void	 collector_mark(struct collector *c, uint64_t requests,
	    uint64_t tokens);

/*
 * Stops sampling, joins the thread and closes the files and nvidia-smi;
 * sampling has already stopped by itself when the root went away.
 * Returns 0, or -1 when it was already stopped.
 */
int	 collector_stop(struct collector *c);

/*
 * The stored series in time order, in *out.  Borrowed: valid after
 * collector_stop() until collector_free().  Returns the number of samples;
 * 0 (and NULL) while the collector still runs.
 */
size_t	 collector_samples(const struct collector *c,
	    const struct collector_sample **out);

/*
 * Fills *out with the run's summary.  Returns 0, or BL_ECONFLICT while the
 * collector still runs.
 */
int	 collector_summary(struct collector_summary *out,
	    const struct collector *c);

/* Stops the collector if it runs and frees it.  NULL is allowed. */
void	 collector_free(struct collector *c);

/* procfs.c */

/*
 * A walk over a process tree that keeps what it learnt between samples:
 * the open stat files of the tree's processes and, when it has to scan
 * /proc, the parent of every process seen, so that only new processes are
 * read.  Not thread-safe: one thread uses a walk at a time.
 *
 * Descendants are found through /proc/<pid>/task/<tid>/children where the
 * kernel has it (CONFIG_PROC_CHILDREN) and by scanning /proc otherwise.
 * Processes that were in the tree and have not been found again are read
 * once more, so a child missed by the children files is not lost.  A walk
 * keeps up to 256 stat files open.
 *
 * Cost of a sample on a 2-vCPU VM (bench/collector): about 1.3 us per
 * thread of the tree with children files, and about 0.3 us per process in
 * /proc when scanning, plus 1 us or so per process of the tree.
 */
struct procfs_walk;

#define PROCFS_SCAN	0x1	/* scan /proc even where children files
				   exist */
#define PROCFS_FULL	0x2	/* scan mode: re-read the stat of every
				   process at each sample (the slow way,
				   for comparison) */

/* What one sample of a walk found. */
struct procfs_tree_stat {
	int64_t	 rss_bytes;	/* summed over the tree */
	double	 cpu_s;		/* see procfs_walk_sample() */
	int	 nprocs;	/* processes in the tree */
};

/*
 * Creates a walk of the tree rooted at root.  flags is 0 or PROCFS_ bits.
 * Returns 0 and the walk in *out (caller frees with procfs_walk_free()),
 * BL_EINVAL when root is not positive, or -1 when /proc cannot be opened.
 */
int	 procfs_walk_new(struct procfs_walk **out, pid_t root, int flags);

/*
 * Samples the tree.  The RSS is the sum of each process' resident set, so
 * pages shared between processes are counted once per process.
 *
 * cpu_s counts CPU seconds (user + system, every thread) of the tree: at
 * the first sample, those of its live processes plus the children they have
 * reaped (cutime, cstime); afterwards it grows by what the tree used since
 * the last sample.  It never decreases.  A process that exits and is reaped
 * by a process of the tree is counted to its end; one reaped elsewhere
 * loses at most its last interval.  Resolution is one clock tick (10 ms).
 *
 * Returns 0, BL_ENOTFOUND once the root has exited or is exiting (a
 * zombie counts as exited), or -1.  A root whose main thread has exited
 * while other threads run shows as a zombie and is taken as exited.
 */
int	 procfs_walk_sample(struct procfs_tree_stat *out,
	    struct procfs_walk *w);

/* Closes the walk's files and frees it.  NULL is allowed. */
void	 procfs_walk_free(struct procfs_walk *w);

/* Whether the running kernel has /proc/<pid>/task/<tid>/children. */
int	 procfs_children_supported(void);

/*
 * One-shot helpers: the tree's RSS in bytes, and its CPU seconds as counted
 * by the first sample of a walk.  Each call walks the tree anew, reading
 * every process of /proc where there are no children files: use a walk to
 * sample often.  Return 0, BL_ENOTFOUND when root does not exist or is
 * exiting or a zombie, BL_EINVAL when root is not positive, or -1.
 */
int	 procfs_tree_rss(int64_t *out, pid_t root);
int	 procfs_tree_cpu(double *out_seconds, pid_t root);

/* thermal.c */

/*
 * The machine's temperature sensors, opened once:
 * <sysfs>/class/thermal/thermal_zone<N>/temp and
 * <sysfs>/class/hwmon/hwmon<N>/temp<M>_input, in millidegrees.  sysfs is
 * "/sys" except in tests.
 */
struct thermal;

/*
 * Finds and opens the sensors; having none is not an error.  Returns 0 and
 * the set in *out (caller frees with thermal_close()).
 */
int	 thermal_open(struct thermal **out, const char *sysfs);

/* The number of sensors found. */
size_t	 thermal_count(const struct thermal *t);

/*
 * Reads every sensor and puts the highest reading in *out, in degrees
 * Celsius.  Sensors that fail to read, or read outside -60..250 degrees,
 * are left out.  Returns 0, or BL_ENOTFOUND with NaN in *out when no
 * sensor gave a reading.
 */
int	 thermal_read(double *out, struct thermal *t);

/* Closes the sensors and frees the set.  NULL is allowed. */
void	 thermal_close(struct thermal *t);

/*
 * The number of thermal throttle events so far: the sum of every CPU's
 * thermal_throttle/core_throttle_count plus each package's
 * package_throttle_count, counted once per package.  Returns 0, or
 * BL_ENOTFOUND when the kernel has no such counters.
 */
int	 thermal_throttle_count(int64_t *out, const char *sysfs);

/*
 * Copies cpu0's cpufreq scaling governor ("performance", "powersave"...)
 * into out, of size len.  Returns 0, or BL_ENOTFOUND with "" in out when
 * there is no cpufreq.
 */
int	 thermal_cpu_governor(char *out, size_t len, const char *sysfs);

/* power.c */

/*
 * Power meters: RAPL energy counters under <sysfs>/class/powercap (the
 * package-* and dram zones, whose sum is the CPU packages' and memory's
 * energy; core, uncore and psys overlap them and are left out), and
 * nvidia-smi's power.draw summed over the GPUs.  Reading energy_uj needs
 * root on Linux 5.10 and later: unreadable counters are absent.
 */
struct power;

/* One interval of power_read(). */
struct power_reading {
	double	 w;		/* mean power over the interval */
	double	 j;		/* energy over the interval */
	unsigned sources;	/* POWER_SRC_ bits that contributed */
};

/*
 * Opens the RAPL zones under sysfs and, when nvsmi is not NULL, starts
 * "<nvsmi> --query-gpu=index,power.draw ... -lms <period>" (nvsmi is
 * looked up on PATH unless it holds a '/').  period_s is clamped to
 * 0.1..1 s.  Having no meter is not an error.  Returns 0 and the meters
 * in *out (caller frees with power_close()).
 */
int	 power_open(struct power **out, const char *sysfs, const char *nvsmi,
	    double period_s);

/* The POWER_SRC_ bits of the meters that were opened or started. */
unsigned power_sources(const struct power *p);

/*
 * Reads the meters and reports the interval since the previous call; now_s
 * is the monotonic time of the reading.  RAPL energy is the counters'
 * difference, wrap-around included (max_energy_range_uj); nvidia-smi's
 * energy is its latest power.draw times the interval.  The first call only
 * takes the starting counts.  Returns 0, or BL_ENOTFOUND with NaN values
 * when no meter gave a reading for the interval.
 */
int	 power_read(struct power_reading *out, struct power *p, double now_s);

/* Closes the meters, ends and reaps nvidia-smi, frees.  NULL is allowed. */
void	 power_close(struct power *p);

/* sysfs.c */

/*
 * Small sysfs files holding one integer or one word, read with a single
 * read().  The integer readers accept a sign and a trailing newline; the
 * word reader drops the newline.  All return 0, or -1 when the file
 * cannot be read or does not hold what was asked.
 */
/* Reads fd from offset 0 into buf (at most size - 1 bytes) and NUL-terminates it. */
ssize_t	 sysfs_pread(int fd, char *buf, size_t size);
int	 sysfs_pread_int(long long *out, int fd);
int	 sysfs_read_int(long long *out, const char *path);
int	 sysfs_read_str(char *out, size_t len, const char *path);

#endif
