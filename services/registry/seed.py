"""A small demo district for `eldercare up`: one org with a station and staff, a few elders,
their assessments, caregivers and beds. Idempotent: keyed on the demo org's credit code."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.assessments import service as assessments
from services.registry.assessments.schemas import AssessmentCreate
from services.registry.beds import service as beds
from services.registry.beds.schemas import BedCreate
from services.registry.caregivers import service as caregivers
from services.registry.caregivers.schemas import FamilyCaregiverCreate
from services.registry.elders import service as elders
from services.registry.elders.schemas import ElderCreate
from services.registry.orgs import service as orgs
from services.registry.orgs.models import Org
from services.registry.orgs.schemas import OrgCreate, StaffCreate, StationCreate
from shared import clock
from shared.auth import Principal, Role
from shared.calendar import seed_calendar
from shared.ids import credit_code_check_char
from shared.pii import PiiCipher, id_check_char

DEMO_REGION = "350212"  # 厦门市同安区
_CREDIT_BODY = "91350212MA2Y0D001"
DEMO_CREDIT_CODE = _CREDIT_BODY + credit_code_check_char(_CREDIT_BODY)

_ELDERS = [  # name, birth, seq, living arrangement, level, lat, lon
    ("陈阿婆", date(1941, 5, 3), 22, "with_family", 3, 24.7295, 118.1590),
    ("林阿公", date(1944, 9, 18), 31, "couple", 2, 24.7352, 118.1498),
    ("黄阿婆", date(1938, 1, 27), 44, "with_family", 4, 24.7211, 118.1655),
    ("苏阿公", date(1950, 11, 2), 57, "couple", 1, 24.7400, 118.1432),
]


def _id_number(birth: date, seq: int) -> str:
    body = f"{DEMO_REGION}{birth:%Y%m%d}{seq:03d}"
    return body + id_check_char(body)


async def seed_demo(session: AsyncSession, cipher: PiiCipher, today: date | None = None) -> bool:
    """Create the demo district unless it exists. Returns True when it created it."""
    today = today or clock.today()
    await seed_calendar(session, range(today.year - 1, today.year + 2))
    if await session.scalar(select(Org.id).where(Org.credit_code == DEMO_CREDIT_CODE)):
        return False
    admin = Principal(sub="seed", role=Role.admin)
    org = await orgs.create(
        session=session,
        org_in=OrgCreate(
            name="同安区颐养居家养老服务中心",
            credit_code=DEMO_CREDIT_CODE,
            region=DEMO_REGION,
            medical_license="闽同卫医证字 0001",
        ),
    )
    station = await orgs.create_station(
        session=session,
        org=org,
        station_in=StationCreate(
            name="大同街道服务站", lat=24.7318, lon=118.1545, zone="urban", region=DEMO_REGION
        ),
    )
    for name, role, phone in (
        ("王护理", "caregiver", "13700000001"),
        ("李护理", "caregiver", "13700000002"),
        ("张医生", "doctor", "13700000003"),
    ):
        await orgs.create_staff(
            session=session,
            cipher=cipher,
            org=org,
            staff_in=StaffCreate(
                name=name,
                role=role,
                phone=phone,
                station_id=station.id,
                on_duty=True,
                insured_until=today + timedelta(days=365),
            ),
        )
    for name, birth, seq, arrangement, level, lat, lon in _ELDERS:
        elder = await elders.create(
            session=session,
            principal=admin,
            cipher=cipher,
            elder_in=ElderCreate(
                id_number=_id_number(birth, seq),
                name=name,
                phone="13800000000",
                hukou_region=DEMO_REGION,
                address=f"同安区大同街道示范路{seq}号",
                lat=lat,
                lon=lon,
                zone="urban",
                living_arrangement=arrangement,
            ),
        )
        await assessments.create(
            session=session,
            elder=elder,
            assessment_in=AssessmentCreate(
                level=level, assessed_on=today - timedelta(days=30), assessor="同安区第三方评估机构"
            ),
        )
        await caregivers.create(
            session=session,
            cipher=cipher,
            elder=elder,
            caregiver_in=FamilyCaregiverCreate(
                name=f"{name[0]}家属", relation="child", phone="13900000000", lives_with=True
            ),
        )
        await beds.create(
            session=session,
            principal=admin,
            today=today,
            bed_in=BedCreate(elder_id=elder.id, org_id=org.id, station_id=station.id),
        )
    return True
