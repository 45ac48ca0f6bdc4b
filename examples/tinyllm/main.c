/* main.c: tinyllm's flags, model start-up and the request loop on stdin. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tinyllm.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tinyllm [--dim N] [--layers N] [--heads N] [--hidden N]\n"
	    "               [--seq-len N] [--seed N] [--quant none|q8_0]\n"
	    "\n"
	    "Generates a llama-style model from the seed, prints a ready line\n"
	    "and answers one JSON request per line on stdin.\n"
	    "\n"
	    "  --dim N      width of the residual stream (default 384)\n"
	    "  --layers N   decoder layers (default 8)\n"
	    "  --heads N    attention heads (default dim / 64)\n"
	    "  --hidden N   feed-forward width (default 8/3 dim, rounded up\n"
	    "               to a multiple of 32)\n"
	    "  --seq-len N  context window in tokens (default 512)\n"
	    "  --seed N     seed of the weight generator (default 1)\n"
	    "  --quant Q    none (fp32) or q8_0 (default q8_0)\n");
}

/* Parses a decimal integer flag value in [min, max]. */
static int
parse_flag_int(long long *out, const char *flag, const char *s, long long min,
    long long max)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *out < min ||
	    *out > max) {
		fprintf(stderr, "tinyllm: invalid value '%s' for %s "
		    "(expected %lld..%lld)\n", s, flag, min, max);
		return -1;
	}
	return 0;
}

/*
 * Fills cfg from the command line. Returns 0, 1 when help was asked for,
 * or -1 with a message on stderr.
 */
static int
parse_args(struct config *cfg, int argc, char **argv)
{
	long long v, heads = 0, hidden = 0;
	int i;

	cfg->dim = 384;
	cfg->layers = 8;
	cfg->seq_len = 512;
	cfg->vocab = VOCAB_SIZE;
	cfg->seed = 1;
	cfg->quant = QUANT_Q8_0;

	for (i = 1; i < argc; i++) {
		const char *f = argv[i], *val;

		if (strcmp(f, "-h") == 0 || strcmp(f, "--help") == 0)
			return 1;
		if (i + 1 >= argc) {
			fprintf(stderr, "tinyllm: unknown flag or missing "
			    "value '%s'\n", f);
			return -1;
		}
		val = argv[++i];
		if (strcmp(f, "--dim") == 0) {
			if (parse_flag_int(&v, f, val, 32, MAX_DIM) < 0)
				return -1;
			cfg->dim = (int)v;
		} else if (strcmp(f, "--layers") == 0) {
			if (parse_flag_int(&v, f, val, 1, MAX_LAYERS) < 0)
				return -1;
			cfg->layers = (int)v;
		} else if (strcmp(f, "--heads") == 0) {
			if (parse_flag_int(&heads, f, val, 1, MAX_DIM) < 0)
				return -1;
		} else if (strcmp(f, "--hidden") == 0) {
			if (parse_flag_int(&hidden, f, val, 32, MAX_HIDDEN) < 0)
				return -1;
		} else if (strcmp(f, "--seq-len") == 0) {
			if (parse_flag_int(&v, f, val, 2, MAX_SEQ_LEN) < 0)
				return -1;
			cfg->seq_len = (int)v;
		} else if (strcmp(f, "--seed") == 0) {
			if (parse_flag_int(&v, f, val, 0, (1LL << 62)) < 0)
				return -1;
			cfg->seed = (uint64_t)v;
		} else if (strcmp(f, "--quant") == 0) {
			if (strcmp(val, "none") == 0) {
				cfg->quant = QUANT_NONE;
			} else if (strcmp(val, "q8_0") == 0) {
				cfg->quant = QUANT_Q8_0;
			} else {
				fprintf(stderr, "tinyllm: invalid value '%s' "
				    "for --quant (none or q8_0)\n", val);
				return -1;
			}
		} else {
			fprintf(stderr, "tinyllm: unknown flag '%s'\n", f);
			return -1;
		}
	}

	cfg->heads = heads > 0 ? (int)heads : (cfg->dim >= 64 ?
	    cfg->dim / 64 : 1);
	cfg->hidden = hidden > 0 ? (int)hidden :
	    (8 * cfg->dim / 3 + QK8_0 - 1) / QK8_0 * QK8_0;
	if (cfg->dim % QK8_0 != 0 || cfg->hidden % QK8_0 != 0) {
		fprintf(stderr, "tinyllm: --dim and --hidden must be multiples "
		    "of %d (the Q8_0 block size)\n", QK8_0);
		return -1;
	}
	if (cfg->dim % cfg->heads != 0 || (cfg->dim / cfg->heads) % 2 != 0) {
		fprintf(stderr, "tinyllm: --heads %d must divide --dim %d "
		    "into heads of even size\n", cfg->heads, cfg->dim);
		return -1;
	}
	if (model_param_count(cfg) > MAX_PARAMS) {
		fprintf(stderr, "tinyllm: model too large (%lld parameters, "
		    "max %lld)\n", model_param_count(cfg), MAX_PARAMS);
		return -1;
	}
	return 0;
}

/*
 * Reads one line from f into buf (capacity max + 1) without its newline,
 * NUL bytes included. Returns the length, -1 at end of input, or -2 when
 * the line is longer than max: the rest of it is then read and dropped.
 */
static long
read_line(FILE *f, char *buf, size_t max)
{
	size_t n = 0;
	int ch, toolong = 0;

	while ((ch = fgetc(f)) != EOF && ch != '\n') {
		if (n < max)
			buf[n++] = (char)ch;
		else
			toolong = 1;
	}
	if (ch == EOF && n == 0 && !toolong)
		return -1;
	buf[n] = '\0';
	if (toolong)
		return -2;
	/* Tolerate CRLF line ends. */
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return (long)n;
}

/* Returns 1 if the line holds nothing but whitespace. */
static int
is_blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct model *m = NULL;
	struct server *srv = NULL;
	struct timespec t0, t1;
	char *line = NULL;
	double load_ms;
	long n;
	int rc = 1;

	switch (parse_args(&cfg, argc, argv)) {
	case 0:
		break;
	case 1:
		usage(stdout);
		return 0;
	default:
		usage(stderr);
		return 2;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (model_new(&m, &cfg) < 0 || serve_new(&srv, m) < 0) {
		fprintf(stderr, "tinyllm: cannot build the model: out of "
		    "memory\n");
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	load_ms = (t1.tv_sec - t0.tv_sec) * 1e3 +
	    (t1.tv_nsec - t0.tv_nsec) / 1e6;
	if ((line = malloc(REQUEST_MAX + 1)) == NULL) {
		fprintf(stderr, "tinyllm: out of memory\n");
		goto out;
	}

	printf("{\"ready\":true,\"params\":%lld,\"dim\":%d,\"layers\":%d,"
	    "\"quant\":\"%s\",\"load_ms\":%.1f,\"heads\":%d,\"hidden\":%d,"
	    "\"seq_len\":%d,\"vocab\":%d}\n", m->params, cfg.dim, cfg.layers,
	    cfg.quant == QUANT_Q8_0 ? "q8_0" : "none", load_ms, cfg.heads,
	    cfg.hidden, cfg.seq_len, cfg.vocab);
	fflush(stdout);

	while ((n = read_line(stdin, line, REQUEST_MAX)) != -1) {
		if (n == -2) {
			serve_error(stdout, NULL, "request line too long");
			continue;
		}
		if (is_blank(line, (size_t)n))
			continue;
		serve_line(srv, line, (size_t)n, stdout);
	}
	rc = 0;
out:
	free(line);
	serve_free(srv);
	model_free(m);
	return rc;
}
