"""The store: articles and sightings in Parquet generations, their history, the fold from
sightings to one record per indicator, and the generations kept in the bucket (``bucket``)."""
