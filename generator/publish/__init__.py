"""Publish: copy a build into a bucket (a folder or S3) with its HTTP metadata, then switch the
pointer to it."""
