/*
 * Counted metrics: the engine's CPU work, counted instead of timed.
 *
 * A wall-clock figure on a shared machine moves by 5-10% from run to run
 * whatever the code does; an instruction count of the same binary on the
 * same input does not (measured on the tinyllm demo: the difference of
 * two runs, 625 M instructions, varies by about 150, 2e-7 of it).  The
 * engine runs under valgrind's cachegrind, which counts every instruction
 * and simulates the first-level and last-level caches; its totals are read
 * from the file it writes when the process exits.
 *
 * Estimated cycles use the weights of the cachegrind and KCachegrind
 * documentation's cycle estimate, without the branch simulation (which
 * cachegrind does not run by default):
 *
 *     Ir + 10 x (I1mr + D1mr + D1mw) + 100 x (ILmr + DLmr + DLmw)
 *
 * so a change of memory layout that misses the caches shows even when the
 * instruction count stays put.
 *
 * Hardware counters (perf_event_open) are probed too, and the run says
 * whether the machine has them: a VM usually does not.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "worker.h"
#include "xmalloc.h"

static const char *const events[] = {
	"Ir", "I1mr", "ILmr", "Dr", "D1mr", "DLmr", "Dw", "D1mw", "DLmw"
};

char **
counter_argv(char *const *command, size_t ncommand, const char *out_file)
{
	char **argv = xcalloc(ncommand + 6, sizeof(*argv));
	size_t i, k = 0;

	argv[k++] = xstrdup("valgrind");
	argv[k++] = xstrdup("--tool=cachegrind");
	argv[k++] = xstrdup("--cache-sim=yes");
	argv[k++] = xasprintf("--cachegrind-out-file=%s", out_file);
	for (i = 0; i < ncommand; i++)
		argv[k++] = xstrdup(command[i]);
	argv[k] = NULL;
	return argv;
}

void
counter_argv_free(char **argv)
{
	size_t i;

	for (i = 0; argv != NULL && argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

/* The index of event name in events[], or -1. */
static int
event_index(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < BL_ARRAY_LEN(events); i++)
		if (strlen(events[i]) == len && memcmp(events[i], name, len) == 0)
			return (int)i;
	return -1;
}

int
counter_parse(struct counts *c, const char *text, char *err, size_t errlen)
{
	const char *ev = NULL, *sum = NULL, *line;
	int order[COUNTER_EVENTS], n = 0, i, idx;
	char *end;
	double v;

	memset(c, 0, sizeof(*c));
	for (line = text; line != NULL && *line != '\0';
	    line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, "events:", 7) == 0)
			ev = line + 7;
		else if (strncmp(line, "summary:", 8) == 0)
			sum = line + 8;
	}
	if (ev == NULL || sum == NULL) {
		snprintf(err, errlen, "no %s line in cachegrind's output",
		    ev == NULL ? "events:" : "summary:");
		return BL_EINVAL;
	}
	/* The names, in the file's order. */
	while (*ev != '\n' && *ev != '\0' && n < COUNTER_EVENTS) {
		size_t len;

		while (*ev == ' ')
			ev++;
		len = strcspn(ev, " \n");
		if (len == 0)
			break;
		order[n++] = event_index(ev, len);
		ev += len;
	}
	for (i = 0; i < n; i++) {
		errno = 0;
		v = strtod(sum, &end);
		if (end == sum || errno != 0 || v < 0) {
			snprintf(err, errlen, "cachegrind's summary has %d "
			    "numbers for %d events", i, n);
			return BL_EINVAL;
		}
		sum = end;
		if ((idx = order[i]) >= 0)
			c->v[idx] = v;
	}
	if (order[0] != COUNT_IR || c->v[COUNT_IR] <= 0) {
		snprintf(err, errlen, "cachegrind counted no instructions");
		return BL_EINVAL;
	}
	c->cache_sim = n == COUNTER_EVENTS;
	return 0;
}

int
counter_read(struct counts *c, const char *path, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "r");
	struct buf b;
	char chunk[8192];
	size_t n;
	int rc;

	if (fp == NULL) {
		snprintf(err, errlen, "cachegrind wrote no output (%s: %s)",
		    path, strerror(errno));
		return BL_ERROR;
	}
	buf_init(&b, 64 << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if (buf_add(&b, chunk, n) < 0)
			break;
	fclose(fp);
	rc = counter_parse(c, b.ptr ? b.ptr : "", err, errlen);
	buf_free(&b);
	return rc;
}

void
counter_sub(struct counts *out, const struct counts *a, const struct counts *b)
{
	int i;

	for (i = 0; i < COUNTER_EVENTS; i++)
		out->v[i] = a->v[i] - b->v[i];
	out->cache_sim = a->cache_sim && b->cache_sim;
}

double
counter_est_cycles(const struct counts *c)
{
	return c->v[COUNT_IR] + 10 * (c->v[COUNT_I1MR] + c->v[COUNT_D1MR] +
	    c->v[COUNT_D1MW]) + 100 * (c->v[COUNT_ILMR] + c->v[COUNT_DLMR] +
	    c->v[COUNT_DLMW]);
}

int
counter_hw_probe(char *why, size_t len)
{
	struct perf_event_attr pe;
	long fd;

	memset(&pe, 0, sizeof(pe));
	pe.type = PERF_TYPE_HARDWARE;
	pe.size = sizeof(pe);
	pe.config = PERF_COUNT_HW_INSTRUCTIONS;
	pe.disabled = 1;
	pe.exclude_kernel = 1;
	pe.exclude_hv = 1;
	fd = syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
	if (fd < 0) {
		snprintf(why, len, "not supported here (perf_event_open: %s)",
		    strerror(errno));
		return 0;
	}
	close((int)fd);
	snprintf(why, len, "available (not used yet: valgrind counts)");
	return 1;
}
