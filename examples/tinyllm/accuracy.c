/* accuracy.c: measures how far the quantized path is from the fp32 one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tinyllm.h"

/* Tokens taken from each evaluation text, BOS included. */
#define EVAL_TOKENS	65

/*
 * The fixed evaluation texts. Every position of every text is scored: the
 * model sees the text up to that position and predicts the next byte.
 */
static const char *const eval_texts[] = {
	"A quiet morning settled over the valley. Mist rose from the river "
	"while the baker opened his shutters and the first bus climbed",
	"int main(void) { for (int i = 0; i < 10; i++) printf(\"%d\\n\", i); "
	"return 0; } /* prints the digits */",
	"Ingredients: 2 cups of flour, 1 teaspoon of salt, 3 eggs, 250 ml "
	"of milk and a pinch of nutmeg. Whisk until smooth.",
	"{\"name\": \"tinyllm\", \"version\": 3, \"layers\": [4, 8, 16], "
	"\"quantized\": true, \"notes\": \"none so far\"}",
};
#define N_TEXTS	(sizeof(eval_texts) / sizeof(eval_texts[0]))

/* Writes the log-probabilities of logits[n] into out[n]. */
static void
log_softmax(double *out, const float *logits, int n)
{
	double max = logits[0], sum = 0.0, lse;
	int i;

	for (i = 1; i < n; i++)
		if (logits[i] > max)
			max = logits[i];
	for (i = 0; i < n; i++)
		sum += exp(logits[i] - max);
	lse = max + log(sum);
	for (i = 0; i < n; i++)
		out[i] = logits[i] - lse;
}

/*
 * Runs every evaluation text through the model on one path. For each
 * scored position it stores the log-probabilities in lp (positions x
 * vocab) and the argmax in top; it returns the number of positions and
 * adds the negative log-likelihood of the actual next bytes to *nll.
 */
static int
run_texts(double *lp, int *top, double *nll, const struct model *m,
    struct state *s, enum path path, int *tokens)
{
	int vocab = m->cfg.vocab, n, pos, k = 0;
	size_t t;

	*nll = 0.0;
	for (t = 0; t < N_TEXTS; t++) {
		size_t len = strlen(eval_texts[t]);

		if (len > EVAL_TOKENS - 1)
			len = EVAL_TOKENS - 1;
		n = token_encode(tokens, EVAL_TOKENS, eval_texts[t], len);
		if (n > m->cfg.seq_len)
			n = m->cfg.seq_len;
		for (pos = 0; pos + 1 < n; pos++, k++) {
			const float *logits;
			double *row = lp + (size_t)k * vocab;

			logits = model_forward(m, s, tokens[pos], pos, path);
			log_softmax(row, logits, vocab);
			top[k] = sample_argmax(logits, vocab);
			*nll -= row[tokens[pos + 1]];
		}
	}
	return k;
}

/*
 * Compares the quantized path with the fp32 reference on the evaluation
 * texts: the share of positions where both pick the same most likely next
 * token, the mean KL(p_fp32 || p_quant), and both perplexities. Without
 * quantized weights the paths are the same model, so agreement is 1 and
 * KL is 0. The state's cache is overwritten.
 */
int
accuracy_eval(struct accuracy *out, const struct model *m, struct state *s)
{
	size_t cap = N_TEXTS * EVAL_TOKENS, vocab = (size_t)m->cfg.vocab;
	double *lp_ref = NULL, *lp_q = NULL, nll_ref, nll_q, kl = 0.0;
	int *top_ref = NULL, *top_q = NULL, *tokens = NULL;
	int n, k, agree = 0, rc = -1;
	size_t i;

	memset(out, 0, sizeof(*out));
	lp_ref = malloc(cap * vocab * sizeof(double));
	lp_q = malloc(cap * vocab * sizeof(double));
	top_ref = malloc(cap * sizeof(int));
	top_q = malloc(cap * sizeof(int));
	tokens = malloc(EVAL_TOKENS * sizeof(int));
	if (lp_ref == NULL || lp_q == NULL || top_ref == NULL ||
	    top_q == NULL || tokens == NULL)
		goto out;

	n = run_texts(lp_ref, top_ref, &nll_ref, m, s, PATH_F32, tokens);
	if (m->cfg.quant == QUANT_NONE) {
		nll_q = nll_ref;
		agree = n;
	} else {
		run_texts(lp_q, top_q, &nll_q, m, s, PATH_Q8, tokens);
		for (k = 0; k < n; k++) {
			const double *p = lp_ref + (size_t)k * vocab;
			const double *q = lp_q + (size_t)k * vocab;

			agree += top_ref[k] == top_q[k];
			for (i = 0; i < vocab; i++)
				kl += exp(p[i]) * (p[i] - q[i]);
		}
	}
	out->positions = n;
	out->top1_agreement = n > 0 ? (double)agree / n : 1.0;
	out->kl_divergence = n > 0 ? kl / n : 0.0;
	out->perplexity = n > 0 ? exp(nll_q / n) : 1.0;
	out->perplexity_ref = n > 0 ? exp(nll_ref / n) : 1.0;
	rc = 0;
out:
	free(lp_ref);
	free(lp_q);
	free(top_ref);
	free(top_q);
	free(tokens);
	return rc;
}
