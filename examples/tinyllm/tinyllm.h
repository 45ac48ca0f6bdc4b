/* tinyllm.h: the one internal header of the tinyllm inference engine. */
#ifndef TINYLLM_H
#define TINYLLM_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

/* Byte-level vocabulary: the 256 byte values plus two special tokens. */
#define TOKEN_BOS	256
#define TOKEN_EOS	257
#define VOCAB_SIZE	258

/* Q8_0: blocks of 32 weights that share one fp32 scale. */
#define QK8_0		32

/* The longest request line the engine accepts, newline excluded. */
#define REQUEST_MAX	65536

/* Bounds on the model shape: a mistyped flag cannot ask for absurd memory. */
#define MAX_DIM		8192
#define MAX_LAYERS	128
#define MAX_HIDDEN	32768	/* also the widest input of any matrix */
#define MAX_SEQ_LEN	32768
#define MAX_PARAMS	2000000000LL

enum quant {
	QUANT_NONE,
	QUANT_Q8_0,
};

/* The shape of a model; every field is fixed once the model is built. */
struct config {
	int		dim;		/* width of the residual stream */
	int		layers;
	int		heads;
	int		hidden;		/* width of the SwiGLU feed-forward */
	int		seq_len;	/* context window, in tokens */
	int		vocab;
	uint64_t	seed;		/* seed of the weight generator */
	enum quant	quant;
};

/* One Q8_0 block: weight i of the block is d * qs[i]. */
struct q8_block {
	float	d;
	int8_t	qs[QK8_0];
};

/*
 * A rows x cols weight matrix stored row-major. f32 always holds the
 * reference weights; q8 holds their Q8_0 form when the model is quantized
 * and is NULL otherwise.
 */
struct matrix {
	int		 rows;
	int		 cols;
	float		*f32;
	struct q8_block	*q8;
};

struct layer {
	float		*attn_norm;	/* [dim] */
	float		*ffn_norm;	/* [dim] */
	struct matrix	 wq, wk, wv, wo;	/* [dim x dim] */
	struct matrix	 w1, w3;	/* gate and up: [hidden x dim] */
	struct matrix	 w2;		/* down: [dim x hidden] */
};

struct model {
	struct config	 cfg;
	long long	 params;
	float		*tok_emb;	/* [vocab x dim], fp32 in both paths */
	struct layer	*layer;		/* [layers] */
	float		*final_norm;	/* [dim] */
	struct matrix	 wcls;		/* [vocab x dim] */
	float		*rope_cos;	/* [seq_len x head_size / 2] */
	float		*rope_sin;
};

/* The activations and the KV cache of one sequence being decoded. */
struct state {
	float	*x;		/* residual stream [dim] */
	float	*xb, *xb2;	/* scratch [dim] */
	float	*hb, *hb2;	/* scratch [hidden] */
	float	*q;		/* query [dim] */
	float	*att;		/* attention scores [heads x seq_len] */
	float	*logits;	/* [vocab] */
	float	*key_cache;	/* [layers x seq_len x dim] */
	float	*value_cache;	/* [layers x seq_len x dim] */
};

/* Which weights a forward pass uses. */
enum path {
	PATH_F32,
	PATH_Q8,
};

/* The result of an accuracy run of the quantized path against fp32. */
struct accuracy {
	int	positions;
	double	top1_agreement;
	double	kl_divergence;
	double	perplexity;
	double	perplexity_ref;
};

/* One parsed request line; strings point into the caller's line buffer. */
struct request {
	int		 has_id;
	int		 id_is_string;
	long long	 id_num;
	const char	*id_str;
	size_t		 id_len;

	int		 accuracy;
	long long	 prompt_tokens;	/* -1 when absent */
	long long	 max_tokens;	/* -1 when absent */
	double		 temperature;
	double		 top_p;
	uint64_t	 seed;
	const char	*prompt;	/* NULL if absent; may hold NUL bytes */
	size_t		 prompt_len;
};

/* A candidate token of nucleus sampling and its probability. */
struct candidate {
	float	p;
	int	token;
};

struct server;

/* accuracy.c */
int		 accuracy_eval(struct accuracy *out, const struct model *m,
		     struct state *s);

/* matmul.c */
void		 matmul_f32(float *out, const float *w, const float *x,
		     int rows, int cols);
void		 matmul_q8(float *out, const struct q8_block *w, const float *x,
		     int rows, int cols);

/* model.c */
int		 model_new(struct model **out, const struct config *cfg);
void		 model_free(struct model *m);
long long	 model_param_count(const struct config *cfg);
int		 model_state_new(struct state **out, const struct model *m);
void		 model_state_free(struct state *s);
float		*model_forward(const struct model *m, struct state *s,
		     int token, int pos, enum path path);

/* quant.c */
void		 quant_q8_0(struct q8_block *out, const float *x, size_t n);

/*
 * request.c: parses one request line in place (string escapes are decoded
 * inside line). Returns 0, or -1 with a message in err. out->has_id and
 * the id fields are valid even on failure when the id was read.
 */
int		 request_parse(struct request *out, char *line, size_t len,
		     char *err, size_t errlen);

/* rng.c */
uint64_t	 rng_next(uint64_t *state);
float		 rng_uniform(uint64_t *state);
uint64_t	 rng_seed(uint64_t seed, uint64_t stream);

/* sample.c */
int		 sample_argmax(const float *logits, int n);
int		 sample_topp(const float *logits, int n, float temperature,
		     float top_p, uint64_t *rng, struct candidate *scratch);

/*
 * serve.c: answers one request line with one reply line on out. The
 * server borrows the model; caller frees with serve_free().
 */
int		 serve_new(struct server **out, const struct model *m);
void		 serve_free(struct server *srv);
void		 serve_line(struct server *srv, char *line, size_t len,
		     FILE *out);
void		 serve_error(FILE *out, const struct request *req,
		     const char *msg);

/* token.c */
int		 token_prompt(int *out, int n);
int		 token_encode(int *out, int max, const char *text, size_t len);

#endif
