/* Downsampling of long series for charts: Largest-Triangle-Three-Buckets. */
#include <math.h>
#include <stddef.h>

#include "server.h"

/*
 * LTTB as described by Sveinn Steinarsson ("Downsampling Time Series for
 * Visual Representation", 2013): the first and last points are kept; the
 * points in between are split into max_points - 2 buckets, and from each
 * bucket the point forming the largest triangle with the point chosen from
 * the previous bucket and the average of the next bucket is kept.  A spike
 * makes a large triangle, so it survives.
 */
size_t
downsample_lttb(size_t *out, const double *x, const double *y, size_t n,
    size_t max_points)
{
	size_t i, k = 0, a = 0, b, start, end, next_start, next_end, best;
	double every, avg_x, avg_y, area, best_area;

	if (max_points >= n || max_points < 3) {
		for (i = 0; i < n && (max_points >= n || i < max_points); i++)
			out[k++] = i;
		return k;
	}
	every = (double)(n - 2) / (double)(max_points - 2);
	out[k++] = 0;
	for (b = 0; b < max_points - 2; b++) {
		start = (size_t)floor((double)b * every) + 1;
		end = (size_t)floor((double)(b + 1) * every) + 1;
		next_start = end;
		next_end = (size_t)floor((double)(b + 2) * every) + 1;
		if (end > n - 1)
			end = n - 1;
		if (next_end > n)
			next_end = n;
		if (next_start >= next_end) {
			next_start = n - 1;
			next_end = n;
		}
		avg_x = avg_y = 0;
		for (i = next_start; i < next_end; i++) {
			avg_x += x[i];
			avg_y += y[i];
		}
		avg_x /= (double)(next_end - next_start);
		avg_y /= (double)(next_end - next_start);
		best = start;
		best_area = -1;
		for (i = start; i < end; i++) {
			area = fabs((x[a] - avg_x) * (y[i] - y[a]) -
			    (x[a] - x[i]) * (avg_y - y[a]));
			if (area > best_area) {
				best_area = area;
				best = i;
			}
		}
		out[k++] = best;
		a = best;
	}
	out[k++] = n - 1;
	return k;
}
