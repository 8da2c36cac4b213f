# bench/module.mk -- the reference programs benchmarks compare against.
BENCH_BINS := $(BUILD)/bin/bench-hello $(BUILD)/bin/bench-hash

$(BUILD)/bin/bench-hello: $(BUILD)/obj/bench/gateway/hello.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/bin/bench-hash: $(BUILD)/obj/bench/auth/hash.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

.PHONY: bench-binaries
bench-binaries: $(BENCH_BINS)
