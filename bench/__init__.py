"""`make bench`: bounded benchmarks of every service, medians over repeated runs, JSON and PNG plots."""
