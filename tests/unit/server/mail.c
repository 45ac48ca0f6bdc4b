/*
 * Unit tests of server/mail.c: addresses, header encoding, quoted-printable
 * bodies and whole messages as pure functions, then mail_send() against the
 * real SMTP sink (tests/lib/smtp_sink.py, run from the repository root).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "server.h"

#define SINK_SCRIPT	"tests/lib/smtp_sink.py"
#define SINK_PYTHON	"/usr/bin/python3"
#define T_NOW		1700000000	/* Tue, 14 Nov 2023 22:13:20 +0000 */

/* ------------------------------------------------------------------------ */
/* Helpers: decoders written independently of mail.c, and line checks. */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;		/* lowercase is not what RFC 2045 emits */
}

/* Decodes a quoted-printable body with CRLF lines into "\n" lines. */
static char *
qp_decode(const char *s, size_t len, size_t *outlen)
{
	char *out = malloc(len + 1);
	size_t i = 0, k = 0;

	assert_non_null(out);
	while (i < len) {
		if (s[i] == '=' && i + 2 < len && s[i + 1] == '\r' &&
		    s[i + 2] == '\n') {
			i += 3;		/* soft line break */
		} else if (s[i] == '=') {
			assert_true(i + 2 < len);
			assert_true(hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0);
			out[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 3;
		} else if (s[i] == '\r') {
			assert_true(i + 1 < len && s[i + 1] == '\n');
			out[k++] = '\n';
			i += 2;
		} else {
			assert_true(s[i] != '\n');
			out[k++] = s[i++];
		}
	}
	out[k] = '\0';
	*outlen = k;
	return out;
}

/*
 * Decodes the value of one header field ("Name: value\r\n" with folds):
 * unfolds, then replaces each run of Q encoded-words (and the blanks
 * between them) by the text they carry.
 */
static char *
header_decode(const char *field)
{
	const char *colon = strchr(field, ':'), *p, *end;
	char *unfolded, *out;
	size_t k = 0, u = 0;
	int last_was_word = 0;

	assert_non_null(colon);
	unfolded = malloc(strlen(field) + 1);
	out = malloc(strlen(field) + 1);
	assert_non_null(unfolded);
	assert_non_null(out);
	for (p = colon + 1; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n')
			p++;
		else
			unfolded[u++] = *p;
	}
	unfolded[u] = '\0';
	p = unfolded;
	if (*p == ' ')
		p++;
	while (*p != '\0') {
		if (strncmp(p, "=?UTF-8?Q?", 10) == 0 &&
		    (end = strstr(p + 10, "?=")) != NULL) {
			for (p += 10; p < end; p++) {
				if (*p == '_')
					out[k++] = ' ';
				else if (*p == '=') {
					out[k++] = (char)(hexval(p[1]) * 16 +
					    hexval(p[2]));
					p += 2;
				} else
					out[k++] = *p;
			}
			p = end + 2;
			last_was_word = 1;
			continue;
		}
		if (last_was_word && *p == ' ') {
			const char *q = p;

			while (*q == ' ')
				q++;
			if (strncmp(q, "=?UTF-8?Q?", 10) == 0) {
				p = q;	/* blanks between words are dropped */
				continue;
			}
		}
		last_was_word = 0;
		out[k++] = *p++;
	}
	out[k] = '\0';
	free(unfolded);
	return out;
}

/* Asserts CRLF-only line ends and lines of at most max bytes. */
static void
assert_lines(const char *s, size_t len, size_t max)
{
	size_t i, col = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '\r') {
			assert_true(i + 1 < len && s[i + 1] == '\n');
			i++;
			col = 0;
			continue;
		}
		assert_true(s[i] != '\n');
		col++;
		if (col > max)
			fail_msg("line longer than %zu at byte %zu", max, i);
	}
}

/* The field "Name: ...\r\n" (with its folds) from a message, or NULL. */
static char *
field_of(const char *msg, const char *name)
{
	size_t n = strlen(name);
	const char *p = msg, *e;
	char *out;

	while (*p != '\0' && !(p[0] == '\r' && p[1] == '\n')) {
		e = p;
		do {
			e = strstr(e, "\r\n");
			assert_non_null(e);
			e += 2;
		} while (*e == ' ' || *e == '\t');
		if (strncmp(p, name, n) == 0 && p[n] == ':') {
			out = strndup(p, (size_t)(e - p));
			assert_non_null(out);
			return out;
		}
		p = e;
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Pure functions. */

static void
test_address_valid(void **state)
{
	static const char *const good[] = {
		"a@b.org", "first.last+tag@sub.example.org", "root@localhost",
		"o'neil@example.org", "<a@b.org>", "  a@b.org  ",
		"Bench Line <bl@example.org>", "\"Line, Bench\" <bl@example.org>",
		"\"say \\\"hi\\\"\" <bl@example.org>", "Zoë Dev <z@example.org>",
		"x@a-b.c-d.org",
	};
	static const char *const bad[] = {
		"", "a", "a@", "@b.org", "a@@b.org", "a@b@c.org", "a..b@c.org",
		".a@b.org", "a.@b.org", "a@-b.org", "a@b-.org", "a@b..org",
		"a@.b.org", "a b@c.org", "a@b.org\r\nBcc: evil@x.org",
		"a@b.org\nBcc: evil@x.org", "Name\n <a@b.org>", "a@b.org\x7f",
		"a\t@b.org", "é@b.org", "a@exämple.org", "Name <a@b.org",
		"Name a@b.org>", "x <a@b.org> <c@d.org>", "\"open <a@b.org>",
		"a\"b <a@b.org>", "(comment) a@b.org", "a@[127.0.0.1]",
		"bad\xff <a@b.org>",
	};
	char big[600];
	size_t i;

	(void)state;
	for (i = 0; i < BL_ARRAY_LEN(good); i++)
		if (!mail_address_valid(good[i]))
			fail_msg("'%s' should be valid", good[i]);
	for (i = 0; i < BL_ARRAY_LEN(bad); i++)
		if (mail_address_valid(bad[i]))
			fail_msg("'%s' should be invalid", bad[i]);
	assert_false(mail_address_valid(NULL));

	/* 64 bytes of local part is the most; 254 for the whole. */
	memset(big, 'l', 64);
	strcpy(big + 64, "@example.org");
	assert_true(mail_address_valid(big));
	memset(big, 'l', 65);
	strcpy(big + 65, "@example.org");
	assert_false(mail_address_valid(big));
	strcpy(big, "a@");
	for (i = 2; i + 1 < 256; i += 2)
		memcpy(big + i, "b.", 2);
	strcpy(big + 254, "b");		/* 255 bytes */
	assert_false(mail_address_valid(big));
	big[253] = '\0';		/* "a@b.b.....b" of 253 bytes */
	big[252] = 'b';
	assert_true(mail_address_valid(big));
}

static void
test_date(void **state)
{
	char d[64];

	(void)state;
	mail_date(d, sizeof(d), 0);
	assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
	mail_date(d, sizeof(d), T_NOW);
	assert_string_equal(d, "Tue, 14 Nov 2023 22:13:20 +0000");
	mail_date(d, sizeof(d), 951782400);	/* a leap day */
	assert_string_equal(d, "Tue, 29 Feb 2000 00:00:00 +0000");
}

/* Encodes text, checks the shape of the result and that it decodes back. */
static void
qp_roundtrip(const char *text, size_t len, const char *expect)
{
	struct buf b;
	char *dec, *want;
	size_t declen, i, k;

	buf_init(&b, 1 << 20);
	assert_int_equal(mail_qp_encode(&b, text, len), 0);
	if (expect != NULL)
		assert_string_equal(b.ptr, expect);
	assert_lines(b.ptr, b.len, 76);
	for (i = 0; i < b.len; i++) {
		assert_true((b.ptr[i] >= 32 && b.ptr[i] <= 126) ||
		    b.ptr[i] == '\r' || b.ptr[i] == '\n');
		/* No blank before a line end: relays may strip it. */
		if (b.ptr[i] == '\r' && i > 0)
			assert_true(b.ptr[i - 1] != ' ' && b.ptr[i - 1] != '\t');
	}
	/* The decoder turns CRLF into "\n"; so must the expectation. */
	want = malloc(len + 1);
	assert_non_null(want);
	for (i = k = 0; i < len; i++) {
		if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
			continue;
		want[k++] = text[i];
	}
	dec = qp_decode(b.ptr, b.len, &declen);
	assert_int_equal(declen, k);
	assert_memory_equal(dec, want, k);
	free(dec);
	free(want);
	buf_free(&b);
}

static void
test_qp_encode(void **state)
{
	char line[2101];
	size_t i;

	(void)state;
	qp_roundtrip("", 0, "");
	qp_roundtrip("abc\n", 4, "abc\r\n");
	qp_roundtrip("abc", 3, "abc=\r\n");	/* no final line end, kept */
	qp_roundtrip("x=y\n", 4, "x=3Dy\r\n");
	qp_roundtrip("trailing  \n", 11, "trailing =20\r\n");
	qp_roundtrip("tab\t\n", 5, "tab=09\r\n");
	qp_roundtrip("in the middle\n", 14, "in the middle\r\n");
	qp_roundtrip("crlf\r\nlf\n\n", 10, "crlf\r\nlf\r\n\r\n");
	qp_roundtrip("lone\rcr\n", 8, "lone=0Dcr\r\n");
	qp_roundtrip("h\xc3\xa9llo\n", 7, "h=C3=A9llo\r\n");
	qp_roundtrip(".\n..\n.x\n", 8, ".\r\n..\r\n.x\r\n");
	qp_roundtrip("nul\0byte\n", 9, "nul=00byte\r\n");

	/* 80 letters: 75 and a soft break, then 5. */
	memset(line, 'a', 80);
	qp_roundtrip(line, 80, NULL);
	line[80] = '\0';
	{
		struct buf b;

		buf_init(&b, 4096);
		assert_int_equal(mail_qp_encode(&b, line, 80), 0);
		assert_int_equal(strcspn(b.ptr, "="), 75);
		assert_string_equal(b.ptr + 75, "=\r\naaaaa=\r\n");
		buf_free(&b);
	}
	/* An escape is never split by a soft break. */
	memset(line, 'b', 74);
	memcpy(line + 74, "\xc3\xa9\n", 3);
	qp_roundtrip(line, 77, NULL);

	/* A 2100-byte line of everything, with dots after each soft break. */
	for (i = 0; i < 2100; i++)
		line[i] = (char)(i % 7 == 0 ? '.' : i % 11 == 0 ? ' ' :
		    i % 13 == 0 ? '=' : 'a' + (char)(i % 26));
	qp_roundtrip(line, 2100, NULL);
}

/* Builds "Subject: text" and checks lines, folding and the decoded value. */
static void
subject_roundtrip(const char *text, const char *decoded, int encoded)
{
	struct buf b;
	char *value;

	buf_init(&b, 1 << 16);
	assert_int_equal(mail_header_text(&b, "Subject", text), 0);
	assert_lines(b.ptr, b.len, 78);
	assert_true(b.len >= 2 && strcmp(b.ptr + b.len - 2, "\r\n") == 0);
	assert_int_equal(strstr(b.ptr, "=?UTF-8?Q?") != NULL, encoded);
	value = header_decode(b.ptr);
	assert_string_equal(value, decoded != NULL ? decoded : text);
	free(value);
	buf_free(&b);
}

static void
test_header_text(void **state)
{
	struct buf b;
	char longtext[400], word[200], huge[1000];
	size_t i;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(mail_header_text(&b, "Subject", "Hello world"), 0);
	assert_string_equal(b.ptr, "Subject: Hello world\r\n");
	buf_reset(&b);
	assert_int_equal(mail_header_text(&b, "Subject", ""), 0);
	assert_string_equal(b.ptr, "Subject:\r\n");

	/* Injection: nothing is written. */
	buf_reset(&b);
	assert_int_equal(mail_header_text(&b, "Subject",
	    "hi\r\nBcc: evil@example.org"), BL_EINVAL);
	assert_int_equal(mail_header_text(&b, "Subject", "hi\nthere"),
	    BL_EINVAL);
	assert_int_equal(mail_header_text(&b, "Subject", "hi\rthere"),
	    BL_EINVAL);
	assert_int_equal(mail_header_text(&b, "Subject", "tab\there"),
	    BL_EINVAL);
	assert_int_equal(b.len, 0);
	memset(huge, 'x', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	assert_int_equal(mail_header_text(&b, "Subject", huge), BL_ETOOBIG);
	assert_int_equal(b.len, 0);
	buf_free(&b);

	subject_roundtrip("Hello world", NULL, 0);
	subject_roundtrip("R\xc3\xa9gression de 12 % sur tinyllm \xe2\x80\x94 "
	    "d\xc3\xa9" "bit \xe2\x86\x93", NULL, 1);
	subject_roundtrip("looks like =?UTF-8?Q?x?= a word", NULL, 1);
	subject_roundtrip(" leading and trailing ", NULL, 1);
	subject_roundtrip("two  blanks", NULL, 0);
	subject_roundtrip("bad \xff byte", "bad \xef\xbf\xbd byte", 1);
	subject_roundtrip("\xf0\x9f\x93\x89\xf0\x9f\x93\x89\xf0\x9f\x93\x89"
	    "\xf0\x9f\x93\x89\xf0\x9f\x93\x89\xf0\x9f\x93\x89", NULL, 1);

	/* A long ASCII subject is folded at blanks, and unfolds exactly. */
	for (i = 0; i < 300; i++)
		longtext[i] = i % 9 == 8 ? ' ' : 'a' + (char)(i % 26);
	longtext[300] = '\0';
	subject_roundtrip(longtext, NULL, 0);
	/* A word too long to fold in time is encoded instead. */
	memset(word, 'w', 150);
	word[150] = '\0';
	subject_roundtrip(word, NULL, 1);
	/* Long non-ASCII text: many words, none splitting a character. */
	for (i = 0; i + 2 <= 398; i += 2)
		memcpy(longtext + i, "\xc3\xa9", 2);
	longtext[398] = '\0';
	subject_roundtrip(longtext, NULL, 1);
}

static const char *const two_rcpts[] = {
	"ops@example.org", "Zo\xc3\xab Dev <zoe@example.org>", NULL
};

static void
test_build(void **state)
{
	struct mail_config cfg = {
		.url = "smtp://127.0.0.1:1", .from =
		    "benchline <benchline@example.org>", .timeout_s = 5,
	};
	struct mail_message msg = {
		.to = two_rcpts, .subject = "[benchline] regression",
		.body = "line one\n.line two\n", .message_id_hint = "incident-42",
	};
	const char *to_bad[] = { "ok@example.org", "x@y.org\r\nBcc: e@x.org",
	    NULL };
	const char *to_none[] = { NULL };
	const char **many;
	char err[256], *f, *v, *dec, id1[80], id2[80];
	struct buf b;
	size_t declen, i;
	const char *sep;

	(void)state;
	buf_init(&b, 1 << 20);
	assert_int_equal(mail_build(&b, &cfg, &msg, T_NOW, err, sizeof(err)), 0);
	assert_lines(b.ptr, b.len, 78);
	assert_non_null(strstr(b.ptr,
	    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	assert_non_null(strstr(b.ptr,
	    "From: benchline <benchline@example.org>\r\n"));
	assert_non_null(strstr(b.ptr,
	    "Subject: [benchline] regression\r\n"));
	assert_non_null(strstr(b.ptr,
	    "Message-ID: <benchline.incident-42@example.org>\r\n"));
	assert_non_null(strstr(b.ptr, "MIME-Version: 1.0\r\n"));
	assert_non_null(strstr(b.ptr,
	    "Content-Type: text/plain; charset=utf-8\r\n"));
	assert_non_null(strstr(b.ptr,
	    "Content-Transfer-Encoding: quoted-printable\r\n"));
	f = field_of(b.ptr, "To");
	assert_non_null(f);
	v = header_decode(f);
	assert_string_equal(v, "ops@example.org, Zo\xc3\xab Dev "
	    "<zoe@example.org>");
	free(v);
	free(f);
	sep = strstr(b.ptr, "\r\n\r\n");
	assert_non_null(sep);
	dec = qp_decode(sep + 4, strlen(sep + 4), &declen);
	assert_string_equal(dec, "line one\n.line two\n");
	free(dec);

	/* The hint makes the Message-ID stable; without one it is random. */
	msg.message_id_hint = NULL;
	for (i = 0; i < 2; i++) {
		buf_reset(&b);
		assert_int_equal(mail_build(&b, &cfg, &msg, T_NOW, err,
		    sizeof(err)), 0);
		f = field_of(b.ptr, "Message-ID");
		assert_non_null(f);
		assert_int_equal(strlen(f), strlen("Message-ID: <benchline."
		    "@example.org>\r\n") + 32);
		assert_int_equal(strspn(f + 23, "0123456789abcdef"), 32);
		snprintf(i == 0 ? id1 : id2, sizeof(id1), "%s", f);
		free(f);
	}
	assert_string_not_equal(id1, id2);

	/* Every bad input is refused, and nothing is left in the buffer. */
	buf_reset(&b);
	msg.message_id_hint = "a b";
	assert_int_equal(mail_build(&b, &cfg, &msg, T_NOW, err, sizeof(err)),
	    BL_EINVAL);
	assert_non_null(strstr(err, "message id hint"));
	msg.message_id_hint = "../x";
	assert_int_equal(mail_build(&b, &cfg, &msg, T_NOW, err, sizeof(err)),
	    BL_EINVAL);
	msg.message_id_hint = "x>\r\nBcc: e@x.org";
	assert_int_equal(mail_build(&b, &cfg, &msg, T_NOW, err, sizeof(err)),
	    BL_EINVAL);
	assert_null(strchr(err, '\r'));
	assert_null(strchr(err, '\n'));
	msg.message_id_hint = "incident-42";
	msg.subject = "x\r\nBcc: evil@example.org";
	assert_int_equal(mail_build(&b, &cfg, &msg, T_NOW, err, sizeof(err)),
	    BL_EINVAL);
	assert_non_null(strstr(err, "subject"));
	msg.subject = "ok";
	msg.to = to_bad;
	assert_int_equal(mail_build(&b, &cfg, &msg, T_NOW, err, sizeof(err)),
	    BL_EINVAL);
	assert_non_null(strstr(err, "bad recipient address 'x@y.org??Bcc"));
	msg.to = to_none;
	assert_int_equal(mail_build(&b, &cfg, &msg, T_NOW, err, sizeof(err)),
	    BL_EINVAL);
	msg.to = two_rcpts;
	cfg.from = "benchline <benchline@example.org>\nBcc: e@x.org";
	assert_int_equal(mail_build(&b, &cfg, &msg, T_NOW, err, sizeof(err)),
	    BL_EINVAL);
	assert_non_null(strstr(err, "bad sender address"));
	cfg.from = "benchline@example.org";
	many = calloc(102, sizeof(*many));
	assert_non_null(many);
	for (i = 0; i < 101; i++)
		many[i] = "r@example.org";
	msg.to = many;
	assert_int_equal(mail_build(&b, &cfg, &msg, T_NOW, err, sizeof(err)),
	    BL_EINVAL);
	many[100] = NULL;	/* 100 is allowed, and folded */
	assert_int_equal(mail_build(&b, &cfg, &msg, T_NOW, err, sizeof(err)),
	    0);
	assert_lines(b.ptr, b.len, 78);
	free(many);
	buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* The network: mail_send() against tests/lib/smtp_sink.py. */

struct sink {
	pid_t	pid;
	int	port;
	char	dir[256];
};

struct net {
	struct sink	plain;		/* no AUTH */
	struct sink	auth;		/* AUTH as "bench:s3cret pass" */
};

static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* The pid the sink wrote into its ready file once it listened, or 0. */
static pid_t
ready_pid(const struct sink *s)
{
	char path[300];
	long pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/ready", s->dir);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sink_stop(struct sink *s)
{
	int st;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			return;
		}
		usleep(50000);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
}

static void
print_file(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		fprintf(stderr, "  | %s", line);
	fclose(f);
}

/*
 * Starts the sink on a free port, storing into a new directory, and waits
 * until it says it listens (its pid in DIR/ready: a process that lost the
 * port to another would never write it).  The sink dies with this process
 * (PR_SET_PDEATHSIG) even if a test crashes.  Returns 0 or -1.
 */
static int
sink_start(struct sink *s, const char *auth)
{
	const char *base = getenv("BENCHLINE_TEST_TMPDIR");
	char port[16], log[300];
	pid_t parent = getpid();
	double deadline;
	char ready[300];
	int attempt, fd, st;

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s/bl-mail-XXXXXX",
	    base != NULL && *base != '\0' ? base : "/tmp");
	if (mkdtemp(s->dir) == NULL)
		return -1;
	snprintf(log, sizeof(log), "%s/sink.log", s->dir);
	snprintf(ready, sizeof(ready), "%s/ready", s->dir);
	for (attempt = 0; attempt < 3; attempt++) {
		unlink(ready);
		s->port = free_port();
		snprintf(port, sizeof(port), "%d", s->port);
		if ((s->pid = fork()) < 0)
			return -1;
		if (s->pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				_exit(1);
			fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
			fd = open("/dev/null", O_RDONLY);
			if (fd >= 0)
				dup2(fd, 0);
			if (auth != NULL)
				execl(SINK_PYTHON, "python3", SINK_SCRIPT, "--port",
				    port, "--dir", s->dir, "--auth", auth,
				    (char *)NULL);
			else
				execl(SINK_PYTHON, "python3", SINK_SCRIPT, "--port",
				    port, "--dir", s->dir, (char *)NULL);
			_exit(127);
		}
		deadline = now_s() + 20;
		while (now_s() < deadline) {
			if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
				s->pid = 0;
				break;
			}
			if (ready_pid(s) == s->pid)
				return 0;
			usleep(20000);
		}
		if (s->pid != 0) {
			sink_stop(s);
			break;	/* alive but silent: no point in retrying */
		}
	}
	fprintf(stderr, "smtp sink did not start (run from the repository "
	    "root, with python3-aiosmtpd); %s:\n", log);
	print_file(log);
	return -1;
}

/* Removes a sink's directory and the files in it. */
static void
sink_rmdir(struct sink *s)
{
	char cmd[300];

	if (s->dir[0] == '\0' || strncmp(s->dir, "/", 1) != 0 ||
	    strstr(s->dir, "bl-mail-") == NULL)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", s->dir);
	s->dir[0] = '\0';
}

static void
sink_refuse(struct sink *s, const char *mode)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/refuse", s->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(mode, f);
	fclose(f);
}

/* Waits until the sink stored message n (1, 2, ...) and loads its JSON. */
static json_t *
sink_message(struct sink *s, int n)
{
	char path[300];
	json_error_t jerr;
	double deadline = now_s() + 10;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%06d.json", s->dir, n);
	while (access(path, R_OK) != 0) {
		if (now_s() > deadline)
			fail_msg("the sink stored no message %d in %s", n,
			    s->dir);
		usleep(20000);
	}
	j = json_load_file(path, 0, &jerr);
	if (j == NULL)
		fail_msg("%s: %s", path, jerr.text);
	return j;
}

/* The contents of a file the sink wrote; caller frees. */
static char *
sink_file(struct sink *s, const char *name)
{
	char path[400], *out;
	FILE *f;
	long len;

	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len >= 0);
	rewind(f);
	out = malloc((size_t)len + 1);
	assert_non_null(out);
	assert_int_equal(fread(out, 1, (size_t)len, f), (size_t)len);
	out[len] = '\0';
	fclose(f);
	return out;
}

static const char *
jstr(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	if (s == NULL)
		fail_msg("no string '%s' in the sink's record", key);
	return s;
}

static const char *
jheader(json_t *j, const char *name)
{
	const char *s = json_string_value(json_object_get(json_object_get(j,
	    "headers"), name));

	if (s == NULL)
		fail_msg("no header '%s' in the sink's record", name);
	return s;
}

static struct net net_state;

/* Stops both sinks and removes their files; safe to call twice. */
static int
net_teardown(void **state)
{
	struct net *n = &net_state;

	(void)state;
	sink_stop(&n->plain);
	sink_stop(&n->auth);
	sink_rmdir(&n->plain);
	sink_rmdir(&n->auth);
	return 0;
}

static int
net_setup(void **state)
{
	struct net *n = &net_state;

	*state = n;
	if (sink_start(&n->plain, NULL) < 0 ||
	    sink_start(&n->auth, "bench:s3cret pass") < 0) {
		net_teardown(state);
		return -1;
	}
	return 0;
}

static void
url_of(char *out, size_t len, const struct sink *s)
{
	snprintf(out, len, "smtp://127.0.0.1:%d", s->port);
}

/* The body of the round trip: every hazard of SMTP data at once. */
static char *
hazard_body(void)
{
	struct buf b;
	size_t i;

	buf_init(&b, 1 << 20);
	buf_addstr(&b, "Regression of 12.5 % in tokens/s on t1.\n\n");
	for (i = 0; i < 2000; i++)	/* one 2000-byte line */
		buf_add(&b, &"0123456789abcdef= .\xc3\xa9"[i % 21], 1);
	buf_addstr(&b, "\n.starts with a dot\n..two dots\n.\n"
	    "trailing blanks   \n\tindented by a tab\n"
	    "From the start of a line\n"
	    "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x93\x89\n"
	    "last line without a line end");
	return buf_detach(&b);
}

static void
test_send_roundtrip(void **state)
{
	struct net *n = *state;
	char url[64], err[512];
	const char *subject = "[benchline] R\xc3\xa9gression de 12 % sur "
	    "tinyllm \xe2\x80\x94 d\xc3\xa9" "bit \xe2\x86\x93 (commit "
	    "0123abcd, target t1, scenario latency)";
	char *body = hazard_body();
	struct mail_config cfg = {
		.from = "benchline <benchline@example.org>", .timeout_s = 10,
	};
	struct mail_message m1 = {
		.to = two_rcpts, .subject = subject, .body = body,
		.message_id_hint = "alert-42-opened",
	};
	const char *one[] = { "dev@example.org", NULL };
	struct mail_message m2 = {
		.to = one, .subject = "plain", .body = "hello\n",
	};
	json_t *j, *r;
	const char *id;
	char *raw;

	url_of(url, sizeof(url), &n->plain);
	cfg.url = url;
	err[0] = '\0';
	if (mail_send(&cfg, &m1, err, sizeof(err)) != 0)
		fail_msg("mail_send: %s", err);
	if (mail_send(&cfg, &m2, err, sizeof(err)) != 0)
		fail_msg("mail_send: %s", err);

	j = sink_message(&n->plain, 1);
	assert_string_equal(jstr(j, "mail_from"), "benchline@example.org");
	r = json_object_get(j, "rcpt_tos");
	assert_int_equal(json_array_size(r), 2);
	assert_string_equal(json_string_value(json_array_get(r, 0)),
	    "ops@example.org");
	assert_string_equal(json_string_value(json_array_get(r, 1)),
	    "zoe@example.org");
	assert_string_equal(jstr(j, "subject"), subject);
	assert_string_equal(jstr(j, "body"), body);
	assert_string_equal(jheader(j, "From"),
	    "benchline <benchline@example.org>");
	assert_string_equal(jheader(j, "To"),
	    "ops@example.org, Zo\xc3\xab Dev <zoe@example.org>");
	assert_string_equal(jheader(j, "Message-ID"),
	    "<benchline.alert-42-opened@example.org>");
	assert_string_equal(jheader(j, "Content-Transfer-Encoding"),
	    "quoted-printable");
	assert_non_null(strstr(jheader(j, "Content-Type"), "text/plain"));
	assert_non_null(strstr(jheader(j, "Content-Type"), "utf-8"));
	assert_int_equal(strlen(jheader(j, "Date")), 31);
	assert_int_equal(json_array_size(json_object_get(j, "defects")), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "max_line")) <=
	    78, 1);
	assert_false(json_is_true(json_object_get(j, "bare_lf")));
	assert_false(json_is_true(json_object_get(j, "bare_cr")));
	/*
	 * The lone "." line arrived in the middle of the data: libcurl
	 * stuffed it, or the server would have ended DATA there.
	 */
	raw = sink_file(&n->plain, jstr(j, "eml"));
	assert_non_null(strstr(raw, "\r\n.starts with a dot\r\n..two dots"
	    "\r\n.\r\ntrailing"));
	free(raw);
	json_decref(j);

	j = sink_message(&n->plain, 2);
	assert_string_equal(jstr(j, "subject"), "plain");
	assert_string_equal(jstr(j, "body"), "hello\n");
	id = jheader(j, "Message-ID");
	assert_int_equal(strncmp(id, "<benchline.", 11), 0);
	assert_int_equal(strspn(id + 11, "0123456789abcdef"), 32);
	assert_string_equal(id + 43, "@example.org>");
	json_decref(j);
	free(body);
}

static void
test_send_refused(void **state)
{
	struct net *n = *state;
	char url[64], err[512];
	const char *one[] = { "dev@example.org", NULL };
	struct mail_config cfg = {
		.from = "benchline@example.org", .timeout_s = 10,
	};
	struct mail_message m = {
		.to = one, .subject = "refuse me", .body = "x\n",
	};
	int rc;

	url_of(url, sizeof(url), &n->plain);
	cfg.url = url;

	/* 550 to RCPT: a refusal, with the server's words. */
	sink_refuse(&n->plain, "rcpt");
	rc = mail_send(&cfg, &m, err, sizeof(err));
	if (rc != BL_ERROR)
		fail_msg("rcpt refused: rc %d, %s", rc, err);
	assert_non_null(strstr(err, "550 5.1.1 <dev@example.org>: recipient "
	    "refused by the test sink"));
	assert_non_null(strstr(err, url + 7));

	/* 451 after DATA: temporary, so "try again later". */
	sink_refuse(&n->plain, "data");
	rc = mail_send(&cfg, &m, err, sizeof(err));
	if (rc != BL_EUNAVAIL)
		fail_msg("data deferred: rc %d, %s", rc, err);
	assert_non_null(strstr(err, "451 4.3.0 temporary failure"));

	/* Accepting again: the next message goes through. */
	sink_refuse(&n->plain, "none");
	rc = mail_send(&cfg, &m, err, sizeof(err));
	if (rc != 0)
		fail_msg("after refusals: rc %d, %s", rc, err);
}

static void
test_send_auth(void **state)
{
	struct net *n = *state;
	char url[64], err[512];
	const char *one[] = { "dev@example.org", NULL };
	struct mail_config cfg = {
		.from = "benchline@example.org", .user = "bench",
		.password = "s3cret pass", .timeout_s = 10,
	};
	struct mail_message m = {
		.to = one, .subject = "with auth", .body = "x\n",
	};
	json_t *j;
	int rc;

	url_of(url, sizeof(url), &n->auth);
	cfg.url = url;
	rc = mail_send(&cfg, &m, err, sizeof(err));
	if (rc != 0)
		fail_msg("auth: rc %d, %s", rc, err);
	j = sink_message(&n->auth, 1);
	assert_string_equal(jstr(j, "subject"), "with auth");
	json_decref(j);

	cfg.password = "wrong";
	rc = mail_send(&cfg, &m, err, sizeof(err));
	if (rc != BL_ERROR)
		fail_msg("bad password: rc %d, %s", rc, err);
	assert_non_null(strstr(err, "535"));
	assert_null(strstr(err, "wrong"));

	/* No AUTH at all: the sink wants it before MAIL (530). */
	cfg.user = NULL;
	rc = mail_send(&cfg, &m, err, sizeof(err));
	if (rc != BL_ERROR)
		fail_msg("no auth: rc %d, %s", rc, err);
	assert_non_null(strstr(err, "530"));
}

static void
test_send_bad_config(void **state)
{
	char err[512];
	const char *one[] = { "dev@example.org", NULL };
	struct mail_config cfg = {
		.url = "http://127.0.0.1:1/", .from = "benchline@example.org",
		.timeout_s = 5,
	};
	struct mail_message m = { .to = one, .subject = "s", .body = "b\n" };

	(void)state;
	assert_int_equal(mail_send(&cfg, &m, err, sizeof(err)), BL_EINVAL);
	assert_non_null(strstr(err, "bad smtp url"));
	cfg.url = "not a url";
	assert_int_equal(mail_send(&cfg, &m, err, sizeof(err)), BL_EINVAL);
	cfg.url = NULL;
	assert_int_equal(mail_send(&cfg, &m, err, sizeof(err)), BL_EINVAL);
	cfg.url = "smtp://127.0.0.1:1";
	m.subject = "a\r\nBcc: evil@example.org";
	assert_int_equal(mail_send(&cfg, &m, err, sizeof(err)), BL_EINVAL);
}

/* A listener that never greets: the exchange must end by the timeout. */
static void
test_send_timeout(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char url[64], err[512];
	const char *one[] = { "dev@example.org", NULL };
	struct mail_config cfg = {
		.from = "benchline@example.org", .timeout_s = 1,
	};
	struct mail_message m = { .to = one, .subject = "s", .body = "b\n" };
	double t0;
	int fd, rc;

	(void)state;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", ntohs(sa.sin_port));
	cfg.url = url;
	t0 = now_s();
	rc = mail_send(&cfg, &m, err, sizeof(err));
	close(fd);
	if (rc != BL_EUNAVAIL)
		fail_msg("silent server: rc %d, %s", rc, err);
	assert_true(now_s() - t0 < 5.0);
	assert_non_null(strstr(err, "cannot reach smtp server"));
}

/* starttls = 1 demands TLS: a server without STARTTLS gets no mail. */
static void
test_send_starttls_required(void **state)
{
	struct net *n = *state;
	char url[64], err[512];
	const char *one[] = { "dev@example.org", NULL };
	struct mail_config cfg = {
		.from = "benchline@example.org", .user = "bench",
		.password = "s3cret pass", .starttls = 1, .timeout_s = 10,
	};
	struct mail_message m = { .to = one, .subject = "tls", .body = "b\n" };
	int rc;

	url_of(url, sizeof(url), &n->auth);
	cfg.url = url;
	rc = mail_send(&cfg, &m, err, sizeof(err));
	if (rc != BL_ERROR)
		fail_msg("no STARTTLS: rc %d, %s", rc, err);
	assert_non_null(strstr(err, "cannot send mail via"));
	assert_null(strstr(err, "s3cret"));
}

/* Last: the sink goes away, and sending fails fast as "try later". */
static void
test_send_unavailable(void **state)
{
	struct net *n = *state;
	char url[128], err[512];
	const char *one[] = { "dev@example.org", NULL };
	struct mail_config cfg = {
		.from = "benchline@example.org", .user = "bench",
		.password = "hunter2", .timeout_s = 10,
	};
	struct mail_message m = { .to = one, .subject = "s", .body = "b\n" };
	double t0;
	int rc;

	sink_stop(&n->plain);
	snprintf(url, sizeof(url), "smtp://bench:urlpass@127.0.0.1:%d",
	    n->plain.port);
	cfg.url = url;
	t0 = now_s();
	rc = mail_send(&cfg, &m, err, sizeof(err));
	if (rc != BL_EUNAVAIL)
		fail_msg("sink stopped: rc %d, %s", rc, err);
	assert_true(now_s() - t0 < 2.0);
	assert_non_null(strstr(err, "cannot reach smtp server '127.0.0.1:"));
	/* Neither password shows. */
	assert_null(strstr(err, "hunter2"));
	assert_null(strstr(err, "urlpass"));
}

int
main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_address_valid),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_qp_encode),
		cmocka_unit_test(test_header_text),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_send_bad_config),
		cmocka_unit_test(test_send_timeout),
	};
	const struct CMUnitTest net[] = {
		cmocka_unit_test(test_send_roundtrip),
		cmocka_unit_test(test_send_refused),
		cmocka_unit_test(test_send_auth),
		cmocka_unit_test(test_send_starttls_required),
		cmocka_unit_test(test_send_unavailable),
	};
	int failed;

	failed = cmocka_run_group_tests_name("mail", pure, NULL, NULL);
	failed += cmocka_run_group_tests_name("mail_send", net, net_setup,
	    net_teardown);
	return failed == 0 ? 0 : 1;
}
