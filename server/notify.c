/* Incident e-mail: one message per incident, after a quiet period, retried with backoff until it is delivered. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "xmalloc.h"

/* "-15.0%" or "+163840 bytes/request" style text of one alert's change. */
static void
change_text(char *out, size_t len, json_t *a)
{
	const char *kind = json_string_value(json_object_get(a, "kind"));
	json_t *ch = json_object_get(a, "change_pct");

	if (strcmp(kind, "leak") == 0)
		snprintf(out, len, "leaks %.0f bytes/request",
		    json_number_value(json_object_get(a, "after")));
	else if (json_is_number(ch))
		snprintf(out, len, "%+.1f%%", json_number_value(ch));
	else
		snprintf(out, len, "changed");
}

/* An alert overturned or merged into another: not news. */
static int
invalid(json_t *a)
{
	const char *st = json_string_value(json_object_get(a, "state"));

	return st != NULL && strcmp(st, "invalid") == 0;
}

/* An alert that bisection could not place on a commit. */
static int
undecided(json_t *a)
{
	const char *st = json_string_value(json_object_get(json_object_get(
	    json_object_get(a, "details"), "bisection"), "state"));

	return st != NULL && strcmp(st, "undecided") == 0;
}

/* How the alert was confirmed and bisected, indented under it. */
static void
investigation_text(struct buf *body, json_t *details)
{
	json_t *c = json_object_get(details, "confirmation");
	json_t *b = json_object_get(details, "bisection");
	const char *state = json_string_value(json_object_get(c, "state"));

	if (state != NULL && strcmp(state, "confirmed") == 0 &&
	    json_is_true(json_object_get(c, "counted")))
		buf_addf(body, "            confirmed by counting against "
		    "%.12s: %+.1f%% (a count is exact)\n",
		    json_string_value(json_object_get(c, "reference")),
		    json_number_value(json_object_get(c, "change_pct")));
	else if (state != NULL && strcmp(state, "confirmed") == 0)
		buf_addf(body, "            confirmed by %" PRId64 " interleaved "
		    "re-runs %sagainst %.12s: %+.1f%%, p = %.2g\n",
		    (int64_t)json_integer_value(json_object_get(c, "pairs")),
		    json_is_true(json_object_get(c, "boundary")) ? "of this "
		    "commit " : "",
		    json_string_value(json_object_get(c, "reference")),
		    json_number_value(json_object_get(c, "change_pct")),
		    json_number_value(json_object_get(c, "p_value")));
	else if (state != NULL && strcmp(state, "failed") == 0)
		buf_addf(body, "            not confirmed: %s\n",
		    json_string_value(json_object_get(c, "reason")));
	state = json_string_value(json_object_get(b, "state"));
	if (state != NULL && strcmp(state, "undecided") == 0)
		buf_addf(body, "            not placed on a commit: %s\n",
		    json_string_value(json_object_get(b, "note")));
	else if (state != NULL && strcmp(state, "done") == 0 &&
	    json_is_string(json_object_get(b, "led_by")))
		buf_addf(body, "            placed on %.12s by %s (exact), "
		    "then checked on its own pairs\n",
		    json_string_value(json_object_get(b, "first_bad")),
		    json_string_value(json_object_get(b, "led_by")));
	else if (state != NULL && strcmp(state, "done") == 0)
		buf_addf(body, "            bisected in %" PRId64 " round(s) "
		    "between %.12s and %.12s: first bad commit %.12s\n",
		    (int64_t)json_integer_value(json_object_get(b, "rounds")),
		    json_string_value(json_object_get(b, "good")),
		    json_string_value(json_object_get(b, "bad")),
		    json_string_value(json_object_get(b, "first_bad")));
}

/*
 * Writes the subject and body of an incident's message.  The subject
 * names the project, the commit and the worst change; the body every
 * alert with its before and after values, significance and target, the
 * commit's author and message, and the dashboard link.  An incident whose
 * alerts are all undecided names the range and no author.
 */
void
notify_compose(struct buf *subject, struct buf *body, json_t *inc,
    const char *public_url)
{
	json_t *alerts = json_object_get(inc, "alerts"), *a, *worst = NULL;
	json_t *targets = json_object_get(inc, "targets");
	const char *sha = json_string_value(json_object_get(inc, "commit"));
	const char *msg = json_string_value(json_object_get(inc, "message"));
	double worst_abs = -INFINITY, v;
	char ch[64], line[128];
	int valid = 0, open_range = 0;
	size_t i, nt = json_array_size(targets);
	int64_t active = json_integer_value(json_object_get(inc,
	    "active_targets"));

	json_array_foreach(alerts, i, a) {
		if (invalid(a))
			continue;
		valid++;
		open_range += undecided(a);
		v = fabs(json_number_value(json_object_get(a, "change_pct")));
		if (undecided(a))
			v -= 1e6;	/* not this commit's, unless nothing else */
		if (strcmp(json_string_value(json_object_get(a, "kind")),
		    "leak") == 0)
			v = 1e9;	/* a leak outranks any percentage */
		if (v > worst_abs) {
			worst_abs = v;
			worst = a;
		}
	}
	change_text(ch, sizeof(ch), worst);
	if (valid > 0 && open_range == valid) {
		/* Seen at this commit, placed on none: nobody is named. */
		buf_addf(subject, "[benchline] %s: %s %s/%s %s up to %.8s, not "
		    "placed on a commit",
		    json_string_value(json_object_get(inc, "project")),
		    json_string_value(json_object_get(worst, "kind")),
		    json_string_value(json_object_get(worst, "scenario")),
		    json_string_value(json_object_get(worst, "metric")), ch, sha);
		buf_addf(body, "Seen at %s; bisection could not tell which "
		    "commit of its range did it, so no author is named.\n\n",
		    sha);
	} else {
		buf_addf(subject, "[benchline] %s %.8s: %s %s/%s %s",
		    json_string_value(json_object_get(inc, "project")), sha,
		    json_string_value(json_object_get(worst, "kind")),
		    json_string_value(json_object_get(worst, "scenario")),
		    json_string_value(json_object_get(worst, "metric")), ch);
		buf_addf(body, "Commit %s by %s\n", sha,
		    json_string_value(json_object_get(inc, "author")));
		snprintf(line, sizeof(line), "%s", msg ? msg : "");
		line[strcspn(line, "\n")] = '\0';
		buf_addf(body, "    %s\n\n", line);
	}
	buf_addf(body, "Incident %" PRId64 ": %zu alert%s on %zu of %" PRId64
	    " target%s (", (int64_t)json_integer_value(json_object_get(inc,
	    "id")), json_array_size(alerts), json_array_size(alerts) == 1 ?
	    "" : "s", nt, active, active == 1 ? "" : "s");
	json_array_foreach(targets, i, a)
		buf_addf(body, "%s%s", i ? ", " : "", json_string_value(a));
	buf_addf(body, ")%s\n\n", (int64_t)nt >= active && active > 1 ?
	    ": every target" : (int64_t)nt < active ? ": not every target" : "");
	json_array_foreach(alerts, i, a) {
		if (invalid(a))
			continue;
		change_text(ch, sizeof(ch), a);
		buf_addf(body, "%-11s %s/%s on %s: %.6g -> %.6g %s (%s)",
		    json_string_value(json_object_get(a, "kind")),
		    json_string_value(json_object_get(a, "scenario")),
		    json_string_value(json_object_get(a, "metric")),
		    json_string_value(json_object_get(a, "target")),
		    json_number_value(json_object_get(a, "before")),
		    json_number_value(json_object_get(a, "after")),
		    json_string_value(json_object_get(a, "unit")), ch);
		if (json_is_number(json_object_get(a, "p_value")))
			buf_addf(body, ", p = %.2g", json_number_value(
			    json_object_get(a, "p_value")));
		/* A suspicion taken to confirmation has one run, no runs_after. */
		if (json_object_get(json_object_get(a, "details"),
		    "runs_after") != NULL)
			buf_addf(body, ", %" PRId64 " runs against %" PRId64,
			    (int64_t)json_integer_value(json_object_get(
			    json_object_get(a, "details"), "runs_after")),
			    (int64_t)json_integer_value(json_object_get(
			    json_object_get(a, "details"), "baseline_runs")));
		if (json_array_size(json_object_get(json_object_get(a,
		    "details"), "suspect_runs")) > 0)
			buf_addstr(body, "; suspect runs were set aside");
		buf_addstr(body, "\n");
		investigation_text(body, json_object_get(a, "details"));
	}
	buf_addf(body, "\nDashboard: %s/#/incidents/%" PRId64 "\n", public_url,
	    (int64_t)json_integer_value(json_object_get(inc, "id")));
}

/* Records the outcome of one delivery attempt. */
static int
mark(struct db *db, int64_t id, const char *state, const char *error,
    int retry_in_s)
{
	struct dbparams p = { .n = 0 };

	dbp_int(&p, id);
	dbp_str(&p, state);
	dbp_str(&p, error);
	dbp_int(&p, retry_in_s);
	return db_queryp(NULL, db, "UPDATE incidents SET mail_state = "
	    "$2::mail_state, mail_error = $3, mail_attempts = mail_attempts + "
	    "CASE WHEN $2 = 'none' THEN 0 ELSE 1 END, mail_next_at = now() + "
	    "make_interval(secs => $4), mailed_at = CASE WHEN $2 = 'sent' THEN "
	    "now() ELSE mailed_at END WHERE id = $1", &p);
}

int
notify_next(struct db *db, const struct settings *s)
{
	struct mail_config cfg = { s->smtp_url, s->smtp_from, s->smtp_user,
	    s->smtp_password, s->smtp_starttls, 30 };
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	struct buf subject, body;
	struct mail_message msg;
	const char **to = NULL;
	json_t *list = NULL, *inc, *subs, *e;
	char err[512], hint[64];
	int64_t id, project, attempts;
	size_t i, k = 0;
	int rc, backoff;

	if ((rc = db_begin(db)) < 0)
		return rc;
	dbp_int(&p, s->mail_delay_s);
	if ((rc = db_queryp(&res, db, "SELECT i.id, i.project_id, "
	    "i.mail_attempts, p.settings->'subscribers' FROM incidents i JOIN "
	    "projects p ON p.id = i.project_id WHERE i.mail_state = 'pending' "
	    "AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.incident_id = i.id "
	    "AND a.investigating) AND i.state <> 'invalid' "
	    "AND i.mail_next_at <= now() AND i.updated_at <= now() - "
	    "make_interval(secs => $1) ORDER BY i.id LIMIT 1 FOR UPDATE OF i "
	    "SKIP LOCKED", &p)) < 0)
		goto out;
	if (dbres_rows(res) == 0) {
		rc = 0;
		goto out;
	}
	id = dbres_int(res, 0, 0);
	project = dbres_int(res, 0, 1);
	attempts = dbres_int(res, 0, 2);
	subs = dbres_get(res, 0, 3) ? json_loads(dbres_get(res, 0, 3), 0, NULL) :
	    NULL;
	dbres_free(res);
	res = NULL;
	if (s->smtp_url == NULL || *s->smtp_url == '\0' ||
	    json_array_size(subs) == 0) {
		/* Nobody to tell: the incident stays visible in the API. */
		rc = mark(db, id, "none", s->smtp_url && *s->smtp_url ?
		    "the project has no subscribers" : "no SMTP server is "
		    "configured", 0);
		json_decref(subs);
		goto commit;
	}
	to = xcalloc(json_array_size(subs) + 1, sizeof(*to));
	json_array_foreach(subs, i, e)
		if (json_is_string(e) && mail_address_valid(json_string_value(e)))
			to[k++] = json_string_value(e);
	if ((rc = alert_incidents(&list, db, project, NULL, id)) < 0)
		goto done;
	inc = json_array_get(list, 0);
	buf_init(&subject, 4096);
	buf_init(&body, 1 << 20);
	notify_compose(&subject, &body, inc, s->public_url);
	snprintf(hint, sizeof(hint), "incident-%" PRId64, id);
	msg.to = to;
	msg.subject = subject.ptr;
	msg.body = body.ptr;
	msg.message_id_hint = hint;
	if (k == 0)
		rc = mark(db, id, "none", "no valid subscriber address", 0);
	else if ((rc = mail_send(&cfg, &msg, err, sizeof(err))) == 0) {
		log_info("incident %" PRId64 " mailed to %zu subscriber%s", id, k,
		    k == 1 ? "" : "s");
		rc = mark(db, id, "sent", NULL, 0);
	} else {
		backoff = (int)s->mail_retry_base_s << (attempts < 10 ? attempts : 10);
		if (backoff > 3600)
			backoff = 3600;
		log_warnx("incident %" PRId64 ": mail attempt %" PRId64 " failed, "
		    "retrying in %d s: %s", id, attempts + 1, backoff, err);
		rc = mark(db, id, attempts + 1 >= s->mail_max_attempts ? "failed" :
		    "pending", err, backoff);
	}
	buf_free(&subject);
	buf_free(&body);
done:
	json_decref(list);
	json_decref(subs);
	free(to);
commit:
	if (rc == 0 && (rc = db_commit(db)) == 0)
		return 1;
out:
	dbres_free(res);
	db_rollback(db);
	return rc;
}
