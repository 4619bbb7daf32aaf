"""Registry service (:8001, schema ``registry``) — the system of record for people and places.

Owns: elders (identity, hukou, address, living arrangement; PII encrypted), their capability
assessments (GB/T 42195-2022), welfare categories and family caregivers; service
organisations, their stations and staff; home care beds (eligibility, lifecycle,
modifications); and registered devices with their gateway MQTT credentials.

Where things are decided:
- bed eligibility: ``services/registry/beds/eligibility.py``
- assessment level from item scores: ``services/registry/assessments/scale.py``
- who may read what: each aggregate's ``readable_statement(principal)`` in its ``service.py``
"""
