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
