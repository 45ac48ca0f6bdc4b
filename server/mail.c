/* Sending one plain-text e-mail over SMTP with libcurl, and building it safely. */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "httpc.h"
#include "log.h"
#include "server.h"
#include "sha256.h"

/*
 * Why the message is built the way it is (RFC 5321, 5322, 2045, 2047):
 *
 * - Every line ends in CRLF and none is longer than 78 columns: header
 *   fields are folded, and the body is quoted-printable, so a 2000-byte
 *   line of a build log goes through relays that enforce the 998-byte
 *   limit (RFC 5321 4.5.3.1.6).
 * - libcurl does the SMTP "dot-stuffing" of RFC 5321 4.5.2 itself (lib/smtp.c,
 *   Curl_smtp_escape_eob, since 2012; seen on our 7.88 with --trace-ascii
 *   and checked by tests/unit/server/mail.c): a "." after a CRLF, or as the
 *   very first byte, is sent as "..", and the data ends with ".CRLF" after
 *   a final CRLF, else with "CRLF.CRLF".  It only looks for CRLF, not for a
 *   bare "\n": one more reason to send CRLF only.  CURLOPT_CRLF is not used
 *   ("a legacy option of questionable use", says its manual page).  libcurl
 *   does not wrap or check line lengths: that is done here.
 * - Header injection is impossible: every header input is rejected when it
 *   holds a control character (CR and LF included), and addresses are
 *   checked against a strict grammar before they reach a header or the
 *   envelope.
 */

#define MAIL_LINE_SOFT	78		/* fold header lines at this column */
#define MAIL_LINE_HARD	998		/* RFC 5322 2.1.1 */
#define MAIL_QP_LINE	76		/* RFC 2045 6.7 (5) */
#define MAIL_EW_TEXT	52		/* encoded text per encoded-word */
#define MAIL_ADDR_MAX	254		/* RFC 5321 4.5.3.1.3, less the brackets */
#define MAIL_LOCAL_MAX	64
#define MAIL_NAME_MAX	256		/* display name, bytes */
#define MAIL_INPUT_MAX	512		/* a whole "Name <addr>" */
#define MAIL_SUBJECT_MAX 900
#define MAIL_HINT_MAX	64
#define MAIL_RCPT_MAX	100		/* RFC 5321 4.5.3.1.8 minimum */
#define MAIL_BODY_MAX	(4u << 20)
#define MAIL_DATA_MAX	(16u << 20)
#define MAIL_TIMEOUT_S	30L

/* A parsed "Display Name <local@domain>" or "local@domain". */
struct mailbox {
	char	name[MAIL_NAME_MAX + 1];	/* unquoted; may be empty */
	char	addr[MAIL_ADDR_MAX + 1];
};

/* A header field being written, with the column of its current line. */
struct hdr {
	struct buf	*b;
	size_t		 col;
	size_t		 min;		/* never fold before this column */
};

/* What the read callback hands to libcurl. */
struct upload {
	const char	*p;
	size_t		 len;
	size_t		 off;
};

/* The last reply of the server that was an error (4xx or 5xx). */
struct reply {
	long	code;
	char	line[512];
};

static const char *const day_names[] = {
	"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};
static const char *const month_names[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
seterr(char *err, size_t errlen, const char *fmt, ...) BL_PRINTF(3, 4);

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 atext: what an unquoted local part or display-name word may hold. */
static int
is_atext(int c)
{
	return is_alpha(c) || is_digit(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* C0 controls and DEL: never allowed in a header input. */
static int
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if (is_ctl((unsigned char)*s))
			return 1;
	return 0;
}

/*
 * Returns the length of the well-formed UTF-8 sequence at s (at most n
 * bytes available), or 0 if it is not one: overlong forms, surrogates and
 * code points past U+10FFFF are refused (RFC 3629).
 */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t need, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return need;
}

/* Appends s with every invalid UTF-8 byte replaced by U+FFFD. */
static int
utf8_sanitize(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;
	int rc;

	while (i < n) {
		if ((k = utf8_len(p + i, n - i)) == 0) {
			if ((rc = buf_add(out, "\xef\xbf\xbd", 3)) < 0)
				return rc;
			i++;
			continue;
		}
		if ((rc = buf_add(out, s + i, k)) < 0)
			return rc;
		i += k;
	}
	return 0;
}

/* Checks a dot-atom: atext runs separated by single dots. */
static int
dot_atom_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!is_atext((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* Checks a host name: labels of letters, digits and inner hyphens. */
static int
domain_valid(const char *s, size_t len)
{
	size_t i, label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (is_alpha(s[i]) || is_digit(s[i]) ||
		    (s[i] == '-' && label > 0))
			label++;
		else
			return 0;
	}
	return 1;
}

/* Checks "local@domain" as used here: ASCII, dot-atom local part, host name. */
static int
addr_spec_valid(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);
	size_t llen;

	if (len > MAIL_ADDR_MAX || at == NULL ||
	    memchr(at + 1, '@', len - (size_t)(at - s) - 1) != NULL)
		return 0;
	llen = (size_t)(at - s);
	return llen <= MAIL_LOCAL_MAX && dot_atom_valid(s, llen) &&
	    domain_valid(at + 1, len - llen - 1);
}

/*
 * Parses "local@domain", "<local@domain>" or "Display Name <local@domain>"
 * (the name may be a quoted string).  Returns 0 or BL_EINVAL.
 */
static int
mailbox_parse(struct mailbox *out, const char *s)
{
	const char *b, *e, *lt;
	size_t n, i, k;

	out->name[0] = out->addr[0] = '\0';
	if (s == NULL || strlen(s) > MAIL_INPUT_MAX || has_ctl(s))
		return BL_EINVAL;
	b = s;
	e = s + strlen(s);
	while (b < e && *b == ' ')
		b++;
	while (e > b && e[-1] == ' ')
		e--;
	if (e > b && e[-1] == '>') {
		for (lt = e - 1; lt > b && *lt != '<'; lt--)
			;
		if (*lt != '<')
			return BL_EINVAL;
		n = (size_t)(e - 1 - lt - 1);
		if (!addr_spec_valid(lt + 1, n))
			return BL_EINVAL;
		memcpy(out->addr, lt + 1, n);
		out->addr[n] = '\0';
		e = lt;
		while (e > b && e[-1] == ' ')
			e--;
		/* A quoted name loses its quotes and escapes. */
		if (e - b >= 2 && *b == '"' && e[-1] == '"') {
			b++;
			e--;
			for (k = 0; b < e; b++) {
				if (*b == '\\' && b + 1 < e)
					b++;
				else if (*b == '"' || *b == '\\')
					return BL_EINVAL;
				if (k == MAIL_NAME_MAX)
					return BL_EINVAL;
				out->name[k++] = *b;
			}
			out->name[k] = '\0';
		} else {
			n = (size_t)(e - b);
			if (n > MAIL_NAME_MAX)
				return BL_EINVAL;
			for (i = 0; i < n; i++)
				if (b[i] == '<' || b[i] == '>' || b[i] == '"')
					return BL_EINVAL;
			memcpy(out->name, b, n);
			out->name[n] = '\0';
		}
		n = strlen(out->name);
		for (i = 0; i < n; i += k)
			if ((k = utf8_len((const unsigned char *)out->name + i,
			    n - i)) == 0)
				return BL_EINVAL;
		return 0;
	}
	n = (size_t)(e - b);
	if (!addr_spec_valid(b, n))
		return BL_EINVAL;
	memcpy(out->addr, b, n);
	out->addr[n] = '\0';
	return 0;
}

int
mail_address_valid(const char *addr)
{
	struct mailbox mb;

	return mailbox_parse(&mb, addr) == 0;
}

static int
hdr_begin(struct hdr *h, struct buf *b, const char *name)
{
	h->b = b;
	h->col = strlen(name) + 1;
	h->min = h->col;
	return buf_addf(b, "%s:", name);
}

/*
 * Appends len bytes to the field, after a blank when blank is set.  A
 * piece that starts with a blank may be folded before (the blank stays,
 * so unfolding gives the text back); no piece is split.
 */
static int
hdr_piece(struct hdr *h, int blank, const char *s, size_t len)
{
	size_t total = len + (blank ? 1 : 0);
	int rc;

	if ((blank || (len > 0 && s[0] == ' ')) &&
	    h->col + total > MAIL_LINE_SOFT && h->col > h->min) {
		if ((rc = buf_add(h->b, "\r\n", 2)) < 0)
			return rc;
		h->col = 0;
	}
	if (h->col + total > MAIL_LINE_HARD)
		return BL_EINVAL;
	if (blank && (rc = buf_add(h->b, " ", 1)) < 0)
		return rc;
	h->col += total;
	return buf_add(h->b, s, len);
}

static int
hdr_add(struct hdr *h, const char *s, size_t len)
{
	return hdr_piece(h, 0, s, len);
}

static int
hdr_end(struct hdr *h)
{
	return buf_add(h->b, "\r\n", 2);
}


/*
 * Characters a Q encoded-word may carry as they are: in a phrase (a display
 * name) only these few (RFC 2047 5(3)); in unstructured text such as the
 * subject, any printable but "=", "?" and "_" (5(1)).
 */
static int
q_plain(int c, int phrase)
{
	if (phrase)
		return is_alpha(c) || is_digit(c) || c == '!' || c == '*' ||
		    c == '+' || c == '-' || c == '/';
	return c > 32 && c < 127 && c != '=' && c != '?' && c != '_';
}

/* Appends one encoded-word " =?UTF-8?Q?text?=", foldable before it. */
static int
hdr_add_word(struct hdr *h, const char *text, size_t len)
{
	char word[16 + MAIL_EW_TEXT];
	int n;

	n = snprintf(word, sizeof(word), " =?UTF-8?Q?%.*s?=", (int)len, text);
	return hdr_add(h, word, (size_t)n);
}

/*
 * Appends text (valid UTF-8) as RFC 2047 Q encoded-words, for a phrase
 * or for unstructured text.  A word never
 * splits a character and holds at most MAIL_EW_TEXT encoded bytes, so
 * every one fits a line; the blanks between words are not part of the
 * text when decoded (RFC 2047 6.2), so nothing is added or lost.
 */
static int
hdr_encoded_words(struct hdr *h, const char *text, size_t len, int phrase)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)text;
	char word[MAIL_EW_TEXT], unit[12];
	size_t i = 0, j, k, ulen, wlen = 0;
	int rc;

	while (i < len) {
		if ((k = utf8_len(p + i, len - i)) == 0)
			return BL_EINVAL;
		for (ulen = 0, j = 0; j < k; j++) {
			if (p[i + j] == ' ')
				unit[ulen++] = '_';
			else if (q_plain(p[i + j], phrase))
				unit[ulen++] = (char)p[i + j];
			else {
				unit[ulen++] = '=';
				unit[ulen++] = hex[p[i + j] >> 4];
				unit[ulen++] = hex[p[i + j] & 15];
			}
		}
		if (wlen + ulen > MAIL_EW_TEXT) {
			if ((rc = hdr_add_word(h, word, wlen)) < 0)
				return rc;
			wlen = 0;
		}
		memcpy(word + wlen, unit, ulen);
		wlen += ulen;
		i += k;
	}
	return wlen > 0 ? hdr_add_word(h, word, wlen) : 0;
}

/*
 * Whether text can go into a header as it is: printable ASCII, no "=?"
 * that a reader would take for an encoded-word, no blank at either end,
 * and no word so long that the line could not be folded in time.
 */
static int
text_plain(const char *s, size_t len)
{
	size_t i, run = 0;

	if (len > 0 && (s[0] == ' ' || s[len - 1] == ' '))
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
		if (s[i] == '=' && i + 1 < len && s[i + 1] == '?')
			return 0;
		run = s[i] == ' ' ? 0 : run + 1;
		if (run > MAIL_LINE_SOFT - 20)
			return 0;
	}
	return 1;
}

/*
 * Appends plain text after a blank, as pieces that each start with the
 * blanks before a word, so that folding keeps the text.
 */
static int
hdr_plain(struct hdr *h, const char *s, size_t len)
{
	size_t i = 0, j;
	int rc;

	while (i < len) {
		j = i;
		while (j < len && s[j] == ' ')
			j++;
		while (j < len && s[j] != ' ')
			j++;
		if ((rc = hdr_piece(h, i == 0, s + i, j - i)) < 0)
			return rc;
		i = j;
	}
	return 0;
}

int
mail_header_text(struct buf *out, const char *name, const char *text)
{
	size_t start = out->len;
	struct buf clean;
	struct hdr h;
	int rc;

	if (text == NULL)
		text = "";
	if (has_ctl(name) || has_ctl(text))
		return BL_EINVAL;
	if (strlen(text) > MAIL_SUBJECT_MAX)
		return BL_ETOOBIG;
	buf_init(&clean, 3 * MAIL_SUBJECT_MAX);
	if ((rc = utf8_sanitize(&clean, text, strlen(text))) < 0 ||
	    (rc = hdr_begin(&h, out, name)) < 0)
		goto out;
	if (clean.len == 0)
		rc = 0;
	else if (text_plain(clean.ptr, clean.len))
		rc = hdr_plain(&h, clean.ptr, clean.len);
	else
		rc = hdr_encoded_words(&h, clean.ptr, clean.len, 0);
	if (rc == 0)
		rc = hdr_end(&h);
out:
	if (rc < 0 && out->len > start) {
		out->len = start;
		out->ptr[start] = '\0';
	}
	buf_free(&clean);
	return rc;
}

/* Whether a display name can be written as a plain phrase of atoms. */
static int
phrase_plain(const char *s)
{
	size_t i, len = strlen(s);

	if (!text_plain(s, len))
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == ' ' && s[i + 1] == ' ')
			return 0;
		if (s[i] != ' ' && !is_atext((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* Appends a mailbox: " addr", or the display name and " <addr>". */
static int
hdr_mailbox(struct hdr *h, const struct mailbox *mb)
{
	char angle[MAIL_ADDR_MAX + 4];
	struct buf q;
	const char *s;
	int rc, n;

	if (mb->name[0] == '\0')
		return hdr_piece(h, 1, mb->addr, strlen(mb->addr));
	if (phrase_plain(mb->name)) {
		rc = hdr_plain(h, mb->name, strlen(mb->name));
	} else if (text_plain(mb->name, strlen(mb->name))) {
		/* ASCII with specials such as "," or ".": a quoted string. */
		buf_init(&q, 2 * MAIL_NAME_MAX + 4);
		rc = buf_addstr(&q, " \"");
		for (s = mb->name; rc == 0 && *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				rc = buf_add(&q, "\\", 1);
			if (rc == 0)
				rc = buf_add(&q, s, 1);
		}
		if (rc == 0)
			rc = buf_add(&q, "\"", 1);
		if (rc == 0)
			rc = hdr_add(h, q.ptr, q.len);
		buf_free(&q);
	} else
		rc = hdr_encoded_words(h, mb->name, strlen(mb->name), 1);
	if (rc < 0)
		return rc;
	n = snprintf(angle, sizeof(angle), " <%s>", mb->addr);
	return hdr_add(h, angle, (size_t)n);
}

/* Appends one quoted-printable token, after a soft line break if it would not fit. */
static int
qp_add(struct buf *out, size_t *col, const char *tok, size_t len)
{
	int rc;

	if (*col + len > MAIL_QP_LINE - 1) {
		if ((rc = buf_add(out, "=\r\n", 3)) < 0)
			return rc;
		*col = 0;
	}
	*col += len;
	return buf_add(out, tok, len);
}

int
mail_qp_encode(struct buf *out, const char *text, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)text;
	size_t i, end, col = 0, tlen;
	char tok[3];
	int rc;

	for (i = 0; i < len; i = end + 1) {
		for (end = i; end < len && p[end] != '\n'; end++)
			;
		tlen = end;
		if (end < len && tlen > i && p[tlen - 1] == '\r')
			tlen--;		/* "\r\n" is a line end too */
		for (; i < tlen; i++) {
			/*
			 * Printable ASCII but "=" goes as it is; so do blanks,
			 * except at the end of a line, where relays may strip
			 * them.
			 */
			if ((p[i] >= 33 && p[i] <= 126 && p[i] != '=') ||
			    ((p[i] == ' ' || p[i] == '\t') && i + 1 < tlen)) {
				tok[0] = (char)p[i];
				if ((rc = qp_add(out, &col, tok, 1)) < 0)
					return rc;
			} else {
				tok[0] = '=';
				tok[1] = hex[p[i] >> 4];
				tok[2] = hex[p[i] & 15];
				if ((rc = qp_add(out, &col, tok, 3)) < 0)
					return rc;
			}
		}
		if (end < len)
			rc = buf_add(out, "\r\n", 2);
		else if (col > 0)
			rc = buf_add(out, "=\r\n", 3);	/* no final line end */
		else
			rc = 0;
		if (rc < 0)
			return rc;
		col = 0;
	}
	return 0;
}

void
mail_date(char *out, size_t outlen, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	/* Names by hand: strftime's %a and %b follow the locale. */
	snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    day_names[tm.tm_wday], tm.tm_mday, month_names[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Checks a Message-ID hint: a dot-atom of letters, digits, "_", "+", "-". */
static int
hint_valid(const char *s)
{
	size_t i, len = strlen(s);

	if (len > MAIL_HINT_MAX || !dot_atom_valid(s, len))
		return 0;
	for (i = 0; i < len; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) &&
		    strchr("._+-", s[i]) == NULL)
			return 0;
	return 1;
}

/* Fills buf with random bytes; falls back on the clock if getrandom fails. */
static void
random_bytes(uint8_t *out, size_t n)
{
	static unsigned long counter;
	struct timespec ts;
	size_t got = 0;
	ssize_t k;
	uint8_t digest[SHA256_LEN];
	char seed[96];

	while (got < n) {
		k = getrandom(out + got, n - got, 0);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	if (got == n)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(seed, sizeof(seed), "%lld.%ld.%ld.%lu", (long long)ts.tv_sec,
	    ts.tv_nsec, (long)getpid(), __atomic_add_fetch(&counter, 1,
	    __ATOMIC_RELAXED));
	sha256(digest, seed, strlen(seed));
	memcpy(out, digest, n < sizeof(digest) ? n : sizeof(digest));
}

/* Writes "<benchline.HINT@domain>", or a random left part when hint is empty. */
static int
message_id(char *out, size_t outlen, const char *hint,
    const struct mailbox *from)
{
	const char *domain = strchr(from->addr, '@') + 1;
	uint8_t r[16];
	char hex[2 * sizeof(r) + 1];

	if (hint != NULL && *hint != '\0') {
		if (!hint_valid(hint))
			return BL_EINVAL;
		snprintf(out, outlen, "<benchline.%s@%s>", hint, domain);
		return 0;
	}
	random_bytes(r, sizeof(r));
	hex_encode(hex, r, sizeof(r));
	snprintf(out, outlen, "<benchline.%s@%s>", hex, domain);
	return 0;
}

/* Copies s for an error message: control characters become '?', long text is cut. */
static const char *
shown(char *out, size_t outlen, const char *s)
{
	size_t i;

	if (s == NULL)
		s = "(null)";
	for (i = 0; s[i] != '\0' && i + 1 < outlen; i++)
		out[i] = is_ctl((unsigned char)s[i]) ? '?' : s[i];
	out[i] = '\0';
	if (s[i] != '\0' && outlen > 4)
		memcpy(out + outlen - 4, "...", 4);
	return out;
}

int
mail_build(struct buf *out, const struct mail_config *cfg,
    const struct mail_message *msg, int64_t now, char *err, size_t errlen)
{
	struct mailbox from, mb;
	struct buf clean;
	struct hdr h;
	const char *body;
	char date[64], msgid[MAIL_HINT_MAX + MAIL_ADDR_MAX + 40], show[80];
	size_t start = out->len, n;
	int rc;

	buf_init(&clean, 3 * MAIL_BODY_MAX);
	if (cfg == NULL || msg == NULL || msg->to == NULL || msg->to[0] == NULL) {
		seterr(err, errlen, "cannot build mail: no recipient");
		rc = BL_EINVAL;
		goto out;
	}
	if (mailbox_parse(&from, cfg->from) < 0) {
		seterr(err, errlen, "cannot build mail: bad sender address '%s'",
		    shown(show, sizeof(show), cfg->from));
		rc = BL_EINVAL;
		goto out;
	}
	if (message_id(msgid, sizeof(msgid), msg->message_id_hint,
	    &from) < 0) {
		seterr(err, errlen, "cannot build mail: bad message id hint '%s'",
		    shown(show, sizeof(show), msg->message_id_hint));
		rc = BL_EINVAL;
		goto out;
	}
	mail_date(date, sizeof(date), now);
	if ((rc = buf_addf(out, "Date: %s\r\n", date)) < 0 ||
	    (rc = hdr_begin(&h, out, "From")) < 0 ||
	    (rc = hdr_mailbox(&h, &from)) < 0 || (rc = hdr_end(&h)) < 0 ||
	    (rc = hdr_begin(&h, out, "To")) < 0)
		goto toobig;
	for (n = 0; msg->to[n] != NULL; n++) {
		if (n == MAIL_RCPT_MAX) {
			seterr(err, errlen, "cannot build mail: more than %d "
			    "recipients", MAIL_RCPT_MAX);
			rc = BL_EINVAL;
			goto out;
		}
		if (mailbox_parse(&mb, msg->to[n]) < 0) {
			seterr(err, errlen, "cannot build mail: bad recipient "
			    "address '%s'", shown(show, sizeof(show), msg->to[n]));
			rc = BL_EINVAL;
			goto out;
		}
		if ((n > 0 && (rc = hdr_add(&h, ",", 1)) < 0) ||
		    (rc = hdr_mailbox(&h, &mb)) < 0)
			goto toobig;
	}
	if ((rc = hdr_end(&h)) < 0)
		goto toobig;
	if ((rc = mail_header_text(out, "Subject", msg->subject)) < 0) {
		seterr(err, errlen, "cannot build mail: %s",
		    rc == BL_ETOOBIG ? "subject too long" :
		    "control character in the subject");
		goto out;
	}
	body = msg->body != NULL ? msg->body : "";
	if (strlen(body) > MAIL_BODY_MAX) {
		seterr(err, errlen, "cannot build mail: body over %u bytes",
		    MAIL_BODY_MAX);
		rc = BL_ETOOBIG;
		goto out;
	}
	if ((rc = buf_addf(out, "Message-ID: %s\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "Auto-Submitted: auto-generated\r\n"
	    "\r\n", msgid)) < 0 ||
	    (rc = utf8_sanitize(&clean, body, strlen(body))) < 0 ||
	    (rc = mail_qp_encode(out, clean.ptr, clean.len)) < 0)
		goto toobig;
	rc = 0;
	goto out;
toobig:
	seterr(err, errlen, "cannot build mail: %s", rc == BL_ETOOBIG ?
	    "message too big" : "header line too long");
out:
	if (rc < 0 && out->len > start) {
		out->len = start;
		out->ptr[start] = '\0';
	}
	buf_free(&clean);
	return rc;
}

/* Hands the message to libcurl piece by piece. */
static size_t
on_read(char *dst, size_t size, size_t nitems, void *arg)
{
	struct upload *up = arg;
	size_t n = size * nitems;

	if (n > up->len - up->off)
		n = up->len - up->off;
	memcpy(dst, up->p + up->off, n);
	up->off += n;
	return n;
}

/*
 * libcurl passes every reply line of the server to the header callback.
 * Keeps the last error reply (4xx, 5xx) for the caller; a later success
 * clears it (EHLO refused, then HELO accepted), except QUIT's 221, which
 * follows a failure.
 */
static size_t
on_reply(char *ptr, size_t size, size_t nitems, void *arg)
{
	struct reply *rep = arg;
	size_t len = size * nitems, i, k;
	long code;

	if (len < 3 || !is_digit(ptr[0]) || !is_digit(ptr[1]) ||
	    !is_digit(ptr[2]) || (len > 3 && ptr[3] == '-'))
		return len;
	code = (ptr[0] - '0') * 100 + (ptr[1] - '0') * 10 + (ptr[2] - '0');
	if (code >= 400) {
		for (i = k = 0; i < len && k + 1 < sizeof(rep->line); i++) {
			if (ptr[i] == '\r' || ptr[i] == '\n')
				break;
			rep->line[k++] = is_ctl((unsigned char)ptr[i]) ? '?' :
			    ptr[i];
		}
		rep->line[k] = '\0';
		rep->code = code;
	} else if (code != 221) {
		rep->code = 0;
		rep->line[0] = '\0';
	}
	return len;
}

/* Maps the outcome of a transfer to BL_EUNAVAIL (try later) or BL_ERROR. */
static int
send_status(CURLcode cc, const struct reply *rep, const char *where,
    const char *cerr, char *err, size_t errlen)
{
	const char *why = cerr[0] != '\0' ? cerr : curl_easy_strerror(cc);

	if (rep->code >= 500) {
		seterr(err, errlen, "smtp server '%s' refused the message: %s",
		    where, rep->line);
		return BL_ERROR;
	}
	if (rep->code >= 400) {
		seterr(err, errlen, "smtp server '%s' deferred the message: %s",
		    where, rep->line);
		return BL_EUNAVAIL;
	}
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_AGAIN:
		seterr(err, errlen, "cannot reach smtp server '%s': %s", where,
		    why);
		return BL_EUNAVAIL;
	default:
		seterr(err, errlen, "cannot send mail via '%s': %s", where, why);
		return BL_ERROR;
	}
}

int
mail_send(const struct mail_config *cfg, const struct mail_message *msg,
    char *err, size_t errlen)
{
	struct curl_slist *rcpt = NULL, *l;
	char cerr[CURL_ERROR_SIZE] = "", envfrom[MAIL_ADDR_MAX + 3];
	char rcptbuf[MAIL_ADDR_MAX + 3], where[300];
	char *scheme = NULL, *host = NULL, *port = NULL;
	struct reply rep = { 0, "" };
	struct upload up;
	struct mailbox mb;
	struct buf data;
	CURLU *u = NULL;
	CURL *curl = NULL;
	CURLcode cc;
	long timeout;
	size_t n;
	int rc;

	buf_init(&data, MAIL_DATA_MAX);
	pthread_once(&curl_once, httpc_global_init);
	if (cfg == NULL || cfg->url == NULL) {
		seterr(err, errlen, "cannot send mail: no smtp url");
		rc = BL_EINVAL;
		goto out;
	}
	/* The URL is never shown: it may hold a password. */
	if ((u = curl_url()) == NULL ||
	    curl_url_set(u, CURLUPART_URL, cfg->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
	    CURLUE_OK || (strcmp(scheme, "smtp") != 0 &&
	    strcmp(scheme, "smtps") != 0)) {
		seterr(err, errlen, "cannot send mail: bad smtp url (want "
		    "smtp://host:port or smtps://host:port)");
		rc = BL_EINVAL;
		goto out;
	}
	snprintf(where, sizeof(where), "%s:%s", host, port);
	if ((rc = mail_build(&data, cfg, msg, (int64_t)time(NULL), err,
	    errlen)) < 0)
		goto out;
	rc = BL_ERROR;
	mailbox_parse(&mb, cfg->from);		/* checked by mail_build */
	snprintf(envfrom, sizeof(envfrom), "<%s>", mb.addr);
	for (n = 0; msg->to[n] != NULL; n++) {
		mailbox_parse(&mb, msg->to[n]);
		snprintf(rcptbuf, sizeof(rcptbuf), "<%s>", mb.addr);
		if ((l = curl_slist_append(rcpt, rcptbuf)) == NULL) {
			seterr(err, errlen, "cannot send mail: out of memory");
			goto out;
		}
		rcpt = l;
	}
	if ((curl = curl_easy_init()) == NULL) {
		seterr(err, errlen, "cannot send mail: curl_easy_init failed");
		goto out;
	}
	timeout = cfg->timeout_s > 0 ? cfg->timeout_s : MAIL_TIMEOUT_S;
	up.p = data.ptr;
	up.len = data.len;
	up.off = 0;
	curl_easy_setopt(curl, CURLOPT_URL, cfg->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, timeout < 10 ?
	    timeout : 10L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(curl, CURLOPT_MAIL_FROM, envfrom);
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(curl, CURLOPT_READDATA, &up);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)data.len);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_reply);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &rep);
	curl_easy_setopt(curl, CURLOPT_USE_SSL, cfg->starttls ?
	    (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
	if (cfg->user != NULL && cfg->user[0] != '\0') {
		curl_easy_setopt(curl, CURLOPT_USERNAME, cfg->user);
		curl_easy_setopt(curl, CURLOPT_PASSWORD,
		    cfg->password != NULL ? cfg->password : "");
	}
	cc = curl_easy_perform(curl);
	if (cc == CURLE_OK) {
		log_debug("mail sent to %zu recipient(s) via %s", n, where);
		rc = 0;
	} else
		rc = send_status(cc, &rep, where, cerr, err, errlen);
out:
	curl_easy_cleanup(curl);
	curl_slist_free_all(rcpt);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	buf_free(&data);
	return rc;
}
