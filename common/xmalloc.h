/* Allocation wrappers that abort on out-of-memory, so callers need no checks. */
#ifndef BL_XMALLOC_H
#define BL_XMALLOC_H

#include <stddef.h>
#include "error.h"

void	*xmalloc(size_t size);
void	*xcalloc(size_t nmemb, size_t size);
void	*xrealloc(void *ptr, size_t size);
void	*xreallocarray(void *ptr, size_t nmemb, size_t size);
char	*xstrdup(const char *s);
char	*xstrndup(const char *s, size_t n);
/* Caller frees the result with free(). */
char	*xasprintf(const char *fmt, ...) BL_PRINTF(1, 2);

#endif
