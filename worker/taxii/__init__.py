"""TAXII 2.1 under ``/api/taxii2/``: the read endpoints (``endpoints``), request parsing with
content negotiation, filters and the stateless cursor (``params``), and the slicing of a
precomputed collection into pages (``index``). The facts the build shares are in
``worker.contract.taxii_common`` and ``worker.contract.taxii_epochs``."""
