# bench/module.mk -- the reference programs benchmarks compare against.
BENCH_BINS := $(BUILD)/bin/bench-hello $(BUILD)/bin/bench-hash $(BUILD)/bin/bench-variants \
	$(BUILD)/bin/bench-feed-seed $(BUILD)/bin/bench-feed-watch $(BUILD)/bin/bench-push-load \
	$(BUILD)/bin/bench-search-seed

$(BUILD)/bin/bench-hello: $(BUILD)/obj/bench/gateway/hello.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/bin/bench-hash: $(BUILD)/obj/bench/auth/hash.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# bench/feed: the network written straight into publication's database, and the fanout watcher.
$(BUILD)/bin/bench-feed-seed: $(BUILD)/obj/bench/feed/seed.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/bin/bench-feed-watch: $(BUILD)/obj/bench/feed/watch.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# bench/push: device tokens into notification's database, push jobs onto its queue (libs/mq).
$(BUILD)/bin/bench-push-load: $(BUILD)/obj/bench/push/load.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# resize-image's variant pipeline alone: its image objects, libs/core and libs/log, not the daemon (no
# database, broker or object store), so no more shared libraries than libvips needs.
BENCH_VARIANTS_OBJS := $(BUILD)/obj/bench/media/variants.o \
	$(patsubst %,$(BUILD)/obj/services/resize-image/%.o,variants blurhash sniff) $(BUILD)/obj/libs/core/core.o \
	$(BUILD)/obj/libs/log/log.o

$(BUILD)/obj/bench/media/variants.o: CFLAGS += -Iservices/resize-image

$(BUILD)/bin/bench-variants: $(BENCH_VARIANTS_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(VIPS_LIBS) $(shell pkg-config --libs uuid libcjson) -lpthread -lm

.PHONY: bench-binaries
bench-binaries: $(BENCH_BINS)

# publication's benchmark alone (make bench runs it with the others): the release daemons, no reference
# program of its own (its references are requests to the same stack: /healthz and auth's profile read).
.PHONY: bench-posts
bench-posts: build
	@bench/posts/run.sh

# The home feed's benchmark alone (issue 6): a synthetic network seeded into a stack of its own,
# feed page reads and the fanout of one post to 10,000 followers.
.PHONY: bench-feed
bench-feed: build
	@$(MAKE) --no-print-directory -j$(JOBS) $(BUILD)/bin/bench-feed-seed $(BUILD)/bin/bench-feed-watch
	@bench/feed/run.sh

# Push's benchmark alone (issue 7): sends per second from one notification daemon to the FCM fake,
# and the time from a like to its push leaving.
.PHONY: bench-push
bench-push: build
	@$(MAKE) --no-print-directory -j$(JOBS) $(BUILD)/bin/bench-push-load
	@bench/push/run.sh

# bench/search: a corpus written straight into search's database, and the request paths of its runs.
$(BUILD)/bin/bench-search-seed: $(BUILD)/obj/bench/search/seed.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Search's benchmark alone (issue 8): the index built over 100,000 users and 1,000,000 posts, and a
# query mix through the gateway at 64 streams.
.PHONY: bench-search
bench-search: build
	@$(MAKE) --no-print-directory -j$(JOBS) $(BUILD)/bin/bench-search-seed
	@bench/search/run.sh
