/* quant.c: conversion of fp32 weights to Q8_0 blocks. */
#include <math.h>

#include "tinyllm.h"

/*
 * Quantizes n fp32 values (n a multiple of QK8_0) into n / QK8_0 blocks.
 * Each block's scale maps its largest magnitude to 127, and every weight
 * is rounded to the nearest step, so the error is at most half a step.
 */
void
quant_q8_0(struct q8_block *out, const float *x, size_t n)
{
	size_t nb = n / QK8_0, b;
	int j;

	for (b = 0; b < nb; b++) {
		const float *xb = x + b * QK8_0;
		float amax = 0.0f, d, id;

		for (j = 0; j < QK8_0; j++)
			if (fabsf(xb[j]) > amax)
				amax = fabsf(xb[j]);
		d = amax / 127.0f;
		id = d != 0.0f ? 1.0f / d : 0.0f;
		out[b].d = d;
		for (j = 0; j < QK8_0; j++)
			out[b].qs[j] = (int8_t)roundf(xb[j] * id);
	}
}
