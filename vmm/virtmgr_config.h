/* A VM's configuration as the manager takes it: the JSON file `vmlab vm run CONFIG.json`
 * reads (AVF's vm_config.json shape: kernel, initrd, params, disks with an image or
 * partitions, memory_mib; plus program/args, cpus, cpu, debug, name, devices), and the
 * same object on the wire to the manager, where every disk image, partition, console and
 * log is an fd passed with the message instead of a path. Parsing is strict: an unknown
 * key or a wrong type is refused with the key's path ("disks[0].partitions[1].label"). */
#ifndef VMLAB_VIRTMGR_CONFIG_H
#define VMLAB_VIRTMGR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

#define VMCFG_MAX_DISKS 8
#define VMCFG_MAX_PARTS 8
#define VMCFG_MAX_ARGS  64

enum vmcfg_form {
    VMCFG_FILE,         /* the user's file: paths */
    VMCFG_WIRE,         /* client to manager: fd indices into the message's fds */
};

/* A file named by path (file form) or by the index of an fd in the message (wire form). */
struct vmcfg_file {
    char *path;
    int fd;             /* -1: none */
};

struct vmcfg_partition {
    char *label;
    struct vmcfg_file file;
    int writable;
};

struct vmcfg_disk {
    struct vmcfg_file image;            /* or partitions */
    struct vmcfg_partition parts[VMCFG_MAX_PARTS];
    unsigned nparts;
    int writable;
};

enum vmcfg_debug { VMCFG_DEBUG_FULL, VMCFG_DEBUG_NONE };

struct vm_config {
    char *name;
    char *kernel, *program, *initrd, *params;
    char *args[VMCFG_MAX_ARGS];         /* the program's arguments */
    unsigned nargs;
    uint64_t memory_mib;                /* 0: vmlab run's default */
    unsigned cpus;
    char *cpu;                          /* "sim" or "kvm" */
    enum vmcfg_debug debug;
    int rng;                            /* devices: ["rng"] */
    uint64_t max_insns;                 /* 0: unbounded (software CPU) */
    int sandbox;                        /* vmlab run --sandbox + namespaces (default 1) */
    struct vmcfg_disk disks[VMCFG_MAX_DISKS];
    unsigned ndisks;
    struct vmcfg_file console, log;     /* wire form only */
};

void vmcfg_init(struct vm_config *c);
/* 0 or -EINVAL with err naming the key's path and the offending value. On error `c` holds
 * what was parsed so far: vmcfg_free() it either way. */
int vmcfg_parse(struct json_object *o, enum vmcfg_form form, struct vm_config *c, char *err,
                size_t errlen);
/* Reads and parses a config file. */
int vmcfg_load(const char *path, struct vm_config *c, char *err, size_t errlen);
/* The object in `form` (paths or fd indices, whichever each file has in that form). */
struct json_object *vmcfg_to_json(const struct vm_config *c, enum vmcfg_form form);
void vmcfg_free(struct vm_config *c);
/* Duplicates s into *dst (freeing the old value); -ENOMEM. */
int vmcfg_set(char **dst, const char *s);

#endif
