/* Recording a trace while a VM runs (`vmlab run --trace FILE`).
 *
 * How vm.c uses it, in order:
 *
 *     struct trace_recorder *tr;
 *     rc = trace_recorder_open(&tr, opt->trace, &vm->mc, clock, err, errlen);
 *     // the devices' interrupts must go through the recording sink: either give it
 *     // to them at device_create, or (vm.c) point an indirection at it
 *     target = trace_recorder_wrap_irq(tr, &real_sink);
 *     trace_recorder_attach_mem(tr, &vm->mem);     // DMA tap (guest_mem_set_tap)
 *     trace_recorder_attach_bus(tr, &vm->mmio);    // bus taps (bus_set_tap)
 *     trace_recorder_attach_bus(tr, &vm->pio);
 *     trace_recorder_attach_disk(tr, &sink);       // each file-backed disk (disk_tap.h)
 *     ... vm_run ...   trace_recorder_control(tr, json) for each control request,
 *                      trace_recorder_fault(tr, text) for each injected fault
 *     ... destroy the devices ...
 *     rc = trace_recorder_close(tr, exit_status, err, errlen);   // end event, frees
 *
 * A recording must start before the guest runs for replay to work (replay starts the
 * devices from reset); for `vmlab trace start` on a running VM use
 * trace_recorder_open_running, which marks the header so replay refuses it clearly.
 * Attach the memory tap after the loader has copied the guest in (the loader writes host
 * memory directly, so it is never recorded anyway). Bus accesses are matched to the
 * header's devices by their window base, so the machine_config passed here must list the
 * devices with the same base/space the buses were given. The clock may be NULL at open and
 * set later with trace_recorder_set_clock (time is 0 until then).
 *
 * The taps run on the hot path: events are encoded into an in-memory chunk and whole
 * chunks are written. A mutex makes the recorder safe for several vCPU threads (KVM).
 * The same run on the software CPU gives a byte-identical file: the header holds nothing
 * about the host or the time of recording. */
#ifndef VMLAB_TRACE_RECORD_H
#define VMLAB_TRACE_RECORD_H

#include <stddef.h>

#include "vmm/bus.h"
#include "vmm/clock.h"
#include "vmm/guest_mem.h"
#include "vmm/irq.h"
#include "vmm/machine.h"

struct trace_recorder;
struct disk_tap_sink;

int trace_recorder_open(struct trace_recorder **out, const char *path,
                        const struct machine_config *mc, const struct clock *clock,
                        char *err, size_t errlen);
/* The same, for a VM that has already run (`vmlab trace start` on the control socket): the
 * header says so, and replay refuses such a trace (the devices' state when it began is not
 * in it); dump, info, diff and export work as usual. */
int trace_recorder_open_running(struct trace_recorder **out, const char *path,
                                const struct machine_config *mc, const struct clock *clock,
                                char *err, size_t errlen);
void trace_recorder_set_clock(struct trace_recorder *r, const struct clock *clock);

/* Returns a sink that records every set_level call, then forwards it to `inner` (which
 * must outlive the recorder). Valid until trace_recorder_close. */
const struct irq_sink *trace_recorder_wrap_irq(struct trace_recorder *r,
                                               const struct irq_sink *inner);
void trace_recorder_attach_mem(struct trace_recorder *r, struct guest_mem *m);
void trace_recorder_attach_bus(struct trace_recorder *r, struct bus *b);

/* Records a file-backed disk (the sink of its disk_tap_wrap wrapper, which must outlive the
 * recorder): its description now, then the content of each sector the run first reads and
 * each request the disk refuses, so replay needs no image. Detached at close. */
void trace_recorder_attach_disk(struct trace_recorder *r, struct disk_tap_sink *sink);

/* The vCPU that the following bus accesses come from (default 0). Per thread. */
void trace_recorder_set_vcpu(unsigned vcpu);

void trace_recorder_control(struct trace_recorder *r, const char *json);
/* What device `device` (index in the machine_config) exchanged with its host backend;
 * dir is DEVICE_HOST_IN, _OUT or _IN_NESTED (devices/device.h). */
void trace_recorder_host_io(struct trace_recorder *r, int device, int dir, const void *data,
                            size_t len);
void trace_recorder_fault(struct trace_recorder *r, const char *text);
/* Host input handed to header device `device` (device_type.host_input), recorded after the
 * device took it, like a bus access after its handler: replay hands the same bytes to the
 * device at the same virtual time, so it needs no input source. */
void trace_recorder_input(struct trace_recorder *r, int device, const void *data, size_t len);

/* Ends the recording: writes the end event with `exit_status`, removes the taps it set,
 * flushes, closes the file and frees the recorder, including the wrapped irq sink. Call it
 * once the vCPUs stopped and the devices were destroyed (what a device does while being
 * destroyed, such as lowering its line, is still recorded; replay destroys its devices at
 * the end event too), while the buses and memory still exist. 0 or -errno with a message. */
int trace_recorder_close(struct trace_recorder *r, int exit_status, char *err, size_t errlen);

/* Events recorded so far (for a one-line summary). */
unsigned long long trace_recorder_events(const struct trace_recorder *r);

#endif
