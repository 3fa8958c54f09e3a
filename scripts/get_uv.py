"""Put a pinned uv at DEST (e.g. .tools/uv-0.13.9/uv) for a machine that has only Python 3.11+.

`make` calls this when `uv` is not on PATH, so `make test` works on a fresh clone with nothing
installed by hand. Nothing runs from the internet: pip installs the pinned wheel (honouring the
user's pip configuration and mirrors); without pip, the wheel for this platform is fetched from
PyPI's simple index and checked against the sha256 PyPI lists before its binary is unpacked.

Usage: python3 scripts/get_uv.py VERSION DEST
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

INDEX = os.environ.get("TASKQ_UV_INDEX", "https://pypi.org/simple")


def via_pip(version: str, target: Path) -> Path | None:
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(target),
                f"uv=={version}",
            ],
            check=True,
        )
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    found = target / "bin" / "uv"
    return found if found.is_file() else None


def platform_tags() -> list[str]:
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if sys.platform == "darwin":
        return ["macosx", "universal2"] if arch != "x86_64" else ["macosx_10_12_x86_64", "universal2"]
    libc = "musllinux" if platform.libc_ver()[0] != "glibc" else "manylinux"
    return [f"{libc}_", f"_{arch}."]


def via_index(version: str, target: Path) -> Path:
    if not INDEX.startswith("https://"):
        sys.exit(f"get_uv: TASKQ_UV_INDEX must be an https URL, not {INDEX!r}")
    request = urllib.request.Request(  # noqa: S310 (https only, checked above)
        f"{INDEX}/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310 (a fixed https index)
        files = json.load(reply)["files"]
    tags = platform_tags()
    wheels = [
        f
        for f in files
        if f["filename"].startswith(f"uv-{version}-")
        and f["filename"].endswith(".whl")
        and all(tag in f["filename"] for tag in tags)
    ]
    if not wheels:
        sys.exit(f"get_uv: PyPI has no uv {version} wheel for {platform.machine()} {sys.platform}")
    wheel = wheels[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / wheel["filename"]
        with urllib.request.urlopen(wheel["url"], timeout=300) as reply, path.open("wb") as out:  # noqa: S310
            shutil.copyfileobj(reply, out)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != wheel["hashes"]["sha256"]:
            sys.exit(f"get_uv: sha256 mismatch for {wheel['filename']}: refusing it")
        with zipfile.ZipFile(path) as archive:
            member = f"uv-{version}.data/scripts/uv"
            (target / "bin").mkdir(parents=True, exist_ok=True)
            out_path = target / "bin" / "uv"
            out_path.write_bytes(archive.read(member))
    out_path.chmod(0o755)
    return out_path


def main() -> None:
    version, dest = sys.argv[1], Path(sys.argv[2])
    target = dest.parent / "pkg"
    print(f"uv not on PATH: installing uv {version} into {dest.parent}/ (project-local)", file=sys.stderr)
    found = via_pip(version, target) or via_index(version, target)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(found, dest.parent))
    tmp.replace(dest)


if __name__ == "__main__":
    main()
