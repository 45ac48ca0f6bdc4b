/* request.c: a small parser for the flat JSON objects of the jsonl protocol. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyllm.h"

/* Values nested deeper than this inside an ignored key are refused. */
#define MAX_DEPTH	32

/* Integers beyond 2^53 cannot be held exactly by a JSON number. */
#define MAX_EXACT	9007199254740992.0

/* The parser's position in the line and where its errors go. */
struct cursor {
	char	*p;
	char	*end;
	char	*start;
	char	*err;
	size_t	 errlen;
};

/* Records a syntax error, prefixed with its byte offset, and returns -1. */
__attribute__((format(printf, 2, 3)))
static int
fail(struct cursor *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(c->err, c->errlen, "invalid json at byte %ld: ",
	    (long)(c->p - c->start));
	if (n < 0 || (size_t)n >= c->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Records a well-formed value the request may not have, and returns -1. */
__attribute__((format(printf, 2, 3)))
static int
invalid(struct cursor *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static void
skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
	    *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

/* Consumes the character ch, after optional whitespace. */
static int
expect(struct cursor *c, char ch)
{
	skip_ws(c);
	if (c->p >= c->end)
		return fail(c, "expected '%c', got end of line", ch);
	if (*c->p != ch)
		return fail(c, "expected '%c'", ch);
	c->p++;
	return 0;
}

/* Reads four hex digits of a \u escape. */
static int
hex4(unsigned *out, struct cursor *c)
{
	unsigned v = 0;
	int i;

	if (c->end - c->p < 4)
		return fail(c, "truncated \\u escape");
	for (i = 0; i < 4; i++) {
		char ch = c->p[i];

		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return fail(c, "bad hex digit in \\u escape");
	}
	c->p += 4;
	*out = v;
	return 0;
}

/* Appends code point cp as UTF-8 at *w. */
static void
put_utf8(char **w, unsigned cp)
{
	char *p = *w;

	if (cp < 0x80) {
		*p++ = (char)cp;
	} else if (cp < 0x800) {
		*p++ = (char)(0xc0 | (cp >> 6));
		*p++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*p++ = (char)(0xe0 | (cp >> 12));
		*p++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*p++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*p++ = (char)(0xf0 | (cp >> 18));
		*p++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*p++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*p++ = (char)(0x80 | (cp & 0x3f));
	}
	*w = p;
}

/*
 * Parses a string at the cursor and decodes its escapes in place: the
 * decoded bytes are never longer than their source, so they are written
 * over it. *out and *outlen describe the decoded bytes.
 */
static int
parse_string(const char **out, size_t *outlen, struct cursor *c)
{
	char *w;

	if (expect(c, '"') < 0)
		return -1;
	*out = w = c->p;
	for (;;) {
		unsigned char ch;

		if (c->p >= c->end)
			return fail(c, "unterminated string");
		ch = (unsigned char)*c->p;
		if (ch == '"')
			break;
		if (ch < 0x20)
			return fail(c, "control character in string");
		if (ch != '\\') {
			*w++ = *c->p++;
			continue;
		}
		if (++c->p >= c->end)
			return fail(c, "unterminated string");
		switch (*c->p++) {
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		case '/': *w++ = '/'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u': {
			unsigned cp, lo;

			if (hex4(&cp, c) < 0)
				return -1;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return fail(c, "lone low surrogate");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (c->end - c->p < 2 || c->p[0] != '\\' ||
				    c->p[1] != 'u')
					return fail(c, "lone high surrogate");
				c->p += 2;
				if (hex4(&lo, c) < 0)
					return -1;
				if (lo < 0xdc00 || lo > 0xdfff)
					return fail(c, "bad low surrogate");
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			}
			put_utf8(&w, cp);
			break;
		}
		default:
			c->p--;
			return fail(c, "bad escape '\\%c'", *c->p);
		}
	}
	*outlen = (size_t)(w - *out);
	c->p++;
	return 0;
}

static int
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/*
 * Parses a number with JSON's grammar (no hex, no inf, no leading '+')
 * and converts it with strtod.
 */
static int
parse_number(double *out, struct cursor *c)
{
	char *s = c->p, buf[64];
	size_t n;

	if (c->p < c->end && *c->p == '-')
		c->p++;
	if (c->p >= c->end || !is_digit(*c->p))
		return fail(c, "bad number");
	if (*c->p == '0')
		c->p++;
	else
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (c->p >= c->end || !is_digit(*c->p))
			return fail(c, "bad number");
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (c->p >= c->end || !is_digit(*c->p))
			return fail(c, "bad number");
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
	}
	n = (size_t)(c->p - s);
	if (n >= sizeof(buf))
		return fail(c, "number too long");
	memcpy(buf, s, n);
	buf[n] = '\0';
	*out = strtod(buf, NULL);
	if (!isfinite(*out))
		return fail(c, "number out of range");
	return 0;
}

/* Consumes the literal word (true, false, null) if it is next. */
static int
match_word(struct cursor *c, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return 0;
	c->p += n;
	return 1;
}

/* Skips any JSON value, nested up to MAX_DEPTH, for keys we ignore. */
static int
skip_value(struct cursor *c, int depth)
{
	const char *s;
	size_t n;
	double d;
	char close;

	skip_ws(c);
	if (c->p >= c->end)
		return fail(c, "expected a value, got end of line");
	switch (*c->p) {
	case '"':
		return parse_string(&s, &n, c);
	case '{':
	case '[':
		if (depth >= MAX_DEPTH)
			return fail(c, "nesting too deep");
		close = *c->p == '{' ? '}' : ']';
		c->p++;
		skip_ws(c);
		if (c->p < c->end && *c->p == close) {
			c->p++;
			return 0;
		}
		for (;;) {
			if (close == '}') {
				if (parse_string(&s, &n, c) < 0 ||
				    expect(c, ':') < 0)
					return -1;
			}
			if (skip_value(c, depth + 1) < 0)
				return -1;
			skip_ws(c);
			if (c->p < c->end && *c->p == ',') {
				c->p++;
				skip_ws(c);
				continue;
			}
			return expect(c, close);
		}
	default:
		if (match_word(c, "true") || match_word(c, "false") ||
		    match_word(c, "null"))
			return 0;
		return parse_number(&d, c);
	}
}

/* The keys a request may carry. */
enum key {
	KEY_UNKNOWN,
	KEY_ID,
	KEY_PROMPT_TOKENS,
	KEY_MAX_TOKENS,
	KEY_TEMPERATURE,
	KEY_TOP_P,
	KEY_SEED,
	KEY_PROMPT,
	KEY_ACCURACY,
};

static enum key
lookup_key(const char *s, size_t n)
{
	static const struct {
		const char	*name;
		enum key	 key;
	} keys[] = {
		{ "id", KEY_ID },
		{ "prompt_tokens", KEY_PROMPT_TOKENS },
		{ "max_tokens", KEY_MAX_TOKENS },
		{ "temperature", KEY_TEMPERATURE },
		{ "top_p", KEY_TOP_P },
		{ "seed", KEY_SEED },
		{ "prompt", KEY_PROMPT },
		{ "accuracy", KEY_ACCURACY },
	};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].name) == n &&
		    memcmp(keys[i].name, s, n) == 0)
			return keys[i].key;
	return KEY_UNKNOWN;
}

/* Parses a number that must be an integer in [min, max]. */
static int
parse_int(long long *out, struct cursor *c, const char *name, double min,
    double max)
{
	double d;

	skip_ws(c);
	if (c->p >= c->end || (*c->p != '-' && !is_digit(*c->p)))
		return invalid(c, "'%s' must be an integer", name);
	if (parse_number(&d, c) < 0)
		return -1;
	if (d != floor(d) || d < min || d > max)
		return invalid(c, "'%s' must be an integer in [%.0f, %.0f]",
		    name, min, max);
	*out = (long long)d;
	return 0;
}

/* Parses a number in [min, max]. */
static int
parse_real(double *out, struct cursor *c, const char *name, double min,
    double max)
{
	skip_ws(c);
	if (c->p >= c->end || (*c->p != '-' && !is_digit(*c->p)))
		return invalid(c, "'%s' must be a number", name);
	if (parse_number(out, c) < 0)
		return -1;
	if (*out < min || *out > max)
		return invalid(c, "'%s' must be in [%g, %g]", name, min, max);
	return 0;
}

/* Parses the value of the request key k into out. */
static int
parse_member(struct request *out, struct cursor *c, enum key k)
{
	long long v;

	skip_ws(c);
	switch (k) {
	case KEY_ID:
		if (c->p < c->end && *c->p == '"') {
			if (parse_string(&out->id_str, &out->id_len, c) < 0)
				return -1;
			out->id_is_string = 1;
		} else {
			if (parse_int(&v, c, "id", -MAX_EXACT, MAX_EXACT) < 0)
				return -1;
			out->id_is_string = 0;
			out->id_num = v;
		}
		out->has_id = 1;
		return 0;
	case KEY_PROMPT_TOKENS:
		return parse_int(&out->prompt_tokens, c, "prompt_tokens", 1,
		    MAX_SEQ_LEN);
	case KEY_MAX_TOKENS:
		return parse_int(&out->max_tokens, c, "max_tokens", 1,
		    MAX_SEQ_LEN);
	case KEY_TEMPERATURE:
		return parse_real(&out->temperature, c, "temperature", 0, 100);
	case KEY_TOP_P:
		if (parse_real(&out->top_p, c, "top_p", -HUGE_VAL,
		    HUGE_VAL) < 0)
			return -1;
		if (out->top_p <= 0 || out->top_p > 1)
			return invalid(c, "'top_p' must be in (0, 1]");
		return 0;
	case KEY_SEED:
		if (parse_int(&v, c, "seed", 0, MAX_EXACT) < 0)
			return -1;
		out->seed = (uint64_t)v;
		return 0;
	case KEY_PROMPT:
		if (c->p >= c->end || *c->p != '"')
			return invalid(c, "'prompt' must be a string");
		return parse_string(&out->prompt, &out->prompt_len, c);
	case KEY_ACCURACY:
		if (match_word(c, "true"))
			out->accuracy = 1;
		else if (match_word(c, "false"))
			out->accuracy = 0;
		else
			return invalid(c, "'accuracy' must be true or false");
		return 0;
	case KEY_UNKNOWN:
		break;
	}
	return skip_value(c, 1);
}

/*
 * Parses one request: a JSON object whose known keys are id, prompt_tokens,
 * max_tokens, temperature, top_p, seed, prompt and accuracy. Unknown keys
 * are skipped whatever their value; a repeated key keeps its last value.
 * Which keys are required is for the caller to decide.
 */
int
request_parse(struct request *out, char *line, size_t len, char *err,
    size_t errlen)
{
	struct cursor c = { line, line + len, line, err, errlen };
	const char *key;
	size_t keylen;

	memset(out, 0, sizeof(*out));
	out->prompt_tokens = -1;
	out->max_tokens = -1;
	out->temperature = 0.0;
	out->top_p = 1.0;
	err[0] = '\0';

	if (expect(&c, '{') < 0)
		return -1;
	skip_ws(&c);
	if (c.p < c.end && *c.p == '}') {
		c.p++;
	} else {
		for (;;) {
			skip_ws(&c);
			if (c.p >= c.end || *c.p != '"')
				return fail(&c, "expected a key");
			if (parse_string(&key, &keylen, &c) < 0 ||
			    expect(&c, ':') < 0 ||
			    parse_member(out, &c, lookup_key(key, keylen)) < 0)
				return -1;
			skip_ws(&c);
			if (c.p < c.end && *c.p == ',') {
				c.p++;
				continue;
			}
			if (expect(&c, '}') < 0)
				return -1;
			break;
		}
	}
	skip_ws(&c);
	if (c.p != c.end)
		return fail(&c, "trailing characters after the object");
	return 0;
}
