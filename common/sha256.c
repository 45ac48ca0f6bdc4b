/* SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104), hex, constant-time compare. */
#include <string.h>

#include "sha256.h"

/*
 * The round constants: the first 32 bits of the fractional parts of the
 * cube roots of the first 64 primes (FIPS 180-4, section 4.2.2).
 */
static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5,
	0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
	0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
	0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
	0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/*
 * The initial hash value: the first 32 bits of the fractional parts of the
 * square roots of the first 8 primes (FIPS 180-4, section 5.3.3).
 */
static const uint32_t sha256_h0[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/*
 * Overwrites n bytes in a way the compiler may not drop as a dead store,
 * for key material and hash state that must not outlive its use.
 */
static void
sha256_wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;

	while (n--)
		*v++ = 0;
}

static uint32_t
ror32(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static uint32_t
load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Compresses one 64-byte block into the state (FIPS 180-4, 6.2.2). */
static void
sha256_block(uint32_t st[8], const uint8_t *blk)
{
	uint32_t w[64], a, b, c, d, e, f, g, h, t1, t2, s0, s1;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = load_be32(blk + 4 * i);
	for (i = 16; i < 64; i++) {
		s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^
		    (w[i - 15] >> 3);
		s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^
		    (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}

	a = st[0];
	b = st[1];
	c = st[2];
	d = st[3];
	e = st[4];
	f = st[5];
	g = st[6];
	h = st[7];
	for (i = 0; i < 64; i++) {
		s1 = ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25);
		t1 = h + s1 + ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
		s0 = ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22);
		t2 = s0 + ((a & b) ^ (a & c) ^ (b & c));
		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	st[0] += a;
	st[1] += b;
	st[2] += c;
	st[3] += d;
	st[4] += e;
	st[5] += f;
	st[6] += g;
	st[7] += h;
	sha256_wipe(w, sizeof(w));
}

void
sha256_init(struct sha256_ctx *c)
{
	memcpy(c->state, sha256_h0, sizeof(c->state));
	c->nbytes = 0;
	c->blocklen = 0;
}

void
sha256_update(struct sha256_ctx *c, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t take;

	if (len == 0)
		return;
	c->nbytes += len;
	if (c->blocklen > 0) {
		take = SHA256_BLOCK - c->blocklen;
		if (take > len)
			take = len;
		memcpy(c->block + c->blocklen, p, take);
		c->blocklen += take;
		p += take;
		len -= take;
		if (c->blocklen < SHA256_BLOCK)
			return;
		sha256_block(c->state, c->block);
		c->blocklen = 0;
	}
	for (; len >= SHA256_BLOCK; p += SHA256_BLOCK, len -= SHA256_BLOCK)
		sha256_block(c->state, p);
	if (len > 0) {
		memcpy(c->block, p, len);
		c->blocklen = len;
	}
}

/*
 * Pads with 0x80, zeros and the message length in bits as a big-endian
 * 64-bit number, so that the total is a multiple of 64 bytes (5.1.1).
 */
void
sha256_final(uint8_t out[SHA256_LEN], struct sha256_ctx *c)
{
	uint64_t bits = c->nbytes * 8;
	size_t i;

	c->block[c->blocklen++] = 0x80;
	if (c->blocklen > SHA256_BLOCK - 8) {
		memset(c->block + c->blocklen, 0, SHA256_BLOCK - c->blocklen);
		sha256_block(c->state, c->block);
		c->blocklen = 0;
	}
	memset(c->block + c->blocklen, 0, SHA256_BLOCK - 8 - c->blocklen);
	for (i = 0; i < 8; i++)
		c->block[SHA256_BLOCK - 1 - i] = (uint8_t)(bits >> (8 * i));
	sha256_block(c->state, c->block);
	for (i = 0; i < 8; i++)
		store_be32(out + 4 * i, c->state[i]);
	sha256_wipe(c, sizeof(*c));
}

void
sha256(uint8_t out[SHA256_LEN], const void *data, size_t len)
{
	struct sha256_ctx c;

	sha256_init(&c);
	sha256_update(&c, data, len);
	sha256_final(out, &c);
}

/*
 * HMAC(K, m) = H((K0 ^ opad) || H((K0 ^ ipad) || m)), where K0 is the key,
 * or its digest when it is longer than a block, padded with zeros to a
 * block; ipad is 0x36 and opad 0x5c repeated (RFC 2104, section 2).
 */
void
hmac_sha256(uint8_t out[SHA256_LEN], const void *key, size_t keylen,
    const void *data, size_t len)
{
	uint8_t k0[SHA256_BLOCK], pad[SHA256_BLOCK], inner[SHA256_LEN];
	struct sha256_ctx c;
	size_t i;

	memset(k0, 0, sizeof(k0));
	if (keylen > SHA256_BLOCK)
		sha256(k0, key, keylen);
	else if (keylen > 0)
		memcpy(k0, key, keylen);

	for (i = 0; i < SHA256_BLOCK; i++)
		pad[i] = k0[i] ^ 0x36;
	sha256_init(&c);
	sha256_update(&c, pad, sizeof(pad));
	sha256_update(&c, data, len);
	sha256_final(inner, &c);

	for (i = 0; i < SHA256_BLOCK; i++)
		pad[i] = k0[i] ^ 0x5c;
	sha256_init(&c);
	sha256_update(&c, pad, sizeof(pad));
	sha256_update(&c, inner, sizeof(inner));
	sha256_final(out, &c);

	sha256_wipe(k0, sizeof(k0));
	sha256_wipe(pad, sizeof(pad));
	sha256_wipe(inner, sizeof(inner));
}

void
hex_encode(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/* Returns the value of one hex digit, or -1. */
static int
hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Validates the whole string first, so that out is untouched on failure. */
int
hex_decode(uint8_t *out, size_t outlen, const char *hex)
{
	size_t i;

	if (outlen > (SIZE_MAX - 1) / 2)
		return -1;
	for (i = 0; i < 2 * outlen; i++)
		if (hex_digit(hex[i]) < 0)
			return -1;
	if (hex[2 * outlen] != '\0')
		return -1;
	for (i = 0; i < outlen; i++)
		out[i] = (uint8_t)(hex_digit(hex[2 * i]) << 4 |
		    hex_digit(hex[2 * i + 1]));
	return 0;
}

/*
 * ORs together the XOR of every byte pair, so the loop runs to the end
 * whatever it finds; the volatile accumulator keeps the compiler from
 * turning it into an early-exit memcmp.
 */
int
ct_equal(const void *a, const void *b, size_t n)
{
	const uint8_t *pa = a, *pb = b;
	volatile uint8_t diff = 0;
	size_t i;

	for (i = 0; i < n; i++)
		diff |= pa[i] ^ pb[i];
	return (((unsigned)diff - 1) >> 8) & 1;
}
