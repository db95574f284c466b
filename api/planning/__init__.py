"""Workforce planning: volume history by local bucket, the heat map, staffing, the alert baseline.

Read from the SQL interval rows (and the open interval from live counters); `buckets` cuts time,
`sums` says what to sum, `reader` queries, `staffing` computes, `baseline` feeds the alerter.
"""
