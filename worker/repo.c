/* Repository clones and commit checkouts: the only file that calls libgit2. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "log.h"
#include "sha256.h"
#include "worker.h"
#include "xmalloc.h"

/*
 * Layout on disk.
 *
 * The cache directory holds, per repository URL, a bare repository named
 * after the SHA-256 of the URL, and a lock file beside it:
 *
 *	<dir>/<sha256(url)>.git		bare; its branches and tags mirror the
 *					remote's; remote "origin" names the url
 *	<dir>/<sha256(url)>.lock	flock()ed while cloning or fetching
 *
 * The first clone is made in <sha256(url)>.git.tmp and renamed into place
 * only once its first fetch succeeded, so a clone killed half way, or one
 * of a bad URL, leaves no repository that later jobs would trust.  Fetches
 * into an existing clone need no such care: libgit2 writes packs and refs
 * through temporary files and renames, so an interrupted fetch leaves the
 * clone as it was.  Two workers sharing a cache serialize on the lock file.
 *
 * Each worktree is an ordinary non-bare repository, <worktree>/.git, whose
 * objects/info/alternates points at the cache's objects directory.  It
 * holds no objects of its own, so making one costs nothing, fetches happen
 * once in the cache, and switching commits is a plain libgit2 checkout of
 * the files that differ.  Because it is a real repository, build scripts
 * that run "git rev-parse HEAD" or "git status" in it work.  Sharing the
 * cache's repository with git_repository_set_workdir() was rejected: the
 * index would live in the cache and be shared by every worktree, and git
 * run by a build would not find the repository at all.  Linked worktrees
 * (git worktree add) were rejected too: their metadata lives in the cache
 * and goes stale whenever a worktree directory is removed behind its back.
 *
 * <worktree>/.git/benchline holds the URL the worktree was made for and is
 * written last when a worktree is created: a worktree without it is not
 * ours (and is refused unless empty); a worktree made for another URL, or
 * whose alternates file does not name this cache, is emptied and made
 * again.  Checking out a commit is:
 *
 *	1. remove stale lock files a killed checkout may have left in .git;
 *	2. sweep: walk the worktree and remove every path the index does not
 *	   know, like "git clean -ffdx", opening up directories the build
 *	   made read-only;
 *	3. git_checkout_tree() with FORCE, REMOVE_UNTRACKED and REMOVE_IGNORED
 *	   and the index as its baseline: it rewrites every file that differs
 *	   from the commit, removes those the commit lacks, and writes the
 *	   index;
 *	4. detach HEAD at the commit;
 *	5. sweep again, against the new index: the guarantee that nothing but
 *	   the commit's files is left, whatever libgit2 keeps (its checkout
 *	   keeps untracked nested repositories, as "git clean -fdx" with one
 *	   -f does, and a build may well clone one).
 *
 * Whatever fails in 1-5 on an existing worktree (a corrupt index, a
 * tracked directory the build made unwritable), the worktree is emptied,
 * made again and checked out once more before an error is reported.
 *
 * A worktree serves one job at a time; nothing here locks it.  Not done:
 * submodules (gitlinks are left as empty directories), credentials other
 * than those a URL carries, and timeouts on a remote that stalls.
 */

#define URL_MAX		4096	/* longest repository URL accepted */
#define SHA_MIN		7	/* shortest abbreviated commit id accepted */
#define MARKER		"benchline"	/* names the url, in <worktree>/.git */

struct repo_cache {
	char	*dir;		/* absolute path of the cache directory */
};

static pthread_once_t	repo_once = PTHREAD_ONCE_INIT;
static int		repo_init_rc;

/*
 * Initialises libgit2 once per process.  It is never shut down: the worker
 * uses it until it exits, and each init/shutdown pair would cost ~6 ms.
 */
static void
repo_lib_init(void)
{
	repo_init_rc = git_libgit2_init();
}

/* The message of the last libgit2 error of this thread. */
static const char *
repo_gitmsg(void)
{
	const git_error *e = git_error_last();

	return e != NULL && e->message != NULL ? e->message : "unknown error";
}

/* Formats the reason into err (which may be NULL) and returns rc. */
static int BL_PRINTF(4, 5)
repo_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Creates path and its missing parents, like mkdir -p. */
static int
repo_mkdirs(const char *path, mode_t mode)
{
	char *p, *s;
	int rc = -1;

	if (*path == '\0') {
		errno = ENOENT;
		return -1;
	}
	p = xstrdup(path);
	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		if (s[-1] != '/') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST)
				goto out;
			*s = c;
		}
		if (*s == '\0')
			break;
	}
	rc = 0;
out:
	free(p);
	return rc;
}

static int	repo_rm_at(int dfd, const char *name);

/*
 * Removes everything inside directory name (relative to dfd), making
 * directories writable and searchable first when a build left them
 * read-only.  The directory itself stays.  On failure errno tells why.
 */
static int
repo_empty_at(int dfd, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd, saved = 0;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES) {
		(void)fchmodat(dfd, name, S_IRWXU, 0);
		fd = openat(dfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (repo_rm_at(fd, de->d_name) == 0)
			continue;
		if (errno == EACCES || errno == EPERM) {
			/* This directory is read-only: open it up. */
			(void)fchmod(fd, S_IRWXU);
			if (repo_rm_at(fd, de->d_name) == 0)
				continue;
		}
		saved = errno;
	}
	closedir(d);
	errno = saved;
	return saved != 0 ? -1 : 0;
}

/* Removes name (relative to dfd) and, for a directory, all it holds. */
static int
repo_rm_at(int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISDIR(st.st_mode)) {
		if (repo_empty_at(dfd, name) < 0)
			return -1;
		if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			return -1;
	} else if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

/* Reads a small file into a new string; NULL if it is missing or unreadable. */
static char *
repo_slurp(const char *path, size_t max)
{
	char *s;
	size_t n;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL)
		return NULL;
	s = xmalloc(max + 1);
	n = fread(s, 1, max, f);
	s[n] = '\0';
	if (ferror(f)) {
		free(s);
		s = NULL;
	}
	fclose(f);
	return s;
}

/* Writes text to path, replacing it through a temporary file. */
static int
repo_write(const char *path, const char *text)
{
	char *tmp;
	FILE *f;
	int rc = -1;

	tmp = xasprintf("%s.tmp", path);
	if ((f = fopen(tmp, "we")) == NULL)
		goto out;
	if (fputs(text, f) == EOF) {
		fclose(f);
		goto out;
	}
	if (fclose(f) == EOF || rename(tmp, path) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		(void)unlink(tmp);
	free(tmp);
	return rc;
}

/* Checks repo_checkout()'s inputs, so that none reaches libgit2 unchecked. */
static int
repo_check_args(const char *url, const char *sha, const char *worktree,
    char *err, size_t errlen)
{
	size_t i, n;

	if (url == NULL || *url == '\0')
		return repo_err(err, errlen, BL_EINVAL, "empty repository url");
	n = strlen(url);
	if (n > URL_MAX)
		return repo_err(err, errlen, BL_EINVAL,
		    "repository url is longer than %d bytes", URL_MAX);
	for (i = 0; i < n; i++)
		if ((unsigned char)url[i] < 0x20 || url[i] == 0x7f)
			return repo_err(err, errlen, BL_EINVAL,
			    "repository url '%.200s' holds a control character",
			    url);
	if (sha == NULL || *sha == '\0')
		return repo_err(err, errlen, BL_EINVAL, "empty commit id");
	n = strlen(sha);
	for (i = 0; i < n && i <= GIT_OID_HEXSZ; i++)
		if (!((sha[i] >= '0' && sha[i] <= '9') ||
		    (sha[i] >= 'a' && sha[i] <= 'f') ||
		    (sha[i] >= 'A' && sha[i] <= 'F')))
			break;
	if (i != n || n < SHA_MIN || n > GIT_OID_HEXSZ)
		return repo_err(err, errlen, BL_EINVAL,
		    "bad commit id '%.64s': want %d to %d hex digits",
		    sha, SHA_MIN, GIT_OID_HEXSZ);
	if (worktree == NULL || *worktree == '\0')
		return repo_err(err, errlen, BL_EINVAL, "empty worktree path");
	if (strlen(worktree) > PATH_MAX / 2)
		return repo_err(err, errlen, BL_EINVAL,
		    "worktree path '%.200s...' is too long", worktree);
	return 0;
}

/* Takes the cache's lock for one repository; returns the fd to close. */
static int
repo_lock(const char *path, char *err, size_t errlen)
{
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return repo_err(err, errlen, BL_ERROR,
		    "cannot open lock '%s': %s", path, strerror(errno));
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			repo_err(err, errlen, BL_ERROR, "cannot lock '%s': %s",
			    path, strerror(errno));
			close(fd);
			return BL_ERROR;
		}
	}
	return fd;
}

/*
 * Fetches refspecs from url into repo with an anonymous remote, so that
 * what is fetched never depends on the remote configuration on disk.
 * Tags come through the explicit tags refspec only, not auto-following.
 *
 * url.<base>.insteadOf rewriting is skipped, not only because the URL of
 * a job should mean the same on every worker: libgit2 1.5.1 reads those
 * keys with a regular expression and leaks ~20 KB of PCRE2 match data
 * for every configuration entry that does not match (fixed upstream by
 * libgit2 pull request 6382), on every remote it creates.
 */
static int
repo_fetch(git_repository *repo, const char *url, const char **specs,
    size_t nspecs, char *err, size_t errlen)
{
	git_remote_create_options ro;
	git_fetch_options fo;
	git_strarray refspecs = { (char **)specs, nspecs };
	git_remote *remote = NULL;
	int rc = BL_ERROR;

	/* The _INIT macros leave fields out, which -Wextra rejects. */
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.update_fetchhead = 0;
	fo.prune = GIT_FETCH_NO_PRUNE;
	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF |
	    GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if (git_remote_create_with_opts(&remote, url, &ro) < 0 ||
	    git_remote_fetch(remote, &refspecs, &fo, NULL) < 0) {
		repo_err(err, errlen, BL_ERROR, "cannot fetch '%s': %s", url,
		    repo_gitmsg());
		goto out;
	}
	rc = 0;
out:
	git_remote_free(remote);
	return rc;
}

static const char *repo_branch_specs[] = {
	"+refs/heads/*:refs/heads/*",
	"+refs/tags/*:refs/tags/*",
};

/*
 * Makes the first clone of url at gitdir: a bare repository initialised
 * and fetched in gitdir.tmp, then renamed into place.  Called with the
 * repository's lock held.
 */
static int
repo_clone(const char *gitdir, const char *url, char *err, size_t errlen)
{
	git_repository_init_options io;
	git_repository *repo = NULL;
	git_config *cfg = NULL;
	char *tmp;
	int rc = BL_ERROR;

	git_repository_init_options_init(&io,
	    GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	tmp = xasprintf("%s.tmp", gitdir);
	if (repo_rm_at(AT_FDCWD, tmp) < 0) {
		repo_err(err, errlen, BL_ERROR, "cannot remove '%s': %s", tmp,
		    strerror(errno));
		goto out;
	}
	io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_NO_REINIT |
	    GIT_REPOSITORY_INIT_MKDIR;
	if (git_repository_init_ext(&repo, tmp, &io) < 0) {
		repo_err(err, errlen, BL_ERROR, "cannot create '%s': %s", tmp,
		    repo_gitmsg());
		goto out;
	}
	/*
	 * For people who inspect the cache: "git fetch" there does what
	 * repo_fetch() does.  Written as plain keys, because creating a
	 * named remote leaks in libgit2 1.5.1 (see repo_fetch()).
	 */
	if (git_repository_config(&cfg, repo) < 0 ||
	    git_config_set_string(cfg, "remote.origin.url", url) < 0 ||
	    git_config_set_string(cfg, "remote.origin.fetch",
	    repo_branch_specs[0]) < 0 ||
	    git_config_set_string(cfg, "remote.origin.tagopt", "--tags") < 0) {
		repo_err(err, errlen, BL_ERROR,
		    "cannot configure remote '%s' in '%s': %s", url, tmp,
		    repo_gitmsg());
		goto out;
	}
	git_config_free(cfg);
	cfg = NULL;
	if ((rc = repo_fetch(repo, url, repo_branch_specs,
	    BL_ARRAY_LEN(repo_branch_specs), err, errlen)) < 0)
		goto out;
	git_repository_free(repo);
	repo = NULL;
	if (rename(tmp, gitdir) < 0) {
		rc = repo_err(err, errlen, BL_ERROR,
		    "cannot rename '%s' to '%s': %s", tmp, gitdir,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	git_config_free(cfg);
	git_repository_free(repo);
	if (rc < 0)
		(void)repo_rm_at(AT_FDCWD, tmp);
	free(tmp);
	return rc;
}

/*
 * Finds the commit named by the full or abbreviated id sha in repo.  An
 * annotated tag's id is peeled to its commit.  BL_ENOTFOUND without a
 * message when it is not there; BL_EINVAL for an ambiguous prefix or an
 * object that is not a commit.
 */
static int
repo_resolve(git_oid *out, git_repository *repo, const char *sha,
    const char *url, char *err, size_t errlen)
{
	git_object *obj = NULL, *peeled = NULL;
	git_oid prefix;
	size_t len = strlen(sha);
	int error, rc = BL_ERROR;

	if (git_oid_fromstrn(&prefix, sha, len) < 0) {
		rc = repo_err(err, errlen, BL_EINVAL, "bad commit id '%s': %s",
		    sha, repo_gitmsg());
		goto out;
	}
	error = git_object_lookup_prefix(&obj, repo, &prefix, len,
	    GIT_OBJECT_ANY);
	if (error == GIT_ENOTFOUND) {
		rc = BL_ENOTFOUND;
		goto out;
	}
	if (error == GIT_EAMBIGUOUS) {
		rc = repo_err(err, errlen, BL_EINVAL,
		    "commit id '%s' is ambiguous in '%s'", sha, url);
		goto out;
	}
	if (error < 0) {
		repo_err(err, errlen, BL_ERROR,
		    "cannot look up '%s' in '%s': %s", sha, url, repo_gitmsg());
		goto out;
	}
	if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
		rc = repo_err(err, errlen, BL_EINVAL,
		    "'%s' in '%s' is a %s, not a commit", sha, url,
		    git_object_type2string(git_object_type(obj)));
		goto out;
	}
	git_oid_cpy(out, git_object_id(peeled));
	rc = 0;
out:
	git_object_free(peeled);
	git_object_free(obj);
	return rc;
}

/*
 * Makes sure the cache holds url and the commit sha: opens the clone
 * (cloning first if there is none), and fetches only when the commit is
 * missing.  *out gets the full id of the commit.
 */
static int
repo_fetch_commit(git_oid *out, struct repo_cache *c, const char *url,
    const char *sha, char **gitdirp, char *err, size_t errlen)
{
	uint8_t digest[SHA256_LEN];
	char key[SHA256_HEX_LEN + 1], *gitdir, *lockpath = NULL;
	char *spec = NULL;
	const char *specs[1];
	git_repository *repo = NULL;
	int error, fetched = 0, lockfd = -1, rc = BL_ERROR;

	sha256(digest, url, strlen(url));
	hex_encode(key, digest, SHA256_LEN);
	gitdir = xasprintf("%s/%s.git", c->dir, key);
	lockpath = xasprintf("%s/%s.lock", c->dir, key);

	error = git_repository_open_bare(&repo, gitdir);
	if (error == GIT_ENOTFOUND) {
		if ((lockfd = repo_lock(lockpath, err, errlen)) < 0)
			goto out;
		/* Another worker may have cloned it while we waited. */
		error = git_repository_open_bare(&repo, gitdir);
	}
	if (error == GIT_ENOTFOUND) {
		/*
		 * Clones appear by rename, complete; anything else there was
		 * put there by someone else, and is in the way.
		 */
		if (access(gitdir, F_OK) == 0) {
			log_warnx("'%s' is not a repository: removing it",
			    gitdir);
			if (repo_rm_at(AT_FDCWD, gitdir) < 0) {
				repo_err(err, errlen, BL_ERROR,
				    "cannot remove '%s': %s", gitdir,
				    strerror(errno));
				goto out;
			}
		}
		log_info("cloning '%s' into '%s'", url, gitdir);
		if ((rc = repo_clone(gitdir, url, err, errlen)) < 0)
			goto out;
		rc = BL_ERROR;
		fetched = 1;
		error = git_repository_open_bare(&repo, gitdir);
	}
	if (error < 0) {
		repo_err(err, errlen, BL_ERROR,
		    "cannot open the cache of '%s' at '%s': %s", url, gitdir,
		    repo_gitmsg());
		goto out;
	}

	if ((rc = repo_resolve(out, repo, sha, url, err, errlen)) !=
	    BL_ENOTFOUND)
		goto out;
	if (lockfd < 0) {
		if ((lockfd = repo_lock(lockpath, err, errlen)) < 0) {
			rc = BL_ERROR;
			goto out;
		}
		/* Another worker may have fetched it while we waited. */
		if ((rc = repo_resolve(out, repo, sha, url, err, errlen)) !=
		    BL_ENOTFOUND)
			goto out;
	}
	if (!fetched) {
		log_info("fetching '%s' for commit '%s'", url, sha);
		if ((rc = repo_fetch(repo, url, repo_branch_specs,
		    BL_ARRAY_LEN(repo_branch_specs), err, errlen)) < 0)
			goto out;
		if ((rc = repo_resolve(out, repo, sha, url, err, errlen)) !=
		    BL_ENOTFOUND)
			goto out;
	}
	/*
	 * A commit on no branch or tag (a pull request's, a force-pushed
	 * one) can still be fetched by its full id from servers that allow
	 * it.  A failure here only means the server does not; libgit2's
	 * transport for file:// URLs and plain paths never does.
	 */
	if (strlen(sha) == GIT_OID_HEXSZ) {
		spec = xasprintf("+%s:refs/benchline/%s", sha, sha);
		specs[0] = spec;
		if (repo_fetch(repo, url, specs, 1, err, errlen) < 0)
			log_debug("%s", err);
		if ((rc = repo_resolve(out, repo, sha, url, err, errlen)) !=
		    BL_ENOTFOUND)
			goto out;
	}
	rc = repo_err(err, errlen, BL_ENOTFOUND,
	    "commit '%s' not found in '%s' after fetch", sha, url);
out:
	if (lockfd >= 0)
		close(lockfd);
	git_repository_free(repo);
	free(spec);
	free(lockpath);
	if (rc == 0)
		*gitdirp = gitdir;
	else
		free(gitdir);
	return rc;
}

/*
 * Makes <worktree>/.git: a repository without objects of its own that
 * borrows the cache's, configured so that the worker user's global git
 * configuration cannot change the files checked out.  The marker naming
 * url is written last, so a half-made .git is never taken for ours.
 */
static int
repo_wt_init(const char *worktree, const char *objdir, const char *url,
    char *err, size_t errlen)
{
	git_repository_init_options io;
	git_repository *repo = NULL;
	git_config *cfg = NULL;
	char *path = NULL, *text = NULL;
	int rc = BL_ERROR;

	git_repository_init_options_init(&io,
	    GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	io.flags = GIT_REPOSITORY_INIT_NO_REINIT | GIT_REPOSITORY_INIT_MKPATH;
	if (git_repository_init_ext(&repo, worktree, &io) < 0) {
		repo_err(err, errlen, BL_ERROR,
		    "cannot create a repository in worktree '%s': %s", worktree,
		    repo_gitmsg());
		goto out;
	}
	if (git_repository_config(&cfg, repo) < 0 ||
	    git_config_set_bool(cfg, "core.autocrlf", 0) < 0 ||
	    git_config_set_string(cfg, "core.eol", "lf") < 0 ||
	    git_config_set_bool(cfg, "core.filemode", 1) < 0 ||
	    git_config_set_bool(cfg, "core.symlinks", 1) < 0 ||
	    git_config_set_bool(cfg, "core.logallrefupdates", 0) < 0 ||
	    git_config_set_int32(cfg, "gc.auto", 0) < 0) {
		repo_err(err, errlen, BL_ERROR,
		    "cannot configure worktree '%s': %s", worktree,
		    repo_gitmsg());
		goto out;
	}
	path = xasprintf("%sobjects/info", git_repository_path(repo));
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		goto fail;
	free(path);
	path = xasprintf("%sobjects/info/alternates",
	    git_repository_path(repo));
	text = xasprintf("%s\n", objdir);
	if (repo_write(path, text) < 0)
		goto fail;
	free(path);
	free(text);
	path = xasprintf("%s" MARKER, git_repository_path(repo));
	text = xasprintf("%s\n", url);
	if (repo_write(path, text) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	repo_err(err, errlen, BL_ERROR, "cannot write '%s': %s", path,
	    strerror(errno));
out:
	free(text);
	free(path);
	git_config_free(cfg);
	git_repository_free(repo);
	return rc;
}

/*
 * Readies worktree for url.  *fresh is set when the worktree was (re)made
 * empty here, so that a failure after that is not worth a second try.
 * An existing directory that is not a benchline worktree is refused
 * unless it is empty: checking out removes every untracked file, and a
 * typo in the configuration must not wipe someone's home directory.
 */
static int
repo_wt_prepare(int *fresh, const char *worktree, const char *objdir,
    const char *url, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d = NULL;
	char *marker, *want, *path = NULL, *want_alt = NULL, *have_alt = NULL;
	char *got = NULL;
	int foreign = 0, rc = BL_ERROR;

	*fresh = 0;
	marker = xasprintf("%s/.git/" MARKER, worktree);
	want = xasprintf("%s\n", url);
	if (repo_mkdirs(worktree, 0755) < 0) {
		repo_err(err, errlen, BL_ERROR,
		    "cannot create worktree '%s': %s", worktree,
		    strerror(errno));
		goto out;
	}
	if ((got = repo_slurp(marker, URL_MAX + 2)) != NULL) {
		path = xasprintf("%s/.git/objects/info/alternates", worktree);
		have_alt = repo_slurp(path, PATH_MAX + 2);
		want_alt = xasprintf("%s\n", objdir);
		/* Ours, for this url, borrowing from this cache: keep it. */
		if (strcmp(got, want) == 0 && have_alt != NULL &&
		    strcmp(have_alt, want_alt) == 0) {
			rc = 0;
			goto out;
		}
		log_info("worktree '%s' was made for another repository or "
		    "cache, or is damaged: remaking it", worktree);
	} else {
		/* Not ours unless empty, or a .git that we left half made. */
		if ((d = opendir(worktree)) == NULL) {
			repo_err(err, errlen, BL_ERROR,
			    "cannot read worktree '%s': %s", worktree,
			    strerror(errno));
			goto out;
		}
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") != 0 &&
			    strcmp(de->d_name, "..") != 0 &&
			    strcmp(de->d_name, ".git") != 0)
				foreign = 1;
		if (foreign) {
			rc = repo_err(err, errlen, BL_EINVAL,
			    "worktree '%s' is not empty and was not made by "
			    "benchline", worktree);
			goto out;
		}
	}
	if (repo_empty_at(AT_FDCWD, worktree) < 0) {
		repo_err(err, errlen, BL_ERROR,
		    "cannot empty worktree '%s': %s", worktree,
		    strerror(errno));
		goto out;
	}
	*fresh = 1;
	rc = repo_wt_init(worktree, objdir, url, err, errlen);
out:
	if (d != NULL)
		closedir(d);
	free(got);
	free(have_alt);
	free(want_alt);
	free(path);
	free(want);
	free(marker);
	return rc;
}

/*
 * Removes every path under directory fd (rel is its path in the
 * worktree, "" or ending in '/') that index does not hold, and every
 * directory holding nothing of index.  Gitlinks (submodules) are kept
 * as they are.  rel is a PATH_MAX buffer that is restored on return.
 */
static int
repo_sweep(git_index *index, int fd, char *rel, size_t rlen)
{
	const git_index_entry *e;
	struct dirent *de;
	struct stat st;
	DIR *d;
	size_t nlen;
	int dir, sub, rc = 0;

	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (rlen == 0 && strcmp(de->d_name, ".git") == 0)
			continue;
		nlen = strlen(de->d_name);
		if (rlen + nlen + 2 > PATH_MAX) {
			rc = -1;
			errno = ENAMETOOLONG;
			continue;
		}
		memcpy(rel + rlen, de->d_name, nlen + 1);
		if (de->d_type != DT_UNKNOWN)
			dir = de->d_type == DT_DIR;
		else if (fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0)
			dir = S_ISDIR(st.st_mode);
		else
			continue;
		e = git_index_get_bypath(index, rel, 0);
		if (!dir) {
			if (e == NULL &&
			    unlinkat(dirfd(d), de->d_name, 0) < 0 &&
			    errno != ENOENT)
				rc = -1;
			continue;
		}
		if (e != NULL && e->mode == GIT_FILEMODE_COMMIT)
			continue;
		rel[rlen + nlen] = '/';
		rel[rlen + nlen + 1] = '\0';
		if (git_index_find_prefix(NULL, index, rel) == 0) {
			sub = openat(dirfd(d), de->d_name, O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 || repo_sweep(index, sub, rel,
			    rlen + nlen + 1) < 0)
				rc = -1;
		} else if (repo_rm_at(dirfd(d), de->d_name) < 0)
			rc = -1;
	}
	rel[rlen] = '\0';
	closedir(d);
	return rc;
}

/* Sweeps worktree against index (see repo_sweep()). */
static int
repo_wt_sweep(const char *worktree, git_index *index, char *err,
    size_t errlen)
{
	char rel[PATH_MAX];
	int fd;

	rel[0] = '\0';
	fd = open(worktree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || repo_sweep(index, fd, rel, 0) < 0)
		return repo_err(err, errlen, BL_ERROR,
		    "cannot remove untracked files from worktree '%s': %s",
		    worktree, strerror(errno));
	return 0;
}

/* Steps 1-5 of the comment at the top: makes worktree exactly commit id. */
static int
repo_wt_switch(const char *worktree, const git_oid *id, const char *sha,
    char *err, size_t errlen)
{
	static const char *locks[] = {
		"index.lock", "HEAD.lock", "config.lock", "packed-refs.lock",
	};
	git_checkout_options co;
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	git_index *index = NULL;
	char *path;
	size_t i;
	int rc = BL_ERROR;

	/* Nobody else uses this worktree, so any lock is a dead run's. */
	for (i = 0; i < BL_ARRAY_LEN(locks); i++) {
		path = xasprintf("%s/.git/%s", worktree, locks[i]);
		if (unlink(path) == 0)
			log_info("removed stale '%s'", path);
		free(path);
	}
	/* NO_SEARCH: never fall back on a repository above the worktree. */
	if (git_repository_open_ext(&repo, worktree,
	    GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0 ||
	    git_repository_is_bare(repo)) {
		repo_err(err, errlen, BL_ERROR,
		    "cannot open the repository of worktree '%s': %s", worktree,
		    repo ? "it is bare" : repo_gitmsg());
		goto out;
	}
	if (git_commit_lookup(&commit, repo, id) < 0 ||
	    git_commit_tree(&tree, commit) < 0) {
		repo_err(err, errlen, BL_ERROR,
		    "cannot read commit '%s' in worktree '%s': %s", sha,
		    worktree, repo_gitmsg());
		goto out;
	}
	if (git_repository_index(&index, repo) < 0) {
		repo_err(err, errlen, BL_ERROR,
		    "cannot read the index of worktree '%s': %s", worktree,
		    repo_gitmsg());
		goto out;
	}
	/*
	 * Build output goes first, by our own means: libgit2 gives up on a
	 * file in a directory the build made read-only, which would cost a
	 * whole new worktree.
	 */
	if (repo_wt_sweep(worktree, index, err, errlen) < 0)
		goto out;
	/*
	 * The baseline is the index, not HEAD: the index lists what the last
	 * checkout wrote, while HEAD may be older if that checkout was killed
	 * before it moved HEAD.  With HEAD as the baseline, a file of the
	 * index that neither HEAD nor the target holds would be kept.
	 */
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = GIT_CHECKOUT_FORCE |
	    GIT_CHECKOUT_REMOVE_UNTRACKED | GIT_CHECKOUT_REMOVE_IGNORED;
	co.baseline_index = index;
	if (git_checkout_tree(repo, (const git_object *)tree, &co) < 0 ||
	    git_repository_set_head_detached(repo, id) < 0) {
		repo_err(err, errlen, BL_ERROR,
		    "cannot check out '%s' in worktree '%s': %s", sha, worktree,
		    repo_gitmsg());
		goto out;
	}
	if (repo_wt_sweep(worktree, index, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	git_index_free(index);
	git_tree_free(tree);
	git_commit_free(commit);
	git_repository_free(repo);
	return rc;
}

/*
 * Opens the cache at dir, creating it, and initialises libgit2 on the
 * first call in the process.  Nothing is cloned until a checkout needs it.
 */
int
repo_cache_open(struct repo_cache **out, const char *dir)
{
	struct repo_cache *c;
	char *abs;

	*out = NULL;
	if (dir == NULL || *dir == '\0') {
		log_warnx("empty repository cache directory");
		return BL_EINVAL;
	}
	pthread_once(&repo_once, repo_lib_init);
	if (repo_init_rc < 0) {
		log_warnx("cannot initialise libgit2: %s", repo_gitmsg());
		return BL_ERROR;
	}
	if (repo_mkdirs(dir, 0755) < 0) {
		log_warn("cannot create repository cache '%s'", dir);
		return BL_ERROR;
	}
	/* Absolute, because worktrees' alternates files point into it. */
	if ((abs = realpath(dir, NULL)) == NULL) {
		log_warn("cannot resolve repository cache '%s'", dir);
		return BL_ERROR;
	}
	c = xcalloc(1, sizeof(*c));
	c->dir = abs;
	*out = c;
	return 0;
}

void
repo_cache_free(struct repo_cache *c)
{
	if (c == NULL)
		return;
	free(c->dir);
	free(c);
}

/*
 * Makes worktree a clean checkout of commit sha of url: the cache first
 * (clone, or fetch if the commit is missing), then the worktree (see the
 * comment at the top).  The reason of a failure is built in a local
 * buffer so that the retry can log it whatever err the caller gave.
 */
int
repo_checkout(struct repo_cache *c, const char *url, const char *sha,
    const char *worktree, char *err, size_t errlen)
{
	char hex[GIT_OID_HEXSZ + 1], why[1024];
	char *gitdir = NULL, *objdir = NULL;
	git_oid id;
	int fresh, rc;

	why[0] = '\0';
	if (c == NULL) {
		rc = repo_err(why, sizeof(why), BL_EINVAL,
		    "no repository cache");
		goto out;
	}
	if ((rc = repo_check_args(url, sha, worktree, why, sizeof(why))) < 0)
		goto out;
	if ((rc = repo_fetch_commit(&id, c, url, sha, &gitdir, why,
	    sizeof(why))) < 0)
		goto out;
	git_oid_tostr(hex, sizeof(hex), &id);
	objdir = xasprintf("%s/objects", gitdir);
	if ((rc = repo_wt_prepare(&fresh, worktree, objdir, url, why,
	    sizeof(why))) < 0)
		goto out;
	if ((rc = repo_wt_switch(worktree, &id, hex, why, sizeof(why))) == 0 ||
	    fresh)
		goto out;
	/* Whatever broke an existing worktree, make it again, once. */
	log_warnx("%s; remaking worktree '%s'", why, worktree);
	if (repo_empty_at(AT_FDCWD, worktree) < 0) {
		rc = repo_err(why, sizeof(why), BL_ERROR,
		    "cannot empty worktree '%s': %s", worktree,
		    strerror(errno));
		goto out;
	}
	if ((rc = repo_wt_init(worktree, objdir, url, why, sizeof(why))) < 0)
		goto out;
	rc = repo_wt_switch(worktree, &id, hex, why, sizeof(why));
out:
	if (rc < 0)
		repo_err(err, errlen, rc, "%s", why);
	free(objdir);
	free(gitdir);
	return rc;
}
