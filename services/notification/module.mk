# services/notification/module.mk -- inbox, push (libcurl, libjwt) and welcome e-mail.
NOTIFICATION_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/notification/*.c))
BINS += $(BUILD)/bin/notification

$(BUILD)/bin/notification: $(NOTIFICATION_OBJS) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
