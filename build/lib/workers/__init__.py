"""image-origin's second process: storage events in, pre-rendered variants and invalidation out."""
