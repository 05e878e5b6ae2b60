#!/usr/bin/env bash
# Install pipeline-kit from this action's own checkout into an isolated virtual environment and
# put it on PATH. The kit is exactly the version of the action that calls this; its dependencies
# (and the build backend) are exactly those pinned by hash in requirements.lock, never resolved
# afresh. The environment is kept in the runner's tool cache (kept across jobs on self-hosted
# runners; per job on hosted ones, where uv installs the lock in a second or two).
# PIPELINE_KIT_PYTHON: an interpreter that already has this version installed (skips the install).
set -euo pipefail

action_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="$(cd "$action_dir/../.." && pwd)"
lock="$action_dir/requirements.lock"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$source_dir/pipeline_kit/__init__.py")"

if [ -n "${PIPELINE_KIT_PYTHON:-}" ]; then
  bin="$(dirname "$PIPELINE_KIT_PYTHON")"
else
  python="${PIPELINE_KIT_SETUP_PYTHON:-python3}"
  interpreter="$("$python" -I -c 'import sys; print(sys.implementation.cache_tag, sys.version)')"
  # Same kit version, lock and interpreter: the same environment, installed once.
  key="$( { echo "$version $interpreter"; cat "$lock"; } | sha256sum | cut -c1-16)"
  venv="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}}/pipeline-kit/$version-$key"
  if [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"  # an install that never finished is not a cache hit
    mkdir -p "$(dirname "$venv")"
    if command -v uv >/dev/null 2>&1; then
      uv venv --quiet --python "$python" "$venv"
      # the lock is complete: --no-deps resolves nothing (pip 23.x mis-resolves extras otherwise)
      uv pip install --quiet --python "$venv/bin/python" --no-deps --require-hashes --only-binary :all: -r "$lock"
      uv pip install --quiet --python "$venv/bin/python" --no-deps --no-build-isolation "$source_dir"
    else
      # No pip of the venv's own when the interpreter's can install into another (pip 22.3+,
      # --python): ensurepip costs more CPU than the install. Every python runs isolated (-I):
      # `-c` and `-m` would otherwise put the working directory (the checkout) first on sys.path.
      # --no-compile, as uv: what the kit imports is compiled on first use (into the cached
      # venv); compiling every module of every package took longer than the install
      if "$python" -I -c 'import pip, re, sys; sys.exit(tuple(map(int, re.match(r"(\d+)\.(\d+)", pip.__version__).groups())) < (22, 3))' 2>/dev/null; then
        "$python" -I -m venv --without-pip "$venv"
        pip=("$python" -I -m pip --python "$venv/bin/python" --quiet --disable-pip-version-check)
      else
        "$python" -I -m venv "$venv"
        pip=("$venv/bin/python" -I -m pip --quiet --disable-pip-version-check)
      fi
      "${pip[@]}" install --no-compile --no-deps --require-hashes --only-binary :all: -r "$lock"
      "${pip[@]}" install --no-compile --no-deps --no-build-isolation "$source_dir"
    fi
    touch "$venv/.complete"
  fi
  bin="$venv/bin"
fi

installed="$("$bin/pipeline-kit" --version)"
case "$installed" in
  *" $version") ;;
  *) echo "::error::pipeline-kit at $bin is '$installed', this action is $version"; exit 1 ;;
esac
echo "$bin" >> "${GITHUB_PATH:-/dev/null}"
echo "bin=$bin" >> "${GITHUB_OUTPUT:-/dev/null}"
echo "version=$version" >> "${GITHUB_OUTPUT:-/dev/null}"
