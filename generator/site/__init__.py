"""The docs site: pages, API reference, charts and download links, built into the tree as
``site/`` objects or exported as plain files."""
