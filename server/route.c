/* The route table: which handler answers which method and path. */
#include <string.h>

#include "log.h"
#include "server.h"

/*
 * A pattern is a path whose segments "{}" match any one segment, captured
 * in order as the request's parameters (req_param()).
 */
struct route {
	const char	*method;
	const char	*pattern;
	const char	*name;		/* for metrics and logs */
	void		(*handler)(struct request *);
};

static const struct route routes[] = {
	{ "GET", "/healthz", "healthz", api_healthz },
	{ "GET", "/readyz", "readyz", api_readyz },
	{ "GET", "/metrics", "metrics", api_metrics },
	{ "POST", "/api/v1/jobs/claim", "jobs_claim", api_jobs_claim },
	{ "POST", "/api/v1/jobs/{}/heartbeat", "jobs_heartbeat", api_jobs_heartbeat },
	{ "POST", "/api/v1/jobs/{}/result", "jobs_result", api_jobs_result },
	{ "POST", "/api/v1/jobs/{}/fail", "jobs_fail", api_jobs_fail },
	{ "GET", "/api/v1/jobs", "jobs_list", api_jobs_list },
	{ "POST", "/api/v1/jobs", "jobs_create", api_admin_job_create },
	{ "GET", "/api/v1/projects", "projects", api_projects_list },
	{ "POST", "/api/v1/projects", "projects_create", api_admin_project_create },
	{ "GET", "/api/v1/projects/{}/series", "series", api_project_series },
	{ "GET", "/api/v1/projects/{}/commits/{}/compare", "compare", api_commit_compare },
	{ "GET", "/api/v1/series/{}/points", "points", api_series_points },
	{ "GET", "/api/v1/targets", "targets", api_targets_list },
	{ "POST", "/api/v1/targets", "targets_create", api_admin_target_create },
	{ "POST", "/api/v1/workers", "workers_create", api_admin_worker_create },
	{ "PATCH", "/api/v1/projects/{}", "projects_patch", api_project_patch },
	{ "GET", "/api/v1/alerts", "alerts", api_alerts_list },
	{ "PATCH", "/api/v1/alerts/{}", "alerts_patch", api_alert_patch },
	{ "GET", "/api/v1/incidents", "incidents", api_incidents_list },
	{ "GET", "/api/v1/incidents/{}", "incident", api_incidents_list },
	{ "GET", "/api/v1/investigations", "investigations",
	    api_investigations_list },
	{ "GET", "/api/v1/investigations/{}", "investigation",
	    api_investigations_list },
	{ "POST", "/hooks/github", "hooks_github", api_hooks_github },
	{ "POST", "/hooks/gitlab", "hooks_gitlab", api_hooks_gitlab },
	{ "GET", "/api/v1/overview", "overview", api_dash_overview },
	{ "GET", "/api/v1/projects/{}/commits", "commits", api_dash_commits },
	{ "GET", "/api/v1/projects/{}/report", "report", api_dash_report },
	{ "GET", "/api/v1/runs/{}", "run", api_dash_run },
	{ "GET", "/api/v1/series/{}/markers", "markers", api_dash_markers },
};

/* Matches path against pattern, capturing "{}" segments into r when r is set. */
static int
route_match(const char *pattern, const char *path, struct request *r)
{
	const char *p = pattern, *s = path, *end;

	while (*p != '\0' && *s != '\0') {
		if (p[0] == '{' && p[1] == '}') {
			end = s + strcspn(s, "/");
			if (end == s)
				return 0;
			if (r != NULL)
				req_add_param(r, s, (size_t)(end - s));
			s = end;
			p += 2;
			continue;
		}
		if (*p != *s)
			return 0;
		p++;
		s++;
	}
	/* A single trailing slash is tolerated. */
	if (*p == '\0' && s[0] == '/' && s[1] == '\0')
		return 1;
	return *p == '\0' && *s == '\0';
}

void
route_dispatch(struct request *r)
{
	const char *path = req_path(r), *method = req_method(r);
	int path_known = 0;
	size_t i;

	for (i = 0; i < BL_ARRAY_LEN(routes); i++) {
		if (!route_match(routes[i].pattern, path, NULL))
			continue;
		path_known = 1;
		if (strcmp(routes[i].method, method) != 0 &&
		    !(strcmp(method, "HEAD") == 0 &&
		    strcmp(routes[i].method, "GET") == 0))
			continue;
		req_set_route(r, routes[i].name);
		if (req_param(r, 0) == NULL)
			route_match(routes[i].pattern, path, r);
		routes[i].handler(r);
		return;
	}
	if (path_known) {
		req_set_route(r, "method_not_allowed");
		reply_error(r, 405, "method_not_allowed",
		    "method '%s' is not allowed on '%s'", method, path);
		return;
	}
	if (strncmp(path, "/api/", 5) == 0 || strncmp(path, "/hooks/", 7) == 0) {
		req_set_route(r, "not_found");
		reply_error(r, 404, "not_found", "no such endpoint '%s'", path);
		return;
	}
	req_set_route(r, "static");
	static_serve(r);
}
