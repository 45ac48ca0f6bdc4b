# benchline: one Makefile for the server, the worker, the admin CLI and the tests.
#
#   make            build build/benchline-server, build/benchline-worker, build/benchline
#   make run        install what is missing, build, start PostgreSQL, server and worker
#   make test       install what is missing, build, run every test
#   make asan       the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      run the service benchmarks under bench/ and print their figures

CC	?= cc
O	?= build
OPT	?= -O2
SAN	?=
WARN	 = -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
	   -Wformat=2 -Werror
PKGS	 = libmicrohttpd libpq jansson libgit2 libcurl
# One package at a time: a benchmark machine that has only the worker's
# libraries (install-deps.sh --worker) still gets their flags and can
# `make build/benchline-worker`; one query for all would give nothing.
PKG_CFLAGS := $(foreach p,$(PKGS),$(shell pkg-config --cflags $(p) 2>/dev/null))
PKG_LIBS   := $(foreach p,$(PKGS),$(shell pkg-config --libs $(p) 2>/dev/null))
CFLAGS	+= -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) $(SAN) -Icommon -Icollector -Iserver -Iworker \
	   $(PKG_CFLAGS) -MMD -MP
LDFLAGS	+= $(SAN)
LDLIBS	 = $(PKG_LIBS) -lm -lpthread

COMMON_SRC	= $(wildcard common/*.c)
COLLECTOR_SRC	= $(wildcard collector/*.c)
SERVER_SRC	= $(filter-out server/main.c server/cli.c,$(wildcard server/*.c))
WORKER_SRC	= $(filter-out worker/main.c,$(wildcard worker/*.c))
UNIT_SRC	= $(wildcard tests/unit/*/*.c)

obj = $(patsubst %.c,$(O)/%.o,$(1))

LIBCOMMON	= $(O)/libcommon.a
LIBCOLLECTOR	= $(O)/libcollector.a
LIBSERVER	= $(O)/libserver.a
LIBWORKER	= $(O)/libworker.a
UNIT_BIN	= $(patsubst %.c,$(O)/%,$(UNIT_SRC))

BINS = $(O)/benchline-server $(O)/benchline-worker $(O)/benchline

.PHONY: all deps test unit asan run bench clean fuzz
all: $(BINS)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
$(LIBCOLLECTOR): $(call obj,$(COLLECTOR_SRC))
$(LIBSERVER): $(call obj,$(SERVER_SRC))
$(LIBWORKER): $(call obj,$(WORKER_SRC))
$(O)/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

$(O)/benchline-server: $(call obj,server/main.c) $(LIBSERVER) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(O)/benchline: $(call obj,server/cli.c) $(LIBSERVER) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(O)/benchline-worker: $(call obj,worker/main.c) $(LIBWORKER) $(LIBCOLLECTOR) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests: tests/unit/<dir>/<module>.c mirrors <dir>/<module>.c (cmocka).
$(O)/tests/unit/%: $(O)/tests/unit/%.o $(LIBSERVER) $(LIBWORKER) $(LIBCOLLECTOR) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# Fuzz targets: tests/fuzz/<parser>.c.  `make unit` builds each with the
# replay driver, which runs its saved corpus (tests/fuzz/corpus/<parser>/)
# in every test run; `make fuzz` builds them with libFuzzer and fuzzes.
FUZZ_SRC	= $(filter-out tests/fuzz/replay.c,$(wildcard tests/fuzz/*.c))
REPLAY_BIN	= $(patsubst tests/fuzz/%.c,$(O)/tests/unit/fuzz/%,$(FUZZ_SRC))
FUZZ_BIN	= $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS	?= 60
LIBS_ALL	= $(LIBSERVER) $(LIBWORKER) $(LIBCOLLECTOR) $(LIBCOMMON)

unit: $(UNIT_BIN) $(REPLAY_BIN)


$(O)/tests/unit/fuzz/%: tests/fuzz/%.c tests/fuzz/replay.c $(LIBS_ALL)
	@mkdir -p $(dir $@)
	@echo "  REPLAY  $<"
	@$(CC) $(CFLAGS) -Wno-missing-prototypes -DCORPUS_DIR='"$(CURDIR)/tests/fuzz/corpus/$*"' \
	    -o $@ $< tests/fuzz/replay.c $(LIBS_ALL) $(LDFLAGS) $(LDLIBS)

build-fuzz/%: tests/fuzz/%.c $(COMMON_SRC) $(SERVER_SRC) $(WORKER_SRC) $(COLLECTOR_SRC)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	    -Icommon -Icollector -Iserver -Iworker $(PKG_CFLAGS) -o $@ $< \
	    $(COMMON_SRC) $(SERVER_SRC) $(WORKER_SRC) $(COLLECTOR_SRC) $(LDLIBS)

fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
	    echo "fuzzing $$n for $(FUZZ_SECONDS) s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; done

# The dashboard's libraries and its browser tests' driver come from npm
# (web/package-lock.json); npm ci runs when node_modules is missing or older.
deps:
	@bash deploy/install-deps.sh --browser
	@if [ ! -e web/node_modules/.package-lock.json ] || \
	    [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then \
	    echo "npm ci in web/"; \
	    (cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund) || exit 1; fi

test: deps
	$(MAKE) all unit
	BUILD=$(O) bash tests/run.sh

asan:
	$(MAKE) O=build-asan OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

run: deps
	$(MAKE) all
	BUILD=$(O) bash deploy/run-local.sh

bench: deps
	$(MAKE) all
	BUILD=$(O) bash bench/run.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(O) -name '*.d' 2>/dev/null)
