#!/usr/bin/env python3
"""Do the commands the READMEs show still run as shown?

Reads the ```sh blocks of README.md, tools/README.md, exporters/README.md and python/README.md.
Every command (one per line, `\\` continuations joined, `&&` split, `$ ` prompts honoured: in a block
with prompts only those lines are commands) is checked in one of three ways:

  run    the commands in RUNNABLE below: they must work on a CPU machine after scripts/setup. Each
         runs from the source folder (after a `cd` earlier in its block, from there) with `build/`
         meaning the build folder, under a timeout; a non-zero exit fails the check. A few are
         rewritten first, each for a stated reason (a free port instead of 9464, a server replaced
         by the check of what it would load).
  paths  every other command: each repository path it names (examples/..., scripts/..., build/...,
         any *.py/*.json/*.yml argument) must exist. A missing file fails the check.
  skip   commands that install, download or need a GPU/torch to mean anything (SKIPPED below).

With PBM_ALLOW_MISSING_TOOLS=1 (gpu-check sets it: the GPU machine has no Debian packages), a
runnable command whose program is not installed is skipped with a line saying so instead of failing.

Usage: check_commands.py --source-dir DIR --build-dir DIR [--list]
Exit status: 0 all good, 1 a command failed or names a missing file.
"""
import argparse
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys

READMES = ["README.md", "tools/README.md", "exporters/README.md", "python/README.md"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_with_metrics(cmd):
    """The README's metrics demo: a free loopback port instead of 9464 (may be taken), one second of
    lingering instead of 60, in the foreground; it must say it serves on that port."""
    port = free_port()
    cmd = cmd.replace("127.0.0.1:9464", f"127.0.0.1:{port}").replace("--linger 60", "--linger 1")
    return cmd.rstrip(" &"), f"metrics       http://127.0.0.1:{port}/metrics"


def prometheus_config(cmd):
    """A Prometheus server runs until stopped: check the configuration it would load instead."""
    config = re.search(r"--config\.file=(\S+)", cmd).group(1)
    return f"promtool check config {config}", None


# (pattern on the command as the README shows it, rewrite or None, timeout in seconds)
RUNNABLE = [
    (r"^build/examples/tile_pipeline$", None, 120),
    (r"^PBM_PROMETHEUS_ADDR=127\.0\.0\.1:9464 build/examples/tile_pipeline \d+ --linger \d+ &$", demo_with_metrics, 120),
    (r"^prometheus --config\.file=\S+", prometheus_config, 60),
    (r"^promtool check (rules|config) ", None, 60),
    (r"^pbm-guard --version$", lambda cmd: ("build/tools/" + cmd, None), 30),  # the README's `pbm-guard` is build/tools/pbm-guard
]

# Not run, paths not checked: what installs, downloads, configures with torch or needs a GPU run.
SKIPPED = [
    (r"^scripts/(setup|test|gpu-check|bench|sanitize|fuzz)\b", "builds or runs a suite (the command is what this test runs under)"),
    (r"^(sudo )?(apt|apt-get|pip|pip3|docker) ", "installs or downloads"),
    (r"^cmake ", "configure/build with options (scripts/setup does it)"),
    (r"^pbm-guard (run \[|baseline -o FILE|check --budget FILE)", "a synopsis, not a command"),
    (r"^\[", "a synopsis continuation"),
    (r"^cd python && python3 setup.py", "builds the extension (needs torch)"),
]

PLACEHOLDERS = {"./my_program", "my_program", "REPORT...", "FILE", "DIR"}
OUTPUT_FLAGS = {"-o", "--out", "--report", "--report-dir", "--json"}
REPO_DIRS = ("build/", "examples/", "scripts/", "dashboards/", "tools/", "tests/", "python/", "docs/",
             "core/", "telemetry/", "exporters/", "bench/", "cmake/")


def commands(path):
    """(line number, cwd-changing block id, command) of every command in the ```sh blocks of path."""
    out, block, in_sh, lines = [], 0, False, []
    with open(path) as f:
        text = f.read().splitlines()
    for n, line in enumerate(text, 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            if in_sh:
                out.extend((ln, block, c) for ln, c in split_block(lines))
                in_sh, lines = False, []
            elif stripped in ("```sh", "```bash", "```shell"):
                in_sh, block = True, block + 1
            continue
        if in_sh:
            lines.append((n, line))
    return out


def split_block(lines):
    prompts = any(l.lstrip().startswith("$ ") for _, l in lines)
    joined, current, start = [], "", 0
    for n, line in lines:
        s = line.strip()
        if prompts:
            if not s.startswith("$ "):
                continue
            s = s[2:]
        s = strip_comment(s)
        if not current:
            start = n
        if s.endswith("\\"):
            current += s[:-1] + " "
            continue
        current += s
        if current.strip():
            joined.append((start, " ".join(current.split())))
        current = ""
    out = []
    for n, cmd in joined:
        for part in cmd.split(" && "):
            out.append((n, part.strip()))
    return out


def strip_comment(s):
    """Drops a trailing `# comment` (a # after whitespace, outside quotes)."""
    quote = None
    for i, ch in enumerate(s):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or s[i - 1].isspace()):
            return s[:i].rstrip()
    return s


def path_args(cmd):
    """Repository paths a command names as inputs."""
    try:
        words = shlex.split(cmd)
    except ValueError:
        words = cmd.split()
    out, skip_next = [], False
    for w in words:
        if skip_next:
            skip_next = False
            continue
        if w in OUTPUT_FLAGS:
            skip_next = True
            continue
        if re.match(r"^[A-Z_][A-Z0-9_]*=", w):  # VAR=value: a setting, not an input path
            continue
        if w.startswith("-") and "=" in w:
            flag, w = w.split("=", 1)
            if flag in OUTPUT_FLAGS or flag.startswith("--storage") or flag.startswith("--web"):
                continue
        if w.startswith("./"):
            w = w[2:]
        if w in PLACEHOLDERS or not w or "$" in w or "*" in w or "://" in w:
            continue
        if w.startswith(REPO_DIRS) or re.search(r"\.(py|json|ya?ml|sh)$", w):
            out.append(w)
    return out


def resolve(path, cwd, source, build):
    if path.startswith("build/"):
        return os.path.join(build, path[len("build/"):])
    return os.path.normpath(os.path.join(cwd, path))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--list", action="store_true", help="print what would be checked, run nothing")
    a = ap.parse_args()
    source, build = os.path.abspath(a.source_dir), os.path.abspath(a.build_dir)
    failures, ran, matched = [], 0, set()
    allow_missing = os.environ.get("PBM_ALLOW_MISSING_TOOLS") == "1"
    env = dict(os.environ)
    env["PATH"] = "/usr/local/cuda/bin:" + env.get("PATH", "")
    for readme in READMES:
        path = os.path.join(source, readme)
        if not os.path.exists(path):
            failures.append(f"{readme}: missing")
            continue
        cwd_of_block = {}
        for line, block, cmd in commands(path):
            where = f"{readme}:{line}"
            cwd = cwd_of_block.get(block, source)
            if cmd.startswith("cd "):
                target = os.path.normpath(os.path.join(cwd, cmd[3:].strip()))
                if not os.path.isdir(target):
                    failures.append(f"{where}: `{cmd}`: no folder {target}")
                cwd_of_block[block] = target
                print(f"[cd   ] {where}: {cmd}")
                continue
            skip = next((why for pat, why in SKIPPED if re.search(pat, cmd)), None)
            run = next(((i, rw, t) for i, (pat, rw, t) in enumerate(RUNNABLE) if re.search(pat, cmd)), None)
            if skip and not run:
                print(f"[skip ] {where}: {cmd}  ({skip})")
                continue
            missing = [p for p in path_args(cmd) if not os.path.exists(resolve(p, cwd, source, build))]
            for p in missing:
                failures.append(f"{where}: `{cmd}`: {p} does not exist ({resolve(p, cwd, source, build)})")
            if not run:
                print(f"[paths] {where}: {cmd}" + (f"  MISSING {', '.join(missing)}" if missing else "  ok"))
                continue
            i, rewrite, timeout = run
            matched.add(i)
            shown, expect = (rewrite(cmd) if rewrite else (cmd, None))
            shell = re.sub(r"(?<![\w./-])build/", build + "/", shown)
            if a.list:
                print(f"[run  ] {where}: {shell}")
                continue
            tool = next((w for w in shlex.split(shell) if "=" not in w), "")
            if allow_missing and tool and "/" not in tool and shutil.which(tool, path=env["PATH"]) is None:
                # gpu-check's machine has no Debian packages (promtool); CI installs them and runs these.
                print(f"[skip ] {where}: {shell}  ({tool} not installed here; PBM_ALLOW_MISSING_TOOLS=1)")
                continue
            print(f"[run  ] {where}: {shell}", flush=True)
            ran += 1
            try:
                r = subprocess.run(["bash", "-c", shell], cwd=cwd, env=env, capture_output=True, text=True,
                                   timeout=timeout)
                output = r.stdout + r.stderr
                if r.returncode != 0:
                    failures.append(f"{where}: `{shell}` exited {r.returncode}:\n{output[-2000:]}")
                elif expect and expect not in output:
                    failures.append(f"{where}: `{shell}` did not print `{expect}`:\n{output[-2000:]}")
                else:
                    print("        ok: " + (output.strip().splitlines() or [""])[-1])
            except subprocess.TimeoutExpired:
                failures.append(f"{where}: `{shell}` still running after {timeout} s")
    for i, (pat, _, _) in enumerate(RUNNABLE):
        if i not in matched:
            print(f"note: no README shows a command matching {pat!r} any more")
    if failures:
        print(f"\nFAIL: {len(failures)} README command(s) do not run as shown:")
        for f in failures:
            print("  " + f)
        return 1
    print(f"\nOK: {ran} commands ran, every path named exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
