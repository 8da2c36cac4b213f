# services/publication/module.mk -- posts, comments, likes; GLib for the Unicode of hashtags.
PUBLICATION_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/publication/*.c))
BINS += $(BUILD)/bin/publication
GLIB_CFLAGS = $(shell pkg-config --cflags glib-2.0)
GLIB_LIBS = $(shell pkg-config --libs glib-2.0)

$(PUBLICATION_OBJS): CFLAGS += $(GLIB_CFLAGS)

$(BUILD)/bin/publication: $(PUBLICATION_OBJS) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(GLIB_LIBS)

# Its unit tests may include text.c and so link GLib too.
$(BUILD)/obj/tests/unit/services/publication/%.o: CFLAGS += $(GLIB_CFLAGS)
$(BUILD)/tests/services/publication/%: PKG_LIBS += $(GLIB_LIBS)
