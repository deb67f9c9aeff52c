"""Build the lab's binaries from the Go module proxy and cache them outside the repo.

Each component is built in a wrapper Go module under a temporary directory and moved into
``~/.cache/boutique-lab/<name>-<version>/`` only when every binary linked; a manifest of sha256
sums is written last, so an interrupted build or a corrupt file is detected and rebuilt. What each
component is (module, version, flags, patches) is its recipe, in provisioning/lab/recipes.py.

Usage: ``python -m provisioning.lab.build [--force] [component ...]``
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    from provisioning.lab import recipes
except ModuleNotFoundError:  # run as a script (./run's setup, before the venv): its directory is on sys.path
    import recipes  # type: ignore[no-redef]

DIGESTS = recipes.CACHE_ROOT / "digests.json"  # sha256 of cached files by path and stat (see sha256)
MANIFEST = "manifest.json"
SCRATCH_PREFIX = ".build-{name}@"  # a build's scratch directory in CACHE_ROOT ("@": no component name has it)
BUILD_SECONDS = "build-seconds.json"  # in CACHE_ROOT: each component's last build time here, the estimate


def bin_dir(name: str) -> Path:
    """Where the cached binaries of component ``name`` live."""
    return recipes.components()[name].directory / "bin"


def sha256(path: Path) -> str:
    """sha256 of ``path``, hex. Kept in DIGESTS by path, inode, size and times (rsync's quick check): each
    layer ensure verifies its components' binaries and the Argo CD image's 380 MiB layer, which change only
    when rebuilt; a file written again is hashed again."""
    stat = path.stat()
    stamp = f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"
    try:
        kept = json.loads(DIGESTS.read_text())
    except (OSError, ValueError):
        kept = {}
    entry = kept.get(str(path))
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return str(entry["sha256"])
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    kept = {p: e for p, e in kept.items() if Path(p).exists()}  # no record outlives its file
    kept[str(path)] = {"stamp": stamp, "sha256": digest.hexdigest()}
    try:
        DIGESTS.parent.mkdir(parents=True, exist_ok=True)
        partial = DIGESTS.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(json.dumps(kept, indent=1, sort_keys=True))
        partial.replace(DIGESTS)  # concurrent writers: the last one wins, a lost entry costs one hash
    except OSError:
        pass  # a read-only cache costs the hash next time, nothing else
    return digest.hexdigest()


def verify(component: recipes.Component) -> str | None:
    """Return None when the cache entry is complete and intact, else what is wrong with it."""
    manifest = component.directory / MANIFEST
    if not manifest.exists():
        return "not built" if not component.directory.exists() else "incomplete (no manifest)"
    try:
        sums = json.loads(manifest.read_text())["sha256"]
    except (ValueError, KeyError):
        return "manifest unreadable"
    for name in component.binary_names():
        path = component.directory / "bin" / name
        if not path.exists():
            return f"{name} missing"
        if sums.get(name) != sha256(path):
            return f"{name} corrupt (sha256 mismatch)"
        for link in component.links.get(name, []):
            linked = component.directory / link
            if not linked.exists() or not linked.samefile(path):
                return f"{link} missing"
    return None


HEARTBEAT_SECONDS = 60


def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, progress: Callable[[], str]) -> None:
    """Run one build command into ``log``; every minute, print ``progress()`` so a person sees it works."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=HEARTBEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                print(progress(), file=sys.stderr, flush=True)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise recipes.BuildError(
            f"`{' '.join(cmd[:3])} …` failed (exit {proc.returncode}); log {log}:\n{tail}"
        )


def _module_dir(module: str, cwd: Path, env: dict[str, str]) -> Path:
    return Path(
        subprocess.run(
            ["go", "list", "-m", "-f", "{{.Dir}}", module],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )


def patched_source(original: str, edits: list[tuple[str, str]], where: str) -> str:
    """``original`` with each exact text replaced; a text not found exactly once is a BuildError (the
    pinned version changed under the patch: look at the file again)."""
    for old, new in edits:
        count = original.count(old)
        if count != 1:
            raise recipes.BuildError(f"patch for {where}: expected {old!r} once, found it {count} times")
        original = original.replace(old, new)
    return original


def _patch_module(component: recipes.Component, work: Path, env: dict[str, str]) -> None:
    """Copy the required module out of the module cache into the wrapper's ``patched/`` directory, apply
    the component's patches there and point the wrapper module at it (a ``replace`` line). The module
    cache stays pristine (go refuses overlays of files beneath it)."""
    if not component.patches:
        return
    module = next(iter(component.requires))
    copy = work / "patched"
    shutil.copytree(_module_dir(module, work, env), copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    for rel, edits in component.patches.items():
        target = copy / rel
        target.write_text(patched_source(target.read_text(), edits, f"{module}/{rel}"))
    with (work / "go.mod").open("a") as mod:
        mod.write(f"\nreplace {module} => ./patched\n")


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-mod=mod")
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def _require_go() -> None:
    if shutil.which("go") is None:
        raise recipes.BuildError(
            "the Go toolchain is missing: install Go >= 1.26 (https://go.dev/doc/install) "
            "and put `go` on PATH"
        )


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def last_build_seconds() -> dict[str, float]:
    try:
        return {k: float(v) for k, v in json.loads((recipes.CACHE_ROOT / BUILD_SECONDS).read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _remember_build_seconds(component: recipes.Component, seconds: float) -> None:
    known = last_build_seconds()
    known[component.name] = round(seconds, 1)
    (recipes.CACHE_ROOT / BUILD_SECONDS).write_text(json.dumps(known, indent=2, sort_keys=True))


def build(component: recipes.Component, force: bool = False, step: str = "") -> Path:
    """Build one component unless a complete, intact cache entry exists. Returns its bin directory.
    ``step`` ("[3/11] ") prefixes the progress lines."""
    problem = verify(component)
    if problem is None and not force:
        return component.directory / "bin"
    _require_go()
    recipes.CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX.format(name=component.name), dir=recipes.CACHE_ROOT))
    log = recipes.CACHE_ROOT / f"build-{component.name}-{component.version}.log"
    log.write_text("")
    last = last_build_seconds().get(component.name)
    estimate = f"took {_minutes(last)} last time here" if last else "first build here"
    print(
        f"{step}building {component.name} {component.version} ({problem}; {estimate}); log: {log}",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()

    def progress() -> str:
        return f"{step}  ... {component.name} still building, {_minutes(time.monotonic() - started)} so far"

    try:
        lines = [f"module boutique-lab/{component.name}", "", "go 1.26.0", ""]
        replaces = component.replaces()
        if replaces:
            lines += ["replace ("] + [f"\t{m} => {t}" for m, t in replaces.items()] + [")"]
        (work / "go.mod").write_text("\n".join(lines) + "\n")
        if component.go_sum:
            (work / "go.sum").write_text("\n".join(component.go_sum) + "\n")
        env = _go_env()
        get = ["go", "get"]
        get += [f"{m}@{v}" for m, v in component.requires.items()]
        _run(get, work, env, log, progress)
        (work / "bin").mkdir()
        ldflags = " ".join(["-s", "-w", *component.ldflags])
        _patch_module(component, work, env)
        for tool in component.tools:
            name = tool.rsplit("/", 1)[1]
            out = work / "bin" / component.rename.get(name, name)
            go_build = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(out), tool]
            _run(go_build, work, env, log, progress)
        for src, dst in component.extra_files.items():
            mod_dir = _module_dir(next(iter(component.requires)), work, env)
            shutil.copytree(mod_dir / src, work / dst)
            for path in (work / dst).rglob("*"):
                path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(work / "patched", ignore_errors=True)  # the patched copy of the source is not kept
        for name, links in component.links.items():
            for link in links:
                (work / link).parent.mkdir(parents=True, exist_ok=True)
                os.link(work / "bin" / name, work / link)
        sums = {n: sha256(work / "bin" / n) for n in component.binary_names()}
        (work / MANIFEST).write_text(
            json.dumps(
                {
                    "component": component.name,
                    "version": component.version,
                    "built_seconds": round(time.monotonic() - started, 1),
                    "sha256": sums,
                },
                indent=2,
            )
        )
        if component.directory.exists():
            shutil.rmtree(component.directory)
        work.rename(component.directory)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    took = time.monotonic() - started
    _remember_build_seconds(component, took)
    print(f"{step}built {component.name} in {_minutes(took)}", file=sys.stderr, flush=True)
    return component.directory / "bin"


def through_layer(layer: int) -> list[str]:
    """The components the platform's layers 0..``layer`` run."""
    return [name for name in recipes.components() if recipes.FIRST_LAYER[name] <= layer]


def ensure_all(names: list[str] | None = None, force: bool = False) -> dict[str, Path]:
    available = recipes.components()
    wanted = names or list(available)
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise recipes.BuildError(f"unknown component(s) {unknown}; known: {sorted(available)}")
    if not force and all(verify(available[n]) is None for n in wanted):
        return {n: available[n].directory / "bin" for n in wanted}
    recipes.CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    todo = [n for n in wanted if force or verify(available[n]) is not None]
    _require_go()
    known = last_build_seconds()
    if len(todo) > 1:
        guess = sum(known.get(n, 0) for n in todo)
        print(
            f"building {len(todo)} of {len(wanted)} components: {', '.join(todo)}"
            + (f" (about {_minutes(guess)} by the last builds here)" if guess else ""),
            file=sys.stderr,
            flush=True,
        )
    step = {n: f"[{i}/{len(todo)}] " if len(todo) > 1 else "" for i, n in enumerate(todo, 1)}  # to build
    bins = {}
    for n in wanted:
        if n not in step:
            bins[n] = available[n].directory / "bin"
            continue
        # One builder per component: a second process wanting it waits, then finds the cache filled; one
        # wanting another component (a test while setup builds the later layers beside it) goes on.
        with build_lock(n):
            for stale in recipes.CACHE_ROOT.glob(
                f"{SCRATCH_PREFIX.format(name=n)}*"
            ):  # of an interrupted build
                shutil.rmtree(stale, ignore_errors=True)
            fresh = force or verify(available[n]) is not None
            bins[n] = (
                build(available[n], force=force, step=step[n]) if fresh else available[n].directory / "bin"
            )
    return bins


@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    with (recipes.CACHE_ROOT / f".build-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("components", nargs="*")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache is intact")
    parser.add_argument(
        "--through", type=int, metavar="LAYER", help="only what the platform's layers 0..LAYER run"
    )
    parser.add_argument(
        "--after", type=int, metavar="LAYER", help="only what layers after LAYER add (built beside the tests)"
    )
    args = parser.parse_args(argv)
    try:
        wanted = args.components or (through_layer(args.through) if args.through is not None else None)
        if args.after is not None:
            later = [n for n in wanted or recipes.components() if recipes.FIRST_LAYER[n] > args.after]
            wanted = sorted(later, key=recipes.FIRST_LAYER.__getitem__)  # in the order the layers need them
        for name, path in ensure_all(wanted, args.force).items():
            print(f"{name}: {path}")
    except recipes.BuildError as exc:
        print(f"lab build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
