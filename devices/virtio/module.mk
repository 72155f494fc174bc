# virtio: the device-side benchmark (driver-less virtio-blk round trips via the mock driver).
# Run: $(BUILD)/bench_virtio_blk [--requests N]; writes $BENCH_JSON_DIR/virtio.json if set.
.PHONY: bench-virtio
$(BUILD)/bench_virtio_blk: devices/virtio/bench_blk.c tests/mock_virtio.c tests/mock_virtio.h $(BUILD)/libvmlab.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_REL) -o $@ devices/virtio/bench_blk.c tests/mock_virtio.c $(BUILD)/libvmlab.a $(PKG_LIBS)
bench-virtio: $(BUILD)/bench_virtio_blk
