# services/search/module.mk -- ranked search and autocomplete; SQLite FTS5 and GLib (Unicode).
SEARCH_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/search/*.c))
BINS += $(BUILD)/bin/search
SQLITE_CFLAGS = $(shell pkg-config --cflags sqlite3)
SQLITE_LIBS = $(shell pkg-config --libs sqlite3)

$(SEARCH_OBJS): CFLAGS += $(GLIB_CFLAGS) $(SQLITE_CFLAGS)

$(BUILD)/bin/search: $(SEARCH_OBJS) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(GLIB_LIBS) $(SQLITE_LIBS)

# Its unit tests may include its .c files and so link GLib and SQLite too.
$(BUILD)/obj/tests/unit/services/search/%.o: CFLAGS += $(GLIB_CFLAGS) $(SQLITE_CFLAGS)
$(BUILD)/tests/services/search/%: PKG_LIBS += $(GLIB_LIBS) $(SQLITE_LIBS)
