/* sample.c: picks the next token from the logits. */
#include <math.h>
#include <stdlib.h>

#include "tinyllm.h"

/* Returns the index of the largest of the n logits (the first on ties). */
int
sample_argmax(const float *logits, int n)
{
	int best = 0, i;

	for (i = 1; i < n; i++)
		if (logits[i] > logits[best])
			best = i;
	return best;
}

/* Orders candidates by decreasing probability, then by token. */
static int
cmp_prob_desc(const void *a, const void *b)
{
	const struct candidate *ca = a, *cb = b;

	if (ca->p > cb->p)
		return -1;
	if (ca->p < cb->p)
		return 1;
	return ca->token - cb->token;
}

/*
 * Samples from softmax(logits / temperature) restricted to the smallest
 * set of most likely tokens whose probabilities add up to top_p (nucleus
 * sampling); scratch holds n candidates. The only randomness comes from
 * rng, so a request with the same seed always gets the same tokens.
 */
int
sample_topp(const float *logits, int n, float temperature, float top_p,
    uint64_t *rng, struct candidate *scratch)
{
	float max = logits[0], sum = 0.0f, cum = 0.0f, r;
	int i, last;

	for (i = 1; i < n; i++)
		if (logits[i] > max)
			max = logits[i];
	for (i = 0; i < n; i++) {
		scratch[i].token = i;
		scratch[i].p = expf((logits[i] - max) / temperature);
		sum += scratch[i].p;
	}
	for (i = 0; i < n; i++)
		scratch[i].p /= sum;
	qsort(scratch, (size_t)n, sizeof(*scratch), cmp_prob_desc);

	/* Keep the head of the sorted list that covers top_p. */
	for (last = 0; last < n - 1; last++) {
		cum += scratch[last].p;
		if (cum >= top_p)
			break;
	}
	if (last == n - 1)
		cum += scratch[last].p;

	r = rng_uniform(rng) * cum;
	for (i = 0; i < last; i++) {
		r -= scratch[i].p;
		if (r < 0.0f)
			return scratch[i].token;
	}
	return scratch[last].token;
}
