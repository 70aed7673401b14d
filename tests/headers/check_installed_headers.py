#!/usr/bin/env python3
"""Does the installed tree hold only public headers?

Installs a pbm build into a fresh prefix (cmake --install), then checks every file under
<prefix>/include/pbm: each must be a public header (listed in the "Public headers" section of
README.md) or be included, directly or through other installed headers, by one. Also fails when a
listed header of an installed component is not installed, or an installed header includes a pbm header that is not installed.
A header only core/src (or another component's src/) needs belongs in that src/, not in include/.

Usage: check_installed_headers.py --build-dir DIR --work-dir DIR --readme README.md [--cmake CMAKE]
       check_installed_headers.py --include-dir DIR --readme README.md   (an installed tree as is)
Exit status: 0 all good, 1 a check failed, 2 usage or install error.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*<(pbm/[^>]+)>', re.MULTILINE)
LISTED = re.compile(r'^\|\s*`(pbm/[^`]+)`\s*\|', re.MULTILINE)


def documented(readme):
    """The headers listed in the table of README.md's "## Public headers" section."""
    text = open(readme, encoding="utf-8").read()
    start = text.find("\n## Public headers\n")
    if start < 0:
        sys.exit(f"{readme}: no '## Public headers' section")
    end = text.find("\n## ", start + 1)
    return set(LISTED.findall(text[start:end if end >= 0 else len(text)]))


def installed(include_dir):
    found = set()
    for root, _, files in os.walk(os.path.join(include_dir, "pbm")):
        for name in files:
            found.add(os.path.relpath(os.path.join(root, name), include_dir).replace(os.sep, "/"))
    return found


def component(header):
    """pbm/telemetry/x.hpp -> telemetry; pbm/x.hpp and pbm/detail/x.hpp -> core."""
    parts = header.split("/")
    return parts[1] if len(parts) > 2 and parts[1] != "detail" else "core"


def check(include_dir, readme):
    public = documented(readme)
    headers = installed(include_dir)
    includes = {h: set(INCLUDE.findall(open(os.path.join(include_dir, h), encoding="utf-8",
                                            errors="replace").read())) for h in headers}
    problems = []
    built = {component(h) for h in headers}  # a component left out of this build installs nothing
    for h in sorted(public - headers):
        if component(h) in built:
            problems.append(f"{h}: listed as public in {readme} but not installed")
    for h in sorted(headers):
        for inc in sorted(includes[h] - headers):
            problems.append(f"{h}: includes <{inc}>, which is not installed")
    reached, todo = set(), sorted(public & headers)
    while todo:
        h = todo.pop()
        if h in reached:
            continue
        reached.add(h)
        todo.extend(sorted(includes[h] & headers))
    for h in sorted(headers - reached):
        problems.append(f"{h}: installed, but no public header includes it and {readme} "
                        "does not list it (move it to its component's src/, include it from a "
                        "public header, or list it under 'Public headers')")
    for p in problems:
        print(f"installed_headers: {p}")
    print(f"installed_headers: {len(headers)} installed headers, {len(public)} listed as public, "
          f"{len(reached)} public or included by one: {'FAIL' if problems else 'ok'}")
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", required=True)
    ap.add_argument("--include-dir")
    ap.add_argument("--build-dir")
    ap.add_argument("--work-dir")
    ap.add_argument("--cmake", default="cmake")
    args = ap.parse_args()
    if args.include_dir:
        return check(args.include_dir, args.readme)
    if not (args.build_dir and args.work_dir):
        ap.error("--build-dir and --work-dir, or --include-dir")
    prefix = os.path.join(args.work_dir, "prefix")
    shutil.rmtree(prefix, ignore_errors=True)  # nothing stale from an earlier install
    r = subprocess.run([args.cmake, "--install", args.build_dir, "--prefix", prefix],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout)
        print(f"installed_headers: cmake --install failed ({r.returncode})")
        return 2
    return check(os.path.join(prefix, "include"), args.readme)


if __name__ == "__main__":
    sys.exit(main())
