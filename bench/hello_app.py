"""Flask's hello world: the ceiling the real app's pages are compared with (bench/http_throughput.py)."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"
