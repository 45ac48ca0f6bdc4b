/* matmul.c: the matrix-vector products that dominate a forward pass. */
#include "tinyllm.h"

/*
 * Computes out[rows] = w[rows x cols] * x[cols] with fp32 weights. This is
 * the reference path of the accuracy check; four independent partial sums
 * let the additions overlap instead of waiting on one another.
 */
void
matmul_f32(float *out, const float *w, const float *x, int rows, int cols)
{
	int i, j;

	for (i = 0; i < rows; i++) {
		const float *row = w + (size_t)i * cols;
		float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;

		for (j = 0; j + 3 < cols; j += 4) {
			s0 += row[j] * x[j];
			s1 += row[j + 1] * x[j + 1];
			s2 += row[j + 2] * x[j + 2];
			s3 += row[j + 3] * x[j + 3];
		}
		for (; j < cols; j++)
			s0 += row[j] * x[j];
		out[i] = (s0 + s1) + (s2 + s3);
	}
}

/*
 * Computes out[rows] = w[rows x cols] * x[cols] with Q8_0 weights: each
 * block's integer weights are multiplied with the fp32 activations and the
 * partial sum is scaled once by the block's scale. cols is a multiple of
 * QK8_0.
 */
void
matmul_q8(float *out, const struct q8_block *w, const float *x, int rows,
    int cols)
{
	int nb = cols / QK8_0;
	int i, b, j;

	for (i = 0; i < rows; i++) {
		const struct q8_block *row = w + (size_t)i * nb;
		float sum = 0.0f;

		for (b = 0; b < nb; b++) {
			const int8_t *qs = row[b].qs;
			const float *xb = x + b * QK8_0;
			float bsum = 0.0f;

			for (j = 0; j < QK8_0; j++)
				bsum += qs[j] * xb[j];
			sum += bsum * row[b].d;
		}
		out[i] = sum;
	}
}
