"""The contract between the build and the worker: the build-tree layout, tiers, the format
table, indicator normal form, and the STIX/TAXII/MISP facts both sides share.
Standard library only: the worker imports it on its hot path."""
