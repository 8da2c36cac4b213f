# services/resize-image/module.mk -- photo uploads: sniffing, libvips variants, object store.
RESIZE_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/resize-image/*.c))
BINS += $(BUILD)/bin/resize-image
VIPS_CFLAGS = $(shell pkg-config --cflags vips libwebpmux)
VIPS_LIBS = $(shell pkg-config --libs vips libwebpmux)

$(RESIZE_OBJS): CFLAGS += $(VIPS_CFLAGS)

$(BUILD)/bin/resize-image: $(RESIZE_OBJS) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(VIPS_LIBS)

# Its unit tests may include variants.c and so link libvips too.
$(BUILD)/obj/tests/unit/services/resize-image/%.o: CFLAGS += $(VIPS_CFLAGS)
$(BUILD)/tests/services/resize-image/%: PKG_LIBS += $(VIPS_LIBS)
