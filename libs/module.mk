# libs/module.mk -- every libs/<lib>/*.c goes into one static archive the daemons link.
LIB_SRCS := $(wildcard libs/*/*.c)
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))

$(LIBA): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^
