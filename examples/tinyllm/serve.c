/* serve.c: answers the requests of the jsonl protocol, one line each. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tinyllm.h"

/* Everything a request needs besides the model, allocated once. */
struct server {
	const struct model	*model;
	struct state		*state;
	int			*tokens;	/* [seq_len] prompt tokens */
	double			*token_ms;	/* [seq_len] per token */
	struct candidate	*scratch;	/* [vocab] for the sampler */
};

/* Returns CLOCK_MONOTONIC in milliseconds. */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * Sets up a server for the model (borrowed; it must outlive the server).
 * Caller frees with serve_free().
 */
int
serve_new(struct server **out, const struct model *m)
{
	struct server *srv;
	size_t n = (size_t)m->cfg.seq_len;

	*out = NULL;
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return -1;
	srv->model = m;
	srv->tokens = calloc(n, sizeof(int));
	srv->token_ms = calloc(n, sizeof(double));
	srv->scratch = calloc((size_t)m->cfg.vocab, sizeof(struct candidate));
	if (srv->tokens == NULL || srv->token_ms == NULL ||
	    srv->scratch == NULL || model_state_new(&srv->state, m) < 0) {
		serve_free(srv);
		return -1;
	}
	*out = srv;
	return 0;
}

void
serve_free(struct server *srv)
{
	if (srv == NULL)
		return;
	model_state_free(srv->state);
	free(srv->tokens);
	free(srv->token_ms);
	free(srv->scratch);
	free(srv);
}

/* Writes len bytes of s as a JSON string, escaping what JSON requires. */
static void
put_string(FILE *out, const char *s, size_t len)
{
	size_t i;

	fputc('"', out);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

/* Writes the request's id as it came, or null when it is not known. */
static void
put_id(FILE *out, const struct request *req)
{
	if (req == NULL || !req->has_id)
		fputs("null", out);
	else if (req->id_is_string)
		put_string(out, req->id_str, req->id_len);
	else
		fprintf(out, "%lld", req->id_num);
}

/*
 * Writes a number with six significant digits, or null when it is not
 * finite (JSON has no NaN).
 */
static void
put_number(FILE *out, double v)
{
	if (isfinite(v))
		fprintf(out, "%.6g", v);
	else
		fputs("null", out);
}

/* Writes the reply {"id":..,"error":msg} and flushes it. */
void
serve_error(FILE *out, const struct request *req, const char *msg)
{
	fputs("{\"id\":", out);
	put_id(out, req);
	fputs(",\"error\":", out);
	put_string(out, msg, strlen(msg));
	fputs("}\n", out);
	fflush(out);
}

/* Runs the accuracy evaluation and writes its reply. */
static void
serve_accuracy(struct server *srv, const struct request *req, FILE *out)
{
	struct accuracy acc;

	if (accuracy_eval(&acc, srv->model, srv->state) < 0) {
		serve_error(out, req,
		    "cannot evaluate accuracy: out of memory");
		return;
	}
	fputs("{\"id\":", out);
	put_id(out, req);
	fputs(",\"accuracy\":{\"top1_agreement\":", out);
	put_number(out, acc.top1_agreement);
	fputs(",\"kl_divergence\":", out);
	put_number(out, acc.kl_divergence);
	fputs(",\"perplexity\":", out);
	put_number(out, acc.perplexity);
	fputs(",\"perplexity_ref\":", out);
	put_number(out, acc.perplexity_ref);
	fputs("}}\n", out);
	fflush(out);
}

/*
 * Generates max_tokens tokens after the request's prompt and writes the
 * timing reply. t0 is when the request was read. token_ms[0] is the time
 * to the first token; token_ms[i] for i > 0 is the time since token i - 1.
 */
static void
serve_generate(struct server *srv, const struct request *req, double t0,
    FILE *out)
{
	const struct model *m = srv->model;
	enum path path = m->cfg.quant == QUANT_Q8_0 ? PATH_Q8 : PATH_F32;
	uint64_t rng = rng_seed(req->seed, 0x5eed);
	int n_prompt, n_gen = (int)req->max_tokens, pos, i, tok;
	double t, prev = t0, ttft = 0.0;
	float *logits = NULL;
	char msg[128];

	if (req->prompt != NULL) {
		n_prompt = token_encode(srv->tokens, m->cfg.seq_len,
		    req->prompt, req->prompt_len);
		if (n_prompt < 0) {
			snprintf(msg, sizeof(msg), "'prompt' longer than the "
			    "context window (%d tokens)", m->cfg.seq_len);
			serve_error(out, req, msg);
			return;
		}
	} else {
		n_prompt = (int)req->prompt_tokens;
	}
	if ((long long)n_prompt + req->max_tokens > m->cfg.seq_len) {
		snprintf(msg, sizeof(msg), "prompt (%d) + max_tokens (%lld) "
		    "exceeds the context window (%d)", n_prompt,
		    req->max_tokens, m->cfg.seq_len);
		serve_error(out, req, msg);
		return;
	}
	if (req->prompt == NULL)
		token_prompt(srv->tokens, n_prompt);

	/* Prefill: run the prompt token by token. */
	for (pos = 0; pos < n_prompt; pos++)
		logits = model_forward(m, srv->state, srv->tokens[pos], pos,
		    path);

	/* Decode; only byte tokens are sampled, so every request runs to
	 * max_tokens. */
	for (i = 0; i < n_gen; i++) {
		if (req->temperature == 0.0)
			tok = sample_argmax(logits, TOKEN_BOS);
		else
			tok = sample_topp(logits, TOKEN_BOS,
			    (float)req->temperature, (float)req->top_p, &rng,
			    srv->scratch);
		t = now_ms();
		srv->token_ms[i] = t - prev;
		if (i == 0)
			ttft = t - t0;
		prev = t;
		if (i + 1 < n_gen)
			logits = model_forward(m, srv->state, tok, pos++, path);
	}

	fputs("{\"id\":", out);
	put_id(out, req);
	fprintf(out, ",\"ttft_ms\":%.3f,\"tokens\":%d,\"total_ms\":%.3f,"
	    "\"token_ms\":[", ttft, n_gen, prev - t0);
	for (i = 0; i < n_gen; i++)
		fprintf(out, "%s%.3f", i > 0 ? "," : "", srv->token_ms[i]);
	fprintf(out, "],\"prompt_tokens\":%d}\n", n_prompt);
	fflush(out);
}

/*
 * Answers one request line (without its newline; modified in place) with
 * exactly one reply line: a generation, an accuracy report or an error.
 */
void
serve_line(struct server *srv, char *line, size_t len, FILE *out)
{
	double t0 = now_ms();
	struct request req;
	char err[256];

	if (request_parse(&req, line, len, err, sizeof(err)) < 0) {
		serve_error(out, &req, err);
		return;
	}
	if (req.accuracy) {
		serve_accuracy(srv, &req, out);
		return;
	}
	if (!req.has_id) {
		serve_error(out, &req, "missing 'id'");
		return;
	}
	if (req.prompt == NULL && req.prompt_tokens < 0) {
		serve_error(out, &req, "missing 'prompt_tokens' or 'prompt'");
		return;
	}
	if (req.max_tokens < 0) {
		serve_error(out, &req, "missing 'max_tokens'");
		return;
	}
	serve_generate(srv, &req, t0, out);
}
