"""Artifact security: scan model files without loading them; sign, verify, and list them."""
