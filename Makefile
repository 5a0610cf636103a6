# vessel: the two commands a new user runs are `make demo` and `make test`.
# The real build is meson + ninja; this file only names the entry points.

BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_FUZZ ?= build-fuzz
PYTHON     ?= /usr/bin/python3

.PHONY: all vessel demo test unit integration kvm kvmhost fuzz bench clean deps format images

all: vessel

$(BUILD)/build.ninja:
	@scripts/deps.sh build
	@rm -rf $(BUILD) && meson setup $(BUILD) -Dbuildtype=release -Dstatic_binary=true -Dtests=disabled >/dev/null

# The default guest image (Debian kernel + busybox initramfs); quick when up to date.
images:
	@images/build.sh

vessel: $(BUILD)/build.ninja images
	@ninja -C $(BUILD) vessel

$(BUILD_SAN)/build.ninja:
	@rm -rf $(BUILD_SAN) && meson setup $(BUILD_SAN) -Db_sanitize=address,undefined -Db_lundef=false -Dtests=enabled >/dev/null

demo:
	@scripts/deps.sh build demo
	@$(MAKE) --no-print-directory vessel
	@scripts/demo.sh $(BUILD)/vessel

# The emulated KVM host's kernel and initramfs (tests/kvmhost); quick when up to date.
kvmhost:
	@tests/kvmhost/build.sh

# Unit tests (Criterion) and integration tests (pytest) against the ASan+UBSan build; the
# tests that need hardware KVM run where there is one: here, or in the emulated KVM host.
# The release build too: the jailer's tests put the static binary into a jail (a
# sanitizer build needs shared libraries a jail does not hold).
test:
	@scripts/deps.sh build test
	@$(MAKE) --no-print-directory vessel unit integration kvm

unit: $(BUILD_SAN)/build.ninja
	@ninja -C $(BUILD_SAN)
	@meson test -C $(BUILD_SAN) --print-errorlogs --suite unit

integration: $(BUILD_SAN)/build.ninja images
	@ninja -C $(BUILD_SAN)
	@VESSEL=$(CURDIR)/$(BUILD_SAN)/vessel $(PYTHON) -m pytest -q -rfEs -m 'not kvm' tests/integration

# The Criterion suite 'kvm' and the pytest tests marked kvm (tests/kvm.sh says where they run).
kvm: $(BUILD_SAN)/build.ninja images kvmhost
	@ninja -C $(BUILD_SAN)
	@PYTHON=$(PYTHON) tests/kvm.sh $(BUILD_SAN)

fuzz:
	@scripts/deps.sh build fuzz
	@rm -rf $(BUILD_FUZZ) && CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=true -Dtests=disabled -Db_lundef=false -Db_sanitize=address,undefined >/dev/null
	@ninja -C $(BUILD_FUZZ)
	@scripts/fuzz.sh $(BUILD_FUZZ) $${FUZZ_SECONDS:-30}

# Side-by-side figures against crun, runc and QEMU (never pass/fail; bench/README.md).
# BENCH=container (or vm-boot, blk, net, clients) runs one of them.
BENCH ?= container vm-boot linux-boot blk net clients
bench:
	@scripts/deps.sh build bench
	@$(MAKE) --no-print-directory vessel
	@ninja -C $(BUILD) >/dev/null
	@for b in $(BENCH); do echo "== bench/$$b.sh"; bench/$$b.sh || exit 1; done

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
