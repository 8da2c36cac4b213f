# cli/queues/module.mk -- queues, the operators' CLI for the suite's RabbitMQ queues (management API, AMQP).
QUEUES_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard cli/queues/*.c))
BINS += $(BUILD)/bin/queues

# Only the libraries it uses: libmongoc, linked in, may write a warning on stderr as it loads.
QUEUES_LIBS = $(shell pkg-config --libs librabbitmq libcurl libcjson libsodium uuid) -lpthread -lm

$(BUILD)/bin/queues: $(QUEUES_OBJS) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(QUEUES_LIBS)
