/* model.c: weight generation and the forward pass of the llama-style model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tinyllm.h"

#define ROPE_THETA	10000.0f
#define NORM_EPS	1e-5f

/*
 * The spread of the output logits. Trained language models produce logits
 * with a standard deviation of a few units; this keeps the generated
 * model's next-token distributions peaked rather than nearly uniform.
 */
#define LOGIT_STD	2.0f

/* Tensor numbers that give every weight tensor its own random stream. */
enum {
	STREAM_EMBED,
	STREAM_CLS,
	STREAM_LAYER0,
	STREAMS_PER_LAYER = 8,
};

/*
 * Returns the number of parameters of a model of shape cfg: embeddings,
 * per-layer norms, attention and feed-forward weights, the final norm and
 * the output projection.
 */
long long
model_param_count(const struct config *cfg)
{
	long long d = cfg->dim, h = cfg->hidden, v = cfg->vocab;
	long long per_layer = 2 * d + 4 * d * d + 3 * d * h;

	return v * d + cfg->layers * per_layer + d + v * d;
}

/*
 * Fills w[n] with deterministic, roughly Gaussian values of standard
 * deviation std. Each value is the sum of four uniform draws (Irwin-Hall),
 * which is cheap, bell-shaped and has bounded tails.
 */
static void
fill_random(float *w, size_t n, float std, uint64_t seed, uint64_t stream)
{
	uint64_t rng = rng_seed(seed, stream);
	/* The sum of four U(0,1) has mean 2 and variance 1/3. */
	float scale = std * 1.7320508f;
	size_t i;

	for (i = 0; i < n; i++) {
		float u = rng_uniform(&rng) + rng_uniform(&rng) +
		    rng_uniform(&rng) + rng_uniform(&rng);

		w[i] = (u - 2.0f) * scale;
	}
}

/* Fills w[n] with the constant value. */
static void
fill_const(float *w, size_t n, float value)
{
	size_t i;

	for (i = 0; i < n; i++)
		w[i] = value;
}

/*
 * Sets up a rows x cols matrix whose weights have standard deviation std,
 * generated from the given stream, and quantizes it when asked. Returns -1
 * when memory runs out.
 */
static int
matrix_init(struct matrix *mat, int rows, int cols, float std,
    const struct config *cfg, uint64_t stream)
{
	size_t n = (size_t)rows * cols;

	mat->rows = rows;
	mat->cols = cols;
	mat->f32 = malloc(n * sizeof(float));
	if (mat->f32 == NULL)
		return -1;
	fill_random(mat->f32, n, std, cfg->seed, stream);
	if (cfg->quant == QUANT_Q8_0) {
		mat->q8 = malloc(n / QK8_0 * sizeof(struct q8_block));
		if (mat->q8 == NULL)
			return -1;
		quant_q8_0(mat->q8, mat->f32, n);
	}
	return 0;
}

static void
matrix_free(struct matrix *mat)
{
	free(mat->f32);
	free(mat->q8);
}

/*
 * Precomputes the rotary embedding angles for every position and every
 * pair of a head, so the forward pass only multiplies.
 */
static int
rope_init(struct model *m)
{
	int hs = m->cfg.dim / m->cfg.heads, half = hs / 2;
	int pos, i;

	m->rope_cos = malloc((size_t)m->cfg.seq_len * half * sizeof(float));
	m->rope_sin = malloc((size_t)m->cfg.seq_len * half * sizeof(float));
	if (m->rope_cos == NULL || m->rope_sin == NULL)
		return -1;
	for (pos = 0; pos < m->cfg.seq_len; pos++) {
		for (i = 0; i < half; i++) {
			double freq = pow(ROPE_THETA, -2.0 * i / hs);
			double angle = pos * freq;

			m->rope_cos[(size_t)pos * half + i] = (float)cos(angle);
			m->rope_sin[(size_t)pos * half + i] = (float)sin(angle);
		}
	}
	return 0;
}

/*
 * Builds a model of shape cfg with weights generated from cfg->seed.
 * Linear weights have a standard deviation of 1/sqrt(fan_in), so every
 * projection keeps unit-scale activations, and the output projection is
 * scaled to give logits of standard deviation LOGIT_STD. Caller frees with
 * model_free().
 */
int
model_new(struct model **out, const struct config *cfg)
{
	struct model *m = NULL;
	int d = cfg->dim, h = cfg->hidden, l, rc = -1;
	float sd = 1.0f / sqrtf((float)d), sh = 1.0f / sqrtf((float)h);

	*out = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto out;
	m->cfg = *cfg;
	m->params = model_param_count(cfg);
	m->tok_emb = malloc((size_t)cfg->vocab * d * sizeof(float));
	m->final_norm = malloc((size_t)d * sizeof(float));
	m->layer = calloc((size_t)cfg->layers, sizeof(struct layer));
	if (m->tok_emb == NULL || m->final_norm == NULL || m->layer == NULL)
		goto out;
	fill_random(m->tok_emb, (size_t)cfg->vocab * d, 1.0f, cfg->seed,
	    STREAM_EMBED);
	fill_const(m->final_norm, d, 1.0f);

	for (l = 0; l < cfg->layers; l++) {
		struct layer *ly = &m->layer[l];
		uint64_t s = STREAM_LAYER0 + (uint64_t)l * STREAMS_PER_LAYER;

		ly->attn_norm = malloc((size_t)d * sizeof(float));
		ly->ffn_norm = malloc((size_t)d * sizeof(float));
		if (ly->attn_norm == NULL || ly->ffn_norm == NULL)
			goto out;
		fill_const(ly->attn_norm, d, 1.0f);
		fill_const(ly->ffn_norm, d, 1.0f);
		if (matrix_init(&ly->wq, d, d, sd, cfg, s + 0) < 0 ||
		    matrix_init(&ly->wk, d, d, sd, cfg, s + 1) < 0 ||
		    matrix_init(&ly->wv, d, d, sd, cfg, s + 2) < 0 ||
		    matrix_init(&ly->wo, d, d, sd, cfg, s + 3) < 0 ||
		    matrix_init(&ly->w1, h, d, sd, cfg, s + 4) < 0 ||
		    matrix_init(&ly->w2, d, h, sh, cfg, s + 5) < 0 ||
		    matrix_init(&ly->w3, h, d, sd, cfg, s + 6) < 0)
			goto out;
	}
	if (matrix_init(&m->wcls, cfg->vocab, d, LOGIT_STD * sd, cfg,
	    STREAM_CLS) < 0)
		goto out;
	if (rope_init(m) < 0)
		goto out;
	*out = m;
	m = NULL;
	rc = 0;
out:
	model_free(m);
	return rc;
}

void
model_free(struct model *m)
{
	int l;

	if (m == NULL)
		return;
	if (m->layer != NULL) {
		for (l = 0; l < m->cfg.layers; l++) {
			struct layer *ly = &m->layer[l];

			free(ly->attn_norm);
			free(ly->ffn_norm);
			matrix_free(&ly->wq);
			matrix_free(&ly->wk);
			matrix_free(&ly->wv);
			matrix_free(&ly->wo);
			matrix_free(&ly->w1);
			matrix_free(&ly->w2);
			matrix_free(&ly->w3);
		}
	}
	free(m->layer);
	free(m->tok_emb);
	free(m->final_norm);
	matrix_free(&m->wcls);
	free(m->rope_cos);
	free(m->rope_sin);
	free(m);
}

/*
 * Allocates the activations and the KV cache for one sequence of up to
 * seq_len tokens. The cache starts zeroed. Caller frees with
 * model_state_free().
 */
int
model_state_new(struct state **out, const struct model *m)
{
	const struct config *c = &m->cfg;
	size_t kv = (size_t)c->layers * c->seq_len * c->dim;
	struct state *s;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -1;
	s->x = calloc((size_t)c->dim, sizeof(float));
	s->xb = calloc((size_t)c->dim, sizeof(float));
	s->xb2 = calloc((size_t)c->dim, sizeof(float));
	s->hb = calloc((size_t)c->hidden, sizeof(float));
	s->hb2 = calloc((size_t)c->hidden, sizeof(float));
	s->q = calloc((size_t)c->dim, sizeof(float));
	s->att = calloc((size_t)c->heads * c->seq_len, sizeof(float));
	s->logits = calloc((size_t)c->vocab, sizeof(float));
	s->key_cache = calloc(kv, sizeof(float));
	s->value_cache = calloc(kv, sizeof(float));
	if (s->x == NULL || s->xb == NULL || s->xb2 == NULL ||
	    s->hb == NULL || s->hb2 == NULL || s->q == NULL ||
	    s->att == NULL || s->logits == NULL || s->key_cache == NULL ||
	    s->value_cache == NULL) {
		model_state_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

void
model_state_free(struct state *s)
{
	if (s == NULL)
		return;
	free(s->x);
	free(s->xb);
	free(s->xb2);
	free(s->hb);
	free(s->hb2);
	free(s->q);
	free(s->att);
	free(s->logits);
	free(s->key_cache);
	free(s->value_cache);
	free(s);
}

/* out = x / rms(x) * weight, over n values. */
static void
rmsnorm(float *out, const float *x, const float *weight, int n)
{
	float ss = 0.0f;
	int i;

	for (i = 0; i < n; i++)
		ss += x[i] * x[i];
	ss = 1.0f / sqrtf(ss / n + NORM_EPS);
	for (i = 0; i < n; i++)
		out[i] = x[i] * ss * weight[i];
}

/* Turns x[n] into probabilities, in place. */
static void
softmax(float *x, int n)
{
	float max = x[0], sum = 0.0f;
	int i;

	for (i = 1; i < n; i++)
		if (x[i] > max)
			max = x[i];
	for (i = 0; i < n; i++) {
		x[i] = expf(x[i] - max);
		sum += x[i];
	}
	for (i = 0; i < n; i++)
		x[i] /= sum;
}

/* Multiplies x by the matrix with the weights the path asks for. */
static void
linear(float *out, const struct matrix *w, const float *x, enum path path)
{
	if (path == PATH_Q8 && w->q8 != NULL)
		matmul_q8(out, w->q8, x, w->rows, w->cols);
	else
		matmul_f32(out, w->f32, x, w->rows, w->cols);
}

/* Rotates each (even, odd) pair of every head of v[dim] by its angle at pos. */
static void
rope(const struct model *m, float *v, int pos)
{
	int hs = m->cfg.dim / m->cfg.heads, half = hs / 2, h, i;
	const float *fc = m->rope_cos + (size_t)pos * half;
	const float *fs = m->rope_sin + (size_t)pos * half;

	for (h = 0; h < m->cfg.heads; h++) {
		float *p = v + h * hs;

		for (i = 0; i < half; i++) {
			float a = p[2 * i], b = p[2 * i + 1];

			p[2 * i] = a * fc[i] - b * fs[i];
			p[2 * i + 1] = a * fs[i] + b * fc[i];
		}
	}
}

/*
 * Multi-head causal attention of the query in s->q over the cached keys
 * and values of positions 0..pos of one layer; the heads' outputs are
 * written side by side into out[dim].
 */
static void
attention(float *out, struct state *s, const struct config *c,
    const float *kc, const float *vc, int pos)
{
	int hs = c->dim / c->heads, h, t, i;
	float scale = 1.0f / sqrtf((float)hs);

	for (h = 0; h < c->heads; h++) {
		const float *q = s->q + h * hs;
		float *att = s->att + (size_t)h * c->seq_len;
		float *o = out + h * hs;

		for (t = 0; t <= pos; t++) {
			const float *k = kc + (size_t)t * c->dim + h * hs;
			float score = 0.0f;

			for (i = 0; i < hs; i++)
				score += q[i] * k[i];
			att[t] = score * scale;
		}
		softmax(att, pos + 1);
		for (i = 0; i < hs; i++)
			o[i] = 0.0f;
		for (t = 0; t <= pos; t++) {
			const float *v = vc + (size_t)t * c->dim + h * hs;
			float a = att[t];

			for (i = 0; i < hs; i++)
				o[i] += a * v[i];
		}
	}
}

/*
 * Runs one token at position pos through the model, appending its key and
 * value to the cache, and returns the next-token logits (borrowed; valid
 * until the next call with the same state). Positions 0..pos-1 must have
 * been run before with the same state.
 */
float *
model_forward(const struct model *m, struct state *s, int token, int pos,
    enum path path)
{
	const struct config *c = &m->cfg;
	int d = c->dim, l, i;

	memcpy(s->x, m->tok_emb + (size_t)token * d, (size_t)d * sizeof(float));
	for (l = 0; l < c->layers; l++) {
		const struct layer *ly = &m->layer[l];
		size_t off = (size_t)l * c->seq_len * d;
		float *kc = s->key_cache + off, *vc = s->value_cache + off;
		float *k = kc + (size_t)pos * d, *v = vc + (size_t)pos * d;

		/* Attention block. */
		rmsnorm(s->xb, s->x, ly->attn_norm, d);
		linear(s->q, &ly->wq, s->xb, path);
		linear(k, &ly->wk, s->xb, path);
		linear(v, &ly->wv, s->xb, path);
		rope(m, s->q, pos);
		rope(m, k, pos);
		attention(s->xb, s, c, kc, vc, pos);
		linear(s->xb2, &ly->wo, s->xb, path);
		for (i = 0; i < d; i++)
			s->x[i] += s->xb2[i];

		/* SwiGLU feed-forward block: w2(silu(w1 x) * w3 x). */
		rmsnorm(s->xb, s->x, ly->ffn_norm, d);
		linear(s->hb, &ly->w1, s->xb, path);
		linear(s->hb2, &ly->w3, s->xb, path);
		for (i = 0; i < c->hidden; i++) {
			float g = s->hb[i];

			s->hb[i] = g / (1.0f + expf(-g)) * s->hb2[i];
		}
		linear(s->xb2, &ly->w2, s->hb, path);
		for (i = 0; i < d; i++)
			s->x[i] += s->xb2[i];
	}
	rmsnorm(s->x, s->x, m->final_norm, d);
	linear(s->logits, &m->wcls, s->x, path);
	return s->logits;
}
