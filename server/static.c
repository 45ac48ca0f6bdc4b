/* Static files: the dashboard under web_root, and its npm-installed libraries. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"
#include "xmalloc.h"

#define STATIC_MAX (32 << 20)

static const struct {
	const char *ext;
	const char *type;
} types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".map", "application/json" },
	{ ".txt", "text/plain; charset=utf-8" },
};

static const char *
content_type(const char *path)
{
	const char *dot = strrchr(path, '.');
	size_t i;

	for (i = 0; dot != NULL && i < BL_ARRAY_LEN(types); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/*
 * The npm packages the dashboard loads, served from web_root's
 * node_modules under /vendor/<package>/ (web/package.json installs them);
 * nothing else in node_modules is reachable, the test driver included.
 */
static const char *const vendor_pkgs[] = {
	"chart.js", "chartjs-adapter-date-fns", "chartjs-plugin-annotation",
	"chartjs-plugin-zoom", "hammerjs", NULL
};

/*
 * Maps a request path to a file under root: "/vendor/<pkg>/<file>.js" (or
 * .map) to root/node_modules/<pkg>/<file> for the packages above, any
 * other path to root/<path>.  Returns 0, or -1 for a path not served.
 */
static int
static_file(char *out, size_t len, const char *root, const char *path)
{
	const char *pkg, *rest, *dot;
	size_t i, n;

	if (strncmp(path, "/node_modules/", 14) == 0)
		return -1;
	if (strncmp(path, "/vendor/", 8) != 0) {
		n = (size_t)snprintf(out, len, "%s%s%s", root, path,
		    path[strlen(path) - 1] == '/' ? "index.html" : "");
		return n < len ? 0 : -1;
	}
	pkg = path + 8;
	if ((rest = strchr(pkg, '/')) == NULL)
		return -1;
	dot = strrchr(rest, '.');
	if (dot == NULL || (strcmp(dot, ".js") != 0 && strcmp(dot, ".map") != 0))
		return -1;
	for (i = 0; vendor_pkgs[i] != NULL; i++) {
		if (strlen(vendor_pkgs[i]) == (size_t)(rest - pkg) &&
		    strncmp(vendor_pkgs[i], pkg, (size_t)(rest - pkg)) == 0) {
			n = (size_t)snprintf(out, len, "%s/node_modules%s", root,
			    path + 7);
			return n < len ? 0 : -1;
		}
	}
	return -1;
}

/* Refuses paths that could leave web_root. */
static int
path_safe(const char *p)
{
	if (p[0] != '/' || strstr(p, "..") != NULL || strchr(p, '\\') != NULL ||
	    strstr(p, "//") != NULL)
		return 0;
	return 1;
}

static void
not_found(struct request *r)
{
	static const char msg[] = "not found\n";

	req_respond(r, 404, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
}

void
static_serve(struct request *r)
{
	const char *path = req_path(r), *root = req_server(r)->settings->web_root;
	char full[4096];
	struct stat st;
	char *data;
	ssize_t got;
	size_t off = 0;
	int fd;

	if (strcmp(req_method(r), "GET") != 0 &&
	    strcmp(req_method(r), "HEAD") != 0) {
		reply_error(r, 405, "method_not_allowed", "method '%s' is not "
		    "allowed on '%s'", req_method(r), path);
		return;
	}
	if (!path_safe(path)) {
		not_found(r);
		return;
	}
	if (static_file(full, sizeof(full), root, path) < 0 ||
	    (fd = open(full, O_RDONLY | O_CLOEXEC)) < 0) {
		not_found(r);
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX) {
		close(fd);
		not_found(r);
		return;
	}
	data = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size &&
	    (got = read(fd, data + off, (size_t)st.st_size - off)) > 0)
		off += (size_t)got;
	close(fd);
	req_add_header(r, "Cache-Control", "no-cache");
	req_respond(r, 200, content_type(full), data, off);
	free(data);
}
