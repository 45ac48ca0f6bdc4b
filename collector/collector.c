/* The sampler thread: a fixed-rate, bounded and evenly spaced series. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "collector.h"
#include "log.h"
#include "xmalloc.h"

#define COLLECTOR_SYSFS		"/sys"
#define COLLECTOR_NVSMI		"nvidia-smi"
#define COLLECTOR_TEMP_EVERY_S	0.1	/* hwmon drivers may be slow to read */

struct collector {
	pid_t		 root;
	int64_t		 period_ns;
	double		 hz;
	size_t		 cap;		/* even */

	struct procfs_walk *walk;
	struct thermal	*thermal;
	struct power	*power;

	pthread_t	 thread;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cond;
	int		 stopping;	/* under mu */
	int		 running;	/* the thread is not joined yet */

	_Atomic uint64_t requests;
	_Atomic uint64_t tokens;

	struct timespec	 t0ts;
	double		 t0;		/* clock_mono_s() at the start */

	struct collector_sample *samples;
	size_t		 n, alloc;
	uint64_t	 stride;	/* one tick in stride is stored */

	/* Since the last stored sample. */
	double		 rec_t;
	double		 rec_cpu_s;
	double		 rec_energy_j;
	double		 rec_power_s;	/* time covered by power readings */

	/* Written by the thread only. */
	double		 now_prev;	/* time of the last tick */
	double		 last_t;	/* t_s of the last tick */
	double		 cpu_start_s;
	double		 cpu_last_s;
	double		 temp_c;	/* last reading, NaN: none */
	double		 temp_at;	/* clock_mono_s() of that reading */
	double		 power_s;	/* time covered by power readings */
	int		 warned;
	int64_t		 throttle_start;

	struct collector_summary sum;
};

static double
collector_wmean(double x, double wx, double y, double wy)
{
	if (isnan(x) || !(wx > 0))
		return y;
	if (isnan(y) || !(wy > 0))
		return x;
	return (x * wx + y * wy) / (wx + wy);
}

/*
 * Merges each pair of stored samples into one, which keeps the later
 * sample's readings and the time-weighted mean of the two rates, and
 * stores one tick in two from now on.  The store is even-sized, so every
 * sample has its pair and the spacing stays even.
 */
static void
collector_decimate(struct collector *c)
{
	struct collector_sample *s = c->samples, m;
	double prev = 0, da, db;
	size_t i;

	for (i = 0; i + 1 < c->n; i += 2) {
		da = s[i].t_s - prev;
		db = s[i + 1].t_s - s[i].t_s;
		prev = s[i + 1].t_s;
		m = s[i + 1];
		m.cpu_pct = collector_wmean(s[i].cpu_pct, da, m.cpu_pct, db);
		m.power_w = collector_wmean(s[i].power_w, da, m.power_w, db);
		s[i / 2] = m;
	}
	c->n = i / 2;
	c->stride *= 2;
}

/*
 * Stores a sample at t; st is NULL once the root has gone.  That last
 * sample is stored whatever the stride, so the store may need room.
 */
static void
collector_store(struct collector *c, double t,
    const struct procfs_tree_stat *st)
{
	struct collector_sample *s;
	double dt = t - c->rec_t;

	if (c->n == c->cap)
		collector_decimate(c);
	if (c->n == c->alloc) {
		c->alloc = c->alloc ? c->alloc * 2 : 256;
		if (c->alloc > c->cap)
			c->alloc = c->cap;
		c->samples = xreallocarray(c->samples, c->alloc,
		    sizeof(*c->samples));
	}
	s = &c->samples[c->n++];
	s->t_s = t;
	if (st != NULL) {
		s->rss_bytes = st->rss_bytes;
		s->cpu_pct = dt > 0 ? (st->cpu_s - c->rec_cpu_s) / dt * 100 :
		    NAN;
		s->nprocs = st->nprocs;
		c->rec_cpu_s = st->cpu_s;
	} else {
		s->rss_bytes = -1;
		s->cpu_pct = NAN;
		s->nprocs = 0;
	}
	s->temp_c = c->temp_c;
	s->power_w = c->rec_power_s > 0 ? c->rec_energy_j / c->rec_power_s :
	    NAN;
	s->requests = atomic_load_explicit(&c->requests, memory_order_relaxed);
	s->tokens = atomic_load_explicit(&c->tokens, memory_order_relaxed);
	c->rec_t = t;
	c->rec_energy_j = 0;
	c->rec_power_s = 0;
}

/* Reads the sensors: temperature at most every COLLECTOR_TEMP_EVERY_S. */
static void
collector_sensors(struct collector *c, double now)
{
	struct power_reading pw;
	double dt = now - c->now_prev;

	if (now - c->temp_at >= COLLECTOR_TEMP_EVERY_S * 0.99) {
		c->temp_at = now;
		if (thermal_read(&c->temp_c, c->thermal) == 0) {
			if (!c->sum.has_temp || c->temp_c > c->sum.temp_max_c)
				c->sum.temp_max_c = c->temp_c;
			c->sum.has_temp = 1;
		}
	}
	if (power_read(&pw, c->power, now) == 0) {
		c->sum.energy_j = c->sum.has_power ? c->sum.energy_j + pw.j :
		    pw.j;
		c->sum.has_power = 1;
		c->sum.power_sources |= pw.sources;
		c->power_s += dt;
		c->rec_energy_j += pw.j;
		c->rec_power_s += dt;
	}
	c->now_prev = now;
}

/* Takes one sample.  Returns 1 once the root has gone, else 0. */
static int
collector_tick(struct collector *c)
{
	struct procfs_tree_stat st;
	double now = clock_mono_s(), t = now - c->t0;
	int rc;

	c->sum.ticks++;
	c->last_t = t;
	rc = procfs_walk_sample(&st, c->walk);
	collector_sensors(c, now);
	if (rc == BL_ENOTFOUND) {
		collector_store(c, t, NULL);
		return 1;
	}
	if (rc < 0) {
		if (!c->warned)
			log_warn("cannot sample the process tree of %d",
			    (int)c->root);
		c->warned = 1;
		return 0;
	}
	c->cpu_last_s = st.cpu_s;
	c->sum.rss_end_bytes = st.rss_bytes;
	if (st.rss_bytes > c->sum.rss_peak_bytes)
		c->sum.rss_peak_bytes = st.rss_bytes;
	/*
	 * Decimate before deciding whether this tick is stored, so that the
	 * store keeps to the new stride from this tick on.
	 */
	if (c->sum.ticks % c->stride == 0 && c->n == c->cap)
		collector_decimate(c);
	if (c->sum.ticks % c->stride == 0)
		collector_store(c, t, &st);
	return 0;
}

static int64_t
collector_ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void
collector_ts_add(struct timespec *ts, int64_t ns)
{
	int64_t v = collector_ts_ns(ts) + ns;

	ts->tv_sec = (time_t)(v / 1000000000);
	ts->tv_nsec = (long)(v % 1000000000);
}

/*
 * The thread: ticks on an absolute schedule, so that the rate does not
 * drift, and skips the ticks it missed when one ran late.
 */
static void *
collector_main(void *arg)
{
	struct collector *c = arg;
	struct timespec next = c->t0ts, now, cpu;
	int64_t late;
	int gone = 0;

	pthread_mutex_lock(&c->mu);
	while (!c->stopping) {
		collector_ts_add(&next, c->period_ns);
		while (!c->stopping &&
		    pthread_cond_timedwait(&c->cond, &c->mu, &next) == 0)
			;
		if (c->stopping)
			break;
		pthread_mutex_unlock(&c->mu);
		gone = collector_tick(c);
		clock_gettime(CLOCK_MONOTONIC, &now);
		late = collector_ts_ns(&now) - collector_ts_ns(&next);
		if (late >= c->period_ns) {
			c->sum.overruns += (uint64_t)(late / c->period_ns);
			collector_ts_add(&next,
			    late / c->period_ns * c->period_ns);
		}
		pthread_mutex_lock(&c->mu);
		if (gone)
			break;
	}
	pthread_mutex_unlock(&c->mu);
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
		c->sum.self_cpu_s = (double)collector_ts_ns(&cpu) / 1e9;
	c->sum.root_exited = gone;
	return NULL;
}

/* Opens the sensors and takes the starting readings. */
static int
collector_prime(struct collector *c)
{
	struct procfs_tree_stat st;
	struct power_reading pw;
	int rc;

	thermal_open(&c->thermal, COLLECTOR_SYSFS);
	power_open(&c->power, COLLECTOR_SYSFS, COLLECTOR_NVSMI, 1.0 / c->hz);
	if (thermal_throttle_count(&c->throttle_start, COLLECTOR_SYSFS) == 0)
		c->sum.has_throttle = 1;
	thermal_cpu_governor(c->sum.governor, sizeof(c->sum.governor),
	    COLLECTOR_SYSFS);
	log_debug("collector for %d: %zu temperature sensors, power "
	    "sources 0x%x, throttle counters %s, governor '%s'", (int)c->root,
	    thermal_count(c->thermal), power_sources(c->power),
	    c->sum.has_throttle ? "yes" : "no", c->sum.governor);

	clock_gettime(CLOCK_MONOTONIC, &c->t0ts);
	c->t0 = (double)collector_ts_ns(&c->t0ts) / 1e9;
	if ((rc = procfs_walk_sample(&st, c->walk)) < 0)
		return rc;
	c->cpu_start_s = c->cpu_last_s = c->rec_cpu_s = st.cpu_s;
	c->sum.rss_start_bytes = c->sum.rss_peak_bytes =
	    c->sum.rss_end_bytes = st.rss_bytes;
	c->now_prev = c->temp_at = c->t0;
	if (thermal_read(&c->temp_c, c->thermal) == 0) {
		c->sum.has_temp = 1;
		c->sum.temp_max_c = c->temp_c;
	}
	power_read(&pw, c->power, c->t0);
	return 0;
}

int
collector_start(struct collector **out, pid_t root, double hz,
    size_t max_samples)
{
	struct collector *c;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	*out = NULL;
	if (!(hz >= 1 && hz <= 1000) || max_samples < 2 || root <= 0)
		return BL_EINVAL;
	c = xcalloc(1, sizeof(*c));
	c->root = root;
	c->hz = hz;
	c->period_ns = (int64_t)(1e9 / hz + 0.5);
	c->cap = max_samples & ~(size_t)1;
	c->stride = 1;
	c->temp_c = NAN;
	c->sum.temp_max_c = NAN;
	c->sum.energy_j = NAN;
	atomic_init(&c->requests, 0);
	atomic_init(&c->tokens, 0);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);

	if ((rc = procfs_walk_new(&c->walk, root, 0)) < 0)
		goto fail;
	if ((rc = collector_prime(c)) < 0)
		goto fail;

	/* Signals are for the caller's threads, not the sampler. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&c->thread, NULL, collector_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		log_warn("cannot start the collector thread");
		rc = -1;
		goto fail;
	}
	c->running = 1;
	*out = c;
	return 0;
fail:
	collector_free(c);
	return rc;
}

void
collector_mark(struct collector *c, uint64_t requests, uint64_t tokens)
{
	atomic_fetch_add_explicit(&c->requests, requests,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&c->tokens, tokens, memory_order_relaxed);
}

int
collector_stop(struct collector *c)
{
	struct collector_summary *s = &c->sum;
	int64_t th;

	if (!c->running)
		return -1;
	pthread_mutex_lock(&c->mu);
	c->stopping = 1;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	c->running = 0;

	if (s->has_throttle &&
	    thermal_throttle_count(&th, COLLECTOR_SYSFS) == 0)
		s->throttle_events = th > c->throttle_start ?
		    th - c->throttle_start : 0;
	power_close(c->power);
	c->power = NULL;
	thermal_close(c->thermal);
	c->thermal = NULL;
	procfs_walk_free(c->walk);
	c->walk = NULL;

	s->duration_s = c->last_t;
	s->nsamples = c->n;
	s->sample_interval_s = (double)c->stride / c->hz;
	s->cpu_s = c->cpu_last_s - c->cpu_start_s;
	s->cpu_mean_pct = s->duration_s > 0 ?
	    s->cpu_s / s->duration_s * 100 : NAN;
	s->power_mean_w = s->has_power && c->power_s > 0 ?
	    s->energy_j / c->power_s : NAN;
	s->requests = atomic_load(&c->requests);
	s->tokens = atomic_load(&c->tokens);
	return 0;
}

size_t
collector_samples(const struct collector *c,
    const struct collector_sample **out)
{
	if (c->running) {
		*out = NULL;
		return 0;
	}
	*out = c->samples;
	return c->n;
}

int
collector_summary(struct collector_summary *out, const struct collector *c)
{
	if (c->running)
		return BL_ECONFLICT;
	*out = c->sum;
	return 0;
}

void
collector_free(struct collector *c)
{
	if (c == NULL)
		return;
	if (c->running)
		collector_stop(c);
	power_close(c->power);
	thermal_close(c->thermal);
	procfs_walk_free(c->walk);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->mu);
	free(c->samples);
	free(c);
}
