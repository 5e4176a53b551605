"""Deployment to AWS: templates, the ECS release script and the files AWS reads (README.md)."""
