"""Stand-in artifacts for the local test host (no internet there).

The test VM converges with the production deploy code; only the artifact base URL and checksums
differ. This package builds small stand-ins for the internet-only artifacts and serves them:

* ``ollama_standin.py``: stand-in ``bin/ollama`` (Python 3, stdlib) shipped in a stand-in
  ``ollama-linux-amd64.tgz`` / ``.tar.zst`` with the real layout (``bin/ollama`` + ``lib/ollama/``).
* ``server.c``: one static binary, the process inside the from-scratch stand-in images of
  ``vllm/vllm-openai`` and ``hiyouga/llamafactory`` (vLLM server, ``llamafactory-cli``, tiny sh).
* ``image.py``: deterministic docker-archive (``docker load``) and tar/tgz builder.
* ``build.py``: ``python -m tests.standins.build --out DIR`` -> artifacts + ``manifest.json``.
* ``mirror.py``: ``python -m tests.standins.mirror serve --port 8099 --dir DIR`` / ``ensure --dir DIR``.
"""
