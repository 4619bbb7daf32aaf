"""Quarterly callbacks (回访抽查, 000 篇七 管理监督): each quarter a community's officers call
or visit a sample of the elders who received subsidies — at least ``rate_pct`` (5 %) of them
in every community — and keep a written record of each callback.

The sample is drawn by the database from the quarter's paid decision lines: per community,
the elders ordered by ``md5(seed || elder_id)`` and the first ``ceil(n × rate / 100)`` taken.
The seed is random and stored with the sample, so nobody can know the sample in advance and
an auditor can draw it again from the same lines and get the same elders. The rate is data
(``policy.yaml``)."""
