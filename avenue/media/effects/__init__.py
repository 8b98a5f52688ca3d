"""Effects: what follows a write to GridFS, in one place (counters, facets, cache
invalidation, CDN purges)."""
