/* Unit tests for worker/repo.c, on real repositories made with the git CLI. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "error.h"
#include "log.h"
#include "sha256.h"
#include "worker.h"

#define SHA_HEX	41

/* What the tests share: the scratch directory and the upstream repository. */
static char	base[64];		/* /tmp/bl-repo-XXXXXX */
static char	src[128];		/* upstream repository, non-bare */
static char	url[160];		/* file:// URL of src */
static char	c1[SHA_HEX], c2[SHA_HEX], c3[SHA_HEX];
static char	errbuf[1024];
static pid_t	daemon_pid;		/* git daemon of test_fetch_by_id */

/* Runs a shell command; returns its exit status, or -1 if it did not exit. */
static int BL_PRINTF(1, 2)
sh(const char *fmt, ...)
{
	va_list ap;
	char cmd[4096];
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs a shell command and keeps the first line it prints, without newline. */
static void BL_PRINTF(3, 4)
capture(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	char cmd[4096];
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	out[0] = '\0';
	p = popen(cmd, "r");
	assert_non_null(p);
	if (fgets(out, (int)outlen, p) == NULL)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	pclose(p);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Asserts that the file at dir/name holds exactly text. */
static void
assert_file(const char *dir, const char *name, const char *text)
{
	char path[512], got[256];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(got, 1, sizeof(got) - 1, f);
	got[n] = '\0';
	fclose(f);
	assert_string_equal(got, text);
}

/* Commits everything in repo with message msg; out gets the new HEAD. */
static void
commit_all(char out[SHA_HEX], const char *repo, const char *msg)
{
	assert_int_equal(sh("git -C %s add -A && git -C %s commit -q -m '%s'",
	    repo, repo, msg), 0);
	capture(out, SHA_HEX, "git -C %s rev-parse HEAD", repo);
	assert_int_equal(strlen(out), 40);
}

/*
 * Asserts that worktree wt is exactly commit sha of repository repo: HEAD
 * detached at sha, the same list of files as the commit's tree, no empty
 * directory, and git status (untracked and ignored files included) clean.
 */
static void
assert_exact(const char *wt, const char *repo, const char *sha)
{
	char line[256];

	capture(line, sizeof(line), "git -C %s rev-parse HEAD", wt);
	assert_string_equal(line, sha);
	assert_int_not_equal(sh("git -C %s symbolic-ref -q HEAD >/dev/null",
	    wt), 0);
	assert_int_equal(sh("cd %s && find . -path ./.git -prune -o ! -type d "
	    "-print | sed 's|^\\./||' | LC_ALL=C sort >%s/have.lst && "
	    "git -C %s ls-tree -r --name-only %s | LC_ALL=C sort "
	    ">%s/want.lst && "
	    "cmp -s %s/have.lst %s/want.lst",
	    wt, base, repo, sha, base, base, base), 0);
	capture(line, sizeof(line), "find %s -path %s/.git -prune -o -type d "
	    "-empty -print", wt, wt);
	assert_string_equal(line, "");
	capture(line, sizeof(line),
	    "git -C %s status --porcelain --ignored --untracked-files=all", wt);
	assert_string_equal(line, "");
}

/* Checks out sha and fails the test, showing the reason, if that fails. */
static void
checkout_ok(struct repo_cache *c, const char *u, const char *sha,
    const char *wt)
{
	int rc;

	rc = repo_checkout(c, u, sha, wt, errbuf, sizeof(errbuf));
	if (rc != 0)
		print_error("repo_checkout '%s': %d: %s\n", sha, rc, errbuf);
	assert_int_equal(rc, 0);
}

/* The path of url's clone inside cache directory dir. */
static void
clone_path(char *out, size_t outlen, const char *dir, const char *u)
{
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];

	sha256(d, u, strlen(u));
	hex_encode(hex, d, SHA256_LEN);
	snprintf(out, outlen, "%s/%s.git", dir, hex);
}

/* The number of entries of directory path, and how many end in suffix. */
static int
count_entries(const char *path, const char *suffix, int *nsuffix)
{
	struct dirent *de;
	size_t n, sl = suffix ? strlen(suffix) : 0;
	DIR *d;
	int count = 0;

	if (nsuffix != NULL)
		*nsuffix = 0;
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		count++;
		n = strlen(de->d_name);
		if (nsuffix != NULL && n >= sl &&
		    strcmp(de->d_name + n - sl, suffix) == 0)
			(*nsuffix)++;
	}
	closedir(d);
	return count;
}

/* A cache in a new directory base/name, which does not exist yet. */
static struct repo_cache *
new_cache(const char *name, char *dir, size_t dirlen)
{
	struct repo_cache *c = NULL;

	snprintf(dir, dirlen, "%s/%s", base, name);
	assert_false(exists(dir));
	assert_int_equal(repo_cache_open(&c, dir), 0);
	assert_non_null(c);
	assert_true(exists(dir));
	return c;
}

/*
 * Makes the upstream repository: c1 with a .gitignore, sources and a
 * Makefile; c2 adds src/util.c and an annotated tag; c3 deletes
 * src/util.c and adds docs/notes.txt.
 */
static int
setup(void **state)
{
	char path[256];

	(void)state;
	log_init("test-repo", LOG_LEVEL_WARN);
	strcpy(base, "/tmp/bl-repo-XXXXXX");
	if (mkdtemp(base) == NULL)
		return -1;
	/* Keep the user's and the system's git configuration out. */
	setenv("HOME", base, 1);
	setenv("XDG_CONFIG_HOME", base, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_AUTHOR_NAME", "Bench Line", 1);
	setenv("GIT_AUTHOR_EMAIL", "bench@example.org", 1);
	setenv("GIT_COMMITTER_NAME", "Bench Line", 1);
	setenv("GIT_COMMITTER_EMAIL", "bench@example.org", 1);
	unsetenv("GIT_DIR");
	unsetenv("GIT_WORK_TREE");

	snprintf(src, sizeof(src), "%s/src", base);
	snprintf(url, sizeof(url), "file://%s", src);
	if (sh("git init -q -b main %s && mkdir %s/src", src, src) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/.gitignore", src);
	write_file(path, "build/\n*.o\n");
	snprintf(path, sizeof(path), "%s/README", src);
	write_file(path, "one\n");
	snprintf(path, sizeof(path), "%s/Makefile", src);
	write_file(path, "all:\n\tcc -o build/engine src/*.c\n");
	snprintf(path, sizeof(path), "%s/src/main.c", src);
	write_file(path, "int main(void) { return 0; }\n");
	commit_all(c1, src, "one");

	snprintf(path, sizeof(path), "%s/src/util.c", src);
	write_file(path, "int util(void) { return 1; }\n");
	snprintf(path, sizeof(path), "%s/README", src);
	write_file(path, "two\n");
	commit_all(c2, src, "two");
	if (sh("git -C %s tag -a v2 -m 'release two'", src) != 0)
		return -1;

	snprintf(path, sizeof(path), "%s/src/util.c", src);
	unlink(path);
	snprintf(path, sizeof(path), "%s/docs", src);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/docs/notes.txt", src);
	write_file(path, "notes\n");
	snprintf(path, sizeof(path), "%s/README", src);
	write_file(path, "three\n");
	commit_all(c3, src, "three");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, NULL, 0);
	}
	/* Tests leave read-only directories behind on failure: open them up. */
	sh("chmod -R u+rwx %s 2>/dev/null; rm -rf %s", base, base);
	return exists(base) ? -1 : 0;
}

/* The first checkout clones into a new cache and yields the commit's files. */
static void
test_first_clone(void **state)
{
	struct repo_cache *c;
	char dir[256], wt[256], gitdir[512];
	int nlock;

	(void)state;
	c = new_cache("cache1/sub", dir, sizeof(dir));
	snprintf(wt, sizeof(wt), "%s/wt1/a/b", base);
	checkout_ok(c, url, c1, wt);
	assert_exact(wt, src, c1);
	assert_file(wt, "README", "one\n");
	assert_file(wt, "src/main.c", "int main(void) { return 0; }\n");
	assert_false(exists(strcat(strcpy(gitdir, wt), "/src/util.c")));

	/* One bare clone and its lock file; no temporary left. */
	clone_path(gitdir, sizeof(gitdir), dir, url);
	assert_true(exists(gitdir));
	assert_int_equal(sh("test \"$(git --git-dir=%s rev-parse "
	    "--is-bare-repository)\" = true", gitdir), 0);
	assert_int_equal(count_entries(dir, ".lock", &nlock), 2);
	assert_int_equal(nlock, 1);
	/* The worktree borrows objects from the cache and has none itself. */
	assert_int_equal(sh("test -z \"$(find %s/.git/objects -type f "
	    "! -path '*/info/*')\"", wt), 0);
	repo_cache_free(c);
}

/*
 * Switching commits removes the files the new commit deletes and
 * everything a build left: ignored and untracked files, empty and
 * read-only directories, a nested repository, edits of tracked files.
 */
static void
test_switch_cleans(void **state)
{
	struct repo_cache *c;
	char dir[256], wt[256], path[512];

	(void)state;
	c = new_cache("cache2", dir, sizeof(dir));
	snprintf(wt, sizeof(wt), "%s/wt2", base);
	checkout_ok(c, url, c2, wt);
	assert_exact(wt, src, c2);
	assert_file(wt, "src/util.c", "int util(void) { return 1; }\n");

	/* A file of ours in .git tells whether the worktree was made again. */
	snprintf(path, sizeof(path), "%s/.git/canary", wt);
	write_file(path, "alive\n");
	assert_int_equal(sh("cd %s && mkdir -p build/sub emptydir ro nested "
	    "src/gen && echo x >build/engine && echo y >build/sub/deep.bin && "
	    "echo o >src/main.o && echo t >notes.tmp && echo g >src/gen/g.c && "
	    "echo r >ro/file && chmod 555 ro && git init -q nested && "
	    "echo edited >README && rm src/main.c && ln -s /etc link",
	    wt), 0);
	checkout_ok(c, url, c3, wt);
	assert_exact(wt, src, c3);
	assert_file(wt, "README", "three\n");
	assert_file(wt, "docs/notes.txt", "notes\n");
	snprintf(path, sizeof(path), "%s/src/util.c", wt);
	assert_false(exists(path));
	snprintf(path, sizeof(path), "%s/build", wt);
	assert_false(exists(path));
	/* Cleaned in place, not by making the worktree again. */
	assert_file(wt, ".git/canary", "alive\n");

	/* Back to the first commit: docs/ goes away entirely. */
	checkout_ok(c, url, c1, wt);
	assert_exact(wt, src, c1);
	snprintf(path, sizeof(path), "%s/docs", wt);
	assert_false(exists(path));

	/* The same commit again, over a new build product. */
	assert_int_equal(sh("mkdir -p %s/build && echo x >%s/build/engine",
	    wt, wt), 0);
	checkout_ok(c, url, c1, wt);
	assert_exact(wt, src, c1);
	repo_cache_free(c);
}

/*
 * A commit made upstream after the clone is fetched on demand; a commit
 * the cache already has is checked out without fetching.
 */
static void
test_fetch_on_demand(void **state)
{
	struct repo_cache *c;
	char dir[256], wt[256], gitdir[512], path[512], c4[SHA_HEX];
	char c5[SHA_HEX], head[SHA_HEX], line[128];

	(void)state;
	c = new_cache("cache3", dir, sizeof(dir));
	clone_path(gitdir, sizeof(gitdir), dir, url);
	snprintf(wt, sizeof(wt), "%s/wt3", base);
	checkout_ok(c, url, c1, wt);
	capture(head, sizeof(head), "git -C %s rev-parse main", src);
	capture(line, sizeof(line),
	    "git --git-dir=%s rev-parse refs/heads/main", gitdir);
	assert_string_equal(line, head);

	/* A new commit on main: not in the cache until fetched. */
	snprintf(path, sizeof(path), "%s/new.txt", src);
	write_file(path, "four\n");
	commit_all(c4, src, "four");
	checkout_ok(c, url, c4, wt);
	assert_exact(wt, src, c4);
	assert_file(wt, "new.txt", "four\n");
	capture(line, sizeof(line),
	    "git --git-dir=%s rev-parse refs/heads/main", gitdir);
	assert_string_equal(line, c4);

	/* A commit on a new branch; a known commit fetches nothing. */
	assert_int_equal(sh("git -C %s checkout -q -b side && "
	    "echo five >%s/side.txt", src, src), 0);
	commit_all(c5, src, "five");
	assert_int_equal(sh("git -C %s checkout -q main", src), 0);
	checkout_ok(c, url, c2, wt);
	assert_exact(wt, src, c2);
	assert_int_not_equal(sh("git --git-dir=%s rev-parse -q --verify "
	    "refs/heads/side >/dev/null", gitdir), 0);
	checkout_ok(c, url, c5, wt);
	assert_exact(wt, src, c5);
	capture(line, sizeof(line),
	    "git --git-dir=%s rev-parse refs/heads/side", gitdir);
	assert_string_equal(line, c5);
	repo_cache_free(c);
}

/*
 * A commit reachable only from a tag is fetched through the tags
 * refspec, and an annotated tag's own id is peeled to its commit.
 */
static void
test_tag_only_commit(void **state)
{
	struct repo_cache *c;
	char dir[256], wt[256], path[512], c6[SHA_HEX], tag[SHA_HEX];

	(void)state;
	c = new_cache("cache4", dir, sizeof(dir));
	snprintf(wt, sizeof(wt), "%s/wt4", base);
	checkout_ok(c, url, c1, wt);

	assert_int_equal(sh("git -C %s checkout -q -b tmp", src), 0);
	snprintf(path, sizeof(path), "%s/tagged.txt", src);
	write_file(path, "tagged\n");
	commit_all(c6, src, "tagged");
	assert_int_equal(sh("git -C %s tag -a t6 -m t6 && "
	    "git -C %s checkout -q main && git -C %s branch -q -D tmp",
	    src, src, src), 0);
	capture(tag, sizeof(tag), "git -C %s rev-parse t6", src);
	assert_string_not_equal(tag, c6);

	checkout_ok(c, url, c6, wt);
	assert_exact(wt, src, c6);
	checkout_ok(c, url, c1, wt);
	checkout_ok(c, url, tag, wt);
	assert_exact(wt, src, c6);
	repo_cache_free(c);
}

/* A second cache object on the same directory reuses the clone. */
static void
test_reuse_clone(void **state)
{
	struct repo_cache *c;
	struct stat before, after;
	char dir[256], wt[256], gitdir[512], packs[600];
	int n1, n2, p1, p2, ntmp;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/cache1/sub", base);
	clone_path(gitdir, sizeof(gitdir), dir, url);
	assert_int_equal(stat(gitdir, &before), 0);
	n1 = count_entries(dir, NULL, NULL);
	snprintf(packs, sizeof(packs), "%s/objects/pack", gitdir);
	p1 = count_entries(packs, NULL, NULL);

	assert_int_equal(repo_cache_open(&c, dir), 0);
	snprintf(wt, sizeof(wt), "%s/wt5", base);
	checkout_ok(c, url, c2, wt);
	assert_exact(wt, src, c2);
	checkout_ok(c, url, c3, wt);
	assert_exact(wt, src, c3);

	assert_int_equal(stat(gitdir, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
	assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
	n2 = count_entries(dir, ".tmp", &ntmp);
	assert_int_equal(n1, n2);
	assert_int_equal(ntmp, 0);
	p2 = count_entries(packs, NULL, NULL);
	assert_int_equal(p1, p2);
	repo_cache_free(c);
}

/* Unknown commits are BL_ENOTFOUND with a message naming them. */
static void
test_unknown_sha(void **state)
{
	static const char missing[] =
	    "0123456789abcdef0123456789abcdef01234567";
	struct repo_cache *c;
	char dir[256], wt[256], want[512];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/cache1/sub", base);
	assert_int_equal(repo_cache_open(&c, dir), 0);
	snprintf(wt, sizeof(wt), "%s/wt6", base);
	assert_int_equal(repo_checkout(c, url, missing, wt, errbuf,
	    sizeof(errbuf)), BL_ENOTFOUND);
	snprintf(want, sizeof(want),
	    "commit '%s' not found in '%s' after fetch", missing, url);
	assert_string_equal(errbuf, want);
	assert_int_equal(repo_checkout(c, url, "0000000", wt, errbuf,
	    sizeof(errbuf)), BL_ENOTFOUND);
	assert_non_null(strstr(errbuf, "'0000000'"));
	/* The worktree is not touched when the commit is missing. */
	assert_false(exists(wt));
	repo_cache_free(c);
}

/* A URL that cannot be fetched is an error naming it, and leaves no clone. */
static void
test_bad_url(void **state)
{
	static const char bad[] = "file:///nonexistent/benchline/repo.git";
	struct repo_cache *c;
	char dir[256], wt[256], want[256], path[256];
	int ngit;

	(void)state;
	c = new_cache("cache5", dir, sizeof(dir));
	snprintf(wt, sizeof(wt), "%s/wt7", base);
	assert_int_equal(repo_checkout(c, bad, c1, wt, errbuf,
	    sizeof(errbuf)), BL_ERROR);
	snprintf(want, sizeof(want), "cannot fetch '%s': ", bad);
	assert_memory_equal(errbuf, want, strlen(want));
	assert_true(strlen(errbuf) > strlen(want));
	assert_int_equal(count_entries(dir, ".git", &ngit), 1);	/* the lock */
	assert_int_equal(ngit, 0);
	assert_int_equal(count_entries(dir, ".tmp", &ngit), 1);
	assert_int_equal(ngit, 0);

	/* A plain path that is not a repository. */
	snprintf(path, sizeof(path), "%s/not-a-repo", base);
	assert_int_equal(repo_checkout(c, path, c1, wt, errbuf,
	    sizeof(errbuf)), BL_ERROR);
	assert_non_null(strstr(errbuf, path));
	/* A URL scheme libgit2 does not know. */
	assert_int_equal(repo_checkout(c, "nope://example.org/x.git", c1, wt,
	    errbuf, sizeof(errbuf)), BL_ERROR);
	assert_non_null(strstr(errbuf, "'nope://example.org/x.git'"));
	assert_false(exists(wt));
	repo_cache_free(c);
}

/* Bad arguments are BL_EINVAL, never a crash. */
static void
test_bad_input(void **state)
{
	static const char *bad_shas[] = {
		"", "xyz1234", "abc12", "123456", "g123456789",
		"0123456789abcdef0123456789abcdef012345678",	/* 41 */
		"0123456 ", " 0123456", "01234-6789",
	};
	struct repo_cache *c = NULL;
	char dir[256], wt[256], small[8];
	size_t i;

	(void)state;
	assert_int_equal(repo_cache_open(&c, ""), BL_EINVAL);
	assert_null(c);
	assert_int_equal(repo_cache_open(&c, NULL), BL_EINVAL);
	assert_int_equal(repo_cache_open(&c, "/proc/self/no/such/dir"),
	    BL_ERROR);
	assert_null(c);
	repo_cache_free(NULL);

	snprintf(wt, sizeof(wt), "%s/wt8", base);
	assert_int_equal(repo_checkout(NULL, url, c1, wt, errbuf,
	    sizeof(errbuf)), BL_EINVAL);

	snprintf(dir, sizeof(dir), "%s/cache1/sub", base);
	assert_int_equal(repo_cache_open(&c, dir), 0);
	assert_int_equal(repo_checkout(c, NULL, c1, wt, errbuf,
	    sizeof(errbuf)), BL_EINVAL);
	assert_int_equal(repo_checkout(c, "", c1, wt, errbuf,
	    sizeof(errbuf)), BL_EINVAL);
	assert_string_equal(errbuf, "empty repository url");
	assert_int_equal(repo_checkout(c, "file:///x\nfoo", c1, wt, errbuf,
	    sizeof(errbuf)), BL_EINVAL);
	assert_int_equal(repo_checkout(c, url, NULL, wt, errbuf,
	    sizeof(errbuf)), BL_EINVAL);
	for (i = 0; i < sizeof(bad_shas) / sizeof(bad_shas[0]); i++) {
		assert_int_equal(repo_checkout(c, url, bad_shas[i], wt, errbuf,
		    sizeof(errbuf)), BL_EINVAL);
		assert_non_null(strstr(errbuf, "commit id"));
	}
	assert_int_equal(repo_checkout(c, url, c1, NULL, errbuf,
	    sizeof(errbuf)), BL_EINVAL);
	assert_int_equal(repo_checkout(c, url, c1, "", errbuf,
	    sizeof(errbuf)), BL_EINVAL);
	/* No buffer, or a tiny one, for the message. */
	assert_int_equal(repo_checkout(c, url, "zz", wt, NULL, 0), BL_EINVAL);
	assert_int_equal(repo_checkout(c, url, "zz", wt, small, sizeof(small)),
	    BL_EINVAL);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	/* A blob's id is not a commit. */
	capture(small, sizeof(small), "git -C %s rev-parse --short=7 %s:README",
	    src, c1);
	assert_int_equal(repo_checkout(c, url, small, wt, errbuf,
	    sizeof(errbuf)), BL_EINVAL);
	assert_non_null(strstr(errbuf, "not a commit"));
	assert_false(exists(wt));
	repo_cache_free(c);
}

/* Abbreviated and upper-case ids name the same commit. */
static void
test_abbrev_sha(void **state)
{
	struct repo_cache *c;
	char dir[256], wt[256], shortid[16], upper[SHA_HEX];
	size_t i;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/cache1/sub", base);
	assert_int_equal(repo_cache_open(&c, dir), 0);
	snprintf(wt, sizeof(wt), "%s/wt9", base);
	memcpy(shortid, c2, 7);
	shortid[7] = '\0';
	checkout_ok(c, url, shortid, wt);
	assert_exact(wt, src, c2);
	memcpy(shortid, c3, 12);
	shortid[12] = '\0';
	checkout_ok(c, url, shortid, wt);
	assert_exact(wt, src, c3);
	for (i = 0; i < 41; i++)
		upper[i] = (char)(c1[i] >= 'a' ? c1[i] - 'a' + 'A' : c1[i]);
	checkout_ok(c, url, upper, wt);
	assert_exact(wt, src, c1);
	repo_cache_free(c);
}

/*
 * A run killed during a checkout leaves lock files, a HEAD that does not
 * match the files, and half-written files; the next checkout still makes
 * the worktree exact.
 */
static void
test_killed_mid_checkout(void **state)
{
	struct repo_cache *c;
	char dir[256], wt[256];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/cache2", base);
	assert_int_equal(repo_cache_open(&c, dir), 0);
	snprintf(wt, sizeof(wt), "%s/wt2", base);
	checkout_ok(c, url, c3, wt);

	/* HEAD says c1, the files are c3's, partly damaged. */
	assert_int_equal(sh("cd %s && git update-ref --no-deref HEAD %s && "
	    "printf th >README && rm docs/notes.txt && echo x >half.o && "
	    "touch .git/index.lock .git/HEAD.lock .git/config.lock",
	    wt, c1), 0);
	checkout_ok(c, url, c1, wt);
	assert_exact(wt, src, c1);
	assert_file(wt, "README", "one\n");

	assert_int_equal(sh("cd %s && git update-ref --no-deref HEAD %s && "
	    "printf o >README && touch .git/index.lock", wt, c3), 0);
	checkout_ok(c, url, c3, wt);
	assert_exact(wt, src, c3);
	assert_file(wt, "README", "three\n");
	repo_cache_free(c);
}

/* A worktree whose repository is broken is made again from scratch. */
static void
test_corrupt_worktree(void **state)
{
	struct repo_cache *c;
	char dir[256], wt[256];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/cache2", base);
	assert_int_equal(repo_cache_open(&c, dir), 0);
	snprintf(wt, sizeof(wt), "%s/wt2", base);

	assert_int_equal(sh("echo garbage >%s/.git/index && touch %s/left.o",
	    wt, wt), 0);
	checkout_ok(c, url, c2, wt);
	assert_exact(wt, src, c2);

	assert_int_equal(sh("rm -rf %s/.git/HEAD %s/.git/objects", wt, wt), 0);
	checkout_ok(c, url, c1, wt);
	assert_exact(wt, src, c1);

	/* A .git left half made, without the marker, beside nothing else. */
	assert_int_equal(sh("cd %s && rm -rf ./* .gitignore .git/benchline",
	    wt), 0);
	checkout_ok(c, url, c3, wt);
	assert_exact(wt, src, c3);
	repo_cache_free(c);
}

/* A non-empty directory that benchline did not make is never touched. */
static void
test_foreign_worktree(void **state)
{
	struct repo_cache *c;
	char dir[256], wt[256], path[512], outer[256];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/cache1/sub", base);
	assert_int_equal(repo_cache_open(&c, dir), 0);

	snprintf(wt, sizeof(wt), "%s/precious", base);
	assert_int_equal(sh("mkdir -p %s && echo keep >%s/mine.txt", wt, wt),
	    0);
	assert_int_equal(repo_checkout(c, url, c1, wt, errbuf,
	    sizeof(errbuf)), BL_EINVAL);
	assert_non_null(strstr(errbuf, wt));
	assert_file(wt, "mine.txt", "keep\n");

	/* Someone's own clone is not ours either. */
	assert_int_equal(sh("git clone -q %s %s/their-clone && echo u "
	    ">%s/their-clone/untracked.txt", src, base, base), 0);
	snprintf(wt, sizeof(wt), "%s/their-clone", base);
	assert_int_equal(repo_checkout(c, url, c1, wt, errbuf,
	    sizeof(errbuf)), BL_EINVAL);
	assert_file(wt, "untracked.txt", "u\n");

	/* A regular file is not a worktree. */
	snprintf(path, sizeof(path), "%s/a-file", base);
	write_file(path, "x\n");
	assert_int_equal(repo_checkout(c, url, c1, path, errbuf,
	    sizeof(errbuf)), BL_ERROR);
	assert_non_null(strstr(errbuf, path));

	/* A new worktree inside another repository gets its own repository. */
	snprintf(outer, sizeof(outer), "%s/outer", base);
	assert_int_equal(sh("git init -q %s", outer), 0);
	snprintf(wt, sizeof(wt), "%s/outer/wt", base);
	checkout_ok(c, url, c2, wt);
	assert_exact(wt, src, c2);
	capture(path, sizeof(path), "git -C %s status --porcelain", outer);
	assert_string_equal(path, "?? wt/");
	repo_cache_free(c);
}

/* One worktree serves another repository, then the first one again. */
static void
test_other_repository(void **state)
{
	struct repo_cache *c;
	char dir[256], wt[256], src2[256], d1[SHA_HEX], path[512];

	(void)state;
	snprintf(src2, sizeof(src2), "%s/src2", base);
	assert_int_equal(sh("git init -q -b trunk %s", src2), 0);
	snprintf(path, sizeof(path), "%s/other.txt", src2);
	write_file(path, "other\n");
	commit_all(d1, src2, "other one");

	snprintf(dir, sizeof(dir), "%s/cache2", base);
	assert_int_equal(repo_cache_open(&c, dir), 0);
	snprintf(wt, sizeof(wt), "%s/wt2", base);
	checkout_ok(c, url, c3, wt);
	/* A plain path works as well as a file:// URL. */
	checkout_ok(c, src2, d1, wt);
	assert_exact(wt, src2, d1);
	assert_file(wt, "other.txt", "other\n");
	checkout_ok(c, url, c3, wt);
	assert_exact(wt, src, c3);
	/* Each repository has its own clone in the cache. */
	assert_int_equal(count_entries(dir, ".git", NULL), 4);
	repo_cache_free(c);
}

/*
 * A clone killed half way leaves <key>.git.tmp, and something that is not
 * a repository may sit where the clone goes: neither stops a checkout.
 */
static void
test_damaged_cache(void **state)
{
	struct repo_cache *c;
	char dir[256], wt[256], gitdir[512];
	int ntmp;

	(void)state;
	c = new_cache("cache6", dir, sizeof(dir));
	clone_path(gitdir, sizeof(gitdir), dir, url);
	assert_int_equal(sh("mkdir -p %s.tmp/objects && echo x >%s.tmp/HEAD",
	    gitdir, gitdir), 0);
	snprintf(wt, sizeof(wt), "%s/wt10", base);
	checkout_ok(c, url, c2, wt);
	assert_exact(wt, src, c2);
	assert_int_equal(count_entries(dir, ".tmp", &ntmp), 2);
	assert_int_equal(ntmp, 0);

	assert_int_equal(sh("rm -rf %s && mkdir %s && echo junk >%s/junk",
	    gitdir, gitdir, gitdir), 0);
	checkout_ok(c, url, c3, wt);
	assert_exact(wt, src, c3);
	repo_cache_free(c);
}

/* A free TCP port on 127.0.0.1, or 0. */
static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port = 0;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* Whether something accepts connections on 127.0.0.1:port. */
static int
port_open(int port)
{
	struct sockaddr_in sin;
	int fd, ok;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

/*
 * Over the smart protocol (git daemon on 127.0.0.1, as a stand-in for a
 * forge over https), a commit on no branch or tag is fetched by its id
 * when the server allows it.  libgit2's file:// transport cannot do that,
 * so there such a commit is BL_ENOTFOUND.
 */
static void
test_fetch_by_id(void **state)
{
	struct repo_cache *c;
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	char dir[256], wt[256], gurl[128], basearg[128], portarg[32];
	char gitdir[512], dangling[SHA_HEX], line[128];
	pid_t pid;
	int i, port, st, devnull;

	(void)state;
	if (sh("git daemon -h >/dev/null 2>&1; test $? -eq 129") != 0)
		skip();
	capture(dangling, sizeof(dangling), "echo dangling | git -C %s "
	    "commit-tree %s^{tree} -p %s", src, c3, c3);
	assert_int_equal(strlen(dangling), 40);
	assert_int_equal(sh("git -C %s config uploadpack.allowAnySHA1InWant "
	    "true", src), 0);

	c = new_cache("cache7", dir, sizeof(dir));
	snprintf(wt, sizeof(wt), "%s/wt11", base);
	assert_int_equal(repo_checkout(c, url, dangling, wt, errbuf,
	    sizeof(errbuf)), BL_ENOTFOUND);

	port = free_port();
	assert_int_not_equal(port, 0);
	snprintf(basearg, sizeof(basearg), "--base-path=%s", base);
	snprintf(portarg, sizeof(portarg), "--port=%d", port);
	daemon_pid = pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execlp("git", "git", "daemon", "--reuseaddr", "--export-all",
		    "--listen=127.0.0.1", portarg, basearg, base, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 250 && !port_open(port); i++)
		nanosleep(&ts, NULL);
	if (!port_open(port))
		fail_msg("git daemon did not start on port %d", port);

	snprintf(gurl, sizeof(gurl), "git://127.0.0.1:%d/src", port);
	checkout_ok(c, gurl, c2, wt);
	assert_exact(wt, src, c2);
	checkout_ok(c, gurl, dangling, wt);
	assert_exact(wt, src, dangling);
	clone_path(gitdir, sizeof(gitdir), dir, gurl);
	capture(line, sizeof(line), "git --git-dir=%s rev-parse "
	    "refs/benchline/%s", gitdir, dangling);
	assert_string_equal(line, dangling);

	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	daemon_pid = 0;
	repo_cache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_clone),
		cmocka_unit_test(test_switch_cleans),
		cmocka_unit_test(test_fetch_on_demand),
		cmocka_unit_test(test_tag_only_commit),
		cmocka_unit_test(test_reuse_clone),
		cmocka_unit_test(test_unknown_sha),
		cmocka_unit_test(test_bad_url),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_abbrev_sha),
		cmocka_unit_test(test_killed_mid_checkout),
		cmocka_unit_test(test_corrupt_worktree),
		cmocka_unit_test(test_foreign_worktree),
		cmocka_unit_test(test_other_repository),
		cmocka_unit_test(test_damaged_cache),
		cmocka_unit_test(test_fetch_by_id),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
