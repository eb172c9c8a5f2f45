"""Hugging Face Space entry point: serve the dashboard with settings from the environment."""

from dashboard.app import main

if __name__ == "__main__":
    raise SystemExit(main())
