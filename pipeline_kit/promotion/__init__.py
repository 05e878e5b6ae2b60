"""Promotion: the same digest through the configured environments, each step decided and signed
on evidence verified in this process (the machine: docs/promotion.md).

- `model`: where promotions happen (`Project`), the decision record, shared facts.
- `shown`: what signed evidence shows an environment runs (its signed timeline, verified evidence);
  `states`: the schemas and peers the migrations and contracts gates see; `finding`: where VSAs are.
- `deciding`: every gate judged (`plan`) and the decision on it (`decide`): the only `Decided`.
- `arriving`: one promotion from its decision to its signed arrival (deploy, analysis);
  `rollout` and `rollout_record`: a canary or blue-green arrival, step by step.
- `deploying`: the user's deploy command; `records`: the VSAs signed (a promotion's only on a
  `Decided`), the holds and the forge's records; `remediation`: kill switches after a failure;
  `rolling_back`: the signed rollback and the root cause lifting its hold; `audit`: the ledger
  against the signed decisions; `junit`: results for CI test reports.
"""
