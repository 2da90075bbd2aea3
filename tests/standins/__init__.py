"""Stand-ins for the internet-only artifacts of the local test host (docker/standins/README.md).

``openai_api.py`` (shared server and OpenAI-compatible API), ``ollama.py``, ``vllm.py`` and
``llamafactory.py`` are the stand-ins; ``build.py`` packs them into the Ollama release archive and
the two images, ``image.py`` writes deterministic tars, ``mirror.py`` serves the result and
``runner.py`` runs the stand-ins on loopback for tests.
"""
