"""Code every eldercare service shares: config, db, auth, errors, PII, money, calendar, geo,
observability, and the embedded PostgreSQL/broker used by `eldercare up` and the tests."""
