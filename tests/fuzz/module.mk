# tests/fuzz/module.mk -- libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang apart from the gcc build.
#
# Each target includes the .c file it fuzzes, as the unit tests do, so nothing here enters
# $(LIBA) or $(BINS). deploy/local/test.sh runs them briefly on their seed corpora
# (tests/fuzz/corpus/<name>/); by hand:
#   make fuzz-binaries && build/asan/fuzz/fuzz_multipart tests/fuzz/corpus/multipart
FUZZ_CC := clang
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer $(WARN) -MMD -MP -D_GNU_SOURCE -Ilibs $(PKG_CFLAGS)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

$(BUILD)/fuzz/%: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LDLIBS)

.PHONY: fuzz-binaries
fuzz-binaries: $(FUZZ_BINS)

# The caption parsers use GLib's Unicode tables and cJSON; core.c is included for its allocators.
$(BUILD)/fuzz/fuzz_caption: FUZZ_CFLAGS += $(shell pkg-config --cflags glib-2.0)
$(BUILD)/fuzz/fuzz_caption: FUZZ_LDLIBS = $(shell pkg-config --libs glib-2.0) -lcjson -luuid

# search's query words: GLib for Unicode, SQLite for the FTS5 expressions they make.
$(BUILD)/fuzz/fuzz_search_words: FUZZ_CFLAGS += $(shell pkg-config --cflags glib-2.0 sqlite3)
$(BUILD)/fuzz/fuzz_search_words: FUZZ_LDLIBS = $(shell pkg-config --libs glib-2.0 sqlite3) -lcjson -luuid
