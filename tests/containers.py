"""A small Python container image built here, for the tests and the benchmark that run a real
engine (Podman). No registry is reachable from CI, so the image is made from Debian's own
packages: `apt-get download` python3.11 and the libraries it links, `dpkg -x` each into a root
folder, and `podman build` it `FROM scratch` (docs/containers.md; about 5 s). A file
only the image has (`MARKER`) lets a run prove from inside that it ran there.

The image is tagged with a key of what goes into it, so a machine builds it once: later
sessions find it in Podman's store; the downloaded packages are kept under
`~/.cache/aisdp-log-tests/`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGES = ("python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libexpat1 "
            "zlib1g libssl3 libffi8 libbz2-1.0 liblzma5 libsqlite3-0 libuuid1 libcrypt1 "
            "libgcc-s1 libncursesw6 libtinfo6 libreadline8 libnsl2 libtirpc3 libdb5.3 libgdbm6 "
            "media-types tzdata").split()
#: A file at the image's root that no host has: a run that reads it ran in the image.
MARKER = "/aisdp-log-test-image"
MARKER_TEXT = "built by tests/containers.py"
CONTAINERFILE = "FROM scratch\nCOPY rootfs/ /\n"
#: `--timestamp 0`: the same packages give the same image digest, whenever and wherever built
#: (two sessions building at once agree on it too).
BUILD_OPTIONS = ("--timestamp", "0")
NAME = "localhost/aisdp-log-test-python"


def podman() -> str:
    """Podman's path; a test that needs it fails in CI (`CI=true`: .ci/run installs it) and
    is skipped elsewhere, with the reason."""
    found = shutil.which("podman")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("podman is not installed, but CI must run the container tests: "
                        ".ci/run installs podman and runc")
        pytest.skip("podman is not installed (apt-get install podman runc, and "
                    "/etc/containers/containers.conf as .ci/run writes it)")
    return found


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def build_image() -> str:
    """The test image as `NAME@sha256:<digest>`, built first when this machine lacks it."""
    engine = podman()
    key = hashlib.sha256("\n".join([*PACKAGES, MARKER, MARKER_TEXT, CONTAINERFILE,
                                     *BUILD_OPTIONS])
                         .encode()).hexdigest()[:12]
    tag = f"{NAME}:{key}"
    if _run(engine, "image", "exists", tag).returncode != 0:
        cache = Path.home() / ".cache" / "aisdp-log-tests" / f"image-{key}"
        debs = cache / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        if not list(debs.glob("*.deb")):
            got = _run("apt-get", "download", *PACKAGES, cwd=debs)
            if got.returncode != 0:  # a fresh machine may have no package lists yet
                _run("apt-get", "update", "-qq")
                got = _run("apt-get", "download", *PACKAGES, cwd=debs)
            if got.returncode != 0:
                shutil.rmtree(debs, ignore_errors=True)
                pytest.fail(f"apt-get download of the test image's packages failed: "
                            f"{got.stderr.strip()[-500:]}")
        context = cache / "context"
        shutil.rmtree(context, ignore_errors=True)
        rootfs = context / "rootfs"
        rootfs.mkdir(parents=True)
        for deb in sorted(debs.glob("*.deb")):
            done = _run("dpkg", "-x", str(deb), str(rootfs))
            assert done.returncode == 0, done.stderr
        for link, target in (("usr/bin/python3", "python3.11"), ("usr/bin/python", "python3.11"),
                             ("lib64/ld-linux-x86-64.so.2",
                              "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")):
            path = rootfs / link
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.is_symlink() and not path.exists():
                path.symlink_to(target)
        (rootfs / MARKER.lstrip("/")).write_text(MARKER_TEXT + "\n")
        (context / "Containerfile").write_text(CONTAINERFILE)
        built = _run(engine, "build", "-q", *BUILD_OPTIONS, "-t", tag, str(context))
        assert built.returncode == 0, f"podman build failed: {built.stderr[-2000:]}"
        shutil.rmtree(context, ignore_errors=True)
    digest = _run(engine, "image", "inspect", "--format", "{{.Digest}}", tag).stdout.strip()
    assert digest.startswith("sha256:"), digest
    return f"{NAME}@{digest}"


def labelled_containers(pid: int | None = None, label: str = "aisdp-log.rerun") -> list[str]:
    """Names of the containers (running or not) carrying the rerun label that the aisdp-log
    with this pid (default: this test process, where `run_cli` runs it) started: other
    sessions on the machine may run reruns in containers at the same time."""
    out = _run(podman(), "ps", "--all", "--filter", f"label={label}", "--format", "{{.Names}}")
    marker = f"-{os.getpid() if pid is None else pid}-"
    return [line for line in out.stdout.split() if line and marker in line]
