/* SHA-256, HMAC-SHA256, hex encoding and a constant-time compare. */
#ifndef BL_SHA256_H
#define BL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN	32	/* digest size in bytes */
#define SHA256_BLOCK	64	/* block size in bytes */
#define SHA256_HEX_LEN	(2 * SHA256_LEN)	/* hex digits, no NUL */

/*
 * Streaming SHA-256 (FIPS 180-4).  The context is plain data owned by the
 * caller, usually on the stack; it holds no pointers and needs no freeing.
 * One context must not be used by two threads at once, but the functions
 * keep no other state and are thread-safe.
 *
 *	struct sha256_ctx c;
 *	sha256_init(&c);
 *	sha256_update(&c, part1, len1);
 *	sha256_update(&c, part2, len2);
 *	sha256_final(digest, &c);
 */
struct sha256_ctx {
	uint32_t	state[8];
	uint64_t	nbytes;			/* message length so far */
	uint8_t		block[SHA256_BLOCK];	/* bytes not yet compressed */
	size_t		blocklen;
};

void	sha256_init(struct sha256_ctx *c);
/* Adds len bytes; data may be NULL when len is 0. */
void	sha256_update(struct sha256_ctx *c, const void *data, size_t len);
/*
 * Writes the digest of everything added and wipes the context.  Call
 * sha256_init() again before reusing it.
 */
void	sha256_final(uint8_t out[SHA256_LEN], struct sha256_ctx *c);
/* One-shot digest of len bytes. */
void	sha256(uint8_t out[SHA256_LEN], const void *data, size_t len);

/*
 * HMAC-SHA256 (RFC 2104) of data under key.  Keys longer than the block
 * size are hashed first, as the RFC says.  Key material left on the stack
 * is wiped before returning.
 */
void	hmac_sha256(uint8_t out[SHA256_LEN], const void *key, size_t keylen,
	    const void *data, size_t len);

/*
 * Writes n bytes as 2n lowercase hex digits and a NUL: out must hold
 * 2n + 1 bytes.
 */
void	hex_encode(char *out, const uint8_t *in, size_t n);
/*
 * Decodes a NUL-terminated string of exactly 2 * outlen hex digits (either
 * case) into out.  Returns 0, or -1 if the string has another length or a
 * character that is not a hex digit; out is left untouched on failure.
 */
int	hex_decode(uint8_t *out, size_t outlen, const char *hex);

/*
 * Returns 1 if the n bytes at a and b are equal and 0 otherwise, taking the
 * same time whatever the contents, so that comparing a received MAC with
 * the expected one does not reveal how many leading bytes matched.  The
 * length itself is not secret.  n == 0 compares equal.
 */
int	ct_equal(const void *a, const void *b, size_t n);

#endif
