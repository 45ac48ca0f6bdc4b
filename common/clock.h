/* Clocks: monotonic milliseconds for timeouts, wall time for records. */
#ifndef BL_CLOCK_H
#define BL_CLOCK_H

#include <stdint.h>

/* Milliseconds from an arbitrary fixed point; never goes backwards. */
int64_t	clock_mono_ms(void);
/* Monotonic time in seconds with nanosecond resolution. */
double	clock_mono_s(void);
/* Milliseconds since the Unix epoch. */
int64_t	clock_wall_ms(void);
/* Sleeps for ms milliseconds, resuming after signals. */
void	clock_sleep_ms(int64_t ms);

#endif
