"""What Haven ships for incidents: the response playbook and the directory of contacts.

Written in our own words from the NAHT guide "Social media, TikTok and mobile phones in schools"
(its sequential steps for malicious online activity, its TikTok advice), KCSIE and UKCIS guidance.
The school edits the directory; the playbook is a checklist template like any other.
"""

from dataclasses import dataclass, field

from app.checklists.library import NAHT, ShippedItem, ShippedTemplate
from app.checklists.models import ChecklistPurpose

PLAYBOOK_KEY = "incident-response"

PLAYBOOK = ShippedTemplate(
    key=PLAYBOOK_KEY,
    title="Responding to harmful online content",
    description="The steps for every reported incident, in order. Skip what does not apply, "
    "and record why in the chronology.",
    purpose=ChecklistPurpose.incident,
    source=f"{NAHT}: how to deal with social media incidents; TikTok advice",
    items=[
        ShippedItem(
            "Acknowledge the report; make sure whoever reported it or is targeted has support.",
            "Talk to whoever reported it, and name who supports a targeted colleague or pupil.",
            f"{NAHT}: report and seek support",
        ),
        ShippedItem(
            "Keep a record of the content: screenshots with the date and time, or a written "
            "description.",
            "Never copy, save or share a nude or sexual image of a child: describe it instead "
            "(UKCIS guidance). Keep screenshots private and in Haven only.",
            f"{NAHT}: screenshots with time and date; UKCIS",
        ),
        ShippedItem(
            "If a pupil or colleague is responsible: choose mediation or the disciplinary route.",
            "Record the choice and why as a decision.",
            f"{NAHT}: mediation or disciplinary procedures",
            required=False,
        ),
        ShippedItem(
            "If a parent, carer or other adult is responsible: invite them to meet a leader.",
            "Explain the school's policy and the effect of what was posted.",
            f"{NAHT}: meeting with a senior member of staff",
            required=False,
        ),
        ShippedItem(
            "Where the author is known, explain why the content is unacceptable and ask them to "
            "remove it.",
            "Mark 'removal requested' on the incident; mark 'removal refused' if they will not.",
            f"{NAHT}: request removal",
            required=False,
        ),
        ShippedItem(
            "Report the content to the platform with its own reporting tool, and chase it after "
            "about 48 hours if it is still up.",
            "For TikTok, contact the Professional Online Safety Helpline (POSH) straight away: it "
            "escalates to TikTok directly. See the directory for each platform's route.",
            f"{NAHT}: report to the social networking site; TikTok advice",
        ),
        ShippedItem(
            "If removal is refused or the content stays up: contact POSH, and seek advice from the "
            "local authority's or trust's legal team.",
            "The UK Safer Internet Centre can also advise. Record each contact.",
            f"{NAHT}: if the person refuses to remove the material",
            required=False,
        ),
        ShippedItem(
            "Decide whether to contact the police, and record the decision and its reasons.",
            "Consider the police for sexual, sexist, threatening, abusive or hate content. A "
            "decision not to refer needs its reasons written down too (KCSIE).",
            f"{NAHT}: online harassment may be criminal; KCSIE",
        ),
        ShippedItem(
            "If a member of staff may have committed a criminal offence with a personal device: "
            "contact the police and inform the LADO.",
            "Answer the LADO harm-test questions on the incident; any 'yes' means a referral "
            "within one working day.",
            f"{NAHT}: staff criminal offence; KCSIE, allegations against staff",
            required=False,
        ),
        ShippedItem(
            "Offer support to affected staff: senior leaders, HR and union representatives.",
            "Employers have a duty of care; no-one should feel victimised at work.",
            f"{NAHT}: duty of care to staff",
            required=False,
        ),
        ShippedItem(
            "Record the outcome, tell the people who need to know, and close the incident.",
            "Closing asks for the outcome; the chronology keeps every step.",
            "KCSIE: record concerns, decisions and reasons",
        ),
    ],
)


@dataclass(frozen=True)
class ShippedContact:
    key: str
    name: str
    kind: str
    how_to: str
    source: str
    phone: str = ""
    email: str = ""
    url: str = ""
    platforms: list[str] = field(default_factory=list)


CONTACTS = [
    ShippedContact(
        key="posh",
        name="Professional Online Safety Helpline (POSH)",
        kind="helpline",
        phone="0344 381 4772",
        email="helpline@saferinternet.org.uk",
        url="https://saferinternet.org.uk/professionals-online-safety-helpline",
        how_to="Free for anyone working with children in the UK. Advice, mediation and direct "
        "escalation to platforms; the shortest route to getting TikTok content taken down.",
        platforms=[
            "tiktok",
            "facebook",
            "instagram",
            "x",
            "youtube",
            "rate_my_teacher",
            "ask_fm",
            "tumblr",
            "snapchat",
            "whatsapp",
            "other",
        ],
        source=f"{NAHT}: TikTok advice; Professional Online Safety Helpline",
    ),
    ShippedContact(
        key="uk-safer-internet-centre",
        name="UK Safer Internet Centre",
        kind="helpline",
        url="https://saferinternet.org.uk",
        how_to="Advice for schools on online safety and professional reputation; runs POSH.",
        source=f"{NAHT}: other agencies can provide advice",
    ),
    ShippedContact(
        key="tiktok",
        name="TikTok: report a problem",
        kind="platform",
        url="https://support.tiktok.com/en/safety-hc/report-a-problem",
        how_to="Report the video or account in the app first; then contact POSH, which escalates "
        "to TikTok's team for the education community.",
        platforms=["tiktok"],
        source=f"{NAHT}: TikTok advice",
    ),
    ShippedContact(
        key="facebook-bullying-hub",
        name="Facebook Bullying Prevention Hub",
        kind="platform",
        url="https://www.facebook.com/safety/bullying",
        how_to="Guidance and reporting routes for bullying on Facebook, with a support sheet for "
        "educators.",
        platforms=["facebook", "instagram"],
        source=f"{NAHT}: Facebook Bullying Prevention Hub",
    ),
    ShippedContact(
        key="instagram",
        name="Instagram: report content",
        kind="platform",
        url="https://help.instagram.com/",
        how_to="Report the post, story or account in the app; chase after about 48 hours.",
        platforms=["instagram"],
        source=f"{NAHT}: report to the social networking site",
    ),
    ShippedContact(
        key="snapchat",
        name="Snapchat: report a safety concern",
        kind="platform",
        url="https://help.snapchat.com/",
        how_to="Report the snap, story or account in the app; chase after about 48 hours.",
        platforms=["snapchat"],
        source=f"{NAHT}: report to the social networking site",
    ),
    ShippedContact(
        key="x",
        name="X: report abusive behaviour",
        kind="platform",
        url="https://help.x.com/forms",
        how_to="Report the post or account with X's forms; chase after about 48 hours.",
        platforms=["x"],
        source=f"{NAHT}: report to the social networking site",
    ),
    ShippedContact(
        key="youtube",
        name="YouTube: report inappropriate content",
        kind="platform",
        url="https://support.google.com/youtube/answer/2802027",
        how_to="Flag the video, comment or channel; chase after about 48 hours.",
        platforms=["youtube"],
        source=f"{NAHT}: report to the social networking site",
    ),
    ShippedContact(
        key="police",
        name="Police",
        kind="police",
        phone="101 (999 in an emergency)",
        how_to="For sexual, sexist, threatening, abusive or hate content, and always when a member "
        "of staff may have committed an offence with a personal device.",
        source=f"{NAHT}: contact the police",
    ),
    ShippedContact(
        key="lado",
        name="Local authority designated officer (LADO)",
        kind="lado",
        how_to="Refer within one working day when any LADO harm-test answer is yes. Add your "
        "local authority's LADO phone number and email here.",
        source="KCSIE: allegations against staff",
    ),
    ShippedContact(
        key="report-remove",
        name="Childline and IWF Report Remove",
        kind="helpline",
        url="https://www.childline.org.uk/info-advice/bullying-abuse-safety/online-mobile-safety/"
        "remove-nude-image-shared-online/",
        how_to="Helps a young person get a nude image of themselves removed from the internet.",
        source="UKCIS, Sharing nudes and semi-nudes: advice for education settings",
    ),
]
