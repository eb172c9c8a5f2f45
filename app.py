"""Hugging Face Space entry point: serve the dashboard with settings from the environment."""

from dashboard.app import serve
from dashboard.logsetup import configure_logging

if __name__ == "__main__":
    configure_logging()  # the same log lines as `python -m dashboard`
    serve()
