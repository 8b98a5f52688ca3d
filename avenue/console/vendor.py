"""``python -m avenue.console.vendor [VENDOR.json ...]`` (``make check-vendor``): the console's
vendored files (and those of any other manifest named, such as the tests' axe-core) are byte
for byte the ones in their npm registry tarballs.

Each tarball is downloaded from the URL in ``static/vendor/VENDOR.json``, checked against the
registry's own ``integrity`` (sha512), and every vendored file is compared with its copy in
the tarball and with the digest the manifest records. Exits non-zero on any difference.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

from avenue.outbound import send

VENDOR = Path(__file__).resolve().parent / "static" / "vendor"
DOWNLOAD_SECONDS = 60.0  # each tarball, whole (avenue/outbound.py)
MAX_TARBALL_BYTES = 64 * 1024 * 1024


def check(manifest_path: Path = VENDOR / "VENDOR.json") -> list[str]:
    """The differences between the vendored files and their registry tarballs (empty: none)."""
    problems = []
    for package in json.loads(manifest_path.read_text())["packages"]:
        answer = send(package["tarball"], seconds=DOWNLOAD_SECONDS, max_body=MAX_TARBALL_BYTES)
        if answer.status != 200:
            problems.append(f"{package['name']}: the registry answered HTTP {answer.status}")
            continue
        tarball = answer.body
        algorithm, _, expected = package["integrity"].partition("-")
        if base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode() != expected:
            problems.append(f"{package['name']}: the tarball does not match the registry's integrity")
            continue
        with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
            for name, inside in package["paths_in_tarball"].items():
                member = archive.extractfile(inside)
                registry = member.read() if member else b""
                committed = (manifest_path.parent / package["folder"] / name).read_bytes()
                digest = hashlib.sha256(committed).hexdigest()
                if committed != registry:
                    problems.append(f"{package['name']}/{name}: differs from {inside} in the tarball")
                elif digest != package["files"][name]:
                    problems.append(f"{package['name']}/{name}: VENDOR.json records another sha256")
    return problems


def main(manifests: list[str] | None = None) -> int:
    """Print each difference of each manifest (default: the console's; the command line may
    name others, e.g. the tests' own vendored files); the exit status says whether there was one."""
    paths = [Path(name) for name in manifests] if manifests else [VENDOR / "VENDOR.json"]
    problems = [problem for path in paths for problem in check(path)]
    for problem in problems:
        print(problem)
    print("vendored files match the registry" if not problems else f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
