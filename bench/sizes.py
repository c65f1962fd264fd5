"""Package sizes: our code as CDK uploads it (zipped) against LiteLLM as pip installs it."""

from __future__ import annotations

import fnmatch
import io
import re
import sys
import zipfile
from collections.abc import Iterable, Iterator
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from workload import ROOT

sys.path.insert(0, str(ROOT))  # the stack's asset exclusions, from infra/assets.py (no CDK import)
from infra.assets import CODE_EXCLUDES, LAYER_EXCLUDES

KIB = 1024
LAYER_DIR = ROOT / "layers" / "common"
FUNCTION_DIR = ROOT / "functions" / "router"
# What the layer needs at run time from the AWS-managed Powertools layer (boto3 comes with the Lambda runtime).
MANAGED_DEPENDENCIES = ("aws-lambda-powertools", "pydantic", "pydantic-core", "typing-extensions", "annotated-types")


def _excluded(relative: Path, patterns: Iterable[str]) -> bool:
    """As CDK's glob excludes: the last pattern that matches decides, and a `!` pattern brings a file back."""
    text = relative.as_posix()
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!")
        if (
            text == body
            or text.startswith(body + "/")
            or ("/" in body and fnmatch.fnmatch(text, body))
            or any(fnmatch.fnmatch(part, body) for part in relative.parts)
        ):
            excluded = not negated
    return excluded


def asset_files(folder: Path, excludes: Iterable[str]) -> Iterator[Path]:
    patterns = tuple(excludes)
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not _excluded(path.relative_to(folder), patterns):
            yield path


def zipped_size(files: Iterable[tuple[Path, str]]) -> tuple[int, int, int]:
    """(zipped bytes, unzipped bytes, file count) of a deflate zip of `files` given as (path, name in zip)."""
    buffer = io.BytesIO()
    raw = count = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path, name in files:
            archive.write(path, name)
            raw += path.stat().st_size
            count += 1
    return len(buffer.getvalue()), raw, count


def _dist_files(dist: Distribution) -> list[Path]:
    files = []
    for record in dist.files or ():
        path = Path(str(dist.locate_file(record)))
        if path.is_file() and "__pycache__" not in path.parts and ".dist-info" not in path.as_posix():
            files.append(path)
    return files


def _installed_bytes(dist: Distribution) -> int:
    return sum(p.stat().st_size for p in _dist_files(dist))


def _closure(name: str) -> dict[str, Distribution]:
    """`name` and everything it requires on this interpreter (extras left out), as installed."""
    from packaging.requirements import Requirement

    seen: dict[str, Distribution] = {}
    todo = [name]
    while todo:
        current = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if current in seen:
            continue
        try:
            dist = distribution(current)
        except PackageNotFoundError:
            continue
        seen[current] = dist
        for spec in dist.requires or ():
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def measure() -> dict[str, Any]:
    layer = list(asset_files(LAYER_DIR, LAYER_EXCLUDES))
    function = list(asset_files(FUNCTION_DIR, CODE_EXCLUDES))
    layer_zip, layer_raw, layer_count = zipped_size((p, p.relative_to(LAYER_DIR).as_posix()) for p in layer)
    function_zip, function_raw, function_count = zipped_size(
        (p, p.relative_to(FUNCTION_DIR).as_posix()) for p in function
    )
    result: dict[str, Any] = {
        "package_kib": (layer_zip + function_zip) / KIB,
        "package_unzipped_kib": (layer_raw + function_raw) / KIB,
        "package_files": layer_count + function_count,
        "function_zip_kib": function_zip / KIB,
        "layer_zip_kib": layer_zip / KIB,
    }
    managed = 0
    for name in MANAGED_DEPENDENCIES:
        try:
            managed += _installed_bytes(distribution(name))
        except PackageNotFoundError:
            continue
    result["managed_dependencies_installed_kib"] = managed / KIB
    try:
        litellm = distribution("litellm")
    except PackageNotFoundError:
        result.update(litellm_installed_kib=None, litellm_zip_kib=None, litellm_with_dependencies_installed_kib=None)
        return result
    files = _dist_files(litellm)
    site = Path(str(litellm.locate_file("")))
    litellm_zip, litellm_raw, litellm_count = zipped_size((p, p.relative_to(site).as_posix()) for p in files)
    closure = _closure("litellm")
    result.update(
        litellm_installed_kib=litellm_raw / KIB,
        litellm_files=litellm_count,
        litellm_zip_kib=litellm_zip / KIB,
        litellm_with_dependencies_installed_kib=sum(_installed_bytes(d) for d in closure.values()) / KIB,
        litellm_dependencies=len(closure) - 1,
    )
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
