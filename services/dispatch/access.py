"""Who may call what in dispatch, by kind of act — one place, so the routers agree. Every
read is then scoped further (each aggregate's ``scope_clause`` over ``shared.scoping``)."""

from __future__ import annotations

from shared.auth import Role, require_roles

# Plans, routes and an org's dispatch settings: the org's own managers and the district.
Manager = require_roles(Role.admin, Role.org_admin)
# Following delivery (compliance, KPIs, district coverage): supervisors of orgs and regions.
# Caregivers see their own work instead; family members see nothing operational.
Supervisor = require_roles(Role.admin, Role.street, Role.community, Role.org_admin, Role.service)
