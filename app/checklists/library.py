"""The checklists Haven ships with, written in our own words; each item cites its source.

Sources: NAHT, "Social media, TikTok and mobile phones in schools: an essential guide" (the
"Staff, should" list, the TikTok advice and the proactive measures), and the UK Safer Internet
Centre's Professional Online Safety Helpline (POSH).
"""

from dataclasses import dataclass, field

from app.checklists.models import ChecklistPurpose, Recurrence

NAHT = "NAHT guide, Social media, TikTok and mobile phones in schools"


@dataclass(frozen=True)
class ShippedItem:
    text: str
    guidance: str
    source: str
    note_prompt: str | None = None
    required: bool = True


@dataclass(frozen=True)
class ShippedTemplate:
    key: str
    title: str
    description: str
    purpose: ChecklistPurpose
    source: str
    items: list[ShippedItem] = field(default_factory=list)
    recurrence: Recurrence = Recurrence.none
    assign_to_new_staff: bool = False
    policy_kind: str | None = None


STAFF_CONDUCT = ShippedTemplate(
    key="staff-conduct",
    title="My conduct on social media",
    description=(
        "Work through these once a year, and again when the social media policy changes. "
        "Each one protects you, your pupils and the school."
    ),
    purpose=ChecklistPurpose.staff,
    source=f"{NAHT}: 'Staff, should'",
    recurrence=Recurrence.yearly,
    assign_to_new_staff=True,
    policy_kind="social_media",
    items=[
        ShippedItem(
            "I have read the school's social media policy and know what it expects of me.",
            "If any part of it is unclear, ask the DSL before you tick this.",
            f"{NAHT}: 'Staff, should', understand the policy",
        ),
        ShippedItem(
            "I lock or sign out of computers and other devices whenever I step away from them.",
            "A logged-in device left in a classroom can be used to post in your name.",
            f"{NAHT}: 'Staff, should', devices logged in when unattended",
        ),
        ShippedItem(
            "My phone and other personal devices have a PIN, password or biometric lock.",
            "If a device is lost or stolen, the lock keeps pupils' and colleagues' details safe.",
            f"{NAHT}: 'Staff, should', password-protected devices",
        ),
        ShippedItem(
            "I have checked the privacy and security settings of the social media apps I use.",
            "Settings change with app updates; look again every few months. The UK Safer "
            "Internet Centre has advice on protecting your professional reputation.",
            f"{NAHT}: 'Staff, should', privacy and security settings",
            note_prompt="Which apps did you check? (optional)",
            required=True,
        ),
        ShippedItem(
            "I do not accept friend or follow requests from current or former pupils.",
            "Decline politely and, if a pupil persists, tell the DSL.",
            f"{NAHT}: 'Staff, should', friend requests from pupils",
        ),
        ShippedItem(
            "I do not give pupils or parents my personal phone number, email or social media.",
            "Use school channels for every contact with pupils and families.",
            f"{NAHT}: 'Staff, should', personal contact details",
        ),
        ShippedItem(
            "On school trips I ask for a school mobile phone instead of using my own.",
            "Ask the trip leader or the office well before the day.",
            f"{NAHT}: 'Staff, should', school phone on trips",
        ),
        ShippedItem(
            "I use my school email for school business and my personal email for private life.",
            "Never forward pupil information to a personal account.",
            f"{NAHT}: 'Staff, should', school and personal email",
        ),
        ShippedItem(
            "I know that what others post or tag me in can affect my reputation, and I act on it.",
            "Untag yourself, ask the poster to remove it, and talk to the DSL if it is about work.",
            f"{NAHT}: 'Staff, should', reputation and tagging",
        ),
        ShippedItem(
            "I have considered my own posts against the staff code of conduct.",
            "Some online behaviour outside school can still breach the code of conduct.",
            f"{NAHT}: 'Staff, should', conduct online",
        ),
        ShippedItem(
            "I have talked with close family and friends about their privacy settings.",
            "Their settings decide who can see photos and posts that include you.",
            f"{NAHT}: 'Staff, should', family and friends' settings",
        ),
    ],
)

PLATFORMS = ShippedTemplate(
    key="platforms",
    title="TikTok and other platforms: reporting harmful content",
    description=(
        "What to know before harmful content about the school, a pupil or a colleague appears "
        "online, so that you can act quickly when it does."
    ),
    purpose=ChecklistPurpose.staff,
    source=f"{NAHT}: TikTok advice; UK Safer Internet Centre, POSH",
    items=[
        ShippedItem(
            "I know to report concerning content in Haven first, before anything else.",
            "Use 'Report a concern'. The DSL decides the next steps and keeps the record.",
            f"{NAHT}: sequential steps, report and seek support",
        ),
        ShippedItem(
            "I know how to use a platform's own reporting tool (TikTok, Instagram, Facebook, X, "
            "Snapchat, YouTube).",
            "Reporting on the platform is the first route to removal; note when you reported it.",
            f"{NAHT}: TikTok advice",
        ),
        ShippedItem(
            "I know when to contact the Professional Online Safety Helpline (POSH): 0344 381 4772, "
            "helpline@saferinternet.org.uk.",
            "POSH is free for people working with children in the UK and escalates content to "
            "TikTok and other platforms directly: the shortest route to getting it taken down.",
            f"{NAHT}: TikTok advice; UK Safer Internet Centre",
        ),
        ShippedItem(
            "I record the time and date with any screenshot, and keep it private.",
            "Never share screenshots with parents or others; give them to the DSL through Haven.",
            f"{NAHT}: sequential steps, screenshots",
        ),
        ShippedItem(
            "I know never to view, copy, save or share a nude or sexual image of a child.",
            "Describe what you saw instead, and tell the DSL at once (UKCIS guidance).",
            "UKCIS, Sharing nudes and semi-nudes: advice for education settings",
        ),
    ],
)

PROACTIVE = ShippedTemplate(
    key="proactive-measures",
    title="Proactive measures for leaders",
    description=(
        "Steps the DSL and senior leaders take each year so that pupils, staff and families know "
        "the school's expectations before anything goes wrong."
    ),
    purpose=ChecklistPurpose.leadership,
    source=f"{NAHT}: proactive measures; parents and carers; pupils",
    recurrence=Recurrence.yearly,
    items=[
        ShippedItem(
            "The social media and mobile phone policies are part of the safeguarding portfolio, "
            "owned by the DSL and SLT, with a review date.",
            "The policy should say how it is monitored and reviewed, how concerns are raised and "
            "how it is put into practice.",
            f"{NAHT}: steps school leaders can take",
        ),
        ShippedItem(
            "Parents and carers have been told what the policies expect of them this year.",
            "Include phone rules and how to raise concerns; parents are in the policies' scope.",
            f"{NAHT}: parents and carers",
            note_prompt="How and when were families told?",
        ),
        ShippedItem(
            "Families have been sent guidance on TikTok and similar apps.",
            "A free parents' guide from an online safety organisation can be sent as it is or "
            "used as the starting point of the school's own letter.",
            f"{NAHT}: what proactive measures can we take",
        ),
        ShippedItem(
            "Pupils are taught safe use of social media and phones, its limits and the "
            "consequences of going beyond them.",
            "Think You Know offers resources for each age; choose what fits the school.",
            f"{NAHT}: pupils; parents and carers (Think You Know)",
            note_prompt="Where in the curriculum?",
        ),
        ShippedItem(
            "All staff have been given the conduct checklist and the DSL has seen the results.",
            "Haven's checklist oversight page shows who has finished.",
            f"{NAHT}: 'Staff, should'",
        ),
        ShippedItem(
            "Staff know how to contact POSH and the school's route for reporting to platforms.",
            "Share the platforms checklist with every member of staff.",
            f"{NAHT}: TikTok advice",
        ),
    ],
)

SHIPPED_TEMPLATES = [STAFF_CONDUCT, PLATFORMS, PROACTIVE]
