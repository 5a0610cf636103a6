"""Guest kernels chosen by what they are built with, not assumed: the tests that need a
kernel option (VMGenID: test_vm_vmgenid.py, test_vm_snapshot.py's clones) pick the first
kernel at hand whose config, read from its Debian package, has it.

Debian's cloud kernel (the default guest, images/out) has no CONFIG_VMGENID
(CONFIG_VIRT_DRIVERS is not set); the emulated KVM host's generic kernel
(tests/kvmhost/out) has CONFIG_VMGENID=y, and boots with the default initramfs (whose cloud
modules it cannot load: it needs none of them here)."""
import glob
import re
import subprocess
import tarfile

from conftest import ROOT
from test_linux import images_dir


def kernel_config(deb):
    """The CONFIG_ lines of a linux-image .deb's /boot/config-*, read as a stream (the
    file comes first in the archive, so only its start is unpacked)."""
    p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
            for m in tar:
                if re.fullmatch(r"\./boot/config-.*", m.name):
                    return tar.extractfile(m).read().decode()
    finally:
        p.kill()
        p.wait()
    return ""


def vmgenid_kernel():
    """(bzImage, what was found in each candidate): the first kernel with CONFIG_VMGENID=y,
    or None and the findings."""
    candidates = [(images_dir() / "vmlinuz", images_dir() / "debs"),
                  (ROOT / "tests" / "kvmhost" / "out" / "vmlinuz",
                   ROOT / "tests" / "kvmhost" / "out" / "debs")]
    seen = []
    for kernel, debs in candidates:
        pkgs = sorted(glob.glob(str(debs / "linux-image-*.deb")))
        if not kernel.is_file() or len(pkgs) != 1:
            seen.append(f"{kernel}: missing, or not one linux-image .deb in {debs}")
            continue
        m = re.search(r"^(CONFIG_VMGENID=.*|# CONFIG_VMGENID is not set)$",
                      kernel_config(pkgs[0]), re.M)
        value = m.group(1) if m else "CONFIG_VMGENID absent (CONFIG_VIRT_DRIVERS off)"
        seen.append(f"{kernel}: {value}")
        if value == "CONFIG_VMGENID=y":
            return kernel, seen
    return None, seen
