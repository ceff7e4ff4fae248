"""The store: articles and sightings in Parquet generations, their history, and the fold from
sightings to one record per indicator."""
