"""The benchmark package: `python -m bench` (see bench/README.md and bench/__main__.py).

One module per section (render, cache, upload, worker, ...) over the shared helpers in
bench.common. The project is installed editable, so `origin` imports as any package does;
run from the repository root so `bench` itself is importable.
"""
