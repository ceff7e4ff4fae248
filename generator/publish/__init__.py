"""Publish: copy a build into a bucket (a folder or S3) with its HTTP metadata, sign it and write
its SHA256SUMS beside it, then switch the pointer to it; verify a published build."""
