"""Code packages (Lambda zips, our Lambda layers, the Glue jobs' --extra-py-files zip) built without Docker.

A package is a few project folders copied to the zip root (so `lambdas.cleaner.handler.handler`
imports as it does in tests) plus, where needed, dependencies pip-installed for Lambda's
platform from the offline wheelhouse (cdk_app/wheelhouse.py). A layer (`layer_code`) is packages
from the same wheelhouse under `python/`, pruned of what no function imports (tests, headers,
Arrow Flight) and stripped. pyarrow and numpy come from our own layers and Powertools from its
public layer (cdk_app/layers.py; decisions 0203 and 0224).
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
LAYER_PREFIX = "python"  # a Python layer's folder on sys.path (/opt/python)


def _files(source: Path) -> Iterator[Path]:
    paths = [source] if source.is_file() else sorted(source.rglob("*"))
    for path in paths:
        if path.is_file() and not any(part.endswith(_SKIP) for part in path.parts):
            yield path


def _content_hash(sources: Sequence[Path], recipe: Sequence[str]) -> str:
    """Hash of exactly what goes into the package, so an unrelated file never forces a deploy."""
    digest = hashlib.sha256()
    for source in sources:
        for path in _files(source):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    if recipe:  # the exact wheels installed, so a dependency's new version redeploys
        digest.update("\n".join(recipe).encode())
    return digest.hexdigest()


# What a layer leaves out (globs under its `python/`): nothing a function imports. Test suites, C/C++
# and Cython sources and headers, console scripts; and Arrow Flight, pyarrow's largest library after
# libarrow (30 MB), which only `pyarrow.flight` loads (tests/infra/test_layers.py checks no one does).
_LAYER_PRUNED = ("**/tests", "pyarrow/include", "pyarrow/includes", "pyarrow/src", "**/*.pyx", "**/*.pxd",
                 "**/*.pxi", "**/*.h", "**/*.cc", "bin", "pyarrow/libarrow_flight.so*",
                 "pyarrow/libarrow_python_flight.so*", "pyarrow/_flight.*.so", "pyarrow/_pyarrow_cpp_tests.*.so")
PRUNED_MODULES = ("pyarrow.flight",)  # what the pruning makes unimportable


@dataclass(frozen=True)
class Build:
    """What goes into a package: project `sources` at the root, `requirements` installed under `prefix`
    (and for a layer, pruned of `_LAYER_PRUNED` and stripped of all symbols Python does not load)."""
    sources: tuple[Path, ...]
    requirements: tuple[str, ...]
    prefix: str = ""  # "python" for a layer

    def into(self, out: Path) -> Path:
        """Build the package in folder `out` (what CDK zips), offline; returns `out`."""
        for source in self.sources:
            for path in _files(source):
                target = out / path.relative_to(PROJECT_ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        if self.requirements:
            stamp = WHEELHOUSE / ".complete"
            filled = set(stamp.read_text().splitlines()) if stamp.exists() else set()
            missing = [r for r in self.requirements if r not in filled]
            if missing:
                raise RuntimeError(
                    f"Lambda wheelhouse {WHEELHOUSE} lacks {', '.join(missing)}: run `python -m cdk_app.wheelhouse` "
                    "(make setup does), then synth again"
                )
            target = out / self.prefix
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-compile",
                 "--find-links", str(WHEELHOUSE), "--target", str(target), *PIP_TARGET_ARGS, *self.requirements],
                check=True,
            )
            if self.prefix:
                _prune(target)
            _strip(target, "--strip-unneeded" if self.prefix else "--strip-debug")
        return out

    def recipe(self) -> list[str]:
        """Everything besides the sources' bytes that decides the package's content (part of its hash)."""
        if not self.requirements:
            return []
        layer = (self.prefix, *_LAYER_PRUNED, "--strip-unneeded") if self.prefix else ()
        return [*self.requirements, *PIP_TARGET_ARGS, *wheels(), *layer]


@jsii.implements(ILocalBundling)
class _LocalBundler:
    """Builds the package (`Build.into`) in CDK's bundling folder, offline."""

    def __init__(self, build: Build) -> None:
        self._build = build

    def try_bundle(self, output_dir: str, options: object = None) -> bool:  # noqa: ARG002 (jsii passes options)
        self._build.into(Path(output_dir))
        return True


def _prune(folder: Path) -> None:
    """Drop `_LAYER_PRUNED`, and the copies of a shared library that its soname (`libX.so.N`) makes unused."""
    for pattern in _LAYER_PRUNED:
        for path in sorted(folder.glob(pattern), reverse=True):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    for soname in sorted(folder.rglob("lib*.so.*")):
        stem, _, version = soname.name.partition(".so.")
        if version.isdigit():  # the wheel holds libX.so and libX.so.N.M.P besides: the same bytes, never loaded
            for copy in soname.parent.glob(f"{stem}.so*"):
                if copy != soname and copy.read_bytes() == soname.read_bytes():
                    copy.unlink()


def _strip(folder: Path, option: str) -> None:
    """Drop the debug info (`--strip-debug`, bundles: pyiceberg's deps 99 MB -> 69 MB) or every symbol
    not needed for dynamic linking (`--strip-unneeded`, layers: pyarrow and numpy 221 MB -> 142 MB with the
    pruning) of the extension modules and shared libraries there. Skipped without binutils."""
    strip = shutil.which("strip")
    libraries = [str(p) for p in folder.rglob("*.so*") if p.is_file() and not p.is_symlink()]
    if strip and libraries:
        subprocess.run([strip, option, *libraries], check=True)


@dataclass(frozen=True)
class Package:
    content_hash: str
    bundling: BundlingOptions

    def asset_options(self) -> dict:
        """Keyword arguments of an asset (`Code.from_asset`, `s3_assets.Asset`) built from this package."""
        return {"asset_hash_type": AssetHashType.CUSTOM, "asset_hash": self.content_hash, "bundling": self.bundling}


def build(sources: Sequence[str], bundled: Sequence[str] = (), *, prefix: str = "") -> Build:
    """Project-relative `sources` plus the pinned versions of the `bundled` packages, under `prefix`."""
    paths = tuple(PROJECT_ROOT / source for source in sources)
    missing = [str(p.relative_to(PROJECT_ROOT)) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"package sources missing: {', '.join(missing)}")
    return Build(paths, tuple(pinned(name) for name in bundled), prefix)


def package(sources: Sequence[str], bundled: Sequence[str] = (), *, prefix: str = "") -> Package:
    """The package `build(sources, bundled, prefix=prefix)`, with its hash and CDK's bundling options."""
    built = build(sources, bundled, prefix=prefix)
    return Package(
        content_hash=_content_hash(built.sources, built.recipe()),
        bundling=BundlingOptions(
            # never used: local bundling always succeeds or raises; CDK requires an image
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
            local=_LocalBundler(built),
        ),
    )


def _code(built: Package) -> lambda_.Code:
    # the asset's own path is never read (the bundler builds the package); lambdas/ names what it serves
    return lambda_.Code.from_asset(str(PROJECT_ROOT / "lambdas"), **built.asset_options())


def lambda_code(sources: Sequence[str], bundled: Sequence[str] = ()) -> tuple[lambda_.Code, str]:
    """A function's code and its content hash."""
    built = package(sources, bundled)
    return _code(built), built.content_hash


def layer_code(packages: Sequence[str]) -> lambda_.Code:
    """A layer of the pinned `packages` (and what they require), under `python/` where Lambda looks."""
    return _code(package((), packages, prefix=LAYER_PREFIX))
