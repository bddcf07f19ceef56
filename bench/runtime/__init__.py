"""The service runtime benchmark: accord's runtime against raw, hand-written, naive and Faust loops."""
