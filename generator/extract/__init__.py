"""Extraction: article text (HTML or plain) to indicators with context, refanged and validated
(public suffixes, allowlists), tagged with families and actors."""
