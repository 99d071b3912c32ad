"""Code packages (Lambda zips, the Glue jobs' --extra-py-files zip) built without Docker.

A package is a few project folders copied to the zip root (so `lambdas.cleaner.handler.handler`
imports as it does in tests) plus, where needed, dependencies pip-installed for Lambda's
platform from the offline wheelhouse (cdk_app/wheelhouse.py). Powertools and pyarrow are not
bundled: they come from public layers (cdk_app/layers.py).
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from cdk_app.config import PROJECT_ROOT
from cdk_app.wheelhouse import PIP_TARGET_ARGS, WHEELHOUSE, pinned, wheels

_SKIP = ("__pycache__", ".pyc", ".pytest_cache")


def _files(source: Path) -> Iterator[Path]:
    paths = [source] if source.is_file() else sorted(source.rglob("*"))
    for path in paths:
        if path.is_file() and not any(part.endswith(_SKIP) for part in path.parts):
            yield path


def _content_hash(sources: Sequence[Path], requirements: Sequence[str]) -> str:
    """Hash of exactly what goes into the package, so an unrelated file never forces a deploy."""
    digest = hashlib.sha256()
    for source in sources:
        for path in _files(source):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    if requirements:  # the exact wheels installed, so a dependency's new version redeploys
        digest.update("\n".join([*requirements, *PIP_TARGET_ARGS, *wheels()]).encode())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class _LocalBundler:
    """Copies the sources and pip-installs the requirements from the wheelhouse, offline."""

    def __init__(self, sources: Sequence[Path], requirements: Sequence[str]) -> None:
        self._sources = sources
        self._requirements = requirements

    def try_bundle(self, output_dir: str, options: object = None) -> bool:  # noqa: ARG002 (jsii passes options)
        out = Path(output_dir)
        for source in self._sources:
            for path in _files(source):
                target = out / path.relative_to(PROJECT_ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        if self._requirements:
            stamp = WHEELHOUSE / ".complete"
            filled = set(stamp.read_text().splitlines()) if stamp.exists() else set()
            missing = [r for r in self._requirements if r not in filled]
            if missing:
                raise RuntimeError(
                    f"Lambda wheelhouse {WHEELHOUSE} lacks {', '.join(missing)}: run `python -m cdk_app.wheelhouse` "
                    "(make setup does), then synth again"
                )
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-compile",
                 "--find-links", str(WHEELHOUSE), "--target", str(out), *PIP_TARGET_ARGS, *self._requirements],
                check=True,
            )
            _strip_debug_info(out)
        return True


def _strip_debug_info(folder: Path) -> None:
    """Drop the debug info of the bundled extension modules (pyiceberg's deps: 81 MB -> 30 MB),
    leaving room under Lambda's 250 MB for the AWSSDKPandas layer. Skipped without binutils."""
    strip = shutil.which("strip")
    if strip:
        subprocess.run([strip, "--strip-debug", *map(str, folder.rglob("*.so"))], check=True)


@dataclass(frozen=True)
class Package:
    content_hash: str
    bundling: BundlingOptions

    def asset_options(self) -> dict:
        """Keyword arguments of an asset (`Code.from_asset`, `s3_assets.Asset`) built from this package."""
        return {"asset_hash_type": AssetHashType.CUSTOM, "asset_hash": self.content_hash, "bundling": self.bundling}


def package(sources: Sequence[str], bundled: Sequence[str] = ()) -> Package:
    """Project-relative `sources` plus the pinned versions of the `bundled` packages."""
    paths = [PROJECT_ROOT / source for source in sources]
    missing = [str(p.relative_to(PROJECT_ROOT)) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"package sources missing: {', '.join(missing)}")
    requirements = [pinned(name) for name in bundled]
    return Package(
        content_hash=_content_hash(paths, requirements),
        bundling=BundlingOptions(
            # never used: local bundling always succeeds or raises; CDK requires an image
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
            local=_LocalBundler(paths, requirements),
        ),
    )


def lambda_code(sources: Sequence[str], bundled: Sequence[str] = ()) -> tuple[lambda_.Code, str]:
    """A function's code and its content hash."""
    built = package(sources, bundled)
    # the asset's own path is never read (the bundler copies `sources`); lambdas/ names what it holds
    return lambda_.Code.from_asset(str(PROJECT_ROOT / "lambdas"), **built.asset_options()), built.content_hash
