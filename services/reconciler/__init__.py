"""accord's reconciler: what each system says about a fact, the rules that find divergence, and findings' lifecycle.

This layer is pure (no Kafka, PostgreSQL or HTTP): `model.observe` turns canonical events into observations,
`model.MatchState` accumulates them per match key, `rules.evaluate` finds divergences and `rules.next_deadline` says
when to look again, `lifecycle` moves findings from open to resolved or escalated.
"""
