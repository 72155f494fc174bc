# Disk images: protobuf-c code for the composite format, generated from our own .proto.
# (devices/disk/bench_disk.c is built by the top Makefile's bench rule.)
DISK_PROTO := devices/disk/composite.proto
GEN_SRCS += $(BUILD)/gen/composite.pb-c.c
GEN_HDRS += $(BUILD)/gen/composite.pb-c.h

$(BUILD)/gen/composite.pb-c.c $(BUILD)/gen/composite.pb-c.h: $(DISK_PROTO)
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=devices/disk --c_out=$(BUILD)/gen $(notdir $(DISK_PROTO))
