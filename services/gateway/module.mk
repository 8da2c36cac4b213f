# services/gateway/module.mk -- the HTTP/2 edge.
GATEWAY_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/gateway/*.c))
BINS += $(BUILD)/bin/gateway

$(BUILD)/bin/gateway: $(GATEWAY_OBJS) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
