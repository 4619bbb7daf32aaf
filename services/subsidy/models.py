"""Every subsidy table, for Alembic."""

from services.subsidy.applications.models import Application
from services.subsidy.benefits.models import Benefit
from services.subsidy.callbacks.models import CallbackItem, CallbackSample
from services.subsidy.fraud.models import FraudFlag
from services.subsidy.ledger.models import Entry, LedgerPeriod, Posting
from services.subsidy.policies.models import PolicyDocument, PolicyVersion
from services.subsidy.rewards.models import Reward
from services.subsidy.runs.models import CurrentDecision, Decision, DecisionLine, Run
from services.subsidy.settlements.models import Settlement
from services.subsidy.vouchers.models import Redemption, Voucher, VoucherOrg

__all__ = [
    "Application",
    "Benefit",
    "CallbackItem",
    "CallbackSample",
    "CurrentDecision",
    "Decision",
    "DecisionLine",
    "Entry",
    "FraudFlag",
    "LedgerPeriod",
    "PolicyDocument",
    "PolicyVersion",
    "Posting",
    "Redemption",
    "Reward",
    "Run",
    "Settlement",
    "Voucher",
    "VoucherOrg",
]
