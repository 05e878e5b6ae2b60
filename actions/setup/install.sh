#!/usr/bin/env bash
# Install pipeline-kit from this action's own checkout into an isolated virtual environment, once
# per runner, and put it on PATH. The kit is exactly the version of the action that calls this.
# PIPELINE_KIT_PYTHON: an interpreter that already has this version installed (skips the install).
set -euo pipefail

source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$source_dir/pipeline_kit/__init__.py")"

if [ -n "${PIPELINE_KIT_PYTHON:-}" ]; then
  bin="$(dirname "$PIPELINE_KIT_PYTHON")"
else
  # One venv per kit version and source path: a cache hit costs nothing.
  key="$(printf '%s' "$source_dir" | sha256sum | cut -c1-12)"
  venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/pipeline-kit-$version-$key"
  if [ ! -x "$venv/bin/pipeline-kit" ]; then
    python="${PIPELINE_KIT_SETUP_PYTHON:-python3}"
    if command -v uv >/dev/null 2>&1; then
      uv venv --quiet --python "$python" "$venv"
      uv pip install --quiet --python "$venv/bin/python" "$source_dir"
    else
      "$python" -m venv "$venv"
      "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$source_dir"
    fi
  fi
  bin="$venv/bin"
fi

installed="$("$bin/pipeline-kit" --version)"
case "$installed" in
  *" $version") ;;
  *) echo "::error::pipeline-kit at $bin is '$installed', this action is $version"; exit 1 ;;
esac
echo "$bin" >> "${GITHUB_PATH:-/dev/null}"
export PATH="$bin:$PATH"
echo "bin=$bin" >> "${GITHUB_OUTPUT:-/dev/null}"
echo "version=$version" >> "${GITHUB_OUTPUT:-/dev/null}"
