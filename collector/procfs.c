/* Process-tree RSS and CPU time from /proc, one read() per file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "collector.h"
#include "xmalloc.h"

#define PROCFS_MAX_FDS		256	/* stat files a walk keeps open */
#define PROCFS_MAX_PROCS	65536	/* a larger tree is cut short */
#define PROCFS_RESCAN_S		2.0	/* scan mode: re-read all parents */
#define PROCFS_STAT_MAX		1024	/* a stat line is shorter */
#define PROCFS_NONE		SIZE_MAX
#define PROCFS_PF_EXITING	0x4	/* stat flags: in do_exit(), memory
					   already released */

/* A process and its parent, as seen by a scan of /proc. */
struct pent {
	pid_t	 pid;
	pid_t	 ppid;
};

/* A process of the tree at a sample. */
struct pmem {
	pid_t	 pid;
	pid_t	 ppid;
	uint64_t start;		/* starttime: tells a reused pid apart */
	uint64_t ticks;		/* utime + stime + cutime + cstime */
	int64_t	 rss;		/* pages */
	int	 fd;		/* <pid>/stat kept open, or -1 */
	int	 exiting;
	char	 state;
};

/* The fields of /proc/<pid>/stat a walk uses. */
struct pstat {
	char	 state;
	int	 exiting;
	pid_t	 ppid;
	uint64_t ticks;
	uint64_t start;
	int64_t	 rss;
};

struct procfs_walk {
	pid_t		 root;
	int		 flags;
	int		 children;	/* find children through the
					   children files */
	int		 procfd;	/* /proc */
	int		 sampled;	/* a sample has been taken */
	int		 gone;		/* the root has exited */
	int		 scanned;	/* all[] holds a scan */
	uint64_t	 root_start;
	uint64_t	 cpu_ticks;
	long		 pagesize;
	long		 clktck;
	int		 nfds;		/* stat files kept open */
	double		 last_full;	/* time of the last full scan */

	struct pent	*all;		/* scan mode: every process, by pid */
	size_t		 nall, allcap;
	struct pent	*tmp;		/* scratch of the same kind */
	size_t		 tmpcap;
	unsigned char	*mark;		/* scratch: tree membership */
	size_t		 markcap;

	pid_t		*cand;		/* pids to read at this sample */
	size_t		 ncand, candcap;

	struct pmem	*mem;		/* the tree at the last sample */
	size_t		 nmem, memcap;
	struct pmem	*next;		/* the tree being read */
	size_t		 nextcap;
};

/* Makes room for want elements of size bytes in *ptr, doubling. */
static void *
procfs_grow(void *ptr, size_t *cap, size_t want, size_t size)
{
	size_t n;

	if (want <= *cap)
		return ptr;
	n = *cap ? *cap : 64;
	while (n < want)
		n *= 2;
	*cap = n;
	return xreallocarray(ptr, n, size);
}

/* Writes pid in decimal at dst and returns the end; no NUL. */
static char *
procfs_putpid(char *dst, pid_t pid)
{
	char tmp[16];
	unsigned v = (unsigned)pid;
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*dst++ = tmp[--n];
	return dst;
}

/* Writes "<pid><suffix>" into path, which has room for 32 + the suffix. */
static void
procfs_path(char *path, pid_t pid, const char *suffix)
{
	strcpy(procfs_putpid(path, pid), suffix);
}

/* Parses a directory entry name that is all digits; 0 for other names. */
static pid_t
procfs_atopid(const char *s)
{
	long v = 0;

	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > 100000000)
			return 0;
		v = v * 10 + (*s - '0');
	}
	return (pid_t)v;
}

/* Parses the next space-separated integer at *pp. */
static int
procfs_num(long long *out, const char **pp, const char *end)
{
	const char *p = *pp;
	unsigned long long v = 0;
	int neg = 0;

	while (p < end && *p == ' ')
		p++;
	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (unsigned long long)(*p - '0');
	*out = neg ? -(long long)v : (long long)v;
	*pp = p;
	return 0;
}

/*
 * Parses a /proc/<pid>/stat line.  The command name in parentheses may hold
 * spaces and parentheses itself, so the fields start after the last ')'.
 */
static int
procfs_parse_stat(struct pstat *out, const char *buf, size_t len)
{
	const char *p, *end = buf + len;
	long long f[25];
	uint64_t ticks = 0;
	int i;

	if ((p = memrchr(buf, ')', len)) == NULL)
		return -1;
	for (p++; p < end && *p == ' '; p++)
		;
	if (p >= end)
		return -1;
	out->state = *p++;
	for (i = 4; i <= 24; i++)
		if (procfs_num(&f[i], &p, end) < 0)
			return -1;
	for (i = 14; i <= 17; i++)	/* utime stime cutime cstime */
		if (f[i] > 0)
			ticks += (uint64_t)f[i];
	out->ppid = (pid_t)f[4];
	out->exiting = (f[9] & PROCFS_PF_EXITING) != 0;
	out->ticks = ticks;
	out->start = (uint64_t)f[22];
	out->rss = f[24] > 0 ? f[24] : 0;
	return 0;
}

/* Reads and parses /proc/<pid>/stat once, without keeping it open. */
static int
procfs_stat_once(struct pstat *out, int procfd, pid_t pid)
{
	char buf[PROCFS_STAT_MAX], path[48];
	ssize_t n;
	int fd;

	procfs_path(path, pid, "/stat");
	if ((fd = openat(procfd, path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = sysfs_pread(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0)
		return -1;
	return procfs_parse_stat(out, buf, (size_t)n);
}

/*
 * Reads /proc/<pid>/stat through *fdp when it is open, else opens it and
 * keeps it open while the walk has fewer than PROCFS_MAX_FDS.  An open stat
 * file stays bound to its process: once that exits, reads fail, even if the
 * pid is reused.  Returns 0, 1 when the process is not there, or -1.
 */
static int
procfs_read_stat(struct pstat *out, struct procfs_walk *w, pid_t pid,
    int *fdp)
{
	char buf[PROCFS_STAT_MAX], path[48];
	ssize_t n;
	int fd;

	if (*fdp >= 0) {
		n = sysfs_pread(*fdp, buf, sizeof(buf));
		if (n > 0 && procfs_parse_stat(out, buf, (size_t)n) == 0)
			return 0;
		close(*fdp);
		*fdp = -1;
		w->nfds--;
	}
	procfs_path(path, pid, "/stat");
	if ((fd = openat(w->procfd, path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT || errno == ESRCH ? 1 : -1;
	n = sysfs_pread(fd, buf, sizeof(buf));
	if (n <= 0 || procfs_parse_stat(out, buf, (size_t)n) < 0) {
		close(fd);
		return 1;
	}
	if (w->nfds < PROCFS_MAX_FDS) {
		*fdp = fd;
		w->nfds++;
	} else
		close(fd);
	return 0;
}

static int
procfs_pent_cmp(const void *a, const void *b)
{
	pid_t x = ((const struct pent *)a)->pid;
	pid_t y = ((const struct pent *)b)->pid;

	return (x > y) - (x < y);
}

static int
procfs_pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* Index of pid in e[0..n), sorted by pid, or PROCFS_NONE. */
static size_t
procfs_find_pent(const struct pent *e, size_t n, pid_t pid)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (e[mid].pid < pid)
			lo = mid + 1;
		else if (e[mid].pid > pid)
			hi = mid;
		else
			return mid;
	}
	return PROCFS_NONE;
}

/* Index of pid in m[0..n), sorted by pid, or PROCFS_NONE. */
static size_t
procfs_find_pmem(const struct pmem *m, size_t n, pid_t pid)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (m[mid].pid < pid)
			lo = mid + 1;
		else if (m[mid].pid > pid)
			hi = mid;
		else
			return mid;
	}
	return PROCFS_NONE;
}

/*
 * Sets w->mark[i] for each process of e[0..n) (sorted by pid) that is the
 * root or descends from it.  Passes repeat until nothing changes; as
 * children mostly have higher pids than their parents, the first pass
 * usually finds the whole tree.
 */
static void
procfs_mark_tree(struct procfs_walk *w, const struct pent *e, size_t n)
{
	size_t i, p;
	int changed;

	w->mark = procfs_grow(w->mark, &w->markcap, n, 1);
	if (n > 0)
		memset(w->mark, 0, n);
	if ((i = procfs_find_pent(e, n, w->root)) == PROCFS_NONE)
		return;
	w->mark[i] = 1;
	do {
		changed = 0;
		for (i = 0; i < n; i++) {
			if (w->mark[i])
				continue;
			p = procfs_find_pent(e, n, e[i].ppid);
			if (p != PROCFS_NONE && w->mark[p]) {
				w->mark[i] = 1;
				changed = 1;
			}
		}
	} while (changed);
}

static void
procfs_push(struct procfs_walk *w, pid_t pid)
{
	if (w->ncand >= PROCFS_MAX_PROCS)
		return;
	w->cand = procfs_grow(w->cand, &w->candcap, w->ncand + 1,
	    sizeof(*w->cand));
	w->cand[w->ncand++] = pid;
}

/*
 * Scan mode: lists /proc and finds the tree from every process' parent.
 * Only processes not seen by the previous scan have their stat read, but
 * every PROCFS_RESCAN_S all are, to notice a reused pid.  The tree's own
 * processes are read at every sample anyway, which keeps their parents
 * fresh.
 */
static int
procfs_scan(struct procfs_walk *w)
{
	union {
		struct dirent64	d;
		char		b[16384];
	} u;
	struct dirent64 *d;
	struct pent *swap;
	struct pstat st;
	size_t nt = 0, i, j, k;
	ssize_t n, off;
	double now;
	pid_t pid, ppid;
	int sorted = 1, full;

	if (lseek(w->procfd, 0, SEEK_SET) < 0)
		return -1;
	while ((n = getdents64(w->procfd, u.b, sizeof(u.b))) > 0) {
		for (off = 0; off < n; off += d->d_reclen) {
			d = (struct dirent64 *)(void *)(u.b + off);
			if ((pid = procfs_atopid(d->d_name)) <= 0)
				continue;
			w->tmp = procfs_grow(w->tmp, &w->tmpcap, nt + 1,
			    sizeof(*w->tmp));
			if (nt > 0 && w->tmp[nt - 1].pid >= pid)
				sorted = 0;
			w->tmp[nt++].pid = pid;
		}
	}
	if (n < 0)
		return -1;
	if (!sorted)
		qsort(w->tmp, nt, sizeof(*w->tmp), procfs_pent_cmp);

	now = clock_mono_s();
	full = (w->flags & PROCFS_FULL) || !w->scanned ||
	    now - w->last_full >= PROCFS_RESCAN_S;
	if (full)
		w->last_full = now;
	for (i = j = k = 0; i < nt; i++) {
		pid = w->tmp[i].pid;
		if (j > 0 && w->tmp[j - 1].pid == pid)
			continue;
		ppid = -1;
		if (!full) {
			while (k < w->nall && w->all[k].pid < pid)
				k++;
			if (k < w->nall && w->all[k].pid == pid)
				ppid = w->all[k].ppid;
		}
		if (ppid < 0) {
			if (procfs_stat_once(&st, w->procfd, pid) < 0)
				continue;
			ppid = st.ppid;
		}
		w->tmp[j].pid = pid;
		w->tmp[j++].ppid = ppid;
	}
	swap = w->all;
	w->all = w->tmp;
	w->tmp = swap;
	i = w->allcap;
	w->allcap = w->tmpcap;
	w->tmpcap = i;
	w->nall = j;
	w->scanned = 1;

	procfs_mark_tree(w, w->all, w->nall);
	for (i = 0; i < w->nall; i++)
		if (w->mark[i])
			procfs_push(w, w->all[i].pid);
	return 0;
}

/*
 * Reads the pids listed in an open children file (space-separated) and
 * adds them to the candidates.
 */
static void
procfs_read_children(struct procfs_walk *w, int fd)
{
	char buf[4096];
	ssize_t n, i;
	long v = -1;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (i = 0; i < n; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				v = (v < 0 ? 0 : v * 10) + (buf[i] - '0');
			} else if (v >= 0) {
				procfs_push(w, (pid_t)v);
				v = -1;
			}
		}
	}
	if (v >= 0)
		procfs_push(w, (pid_t)v);
}

/*
 * Children mode: a breadth-first walk from the root through
 * /proc/<pid>/task/<tid>/children of every thread, since a child is listed
 * under the thread that forked it.
 */
static int
procfs_discover_children(struct procfs_walk *w)
{
	union {
		struct dirent64	d;
		char		b[4096];
	} u;
	struct dirent64 *d;
	char path[64];
	ssize_t n, off;
	size_t k;
	pid_t tid;
	int dfd, fd;

	procfs_push(w, w->root);
	for (k = 0; k < w->ncand; k++) {
		procfs_path(path, w->cand[k], "/task");
		dfd = openat(w->procfd, path, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC);
		if (dfd < 0)
			continue;
		while ((n = getdents64(dfd, u.b, sizeof(u.b))) > 0) {
			for (off = 0; off < n; off += d->d_reclen) {
				d = (struct dirent64 *)(void *)(u.b + off);
				if ((tid = procfs_atopid(d->d_name)) <= 0)
					continue;
				procfs_path(path, tid, "/children");
				fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
				if (fd < 0)
					continue;
				procfs_read_children(w, fd);
				close(fd);
			}
		}
		close(dfd);
	}
	return 0;
}

/* Closes the stat files still held by m[0..n). */
static void
procfs_close_fds(struct procfs_walk *w, struct pmem *m, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (m[i].fd >= 0) {
			close(m[i].fd);
			m[i].fd = -1;
			w->nfds--;
		}
	}
}

/*
 * The tree's CPU use since the last sample, in clock ticks.  Each process
 * counts its own time plus that of the children it reaped, so a child that
 * exits and is reaped inside the tree moves its whole time into its
 * parent's count; what the child had already been counted for is taken
 * back here, so nothing counts twice.
 */
static int64_t
procfs_cpu_delta(const struct procfs_walk *w, const struct pmem *next,
    size_t nnext)
{
	const struct pmem *m;
	int64_t delta = 0;
	size_t i, j, p, q;

	for (i = 0; i < nnext; i++) {
		j = procfs_find_pmem(w->mem, w->nmem, next[i].pid);
		if (j != PROCFS_NONE && w->mem[j].start == next[i].start)
			delta += (int64_t)(next[i].ticks - w->mem[j].ticks);
		else
			delta += (int64_t)next[i].ticks;
	}
	for (j = 0; j < w->nmem; j++) {
		m = &w->mem[j];
		i = procfs_find_pmem(next, nnext, m->pid);
		if (i != PROCFS_NONE && next[i].start == m->start)
			continue;
		p = procfs_find_pmem(next, nnext, m->ppid);
		q = procfs_find_pmem(w->mem, w->nmem, m->ppid);
		if (p != PROCFS_NONE && q != PROCFS_NONE &&
		    next[p].start == w->mem[q].start)
			delta -= (int64_t)m->ticks;
	}
	return delta;
}

/* Marks the walk as ended: the root has exited. */
static int
procfs_walk_end(struct procfs_walk *w, size_t nnext)
{
	procfs_close_fds(w, w->next, nnext);
	procfs_close_fds(w, w->mem, w->nmem);
	w->nmem = 0;
	w->gone = 1;
	return BL_ENOTFOUND;
}

int
procfs_walk_sample(struct procfs_tree_stat *out, struct procfs_walk *w)
{
	struct pmem *next, *swap;
	struct pstat st;
	size_t i, j, n, nnext = 0;
	int64_t delta, rss = 0;
	int fd, rc;

	if (w->gone)
		return BL_ENOTFOUND;
	w->ncand = 0;
	rc = w->children ? procfs_discover_children(w) : procfs_scan(w);
	if (rc < 0)
		return -1;

	/* Processes of the tree that were not found again are read too. */
	for (i = 0; i < w->nmem; i++)
		procfs_push(w, w->mem[i].pid);
	qsort(w->cand, w->ncand, sizeof(*w->cand), procfs_pid_cmp);
	for (i = n = 0; i < w->ncand; i++)
		if (n == 0 || w->cand[n - 1] != w->cand[i])
			w->cand[n++] = w->cand[i];
	w->ncand = n;

	w->next = procfs_grow(w->next, &w->nextcap, w->ncand,
	    sizeof(*w->next));
	next = w->next;
	for (i = 0; i < w->ncand; i++) {
		fd = -1;
		j = procfs_find_pmem(w->mem, w->nmem, w->cand[i]);
		if (j != PROCFS_NONE) {
			fd = w->mem[j].fd;
			w->mem[j].fd = -1;
		}
		rc = procfs_read_stat(&st, w, w->cand[i], &fd);
		if (rc < 0) {
			procfs_close_fds(w, next, nnext);
			return -1;
		}
		if (rc > 0)
			continue;
		next[nnext].pid = w->cand[i];
		next[nnext].ppid = st.ppid;
		next[nnext].start = st.start;
		next[nnext].ticks = st.ticks;
		next[nnext].rss = st.rss;
		next[nnext].state = st.state;
		next[nnext].exiting = st.exiting;
		next[nnext++].fd = fd;
	}

	/*
	 * The root has gone once it is a zombie, or already while it exits:
	 * its memory is released before it becomes a zombie, and an RSS of 0
	 * then would be a false reading.
	 */
	i = procfs_find_pmem(next, nnext, w->root);
	if (i == PROCFS_NONE || next[i].state == 'Z' ||
	    next[i].state == 'X' || next[i].state == 'x' || next[i].exiting ||
	    (w->sampled && next[i].start != w->root_start))
		return procfs_walk_end(w, nnext);
	if (!w->sampled)
		w->root_start = next[i].start;

	/* Check membership again with the parents just read. */
	w->tmp = procfs_grow(w->tmp, &w->tmpcap, nnext, sizeof(*w->tmp));
	for (i = 0; i < nnext; i++) {
		w->tmp[i].pid = next[i].pid;
		w->tmp[i].ppid = next[i].ppid;
		if (!w->children &&
		    (j = procfs_find_pent(w->all, w->nall, next[i].pid)) !=
		    PROCFS_NONE)
			w->all[j].ppid = next[i].ppid;
	}
	procfs_mark_tree(w, w->tmp, nnext);
	for (i = n = 0; i < nnext; i++) {
		if (!w->mark[i]) {
			procfs_close_fds(w, &next[i], 1);
			continue;
		}
		next[n++] = next[i];
	}
	nnext = n;

	delta = procfs_cpu_delta(w, next, nnext);
	if (!w->sampled)
		w->cpu_ticks = delta > 0 ? (uint64_t)delta : 0;
	else if (delta > 0)
		w->cpu_ticks += (uint64_t)delta;
	w->sampled = 1;

	procfs_close_fds(w, w->mem, w->nmem);
	swap = w->mem;
	w->mem = w->next;
	w->next = swap;
	i = w->memcap;
	w->memcap = w->nextcap;
	w->nextcap = i;
	w->nmem = nnext;

	for (i = 0; i < w->nmem; i++)
		if (w->mem[i].state != 'Z')
			rss += w->mem[i].rss;
	out->rss_bytes = rss * w->pagesize;
	out->cpu_s = (double)w->cpu_ticks / (double)w->clktck;
	out->nprocs = (int)w->nmem;
	return 0;
}

int
procfs_children_supported(void)
{
	return access("/proc/thread-self/children", R_OK) == 0;
}

int
procfs_walk_new(struct procfs_walk **out, pid_t root, int flags)
{
	struct procfs_walk *w;

	*out = NULL;
	if (root <= 0)
		return BL_EINVAL;
	w = xcalloc(1, sizeof(*w));
	w->root = root;
	w->flags = flags;
	if ((w->procfd = open("/proc", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0) {
		free(w);
		return -1;
	}
	w->children = !(flags & PROCFS_SCAN) && procfs_children_supported();
	w->pagesize = sysconf(_SC_PAGESIZE);
	w->clktck = sysconf(_SC_CLK_TCK);
	if (w->clktck <= 0)
		w->clktck = 100;
	*out = w;
	return 0;
}

void
procfs_walk_free(struct procfs_walk *w)
{
	if (w == NULL)
		return;
	procfs_close_fds(w, w->mem, w->nmem);
	close(w->procfd);
	free(w->all);
	free(w->tmp);
	free(w->mark);
	free(w->cand);
	free(w->mem);
	free(w->next);
	free(w);
}

/* Takes one sample of a fresh walk of root. */
static int
procfs_tree_once(struct procfs_tree_stat *out, pid_t root)
{
	struct procfs_walk *w;
	int rc;

	if ((rc = procfs_walk_new(&w, root, 0)) < 0)
		return rc;
	rc = procfs_walk_sample(out, w);
	procfs_walk_free(w);
	return rc;
}

int
procfs_tree_rss(int64_t *out, pid_t root)
{
	struct procfs_tree_stat st;
	int rc;

	if ((rc = procfs_tree_once(&st, root)) == 0)
		*out = st.rss_bytes;
	return rc;
}

int
procfs_tree_cpu(double *out_seconds, pid_t root)
{
	struct procfs_tree_stat st;
	int rc;

	if ((rc = procfs_tree_once(&st, root)) == 0)
		*out_seconds = st.cpu_s;
	return rc;
}
