#!/usr/bin/env python3
"""The committed dashboard JSON is exactly what dashboards/tools/gen_dashboard.py generates."""
import pathlib
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parents[1]
r = subprocess.run([sys.executable, str(root / "tools" / "gen_dashboard.py"), "--check"],
                   capture_output=True, text=True, timeout=30)
print(r.stdout + r.stderr)
sys.exit(r.returncode)
