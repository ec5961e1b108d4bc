"""tuspyserver's router on FastAPI, as its README sets it up: the Python peer of the benchmark.

bench/servers.py runs it with the peer venv's uvicorn (httptools, uvloop), one process:
``BENCH_DATA_DIR=... uvicorn tuspy_app:app --app-dir bench/peers``.
"""

import os

from fastapi import FastAPI
from tuspyserver import create_tus_router

app = FastAPI()
app.include_router(
    create_tus_router(prefix="files", files_dir=os.environ["BENCH_DATA_DIR"], max_size=16 << 30)
)
