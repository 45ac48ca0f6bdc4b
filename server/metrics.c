/* Prometheus metrics: requests by route and status, latency histograms, jobs by state, points ingested. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "server.h"

#define METRICS_ROUTES	48
#define METRICS_STATUSES 16

static const double buckets[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
	30, 60
};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct route_stats {
	const char	*route;		/* static strings from the route table */
	int		 status[METRICS_STATUSES];
	uint64_t	 count[METRICS_STATUSES];
	uint64_t	 bucket[NBUCKETS];
	uint64_t	 total;
	double		 sum;
};

static pthread_mutex_t		metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct route_stats	routes[METRICS_ROUTES];
static atomic_int_fast64_t	points_ingested;

void
metrics_request(const char *route, int status, double seconds)
{
	struct route_stats *rs = NULL;
	size_t i;
	int j;

	pthread_mutex_lock(&metrics_lock);
	for (i = 0; i < METRICS_ROUTES; i++) {
		if (routes[i].route == NULL)
			routes[i].route = route;
		if (strcmp(routes[i].route, route) == 0) {
			rs = &routes[i];
			break;
		}
	}
	if (rs != NULL) {
		for (j = 0; j < METRICS_STATUSES; j++) {
			if (rs->status[j] == 0)
				rs->status[j] = status;
			if (rs->status[j] == status) {
				rs->count[j]++;
				break;
			}
		}
		for (i = 0; i < NBUCKETS; i++)
			if (seconds <= buckets[i])
				rs->bucket[i]++;
		rs->total++;
		rs->sum += seconds;
	}
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_points_add(int64_t n)
{
	atomic_fetch_add(&points_ingested, n);
}

void
metrics_render(struct buf *out, struct db *db)
{
	struct dbres *res = NULL;
	size_t i, k;
	int j;

	buf_addstr(out, "# HELP benchline_http_requests_total HTTP requests "
	    "answered, by route and status.\n"
	    "# TYPE benchline_http_requests_total counter\n");
	pthread_mutex_lock(&metrics_lock);
	for (i = 0; i < METRICS_ROUTES && routes[i].route != NULL; i++)
		for (j = 0; j < METRICS_STATUSES && routes[i].status[j]; j++)
			buf_addf(out, "benchline_http_requests_total{route=\"%s\","
			    "status=\"%d\"} %llu\n", routes[i].route,
			    routes[i].status[j],
			    (unsigned long long)routes[i].count[j]);
	buf_addstr(out, "# HELP benchline_http_request_duration_seconds Time "
	    "from a request's first byte to its answer.\n"
	    "# TYPE benchline_http_request_duration_seconds histogram\n");
	for (i = 0; i < METRICS_ROUTES && routes[i].route != NULL; i++) {
		for (k = 0; k < NBUCKETS; k++)
			buf_addf(out, "benchline_http_request_duration_seconds_"
			    "bucket{route=\"%s\",le=\"%g\"} %llu\n",
			    routes[i].route, buckets[k],
			    (unsigned long long)routes[i].bucket[k]);
		buf_addf(out, "benchline_http_request_duration_seconds_bucket{"
		    "route=\"%s\",le=\"+Inf\"} %llu\n", routes[i].route,
		    (unsigned long long)routes[i].total);
		buf_addf(out, "benchline_http_request_duration_seconds_sum{"
		    "route=\"%s\"} %.6f\n", routes[i].route, routes[i].sum);
		buf_addf(out, "benchline_http_request_duration_seconds_count{"
		    "route=\"%s\"} %llu\n", routes[i].route,
		    (unsigned long long)routes[i].total);
	}
	pthread_mutex_unlock(&metrics_lock);
	buf_addf(out, "# HELP benchline_points_ingested_total Points stored by "
	    "this process.\n# TYPE benchline_points_ingested_total counter\n"
	    "benchline_points_ingested_total %lld\n",
	    (long long)atomic_load(&points_ingested));
	if (db == NULL || db_query(&res, db, "SELECT s.state, count(j.id) FROM "
	    "unnest(enum_range(NULL::job_state)) AS s(state) LEFT JOIN jobs j "
	    "ON j.state = s.state GROUP BY s.state ORDER BY s.state", 0,
	    NULL) < 0) {
		buf_addstr(out, "benchline_database_up 0\n");
		return;
	}
	buf_addstr(out, "# HELP benchline_jobs Jobs in the queue table, by "
	    "state.\n# TYPE benchline_jobs gauge\n");
	for (j = 0; j < dbres_rows(res); j++)
		buf_addf(out, "benchline_jobs{state=\"%s\"} %s\n",
		    dbres_get(res, j, 0), dbres_get(res, j, 1));
	buf_addstr(out, "# HELP benchline_database_up Whether the database "
	    "answered.\n# TYPE benchline_database_up gauge\n"
	    "benchline_database_up 1\n");
	dbres_free(res);
}

void
api_metrics(struct request *r)
{
	struct db *db = dbpool_get(req_server(r)->pool, 2000);
	struct buf b;

	buf_init(&b, 16 << 20);
	metrics_render(&b, db);
	dbpool_put(req_server(r)->pool, db);
	req_respond(r, 200, "text/plain; version=0.0.4", b.ptr, b.len);
	buf_free(&b);
}

void
api_healthz(struct request *r)
{
	reply_json(r, 200, json_pack("{s:s,s:s}", "status", "ok", "version",
	    BL_VERSION));
}

/* Ready when the database answers. */
void
api_readyz(struct request *r)
{
	struct db *db = dbpool_get(req_server(r)->pool, 2000);

	if (db == NULL || db_ping(db) < 0)
		reply_status(r, BL_EUNAVAIL, "database unreachable");
	else
		reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
	dbpool_put(req_server(r)->pool, db);
}
