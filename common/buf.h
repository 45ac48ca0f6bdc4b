/* Growable byte buffers with a hard maximum set when they are created. */
#ifndef BL_BUF_H
#define BL_BUF_H

#include <stddef.h>
#include "error.h"

/*
 * A buffer always holds a NUL after its last byte, so ptr can be read as a
 * C string.  Appending past max fails with BL_ETOOBIG and leaves the
 * buffer as it was.  A zeroed struct buf is not usable: call buf_init().
 */
struct buf {
	char	*ptr;
	size_t	 len;
	size_t	 cap;
	size_t	 max;
};

void	 buf_init(struct buf *b, size_t max);
int	 buf_add(struct buf *b, const void *data, size_t len);
int	 buf_addstr(struct buf *b, const char *s);
int	 buf_addf(struct buf *b, const char *fmt, ...) BL_PRINTF(2, 3);
void	 buf_reset(struct buf *b);
/* Hands the bytes to the caller, who frees them with free(). */
char	*buf_detach(struct buf *b);
void	 buf_free(struct buf *b);

/*
 * A ring that keeps only the last max bytes written to it: the tail of a
 * build log or of an engine's stderr.
 */
struct tailbuf {
	char	*ptr;
	size_t	 max;
	size_t	 start;
	size_t	 len;
	size_t	 dropped;	/* bytes that fell off the front */
};

void	 tailbuf_init(struct tailbuf *t, size_t max);
void	 tailbuf_add(struct tailbuf *t, const void *data, size_t len);
/* Returns the kept bytes as a new string; caller frees. */
char	*tailbuf_str(const struct tailbuf *t);
void	 tailbuf_free(struct tailbuf *t);

#endif
