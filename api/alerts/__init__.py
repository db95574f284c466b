"""The built-in alerter: rules over the live state, one evaluating replica, paging receivers.

`rules` is the pure state machine, `observe` reads the live state for a rule, `store` keeps
alert state, the outbox and the leader lock in Redis, `notify` formats and delivers, and
`evaluator` runs the loop. docs/observability.md#built-in-alerter is the prose.
"""
