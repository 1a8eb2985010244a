"""``python -m bench``: throughput, latency, event fan-out, floors and resources of the
whole system, measured on one machine with the dev stack's durable settings.

Every figure is taken over several runs and reported as median and spread (min-max),
printed as a table beside its target and written as JSON. It is a measurement, not a
test: it exits 0 whether or not a target is met.
"""
