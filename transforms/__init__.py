"""The pipeline's phases, one module each, pure functions over frames and settings."""
