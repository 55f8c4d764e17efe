# Distribuerad -- build, test, bench, run.
#   make            build ./distribuerad and ./dq (the command-line client)
#   make run        install missing packages, build, serve on :3333 with ./data
#   make test       install missing packages, build, run unit + black-box tests
#   make asan-test  the same tests against an ASan/UBSan build
#   make soak       three replicas on PostgreSQL under load and faults (below)
#   make bench      benchmarks (see bench/)
# Add your own flags with CFLAGS=...; SANITIZER=address,undefined builds with
# sanitizers into build-san/.

CC      ?= cc
CFLAGS  ?= -O2
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -MMD -MP -Isrc
# libpq gives only its header: the PostgreSQL store loads the library at
# start with dlopen (src/store/pq.h), so a server on the memory store
# never maps it.
PKGS    := libh2o-evloop libpq
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs libh2o-evloop 2>/dev/null)
# jansson checks our JSON parser and writer in the unit tests and fuzz/;
# the server itself does not link it.
TEST_PKGS := jansson
TEST_CFLAGS = $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)
override CFLAGS += $(PKG_CFLAGS) -DH2O_USE_LIBUV=0
LDLIBS  += $(PKG_LIBS) -lssl -lcrypto -lpthread -lm
# dq, the command-line client, links libcurl and nothing of the server's.
DQ_CFLAGS = $(shell pkg-config --cflags libcurl 2>/dev/null)
DQ_LIBS   = $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl) -lpthread -lm

ifdef SANITIZER
B := build-san
override CFLAGS += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=$(SANITIZER)
else
B := build
endif

# The folders in include order (docs/HACKING.md): each may include only
# those before it, as scripts/check-layers.sh checks.
LAYERS   := base time json core store http
LIB_SRC  := $(foreach d,$(LAYERS),$(sort $(wildcard src/$(d)/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
CORE_OBJ := $(filter $(B)/src/base/% $(B)/src/time/% $(B)/src/core/%,$(LIB_OBJ))
MAIN_OBJ := $(B)/src/main.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
BIN      := $(if $(SANITIZER),$(B)/distribuerad,distribuerad)
# dq: its own files plus the JSON parser and the allocation wrappers.
DQ_SRC   := $(sort $(wildcard src/cli/*.c)) src/json/jparse.c src/base/util.c
DQ_OBJ   := $(DQ_SRC:%.c=$(B)/%.o)
DQ       := $(if $(SANITIZER),$(B)/dq,dq)

.PHONY: all deps run test unit blackbox asan-test valgrind bench clean
all: $(BIN) $(DQ)

deps:
	@scripts/deps.sh build

$(BIN): $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(DQ): $(DQ_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(DQ_LIBS)

$(B)/src/cli/%.o: override CFLAGS += $(DQ_CFLAGS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The dashboard and the OpenAPI document are compiled in (src/http/assets.c).
$(B)/src/http/assets.o: $(wildcard src/http/assets/*)

$(B)/tests/test_%: tests/unit/test_%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS) $(TEST_LIBS) -lcmocka

run:
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory $(BIN)
	./$(BIN) -data-dir ./data

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory $(BIN) $(DQ) $(UNIT_BIN)
	@tests/run.sh $(B) ./$(BIN)

unit: $(UNIT_BIN)
	@tests/run.sh --unit-only $(B) ./$(BIN)

blackbox: $(BIN) $(DQ)
	@tests/run.sh --blackbox-only $(B) ./$(BIN)

asan-test:
	@DISTRIBUERAD_SANITIZED=1 $(MAKE) --no-print-directory test SANITIZER=address,undefined CC=clang

valgrind: $(BIN) $(DQ) $(UNIT_BIN)
	@tests/run.sh --valgrind $(B) ./$(BIN)

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory -C bench

clean:
	rm -rf build build-san distribuerad dq

-include $(wildcard $(B)/src/*.d $(B)/src/*/*.d $(B)/tests/*.d)

# Container image and Kubernetes manifests (see tests/image/):
#   make image-test     as root: build ./Dockerfile with podman, run the image
#                       under chroot, walk the API, restart, report sizes
#   make manifest-test  validate deploy/kubernetes and deploy/kubernetes/postgres
#                       against the Kubernetes schemas
.PHONY: image-test manifest-test
image-test:
	@tests/image/run.sh

manifest-test: $(BIN)
	@tests/image/test_manifests ./$(BIN)

# Fuzzing with libFuzzer, ASan and UBSan (clang; see fuzz/README.md):
#   make fuzz                   every target for FUZZ_SECONDS (default 60) each
#   make fuzz FUZZ_SECONDS=600  longer
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
.PHONY: fuzz
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) CC=$(FUZZ_CC) fuzz/run.sh

# Three replicas on a throwaway PostgreSQL under load, killed and the
# database restarted, then the invariants checked (tests/soak/soak.py):
#   make soak                    for SOAK_SECONDS (default 60)
SOAK_SECONDS ?= 60
.PHONY: soak
soak:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory $(BIN)
	@tests/soak/soak.py --bin ./$(BIN) --seconds $(SOAK_SECONDS)

# The PostgreSQL store embeds its migrations (.incbin in pgmigrate.c).
$(B)/src/store/pgmigrate.o: $(wildcard src/store/migrations/*.sql)
