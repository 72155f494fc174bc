/* The metadata clusters of a qcow2 image (header, L1 table, refcount table and blocks, L2
 * tables) as sorted ranges: no two may overlap, and no data cluster may lie on one. */
#ifndef VMLAB_QCOW2_META_H
#define VMLAB_QCOW2_META_H

#include <stddef.h>
#include <stdint.h>

struct meta_range { uint64_t start, end; const char *what; };
struct meta_map { struct meta_range *r; size_t n, cap; };

/* Appends [start, start+len) (unsorted, before meta_sort_check). 0 or -ENOMEM. */
int meta_add(struct meta_map *m, uint64_t start, uint64_t len, const char *what);

/* Adds a range to a sorted map, keeping it sorted (new metadata clusters land near the end
 * of the file, so this is usually an append). 0 or -ENOMEM. */
int meta_insert(struct meta_map *m, uint64_t start, uint64_t len, const char *what);

/* Sorts; 1 (with the two culprits) if any two ranges overlap. */
int meta_sort_check(struct meta_map *m, const struct meta_range **a, const struct meta_range **b);

/* The first range (after meta_sort_check) overlapping [start, start+len), or NULL. */
const struct meta_range *meta_overlap(const struct meta_map *m, uint64_t start, uint64_t len);

void meta_free(struct meta_map *m);

#endif
