/*
 * Runs a fuzz target over the files of its corpus without libFuzzer, so
 * `make test` (and `make asan`) replays every saved input on any compiler.
 * Usage: replay [FILE|DIR]...; without arguments, the corpus named at build.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
	unsigned char *buf;
	size_t n;
	long len;
	FILE *fp;

	if ((fp = fopen(path, "rb")) == NULL) {
		perror(path);
		return -1;
	}
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	buf = malloc(len > 0 ? (size_t)len : 1);
	n = fread(buf, 1, (size_t)(len > 0 ? len : 0), fp);
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int
replay(const char *path, int *count)
{
	struct dirent *d;
	struct stat st;
	char full[4096];
	DIR *dir;

	if (stat(path, &st) < 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(full, sizeof(full), "%s/%s", path, d->d_name);
		if (replay(full, count) < 0) {
			closedir(dir);
			return -1;
		}
	}
	closedir(dir);
	return 0;
}

int
main(int argc, char **argv)
{
	int i, count = 0;

	if (argc < 2) {
		if (replay(CORPUS_DIR, &count) < 0)
			return 1;
	}
	for (i = 1; i < argc; i++)
		if (replay(argv[i], &count) < 0)
			return 1;
	printf("replayed %d inputs from %s\n", count, argc < 2 ? CORPUS_DIR :
	    "the arguments");
	return 0;
}
