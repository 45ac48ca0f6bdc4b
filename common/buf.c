/* Growable byte buffers with a hard maximum, and a tail-keeping ring. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

void
buf_init(struct buf *b, size_t max)
{
	b->cap = 64;
	b->ptr = xmalloc(b->cap);
	b->ptr[0] = '\0';
	b->len = 0;
	b->max = max;
}

/* Makes room for len more bytes plus the NUL, within the maximum. */
static int
buf_grow(struct buf *b, size_t len)
{
	size_t want;

	if (len > b->max - b->len)
		return BL_ETOOBIG;
	want = b->len + len + 1;
	if (want <= b->cap)
		return 0;
	while (b->cap < want)
		b->cap *= 2;
	b->ptr = xrealloc(b->ptr, b->cap);
	return 0;
}

int
buf_add(struct buf *b, const void *data, size_t len)
{
	int rc;

	if ((rc = buf_grow(b, len)) < 0)
		return rc;
	memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
	return 0;
}

int
buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/* Prints straight into the free space; only a text that does not fit is printed twice. */
int
buf_addf(struct buf *b, const char *fmt, ...)
{
	size_t room = b->cap - b->len;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(b->ptr + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->ptr[b->len] = '\0';
		return BL_ERROR;
	}
	if ((size_t)n < room && (size_t)n <= b->max - b->len) {
		b->len += (size_t)n;
		return 0;
	}
	b->ptr[b->len] = '\0';
	if ((rc = buf_grow(b, (size_t)n)) < 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	b->ptr[0] = '\0';
}

char *
buf_detach(struct buf *b)
{
	char *p = b->ptr;

	b->ptr = NULL;
	b->len = b->cap = 0;
	return p;
}

void
buf_free(struct buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->cap = 0;
}

void
tailbuf_init(struct tailbuf *t, size_t max)
{
	t->ptr = xmalloc(max ? max : 1);
	t->max = max;
	t->start = t->len = t->dropped = 0;
}

void
tailbuf_add(struct tailbuf *t, const void *data, size_t len)
{
	const char *p = data;
	size_t i;

	if (t->max == 0) {
		t->dropped += len;
		return;
	}
	if (len > t->max) {
		t->dropped += len - t->max;
		p += len - t->max;
		len = t->max;
	}
	for (i = 0; i < len; i++) {
		if (t->len < t->max) {
			t->ptr[(t->start + t->len) % t->max] = p[i];
			t->len++;
		} else {
			t->ptr[t->start] = p[i];
			t->start = (t->start + 1) % t->max;
			t->dropped++;
		}
	}
}

char *
tailbuf_str(const struct tailbuf *t)
{
	char *s = xmalloc(t->len + 1);
	size_t i;

	for (i = 0; i < t->len; i++)
		s[i] = t->ptr[(t->start + i) % t->max];
	s[t->len] = '\0';
	return s;
}

void
tailbuf_free(struct tailbuf *t)
{
	free(t->ptr);
	t->ptr = NULL;
}
