#!/usr/bin/env bash
# Install latentscope 1.0 into its own virtual environment, benchmarks/.peers-venv/ (git-ignored;
# never a dependency of Tweetscope Studio).
#
#     bash benchmarks/peers/install_latentscope.sh          # idempotent; ~2-4 min the first time
#
# Why not `pip install latentscope==1.0.0`: its requirements cannot be resolved with the CPU torch
# this machine has (torch==2.13.0; any other torch spec pulls a multi-GB CUDA build):
# latentscope 1.0 requires pylate>=1.6.0, pylate 1.6.0 requires fast-plaid<=1.4.6.2110, and every
# fast-plaid wheel pins one torch release (…2110 = torch==2.11.0). pip backtracks for tens of
# minutes and fails. pylate/fast-plaid/torch serve only latentscope's own embedding models
# (late-interaction, transformers), which this benchmark never runs: latentscope imports our
# embeddings. So: latentscope with --no-deps, then exactly the requirements its ingest, embedding
# import, umapper, clusterer and scope steps import, at the version bounds latentscope declares
# (read from its own metadata below). Its modules import these lazily; the benchmark's first
# stage fails loudly if one is missing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PEERS_VENV:-$HERE/../.peers-venv}"
PYTHON="${PEERS_PYTHON:-python3}"
LATENTSCOPE_SPEC="${LATENTSCOPE_SPEC:-latentscope==1.0.0}"
# what ls-ingest / import_embeddings / ls-umap / ls-cluster (hdbscan) / ls-scope import
PIPELINE_DEPS="numpy pandas pyarrow umap-learn hdbscan scipy scikit-learn matplotlib h5py lancedb pylance python-dotenv tqdm pillow"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import latentscope, umap, hdbscan, lancedb" 2>/dev/null; then
  echo "latentscope already installed in $VENV: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("latentscope"))')"
  exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet --no-deps "$LATENTSCOPE_SPEC"
SPECS="$("$VENV/bin/python" - "$PIPELINE_DEPS" <<'EOF'
import re, sys
from importlib.metadata import requires
wanted = set(sys.argv[1].split())
specs = {}
for req in requires("latentscope") or []:
    if "extra ==" in req:
        continue
    name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower()
    if name in wanted:
        specs[name] = req.split(";")[0].replace(" ", "")
for name in sorted(wanted - set(specs)):  # not declared by latentscope (e.g. pyarrow): any version
    specs[name] = name
print(" ".join(specs[n] for n in sorted(specs)))
EOF
)"
echo "installing latentscope's pipeline requirements: $SPECS psutil"
# shellcheck disable=SC2086
"$VENV/bin/pip" install --quiet $SPECS psutil
"$VENV/bin/python" -c "
import importlib.metadata as m
print('installed:', ', '.join(f'{p} {m.version(p)}' for p in ('latentscope', 'umap-learn', 'hdbscan', 'lancedb', 'pandas', 'numpy')))
import latentscope.scripts.ingest, latentscope.scripts.embed, latentscope.scripts.umapper
import latentscope.scripts.cluster, latentscope.scripts.scope, latentscope.util.embedding_store"
