# Makefile -- builds libs, daemons and tests; runs the local stack, the tests and the benchmarks.
#
# Each directory brings its own fragment (libs/module.mk, services/<name>/module.mk,
# cli/<name>/module.mk, tests/module.mk, tests/fuzz/module.mk); this file holds the flags and the
# targets a newcomer expects:
#   make deps build up down logs test bench fmt clean

SHELL := /bin/bash
.DEFAULT_GOAL := build

# SAN=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer (make test does).
SAN ?= 0
ifeq ($(SAN),1)
BUILD := build/asan
OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD := build/release
OPT := -O2 -g
endif

PKGS := librabbitmq libmongoc-1.0 libbson-1.0 libjwt libcjson libsodium uuid libcurl openssl
# Recursive (=) so pkg-config runs only once something is compiled, after `deps`.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS)) $(shell pkg-config --libs libh2o-evloop) -lpthread -lm

CC ?= cc
WARN := -Wall -Wextra -Wformat=2 -Wstrict-prototypes -Werror -Wno-missing-field-initializers
CFLAGS = -std=gnu11 $(OPT) $(WARN) -MMD -MP -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -Ilibs $(PKG_CFLAGS)
LDFLAGS = $(OPT)

LIBA := $(BUILD)/libphoto.a
BINS :=
UNIT_TESTS :=

include libs/module.mk
include $(wildcard services/*/module.mk)
include $(wildcard cli/*/module.mk)
include tests/module.mk
include tests/fuzz/module.mk
include bench/module.mk

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

.PHONY: deps build binaries up down logs test unit e2e bench fmt clean

deps:
	@deploy/local/setup.sh

binaries: $(BINS)

JOBS := $(shell nproc 2>/dev/null || echo 2)

build: deps
	@$(MAKE) --no-print-directory -j$(JOBS) binaries

up: build
	@deploy/local/stack.sh up

down:
	@deploy/local/stack.sh down

logs:
	@deploy/local/stack.sh logs

# The whole test run: sanitizer build, a stack of its own on other ports, unit tests, a short
# fuzzing run, e2e tests.
test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) SAN=1 binaries unit-binaries fuzz-binaries
	@deploy/local/test.sh

bench: build
	@$(MAKE) --no-print-directory -j$(JOBS) bench-binaries
	@bench/gateway/run.sh
	@bench/auth/run.sh
	@bench/posts/run.sh
	@bench/feed/run.sh
	@bench/push/run.sh
	@bench/search/run.sh
	@bench/media/run.sh

fmt:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
