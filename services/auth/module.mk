# services/auth/module.mk -- accounts, tokens, the follow and block graph, devices.
AUTH_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/auth/*.c))
BINS += $(BUILD)/bin/auth

$(BUILD)/bin/auth: $(AUTH_OBJS) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
