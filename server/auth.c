/* Bearer tokens: generation, and checking worker and admin credentials in constant time. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "server.h"
#include "sha256.h"

/*
 * A token reads "<prefix>_<id>_<secret>": the id finds the row, and the
 * SHA-256 of the secret is compared with the stored hash in constant time.
 * Only the hash is stored, so a database dump reveals no usable token.
 */
void
token_generate(char *out, size_t outlen, const char *prefix, int64_t id,
    char hash_hex[65])
{
	uint8_t secret[TOKEN_SECRET_BYTES], digest[SHA256_LEN];
	char secret_hex[2 * TOKEN_SECRET_BYTES + 1];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(secret)) {
		n = getrandom(secret + got, sizeof(secret) - got, 0);
		if (n < 0)
			fatal("getrandom");
		got += (size_t)n;
	}
	hex_encode(secret_hex, secret, sizeof(secret));
	sha256(digest, secret_hex, strlen(secret_hex));
	hex_encode(hash_hex, digest, sizeof(digest));
	snprintf(out, outlen, "%s_%" PRId64 "_%s", prefix, id, secret_hex);
}

/* Splits "Bearer <prefix>_<id>_<secret>"; returns 0 and the parts, or BL_EAUTH. */
static int
token_parse(int64_t *id, const char **secret, const char *header,
    const char *prefix)
{
	size_t plen = strlen(prefix);
	const char *p;
	char *end;

	if (header == NULL || strncmp(header, "Bearer ", 7) != 0)
		return BL_EAUTH;
	p = header + 7;
	while (*p == ' ')
		p++;
	if (strncmp(p, prefix, plen) != 0 || p[plen] != '_')
		return BL_EAUTH;
	p += plen + 1;
	*id = strtoll(p, &end, 10);
	if (end == p || *end != '_' || *id <= 0)
		return BL_EAUTH;
	*secret = end + 1;
	if (strlen(*secret) != 2 * TOKEN_SECRET_BYTES)
		return BL_EAUTH;
	return 0;
}

/* Compares the secret's hash with the stored hex hash in constant time. */
static int
token_matches(const char *secret, const char *stored_hex)
{
	uint8_t digest[SHA256_LEN], stored[SHA256_LEN];

	sha256(digest, secret, strlen(secret));
	if (stored_hex == NULL ||
	    hex_decode(stored, sizeof(stored), stored_hex) < 0)
		memset(stored, 0, sizeof(stored));
	return ct_equal(digest, stored, SHA256_LEN);
}

int
auth_worker(struct worker_ident *out, struct request *r, struct db *db)
{
	const char *hdr = req_header(r, "Authorization"), *secret;
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int64_t id;
	int rc;

	if (token_parse(&id, &secret, hdr, "blw") < 0)
		return BL_EAUTH;
	dbp_int(&p, id);
	if ((rc = db_queryp(&res, db, "SELECT encode(token_hash, 'hex'), "
	    "target_id FROM workers WHERE id = $1 AND NOT revoked", &p)) < 0)
		return rc;
	if (dbres_rows(res) != 1) {
		token_matches(secret, NULL);	/* same work either way */
		rc = BL_EAUTH;
	} else if (!token_matches(secret, dbres_get(res, 0, 0)))
		rc = BL_EAUTH;
	else {
		out->worker_id = id;
		out->target_id = dbres_int(res, 0, 1);
		rc = 0;
	}
	dbres_free(res);
	return rc;
}

int
auth_admin(struct request *r, struct db *db)
{
	const char *hdr = req_header(r, "Authorization"), *secret;
	struct dbparams p = { .n = 0 };
	struct dbres *res = NULL;
	int64_t id;
	int rc;

	if (token_parse(&id, &secret, hdr, "bla") < 0)
		return BL_EAUTH;
	dbp_int(&p, id);
	if ((rc = db_queryp(&res, db, "SELECT encode(token_hash, 'hex') "
	    "FROM admin_tokens WHERE id = $1 AND NOT revoked", &p)) < 0)
		return rc;
	if (dbres_rows(res) != 1) {
		token_matches(secret, NULL);
		rc = BL_EAUTH;
	} else
		rc = token_matches(secret, dbres_get(res, 0, 0)) ? 0 : BL_EAUTH;
	dbres_free(res);
	return rc;
}

int
auth_reader(struct request *r, struct db *db)
{
	struct worker_ident w;

	if (req_server(r)->settings->public_reads)
		return 0;
	if (auth_admin(r, db) == 0 || auth_worker(&w, r, db) == 0)
		return 0;
	return BL_EAUTH;
}
