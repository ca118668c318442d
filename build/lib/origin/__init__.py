"""image-origin: a self-hosted image origin that speaks imgix's URL vocabulary."""
