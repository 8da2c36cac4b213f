# bench/module.mk -- the reference servers benchmarks compare against.
BENCH_BINS := $(BUILD)/bin/bench-hello

$(BUILD)/bin/bench-hello: $(BUILD)/obj/bench/gateway/hello.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

.PHONY: bench-binaries
bench-binaries: $(BENCH_BINS)
