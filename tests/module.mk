# tests/module.mk -- unit tests (one Criterion binary per tests/unit/**/test_*.c) and the echo daemon.
UNIT_SRCS := $(shell find tests/unit -name 'test_*.c' 2>/dev/null)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcriterion

ECHOD_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/echod/*.c))
BINS += $(BUILD)/bin/echod

$(BUILD)/bin/echod: $(ECHOD_OBJS) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

.PHONY: unit-binaries
unit-binaries: $(UNIT_TESTS)

# The FCM fake (tests/fakes/fcm_fake.c): a local Firebase Cloud Messaging server for the notification
# daemon's tests and benchmarks; stack.sh runs it when STACK_FCM_PORT is set.
BINS += $(BUILD)/bin/fcm-fake

$(BUILD)/bin/fcm-fake: $(BUILD)/obj/tests/fakes/fcm_fake.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
