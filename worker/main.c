/* benchline-worker: placeholder entry until the worker lands (issue 3). */
#include <stdio.h>

int
main(void)
{
	fprintf(stderr, "benchline-worker: not built yet\n");
	return 1;
}
