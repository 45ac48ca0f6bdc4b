/* Unit tests for common/sha256.c: FIPS 180-4, RFC 4231, hex and ct_equal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "sha256.h"

/* Hex of a digest, for readable assertion failures. */
static void
check_digest(const uint8_t d[SHA256_LEN], const char *want)
{
	char hex[SHA256_HEX_LEN + 1];

	hex_encode(hex, d, SHA256_LEN);
	assert_string_equal(hex, want);
}

static void
check_sha256(const void *msg, size_t len, const char *want)
{
	uint8_t d[SHA256_LEN];

	sha256(d, msg, len);
	check_digest(d, want);
}

/*
 * The examples of FIPS 180-4 / NIST CSRC "SHA-256" example values, and the
 * long message of one million 'a' from FIPS 180-2 appendix B.3.
 */
static void
test_fips_vectors(void **state)
{
	static const char m448[] =
	    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	static const char m896[] =
	    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
	    "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	char *million;

	(void)state;
	check_sha256("", 0,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_sha256(NULL, 0,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_sha256("abc", 3,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(strlen(m448), 56);
	check_sha256(m448, strlen(m448),
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_int_equal(strlen(m896), 112);
	check_sha256(m896, strlen(m896),
	    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

	million = malloc(1000000);
	assert_non_null(million);
	memset(million, 'a', 1000000);
	check_sha256(million, 1000000,
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(million);
}

/*
 * One million 'a' fed in pieces of awkward sizes must give the same digest:
 * this exercises the partial-block path of sha256_update().
 */
static void
test_streaming(void **state)
{
	static const size_t sizes[] = { 1, 3, 63, 64, 65, 7, 128, 1000 };
	struct sha256_ctx c;
	uint8_t d[SHA256_LEN];
	char chunk[1000];
	size_t done = 0, i = 0, n;

	(void)state;
	memset(chunk, 'a', sizeof(chunk));
	sha256_init(&c);
	while (done < 1000000) {
		n = sizes[i++ % BL_ARRAY_LEN(sizes)];
		if (n > 1000000 - done)
			n = 1000000 - done;
		sha256_update(&c, chunk, n);
		done += n;
	}
	sha256_update(&c, NULL, 0);
	sha256_final(d, &c);
	check_digest(d,
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/*
 * Messages of bytes i % 251 whose lengths sit around the padding
 * boundaries (55/56 and 119/120 bytes decide whether the length still fits
 * in the last block).  Expected values from Python 3.11:
 * hashlib.sha256(bytes(i % 251 for i in range(n))).hexdigest().
 */
static void
test_padding_boundaries(void **state)
{
	static const struct {
		size_t		 len;
		const char	*hex;
	} v[] = {
		{ 55, "463eb28e72f82e0a96c0a4cc53690c57"
		    "1281131f672aa229e0d45ae59b598b59" },
		{ 56, "da2ae4d6b36748f2a318f23e7ab1dfdf"
		    "45acdc9d049bd80e59de82a60895f562" },
		{ 63, "29af2686fd53374a36b0846694cc3421"
		    "77e428d1647515f078784d69cdb9e488" },
		{ 64, "fdeab9acf3710362bd2658cdc9a29e8f"
		    "9c757fcf9811603a8c447cd1d9151108" },
		{ 65, "4bfd2c8b6f1eec7a2afeb48b934ee4b2"
		    "694182027e6d0fc075074f2fabb31781" },
		{ 119, "da18797ed7c3a777f0847f429724a2d8"
		    "cd5138e6ed2895c3fa1a6d39d18f7ec6" },
		{ 120, "f52b23db1fbb6ded89ef42a23ce0c892"
		    "2c45f25c50b568a93bf1c075420bbb7c" },
		{ 127, "92ca0fa6651ee2f97b884b7246a562fa"
		    "71250fedefe5ebf270d31c546bfea976" },
		{ 128, "471fb943aa23c511f6f72f8d1652d9c8"
		    "80cfa392ad80503120547703e56a2be5" },
	};
	uint8_t msg[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i % 251);
	for (i = 0; i < BL_ARRAY_LEN(v); i++)
		check_sha256(msg, v[i].len, v[i].hex);
}

/* RFC 4231, section 4: test cases 1 to 7 (case 5 is truncated to 128 bits). */
static void
test_hmac_rfc4231(void **state)
{
	uint8_t key[131], data[50], mac[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	static const char big1[] =
	    "Test Using Larger Than Block-Size Key - Hash Key First";
	static const char big2[] =
	    "This is a test using a larger than block-size key and a larger "
	    "than block-size data. The key needs to be hashed before being "
	    "used by the HMAC algorithm.";
	size_t i;

	(void)state;
	/* 1 */
	memset(key, 0x0b, 20);
	hmac_sha256(mac, key, 20, "Hi There", 8);
	check_digest(mac,
	    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	/* 2: a key shorter than the output */
	hmac_sha256(mac, "Jefe", 4, "what do ya want for nothing?", 28);
	check_digest(mac,
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* 3 */
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	hmac_sha256(mac, key, 20, data, 50);
	check_digest(mac,
	    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	/* 4 */
	for (i = 0; i < 25; i++)
		key[i] = (uint8_t)(i + 1);
	memset(data, 0xcd, 50);
	hmac_sha256(mac, key, 25, data, 50);
	check_digest(mac,
	    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
	/* 5: only the first 128 bits are specified */
	memset(key, 0x0c, 20);
	hmac_sha256(mac, key, 20, "Test With Truncation", 20);
	hex_encode(hex, mac, 16);
	assert_string_equal(hex, "a3b6167473100ee06e0c796c2955552b");
	/* 6: a 131-byte key, hashed first */
	memset(key, 0xaa, 131);
	hmac_sha256(mac, key, 131, big1, strlen(big1));
	check_digest(mac,
	    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	/* 7: key and data both longer than a block */
	hmac_sha256(mac, key, 131, big2, strlen(big2));
	check_digest(mac,
	    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

static void
test_hex_round_trip(void **state)
{
	uint8_t in[256], back[256];
	char hex[2 * 256 + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	hex_encode(hex, in, sizeof(in));
	assert_int_equal(strlen(hex), 512);
	assert_memory_equal(hex, "000102", 6);
	assert_string_equal(hex + 500, "fafbfcfdfeff");
	assert_int_equal(hex_decode(back, sizeof(back), hex), 0);
	assert_memory_equal(in, back, sizeof(in));

	/* Upper case decodes too; encoding is always lower case. */
	assert_int_equal(hex_decode(back, 4, "DEADbeef"), 0);
	assert_int_equal(back[0], 0xde);
	assert_int_equal(back[3], 0xef);

	/* Zero bytes: the empty string. */
	hex_encode(hex, in, 0);
	assert_string_equal(hex, "");
	assert_int_equal(hex_decode(back, 0, ""), 0);
}

static void
test_hex_bad(void **state)
{
	uint8_t out[4] = { 1, 2, 3, 4 };

	(void)state;
	assert_int_equal(hex_decode(out, 4, "deadbee"), -1);	/* short */
	assert_int_equal(hex_decode(out, 4, "deadbeef0"), -1);	/* long */
	assert_int_equal(hex_decode(out, 4, "deadbeef00"), -1);
	assert_int_equal(hex_decode(out, 4, "deadbeeg"), -1);	/* not hex */
	assert_int_equal(hex_decode(out, 4, "dead beef"), -1);
	assert_int_equal(hex_decode(out, 4, " deadbee"), -1);
	assert_int_equal(hex_decode(out, 4, "0xdeadbe"), -1);
	assert_int_equal(hex_decode(out, 4, ""), -1);
	assert_int_equal(hex_decode(out, 1, "\xff" "0"), -1);
	assert_int_equal(hex_decode(out, 0, "00"), -1);
	/* Failures leave the output alone. */
	assert_int_equal(out[0], 1);
	assert_int_equal(out[3], 4);
}

static void
test_ct_equal(void **state)
{
	uint8_t a[SHA256_LEN], b[SHA256_LEN];
	size_t i;

	(void)state;
	sha256(a, "abc", 3);
	memcpy(b, a, sizeof(a));
	assert_int_equal(ct_equal(a, b, sizeof(a)), 1);
	assert_int_equal(ct_equal(a, b, 0), 1);
	/* A difference in any byte, and in any bit of it, is seen. */
	for (i = 0; i < sizeof(a); i++) {
		b[i] ^= 0x80;
		assert_int_equal(ct_equal(a, b, sizeof(a)), 0);
		b[i] ^= 0x81;
		assert_int_equal(ct_equal(a, b, sizeof(a)), 0);
		b[i] ^= 0x01;
	}
	assert_int_equal(ct_equal(a, b, sizeof(a)), 1);
	/* Only the first n bytes count. */
	b[SHA256_LEN - 1] ^= 0xff;
	assert_int_equal(ct_equal(a, b, SHA256_LEN - 1), 1);
	assert_int_equal(ct_equal(a, b, SHA256_LEN), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fips_vectors),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_padding_boundaries),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_hex_round_trip),
		cmocka_unit_test(test_hex_bad),
		cmocka_unit_test(test_ct_equal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
