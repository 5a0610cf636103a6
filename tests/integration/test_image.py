"""`vessel image`: images podman built and saved, loaded into vessel's store, mounted as
overlayfs roots and run; hostile archives refused (docs/images.md).

podman cannot pull here: the base is a `podman import` of the busybox rootfs, and a
`podman build` (vessel as its runtime) adds layers with a deleted file, a replaced
directory (whiteouts and an opaque dir), a hardlink, a symlink and a setuid bit.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import struct
import subprocess
import tarfile

import pytest

from conftest import run
from clients import NetNS, Podman, busybox_rootfs

IMAGE = "localhost/vessel-image:test"
BASE = "localhost/vessel-image-base:test"
LOCK = "/tmp/vessel-cgroup-tests.lock"

CONTAINERFILE = """\
FROM {base}
RUN rm /etc/motd && rm -rf /usr/share/doc && mkdir -p /usr/share/doc && echo new > /usr/share/doc/c
RUN echo hello > /hello && ln /hello /hello2 && ln -s /hello /hello.link && mkdir -p /srv/data \\
    && chmod 4755 /srv && chmod 2750 /srv/data && mkfifo /srv/fifo
"""


def locked(argv):
    return ["flock", LOCK, *argv]


@pytest.fixture(scope="module")
def saved(vessel, tmp_path_factory):
    """The test image built by podman and saved in every format this podman writes, and
    the listing of `podman export` of a container made from it."""
    work = tmp_path_factory.mktemp("image")
    rootfs = busybox_rootfs(work / "bundle", vessel)
    base = work / "base"
    shutil.copytree(rootfs, base, symlinks=True)
    (base / "etc" / "motd").write_text("motd\n")
    (base / "usr" / "share" / "doc").mkdir(parents=True)
    (base / "usr" / "share" / "doc" / "a").write_text("a\n")
    (base / "usr" / "share" / "doc" / "b").write_text("b\n")
    netns = NetNS()
    p = None
    try:
        p = Podman(vessel, netns)
        p.import_image(base, BASE)
        ctx = work / "ctx"
        ctx.mkdir()
        (ctx / "Containerfile").write_text(CONTAINERFILE.format(base=BASE))
        r = run(locked(p.argv("build", "--network", "none", "-t", IMAGE, str(ctx))),
                timeout=900, env=p.env, cwd=p.work)
        assert r.returncode == 0, f"podman build: {r.stderr}{r.stdout}"
        out = work / "saved"
        out.mkdir()
        formats = {}
        for fmt, name in (("docker-archive", "docker.tar"), ("oci-archive", "oci.tar"),
                          ("oci-dir", "ocidir")):
            p.ok("save", "--format", fmt, "-o", str(out / name), IMAGE, timeout=120)
            formats[fmt] = out / name
        # zstd layers: this podman's save has no --compression-format, push to oci: does
        r = p("push", "--compression-format", "zstd", IMAGE, f"oci:{out / 'zstd'}:test",
              timeout=120)
        if r.returncode == 0:
            formats["oci-dir-zstd"] = out / "zstd"
        cid = p.ok("create", IMAGE, "/bin/true").strip()
        export = work / "export.tar"
        p.ok("export", "-o", str(export), cid, timeout=120)
        p.ok("rm", cid)
        yield formats, tar_listing(export)
    finally:
        problems = p.cleanup() if p else []
        netns.delete()
        assert not problems, f"podman left things behind: {problems}"


# what podman adds to every container's root (mount points for its own files)
PODMAN_MADE = {"run/.containerenv", "etc/hosts", "etc/resolv.conf", "etc/hostname",
               "dev", "proc", "sys", "run", "tmp", "etc"}


def norm(name):
    name = name[2:] if name.startswith("./") else name
    name = name.strip("/")
    return "" if name == "." else name


def tar_listing(path):
    """name -> (type, mode, size, link target, xattrs) of a tar, hardlinks as the file."""
    out = {}
    with tarfile.open(path) as t:
        by_name = {norm(m.name): m for m in t.getmembers()}
        for name, m in by_name.items():
            if not name:
                continue
            target = by_name.get(norm(m.linkname)) if m.islnk() else m
            kind = ("dir" if m.isdir() else "link" if m.issym() else "fifo" if m.isfifo()
                    else "chr" if m.ischr() else "file")
            xattrs = {k[len("SCHILY.xattr."):]: v for k, v in m.pax_headers.items()
                      if k.startswith("SCHILY.xattr.")}
            out[name] = (kind, m.mode & 0o7777, target.size if kind == "file" else 0,
                         m.linkname if m.issym() else "", tuple(sorted(xattrs)))
    return out


def tree_listing(root):
    """The same listing of a mounted (or copied) root."""
    out = {}
    root = str(root)
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            kind = ("dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode)
                    else "fifo" if stat.S_ISFIFO(st.st_mode) else "chr"
                    if stat.S_ISCHR(st.st_mode) else "file")
            xattrs = [] if kind == "link" else [
                x for x in os.listxattr(p, follow_symlinks=False)
                if not x.startswith("trusted.overlay.")]
            out[os.path.relpath(p, root)] = (
                kind, stat.S_IMODE(st.st_mode), st.st_size if kind == "file" else 0,
                os.readlink(p) if kind == "link" else "", tuple(sorted(xattrs)))
    return out


def compare(mine, podmans):
    """Differences, leaving out the mount points podman makes in every container."""
    diff = []
    for name in sorted(set(mine) | set(podmans)):
        if name in PODMAN_MADE or name.startswith("run/") or name.startswith("dev/"):
            continue
        if mine.get(name) != podmans.get(name):
            diff.append(f"{name}: vessel {mine.get(name)} podman {podmans.get(name)}")
    return diff


def image(vessel, store, *args, timeout=120):
    return run([vessel, "image", *args, "--store", str(store)], timeout=timeout)


def image_ok(vessel, store, *args, timeout=120):
    r = image(vessel, store, *args, timeout=timeout)
    assert r.returncode == 0, f"vessel image {' '.join(args)}: {r.stderr}{r.stdout}"
    return r.stdout


def umount(path):
    subprocess.run(["umount", str(path)], capture_output=True)


def store_state(store):
    """Every path of a store with its kind and size: what a failed load must not change."""
    out = {}
    for d, dirs, files in os.walk(store):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            out[os.path.relpath(p, store)] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_ino)
    return out


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "oci-dir", "oci-dir-zstd"])
def test_loaded_root_equals_podman_export(vessel, saved, fmt, tmp_path):
    formats, exported = saved
    if fmt not in formats:
        pytest.fail(f"this podman could not write {fmt}")
    store = tmp_path / "store"
    # `oci:DIR:test` names the image by its tag alone (ref.name "test")
    named = ["--name", IMAGE] if fmt == "oci-dir-zstd" else []
    out = image_ok(vessel, store, "load", *named, str(formats[fmt]))
    assert IMAGE in out
    assert IMAGE in image_ok(vessel, store, "ls")
    rec = json.loads(image_ok(vessel, store, "inspect", IMAGE))
    assert len(rec["layers"]) == 3 and rec["config"]["rootfs"]["type"] == "layers"
    root = tmp_path / "root"
    image_ok(vessel, store, "mount", IMAGE, str(root), str(tmp_path / "rw"))
    try:
        mine = tree_listing(root)
        # the whiteout and the opaque directory hid the base layer's files
        assert "etc/motd" not in mine
        assert sorted(n for n in mine if n.startswith("usr/share/doc/")) == ["usr/share/doc/c"]
        assert mine["srv"][1] == 0o4755 and mine["srv/data"][1] == 0o2750
        assert mine["hello.link"][3] == "/hello" and mine["srv/fifo"][0] == "fifo"
        assert os.stat(root / "hello").st_ino == os.stat(root / "hello2").st_ino
        assert compare(mine, exported) == []
    finally:
        umount(root)


def test_copy_root_equals_podman_export(vessel, saved, tmp_path):
    formats, exported = saved
    store = tmp_path / "store"
    image_ok(vessel, store, "load", str(formats["oci-archive"]))
    root = tmp_path / "copy"
    image_ok(vessel, store, "mount", "--copy", IMAGE, str(root))
    assert not os.path.ismount(root)
    assert compare(tree_listing(root), exported) == []


def test_layers_are_shared_between_loads_and_never_unpacked_twice(vessel, saved, tmp_path):
    formats, _ = saved
    store = tmp_path / "store"
    image_ok(vessel, store, "load", str(formats["docker-archive"]))
    layers = sorted(os.listdir(store / "layers"))
    inodes = {n: os.stat(store / "layers" / n / "root").st_ino for n in layers}
    assert len(layers) == 3
    image_ok(vessel, store, "load", "--name", "other:1", str(formats["oci-archive"]))
    assert sorted(os.listdir(store / "layers")) == layers
    assert {n: os.stat(store / "layers" / n / "root").st_ino for n in layers} == inodes
    ls = image_ok(vessel, store, "ls")
    assert "localhost/other:1" not in ls and "other:1" in ls and IMAGE in ls
    assert os.listdir(store / "tmp") == []


def test_two_mounts_share_lower_inodes_and_not_their_writes(vessel, saved, tmp_path):
    formats, _ = saved
    store = tmp_path / "store"
    image_ok(vessel, store, "load", str(formats["oci-archive"]))
    a, b = tmp_path / "a", tmp_path / "b"
    image_ok(vessel, store, "mount", IMAGE, str(a), str(tmp_path / "rw-a"))
    try:
        image_ok(vessel, store, "mount", IMAGE, str(b), str(tmp_path / "rw-b"))
        try:
            sa, sb = os.stat(a / "bin" / "busybox"), os.stat(b / "bin" / "busybox")
            lower = [os.stat(store / "layers" / n / "root" / "bin" / "busybox").st_ino
                     for n in os.listdir(store / "layers")
                     if (store / "layers" / n / "root" / "bin" / "busybox").exists()]
            assert sa.st_ino == sb.st_ino and sa.st_ino in lower
            (a / "only-in-a").write_text("a\n")
            (a / "hello").write_text("changed in a\n")
            assert not (b / "only-in-b").exists() and not (b / "only-in-a").exists()
            assert (b / "hello").read_text() == "hello\n"
            assert (tmp_path / "rw-a" / "upper" / "only-in-a").exists()
            assert not (tmp_path / "rw-b" / "upper" / "hello").exists()
        finally:
            umount(b)
    finally:
        umount(a)


def test_rm_keeps_layers_in_use_and_prune_removes_the_rest(vessel, saved, tmp_path):
    formats, _ = saved
    store = tmp_path / "store"
    image_ok(vessel, store, "load", str(formats["oci-archive"]))
    image_ok(vessel, store, "load", "--name", "second:1", str(formats["docker-archive"]))
    # the same image under two names: removing one name keeps the image
    out = image_ok(vessel, store, "rm", "second:1")
    assert "Untagged: second:1" in out and "Deleted" not in out
    assert len(os.listdir(store / "layers")) == 3
    out = image_ok(vessel, store, "rm", IMAGE)
    assert "Deleted" in out and "Removed 3 layers" in out
    assert os.listdir(store / "layers") == [] and os.listdir(store / "images") == []
    r = image(vessel, store, "inspect", IMAGE)
    assert r.returncode == 1 and IMAGE in r.stderr
    image_ok(vessel, store, "prune")


def test_container_runs_on_an_image_bundle(vessel, saved, tmp_path):
    formats, _ = saved
    store = tmp_path / "store"
    image_ok(vessel, store, "load", str(formats["oci-dir"]))
    bundle = tmp_path / "bundle"
    image_ok(vessel, store, "bundle", IMAGE, str(bundle))
    try:
        config = json.loads((bundle / "config.json").read_text())
        assert config["root"]["path"] == "rootfs"
        # the image's CMD (`podman import --change "CMD /bin/sh"` writes the shell form)
        assert config["process"]["args"] == ["/bin/sh", "-c", "/bin/sh"]
        config["process"]["args"] = ["/bin/sh", "-c",
                                     "cat /hello; ls /usr/share/doc; test -e /etc/motd || "
                                     "echo no-motd; echo written > /from-container"]
        (bundle / "config.json").write_text(json.dumps(config))
        cid = f"img-{os.getpid()}"
        # the timeout covers the wait for the lock other suites' containers hold
        r = run(locked([vessel, "--root", str(tmp_path / "state"), "run", "--bundle",
                        str(bundle), cid]), timeout=900)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["hello", "c", "no-motd"]
        # the container's write went to its upper, never to a layer
        assert (bundle / "rw" / "upper" / "from-container").read_text() == "written\n"
        assert not any((store / "layers" / n / "root" / "from-container").exists()
                       for n in os.listdir(store / "layers"))
    finally:
        umount(bundle / "rootfs")


# ------------------------------------------------------------------ hostile archives
def tar_bytes(entries):
    """entries: (name, kind, data-or-target); kind file|dir|symlink|hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data
                t.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, data
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def oci_layout_tar(dest, layers, *, corrupt_blob=False, truncate_blob=False,
                   compress=True):
    """An OCI layout tar of one image with the given layer tars; optionally a layer blob
    whose content does not match its digest, or that is shorter than its descriptor."""
    blobs = {}

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return d

    descs, diff_ids = [], []
    for layer in layers:
        diff_ids.append("sha256:" + hashlib.sha256(layer).hexdigest())
        data = gzip.compress(layer, mtime=0) if compress else layer
        d = blob(data)
        if corrupt_blob:
            # valid gzip of the same tar, but not the bytes the digest names
            blobs[d] = gzip.compress(layer, mtime=12345)
        if truncate_blob:
            blobs[d] = data[: len(data) // 2]
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": f"sha256:{d}", "size": len(data)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cd = blob(config)
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": f"sha256:{cd}", "size": len(config)},
                           "layers": descs}).encode()
    md = blob(manifest)
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": f"sha256:{md}", "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "localhost/hostile:1"}}]})
    with tarfile.open(dest, "w") as t:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index.encode())
        for d, data in blobs.items():
            add(f"blobs/sha256/{d}", data)
    return dest


GOOD = [("etc", "dir", None), ("etc/ok", "file", b"ok\n")]

HOSTILE = {
    "dotdot": ([*GOOD, ("../../escaped", "file", b"x")], "../../escaped"),
    "dotdot-inside": ([*GOOD, ("etc/../../escaped", "file", b"x")], "etc/../../escaped"),
    "absolute": ([*GOOD, ("/escaped", "file", b"x")], "/escaped"),
    "symlink-dir": ([*GOOD, ("evil", "symlink", "/tmp"), ("evil/pwned", "file", b"x")],
                    "evil/pwned"),
    "symlink-relative": ([*GOOD, ("up", "symlink", "../../../..")], "up"),
    "hardlink-dotdot": ([*GOOD, ("hl", "hardlink", "../../etc/passwd")], "hl"),
    "hardlink-absolute": ([*GOOD, ("hl", "hardlink", "/etc/passwd")], "hl"),
    "hardlink-via-symlink": ([*GOOD, ("evil", "symlink", "/etc"),
                              ("hl", "hardlink", "evil/passwd")], "hl"),
}


@pytest.fixture
def store_with_image(vessel, tmp_path):
    """A store that already holds a good image: a refused load must leave it as it is."""
    store = tmp_path / "store"
    good = oci_layout_tar(tmp_path / "good.tar", [tar_bytes(GOOD)])
    image_ok(vessel, store, "load", str(good))
    return store


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_entry_is_refused_naming_it(vessel, store_with_image, tmp_path, case):
    entries, name = HOSTILE[case]
    archive = oci_layout_tar(tmp_path / f"{case}.tar",
                             [tar_bytes([("base", "file", b"b")]), tar_bytes(entries)])
    before = store_state(store_with_image)
    r = image(vessel, store_with_image, "load", str(archive))
    assert r.returncode == 1, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"`{name}`" in lines[0] and "refused" in lines[0], r.stderr
    assert store_state(store_with_image) == before
    assert not os.path.exists("/tmp/pwned") and not os.path.exists("/escaped")


def test_digest_mismatch_names_the_blob(vessel, store_with_image, tmp_path):
    layer = tar_bytes([("f", "file", b"data" * 100)])
    archive = oci_layout_tar(tmp_path / "bad.tar", [layer], corrupt_blob=True)
    digest = "sha256:" + hashlib.sha256(gzip.compress(layer, mtime=0)).hexdigest()
    before = store_state(store_with_image)
    r = image(vessel, store_with_image, "load", str(archive))
    assert r.returncode == 1 and digest in r.stderr and "mismatch" in r.stderr, r.stderr
    assert store_state(store_with_image) == before


def test_truncated_blob_is_refused(vessel, store_with_image, tmp_path):
    layer = tar_bytes([("f", "file", os.urandom(64 << 10))])
    archive = oci_layout_tar(tmp_path / "short.tar", [layer], truncate_blob=True)
    digest = "sha256:" + hashlib.sha256(gzip.compress(layer, mtime=0)).hexdigest()
    before = store_state(store_with_image)
    r = image(vessel, store_with_image, "load", str(archive))
    assert r.returncode == 1 and digest in r.stderr, r.stderr
    assert "truncated" in r.stderr
    assert store_state(store_with_image) == before


def test_gzip_bomb_is_stopped_at_the_cap(vessel, store_with_image, tmp_path):
    # 256 MiB of zeros in one entry is ~260 KiB of gzip; the cap here is 16 MiB
    zeros = tar_bytes([("bomb", "file", bytes(256 << 20))])
    archive = oci_layout_tar(tmp_path / "bomb.tar", [zeros])
    del zeros
    before = store_state(store_with_image)
    r = image(vessel, store_with_image, "load", "--max-layer-size", "16M", str(archive))
    assert r.returncode == 1 and "`bomb`" in r.stderr and "cap" in r.stderr, r.stderr
    assert store_state(store_with_image) == before


def test_not_an_image_says_what_it_is_not(vessel, tmp_path):
    junk = tmp_path / "junk.tar"
    with tarfile.open(junk, "w") as t:
        info = tarfile.TarInfo("hello")
        info.size = 2
        t.addfile(info, io.BytesIO(b"hi"))
    r = image(vessel, tmp_path / "store", "load", str(junk))
    assert r.returncode == 1 and "neither an OCI image layout" in r.stderr


def test_xattrs_capabilities_hardlinks_times_and_unicode_names_survive(vessel, tmp_path):
    # vfs_cap_data v2: effective, permitted = CAP_NET_RAW (13)
    cap = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        d = tarfile.TarInfo("dir")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o750, 1000000000
        t.addfile(d)
        f = tarfile.TarInfo("dir/ping")
        f.size, f.mode, f.mtime, f.uid, f.gid = 4, 0o4711, 1234567890, 7, 8
        f.pax_headers = {"SCHILY.xattr.security.capability":
                         cap.decode("utf-8", "surrogateescape"),
                         "SCHILY.xattr.user.note": "kept"}
        t.addfile(f, io.BytesIO(b"ping"))
        h = tarfile.TarInfo("dir/ping-again")
        h.type, h.linkname = tarfile.LNKTYPE, "dir/ping"
        t.addfile(h)
        u = tarfile.TarInfo("dir/héllo-日本")
        u.size = 1
        t.addfile(u, io.BytesIO(b"u"))
        s = tarfile.TarInfo("dir/to-héllo")
        s.type, s.linkname = tarfile.SYMTYPE, "héllo-日本"
        t.addfile(s)
    store = tmp_path / "store"
    image_ok(vessel, store, "load", "--name", "meta:1",
             str(oci_layout_tar(tmp_path / "meta.tar", [buf.getvalue()])))
    root = tmp_path / "root"
    image_ok(vessel, store, "mount", "meta:1", str(root), str(tmp_path / "rw"))
    try:
        ping = root / "dir" / "ping"
        st = os.stat(ping)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o4711, 7, 8)
        assert st.st_mtime == 1234567890
        assert os.getxattr(ping, "security.capability") == cap
        assert os.getxattr(ping, "user.note") == b"kept"
        assert os.stat(root / "dir" / "ping-again").st_ino == st.st_ino
        assert st.st_nlink == 2
        dst = os.stat(root / "dir")
        assert stat.S_IMODE(dst.st_mode) == 0o750 and dst.st_mtime == 1000000000
        assert (root / "dir" / "héllo-日本").read_bytes() == b"u"
        assert os.readlink(root / "dir" / "to-héllo") == "héllo-日本"
    finally:
        umount(root)


def test_many_layers_past_the_mount_option_page(vessel, tmp_path):
    # 80 layers with absolute lower paths of ~130 bytes: ~10 KiB, past one page of
    # mount options; each layer adds a file and the top one removes the first's
    layers = [tar_bytes([(f"l{i:03}", "file", f"{i}\n".encode())]) for i in range(80)]
    layers.append(tar_bytes([(".wh.l000", "file", b"")]))
    store = tmp_path / "store"
    image_ok(vessel, store, "load", "--name", "many:1",
             str(oci_layout_tar(tmp_path / "many.tar", layers)))
    assert len(os.listdir(store / "layers")) == 81
    root = tmp_path / "root"
    image_ok(vessel, store, "mount", "many:1", str(root), str(tmp_path / "rw"))
    try:
        names = sorted(os.listdir(root))
        assert names == [f"l{i:03}" for i in range(1, 80)]
        assert (root / "l079").read_text() == "79\n"
    finally:
        umount(root)


def test_layers_of_a_mounted_root_survive_rm_until_unmounted(vessel, saved, tmp_path):
    formats, _ = saved
    # mountinfo escapes a space and a comma in the lower paths
    store = tmp_path / "a store, odd"
    image_ok(vessel, store, "load", str(formats["oci-archive"]))
    root = tmp_path / "root"
    image_ok(vessel, store, "mount", IMAGE, str(root), str(tmp_path / "rw"))
    try:
        out = image_ok(vessel, store, "rm", IMAGE)
        assert "Deleted" in out and "Removed 0 layers and 2 blobs" in out
        assert len(os.listdir(store / "layers")) == 3
        assert (root / "hello").read_text() == "hello\n"
    finally:
        umount(root)
    assert "Removed 3 layers" in image_ok(vessel, store, "prune")
    assert os.listdir(store / "layers") == []


def test_a_killed_loads_staging_is_removed_by_the_next(vessel, saved, tmp_path):
    formats, _ = saved
    store = tmp_path / "store"
    image_ok(vessel, store, "load", str(formats["oci-archive"]))
    stale = store / "tmp" / "load-killed"
    (stale / "layers" / "x").mkdir(parents=True)
    (stale / "layers" / "x" / "f").write_text("half\n")
    image_ok(vessel, store, "load", str(formats["docker-archive"]))
    assert os.listdir(store / "tmp") == []


def test_where_overlayfs_is_refused_the_layers_are_copied_with_a_warning(vessel, saved,
                                                                         tmp_path):
    formats, exported = saved
    store = tmp_path / "store"
    image_ok(vessel, store, "load", str(formats["docker-archive"]))
    # overlayfs refuses a workdir on another file system than the upperdir
    rw = tmp_path / "rw"
    (rw / "work").mkdir(parents=True)
    assert run(["mount", "-t", "tmpfs", "tmpfs", str(rw / "work")]).returncode == 0
    root = tmp_path / "root"
    try:
        r = image(vessel, store, "mount", IMAGE, str(root), str(rw))
        assert r.returncode == 0, r.stderr
        assert "warning" in r.stderr and "copying the layers" in r.stderr
        assert not os.path.ismount(root)
        assert compare(tree_listing(root), exported) == []
    finally:
        umount(rw / "work")


def docker25_archive(docker_tar, dest, with_oci=True, tamper_config=False):
    """What newer `docker save` writes, made from podman's docker-archive: blobs under
    blobs/sha256/ (uncompressed layers named by their diff_id), manifest.json pointing at
    them, and (with_oci) the OCI index.json, oci-layout and manifest beside it."""
    with tarfile.open(docker_tar) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        config = t.extractfile(manifest["Config"]).read()
        layers = [t.extractfile(n).read() for n in manifest["Layers"]]
    files = {}
    cd = hashlib.sha256(config).hexdigest()
    files[f"blobs/sha256/{cd}"] = config + (b" " if tamper_config else b"")
    descs = []
    for layer in layers:
        d = hashlib.sha256(layer).hexdigest()
        files[f"blobs/sha256/{d}"] = layer
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                      "digest": f"sha256:{d}", "size": len(layer)})
    files["manifest.json"] = json.dumps([{
        "Config": f"blobs/sha256/{cd}", "RepoTags": ["docker25:1"],
        "Layers": [f"blobs/sha256/{x['digest'][7:]}" for x in descs]}]).encode()
    if with_oci:
        m = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": f"sha256:{cd}", "size": len(config)},
                        "layers": descs}).encode()
        md = hashlib.sha256(m).hexdigest()
        files[f"blobs/sha256/{md}"] = m
        files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": f"sha256:{md}", "size": len(m),
            "annotations": {"org.opencontainers.image.ref.name": "docker25:1"}}]}).encode()
        files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    with tarfile.open(dest, "w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return dest


@pytest.mark.parametrize("with_oci", [True, False], ids=["with-oci-files", "manifest-only"])
def test_newer_docker_save_layout_loads(vessel, saved, tmp_path, with_oci):
    formats, exported = saved
    store = tmp_path / "store"
    archive = docker25_archive(formats["docker-archive"], tmp_path / "d25.tar", with_oci)
    assert "docker25:1" in image_ok(vessel, store, "load", str(archive))
    root = tmp_path / "root"
    image_ok(vessel, store, "mount", "docker25:1", str(root), str(tmp_path / "rw"))
    try:
        assert compare(tree_listing(root), exported) == []
    finally:
        umount(root)


def test_docker_archive_config_that_is_not_its_name_is_refused(vessel, saved, tmp_path):
    formats, _ = saved
    store = tmp_path / "store"
    archive = docker25_archive(formats["docker-archive"], tmp_path / "bad.tar", False,
                               tamper_config=True)
    r = image(vessel, store, "load", str(archive))
    assert r.returncode == 1 and "digest mismatch" in r.stderr and "blobs/sha256/" in r.stderr
    assert os.listdir(store / "images") == [] and os.listdir(store / "layers") == []


def test_diff_lists_what_the_container_changed(vessel, saved, tmp_path):
    formats, _ = saved
    store = tmp_path / "store"
    image_ok(vessel, store, "load", str(formats["oci-archive"]))
    root, rw = tmp_path / "root", tmp_path / "rw"
    image_ok(vessel, store, "mount", IMAGE, str(root), str(rw))
    try:
        assert image_ok(vessel, store, "diff", IMAGE, str(rw)) == ""
        (root / "hello").write_text("changed\n")
        (root / "hello.link").unlink()
        (root / "new").write_text("new\n")
        (root / "newdir" / "x").mkdir(parents=True)
        (root / "srv" / "data" / "f").write_text("f\n")
        out = image_ok(vessel, store, "diff", IMAGE, str(rw)).splitlines()
        assert out == ["C /hello", "D /hello.link", "A /new", "A /newdir", "A /newdir/x",
                       "C /srv", "C /srv/data", "A /srv/data/f"]
    finally:
        umount(root)


def test_nested_index_picks_this_hosts_platform(vessel, tmp_path):
    """index.json -> an image index (a multi-platform list) -> an arm64 and an amd64
    manifest: the amd64 one is loaded, under the outer entry's ref.name."""
    blobs = {}

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return {"digest": f"sha256:{d}", "size": len(data)}

    def image_manifest(arch, content):
        layer = tar_bytes([("arch", "file", content)])
        lb = blob(gzip.compress(layer, mtime=0))
        config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {
            "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}})
        cb = blob(config.encode())
        m = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   **cb},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                    **lb}]})
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                **blob(m.encode()), "platform": {"os": "linux", "architecture": arch}}

    inner = json.dumps({"schemaVersion": 2, "mediaType":
                        "application/vnd.oci.image.index.v1+json", "manifests": [
                            image_manifest("arm64", b"arm64\n"),
                            image_manifest("amd64", b"amd64\n")]})
    outer = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", **blob(inner.encode()),
        "annotations": {"org.opencontainers.image.ref.name": "localhost/multi:1"}}]}
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps(outer))
    for d, data in blobs.items():
        (layout / "blobs" / "sha256" / d).write_bytes(data)
    store = tmp_path / "store"
    assert "localhost/multi:1" in image_ok(vessel, store, "load", str(layout))
    rec = json.loads(image_ok(vessel, store, "inspect", "multi:1"))
    assert rec["architecture"] == "amd64" and len(os.listdir(store / "layers")) == 1
    root = tmp_path / "root"
    image_ok(vessel, store, "mount", "--copy", "multi:1", str(root))
    assert (root / "arch").read_text() == "amd64\n"


def test_concurrent_loads_share_the_store(vessel, saved, tmp_path):
    formats, _ = saved
    store = tmp_path / "store"
    procs = [subprocess.Popen([vessel, "image", "load", "--store", str(store), str(f)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in (formats["oci-archive"], formats["docker-archive"], formats["oci-dir"])]
    for p in procs:
        out, errs = p.communicate(timeout=120)
        assert p.returncode == 0, errs
    assert len(os.listdir(store / "layers")) == 3
    assert len(os.listdir(store / "images")) == 1
    assert os.listdir(store / "tmp") == []
