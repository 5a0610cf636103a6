/* virtio-balloon (virtio 1.x, 5.5): the host asks the guest to give pages back.
 *
 * Inflating: the guest's driver takes pages from its allocator and lists their frame
 * numbers on the inflate queue; vessel drops them from guest RAM (guest_mem_discard:
 * MADV_DONTNEED frees the anonymous mapping's pages, on a snapshot's MAP_PRIVATE memory
 * file the guest's private copies, and the page reads as the file again; shared RAM's are
 * punched out of its memfd), so the VMM's RSS falls.
 * Deflating gives them back to the guest, which just uses them again (MUST_TELL_HOST is
 * not offered: nothing to do before a page is reused). Optional: the statistics queue
 * (the guest's memory figures every stats_polling_interval_s seconds), DEFLATE_ON_OOM (the
 * guest deflates by itself under memory pressure) and free page reporting (the guest lists
 * free page blocks, which are dropped the same way). */
#ifndef VESSEL_VMM_VIRTIO_BALLOON_H
#define VESSEL_VMM_VIRTIO_BALLOON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/device.h"

/* Firecracker's Balloon object / `--balloon amount=MiB[,deflate_on_oom][,stats=SECONDS]
 * [,free_page_reporting]`. */
struct balloon_config {
	uint32_t amount_mib;
	bool deflate_on_oom;
	uint32_t stats_s; /* 0: no statistics queue */
	bool reporting;
};

/* "balloon": `--balloon`, PUT /balloon, the config file's "balloon". */
extern const struct device_kind virtio_balloon_kind;

int balloon_config_parse(const char *spec, struct balloon_config *out, vs_err_t *err);
int balloon_config_from_json(json_t *obj, struct balloon_config *out, vs_err_t *err);

/* On a running VM's balloon (state: the kind's state, device_find's answer); main thread.
 * A new target (the guest is told through a configuration-change interrupt; it inflates
 * or deflates at its pace); refused above the guest's RAM. */
int balloon_set_target(void *state, uint32_t amount_mib, vs_err_t *err);
/* A new statistics interval (not 0, and only if the device was made with statistics: the
 * queue exists or not from boot on); the next refresh is asked for now. */
int balloon_set_stats_interval(void *state, uint32_t seconds, vs_err_t *err);
/* Firecracker's BalloonStats: target/actual pages and MiB, and the guest's last figures
 * (a tag the guest never sent is left out). -1 if statistics are off. */
json_t *balloon_stats_json(void *state, vs_err_t *err);

#endif
