/* A snapshot's device blobs come from a file that may be another vessel's, truncated or
 * forged (the state file's CRC does not stop a hand): every device kind's restore must
 * refuse what it can't take with an error, never crash, leak or touch memory it should
 * not. The kinds are the registry's table, so a new kind is fuzzed without a change here.
 *
 * Input: byte 0 picks the kind (mod the number of kinds with a restore), the rest is the
 * blob. Each run builds a fresh VM without KVM (as the unit tests do) holding one device of
 * that kind and restores the blob onto it (restore runs on a fresh device, as on a load).
 * A refusal must say why; a blob it takes must save, and that save must restore onto
 * another fresh device and save the same bytes again.
 *
 * The kinds that need a host resource get one made once: a drive a 1 MiB file in /tmp;
 * a network interface a persistent tap, made inside a private network namespace so the
 * host's interfaces are never touched (root only: without it the kind is left out, said on
 * stderr). VESSEL_FUZZ_SEEDS=DIR writes each kind's blob as a fresh device saves it to
 * DIR, as seeds (tests/fuzz/corpus/device_restore/); VESSEL_FUZZ_KIND=NAME fuzzes that
 * kind only. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "vmm/device.h"
#include "vmm/memory.h"
#include "vmm/vm.h"

static void no_line(struct vm *vm, unsigned gsi, int level)
{
	(void)vm, (void)gsi, (void)level;
}

static int no_irqfd(struct vm *vm, int fd, unsigned gsi, bool assign, vs_err_t *err)
{
	(void)vm, (void)fd, (void)gsi, (void)assign, (void)err;
	return 0;
}

static int no_doorbell(struct vm *vm, const struct vm_doorbell *d, bool assign, vs_err_t *err)
{
	(void)vm, (void)d, (void)assign, (void)err;
	return 0;
}

static const struct vm_ops fake_ops = {no_line, no_irqfd, no_doorbell};

/* The kinds fuzzed, and the command-line spec each configured kind is made from. */
static struct {
	const struct device_kind *kind;
	char *spec; /* NULL: builtin or a switch (no config) */
} kinds[32];
static size_t nkinds;
/* a fixed path: a drive's blob names its file, and the seeds must name this one */
static const char disk_path[] = "/tmp/vessel-fuzz-device-restore.disk";

#define FUZZ_TAP "vsfuzz0"

/* A private network namespace holding a persistent tap: each run's interface attaches to
 * it, as vessel does to a tap that exists (making a new one each run costs milliseconds). */
static bool private_tap(void)
{
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr,
			"fuzz_device_restore: no private network namespace (%s): the "
			"network-interface kind is not fuzzed\n",
			strerror(errno));
		return false;
	}
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	strcpy(ifr.ifr_name, FUZZ_TAP);
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0) {
		fprintf(stderr,
			"fuzz_device_restore: tap %s (%s): the network-interface kind is "
			"not fuzzed\n",
			FUZZ_TAP, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	return true;
}

/* The spec a configured kind is made from, or NULL when this host can't make one. */
static char *spec_for(const struct device_kind *k, bool have_tap)
{
	if (!strcmp(k->name, "drive"))
		return strdup(disk_path);
	if (!strcmp(k->name, "network-interface"))
		return have_tap ? strdup("tap=" FUZZ_TAP) : NULL;
	fprintf(stderr, "fuzz_device_restore: kind `%s` needs a config this harness cannot make\n",
		k->name);
	return NULL;
}

static void *make_config(const struct device_kind *k, const char *spec)
{
	if (!spec)
		return NULL;
	void *config = calloc(1, k->config_size);
	vs_err_t err = NULL;
	if (!config || k->from_cli(spec, config, &err) < 0) {
		fprintf(stderr, "fuzz_device_restore: %s `%s`: %s\n", k->name, spec,
			err ? err->msg : "out of memory");
		abort();
	}
	return config;
}

static void free_config(const struct device_kind *k, void *config)
{
	if (config && k->config_free)
		k->config_free(config);
	free(config);
}

/* A fresh VM with one device of kind i; returns its state. */
static void *build(struct vm *vm, size_t i)
{
	vs_err_t err = NULL;
	if (vm_create_detached(vm, &fake_ops, NULL, GUEST_MEM_MIN, &err) < 0) {
		fprintf(stderr, "fuzz_device_restore: VM: %s\n", err->msg);
		abort();
	}
	void *config = make_config(kinds[i].kind, kinds[i].spec);
	int r = device_add(vm, kinds[i].kind, config, &err);
	free_config(kinds[i].kind, config);
	if (r < 0) {
		fprintf(stderr, "fuzz_device_restore: %s: %s\n", kinds[i].kind->name, err->msg);
		abort();
	}
	return device_find(vm, kinds[i].kind);
}

static void write_seeds(const char *dir)
{
	for (size_t i = 0; i < nkinds; i++) {
		struct vm vm;
		void *state = build(&vm, i), *blob = NULL;
		size_t len = 0;
		vs_err_t err = NULL;
		if (kinds[i].kind->save(state, &blob, &len, &err) < 0) {
			fprintf(stderr, "fuzz_device_restore: save %s: %s\n", kinds[i].kind->name,
				err->msg);
			abort();
		}
		char *path = NULL;
		if (asprintf(&path, "%s/%s", dir, kinds[i].kind->name) < 0)
			abort();
		FILE *f = fopen(path, "wb");
		uint8_t sel = (uint8_t)i;
		if (!f || fwrite(&sel, 1, 1, f) != 1 || fwrite(blob, 1, len, f) != len ||
		    fclose(f) != 0) {
			fprintf(stderr, "fuzz_device_restore: %s: %s\n", path, strerror(errno));
			abort();
		}
		free(path);
		free(blob);
		vm_destroy(&vm);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	int fd = open(disk_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0) {
		perror("fuzz_device_restore: temporary disk");
		abort();
	}
	close(fd);
	bool have_tap = private_tap();
	const char *only = getenv("VESSEL_FUZZ_KIND");
	for (size_t k = 0; k < device_nkinds && nkinds < sizeof(kinds) / sizeof(kinds[0]); k++) {
		const struct device_kind *kind = device_kinds[k];
		if (!kind->restore || !kind->save || (only && *only && strcmp(only, kind->name)))
			continue;
		char *spec = NULL;
		if (!kind->builtin && kind->cli_value) {
			spec = spec_for(kind, have_tap);
			if (!spec)
				continue;
		}
		kinds[nkinds].kind = kind;
		kinds[nkinds].spec = spec;
		nkinds++;
	}
	for (size_t i = 0; i < nkinds; i++)
		fprintf(stderr, "fuzz_device_restore: kind %zu: %s\n", i, kinds[i].kind->name);
	const char *seeds = getenv("VESSEL_FUZZ_SEEDS");
	if (seeds && *seeds)
		write_seeds(seeds);
	return 0;
}

static void *save_or_trap(size_t i, void *state, size_t *len, const char *when)
{
	void *blob = NULL;
	vs_err_t err = NULL;
	if (kinds[i].kind->save(state, &blob, len, &err) < 0) {
		fprintf(stderr, "%s: %s, cannot save: %s\n", kinds[i].kind->name, when, err->msg);
		__builtin_trap();
	}
	return blob;
}

/* What a restore took must save, restore onto another fresh device, and save the same
 * again: a snapshot of a loaded snapshot is the same snapshot. The first VM goes before
 * the second is made (a tap takes one owner). */
static void round_trip(size_t i, struct vm *first, void *state)
{
	size_t len = 0, len2 = 0;
	void *saved = save_or_trap(i, state, &len, "restored");
	vm_destroy(first);
	struct vm vm;
	void *fresh = build(&vm, i);
	vs_err_t err = NULL;
	if (kinds[i].kind->restore(fresh, saved, len, &err) < 0) {
		fprintf(stderr, "%s: refuses its own save of a restored device: %s\n",
			kinds[i].kind->name, err->msg);
		__builtin_trap();
	}
	void *again = save_or_trap(i, fresh, &len2, "restored from its own save");
	if (len != len2 || memcmp(saved, again, len) != 0) {
		fprintf(stderr, "%s: save, restore, save gives other bytes\n", kinds[i].kind->name);
		__builtin_trap();
	}
	free(again);
	free(saved);
	vm_destroy(&vm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || nkinds == 0)
		return 0;
	size_t i = data[0] % nkinds;
	struct vm vm;
	void *state = build(&vm, i);
	vs_err_t err = NULL;
	/* a copy of exactly the blob's size, so a read past it is caught */
	uint8_t *blob = malloc(size - 1 ? size - 1 : 1);
	memcpy(blob, data + 1, size - 1);
	if (kinds[i].kind->restore(state, blob, size - 1, &err) == 0) {
		round_trip(i, &vm, state);
	} else {
		if (!err || !err->msg[0]) {
			fprintf(stderr, "%s: restore failed without a message\n",
				kinds[i].kind->name);
			__builtin_trap();
		}
		vm_destroy(&vm);
	}
	vs_err_free(&err);
	free(blob);
	return 0;
}
