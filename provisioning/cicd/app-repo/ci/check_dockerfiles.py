#!/usr/bin/env python3
"""The test stage's Dockerfile rules, for every src/<service>/Dockerfile of app-repo (standard library only,
so it runs in any image with python3 and on the lab's shell executor):

- multi-stage: a build stage and a separate final stage that copies the build's output from it;
- pinned: every FROM names a tag or digest, never ``latest``;
- lean: the final stage does not start from a compiler or SDK image;
- non-root: the final stage sets USER to a non-root user.

    python3 ci/check_dockerfiles.py [SRC_DIR]     # one line per problem, exit 1 when there is any
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Images that carry compilers or SDKs. The full ``python`` and ``node`` images are built on
# buildpack-deps (gcc, make, headers); their ``slim`` and ``alpine`` variants are not.
SDK_IMAGES = re.compile(
    r"(^|/)(golang|rust|gcc|clang|buildpack-deps|maven|gradle|openjdk)(:|@|$)"
    r"|(^|/)dotnet/sdk(:|@|$)"
    r"|jdk"
)
NEEDS_SLIM = re.compile(r"(^|/)(python|node):")
ROOT_USERS = {"root", "0", "0:0", "root:root"}


@dataclass
class Stage:
    base: str
    name: str = ""
    user: str = ""
    copies_from: list[str] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        found.append((word.upper(), rest.strip()))
    return found


def parse(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for word, rest in _instructions(text):
        if word == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            name = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else ""
            stages.append(Stage(base=parts[0] if parts else "", name=name))
        elif stages and word == "USER":
            stages[-1].user = rest
        elif stages and word == "COPY":
            stages[-1].copies_from += re.findall(r"--from=(\S+)", rest)
    return stages


def multi_stage_problems(stages: list[Stage]) -> list[str]:
    if len(stages) < 2:
        return [f"has {len(stages)} stage(s): needs a build stage and a separate final stage"]
    earlier = {s.name for s in stages[:-1] if s.name} | {str(i) for i in range(len(stages) - 1)}
    if not set(stages[-1].copies_from) & earlier:
        return ["the final stage copies nothing from a build stage (COPY --from=<stage>)"]
    return []


def pinned_problems(stages: list[Stage]) -> list[str]:
    names = {s.name for s in stages if s.name}
    problems = []
    for stage in stages:
        base = stage.base
        if base in names or base == "scratch":
            continue
        image = base.split("@")[0]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        if "@" not in base and (not tag or tag == "latest"):
            problems.append(f"FROM {base}: pin a version tag or digest (never latest)")
    return problems


def sdk_final_problems(stages: list[Stage]) -> list[str]:
    if not stages:
        return ["has no FROM"]
    base = stages[-1].base.lower()
    if SDK_IMAGES.search(base) or (NEEDS_SLIM.search(base) and not re.search(r"slim|alpine", base)):
        return [f"the final stage starts from {stages[-1].base}, a compiler/SDK image"]
    return []


def non_root_problems(stages: list[Stage]) -> list[str]:
    if not stages:
        return ["has no FROM"]
    user = stages[-1].user
    if not user:
        return ["the final stage sets no USER (it would run as the base image's user, often root)"]
    if user.lower() in ROOT_USERS or user.split(":")[0] in ("root", "0"):
        return [f"the final stage runs as {user}"]
    return []


RULES = {
    "multi-stage": multi_stage_problems,
    "pinned": pinned_problems,
    "lean final stage": sdk_final_problems,
    "non-root": non_root_problems,
}


def dockerfiles(src: Path) -> dict[str, Path]:
    """{service: its Dockerfile} for every src/<service>/ directory."""
    return {p.parent.name: p for p in sorted(src.glob("*/Dockerfile"))}


def check(src: Path, rules: tuple[str, ...] = tuple(RULES)) -> list[str]:
    problems = []
    for service, path in dockerfiles(src).items():
        stages = parse(path.read_text())
        for rule in rules:
            problems += [f"src/{service}/Dockerfile: [{rule}] {p}" for p in RULES[rule](stages)]
    return problems


def main(argv: list[str]) -> int:
    src = Path(argv[0] if argv else "src")
    found = dockerfiles(src)
    if not found:
        print(f"check_dockerfiles: ERROR: no {src}/<service>/Dockerfile found", file=sys.stderr)
        return 1
    problems = check(src)
    for problem in problems:
        print(problem)
    print(f"check_dockerfiles: {len(found)} Dockerfiles, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
