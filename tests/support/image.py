"""Build chatdock's test image from the host's static busybox: there is no registry to pull from.

The image has busybox's applets (httpd, wget, nslookup, sh, sleep, seq) and serves /www on port 80 by default.
Run as a script (``python -m tests.support.image``) to build it ahead of the tests, as ``.ci/run`` does.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import docker

TEST_IMAGE = "local/busybox:test"
INDEX_HTML = b"<h1>chatdock test</h1>\n"
CHANGES = ['CMD ["/bin/httpd","-f","-p","80","-h","/www"]', "EXPOSE 80", "ENV PATH=/bin"]


def _busybox() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.exists():
            return path
    found = shutil.which("busybox")
    if not found:
        raise RuntimeError("busybox-static is not installed (apt-get install -y busybox-static)")
    return Path(found)


def _rootfs_tar(busybox: Path) -> bytes:
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755 if name != "tmp" else 0o1777
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))

        for directory in ("bin", "www", "etc", "tmp", "root"):
            add_dir(directory)
        add_file("bin/busybox", busybox.read_bytes(), 0o755)
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type = tarfile.SYMTYPE
                link.linkname = "busybox"
                tar.addfile(link)
        add_file("www/index.html", INDEX_HTML)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
        add_file("etc/group", b"root:x:0:\nnobody:x:65534:\n")
    return buffer.getvalue()


def ensure_test_image(client: docker.DockerClient, *, rebuild: bool = False) -> str:
    """Import the image unless it is already there; return its name."""
    if not rebuild:
        try:
            client.images.get(TEST_IMAGE)
            return TEST_IMAGE
        except docker.errors.ImageNotFound:
            pass
    repository, tag = TEST_IMAGE.split(":")
    client.api.import_image_from_data(_rootfs_tar(_busybox()), repository=repository, tag=tag, changes=CHANGES)
    return TEST_IMAGE


if __name__ == "__main__":
    print(ensure_test_image(docker.from_env(), rebuild=True))
