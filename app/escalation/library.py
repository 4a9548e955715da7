"""The escalation rules Haven ships (DESIGN.md section 6), from the NAHT guide, KCSIE and UKCIS."""

from app.incidents.models import Severity

DEFAULT_RULES = [
    {
        "key": "staff-criminal-offence",
        "name": "A member of staff may have committed a criminal offence",
        "condition": {
            "match": "all",
            "clauses": [
                {"field": "offender_type", "op": "is", "value": "staff"},
                {"field": "suspected_criminal_offence", "op": "is_true"},
            ],
        },
        "severity": Severity.critical,
        "required_actions": ["Contact the police.", "Inform the LADO."],
    },
    {
        "key": "lado-harm-test",
        "name": "The LADO harm test is met",
        "condition": {"match": "all", "clauses": [{"field": "lado_any_yes", "op": "is_true"}]},
        "severity": Severity.critical,
        "required_actions": ["Refer to the LADO within one working day."],
    },
    {
        "key": "indecent-imagery",
        "name": "A nude or sexual image of a child",
        "condition": {
            "match": "all",
            "clauses": [
                {"field": "content_flags", "op": "includes_any", "value": ["indecent_image"]}
            ],
        },
        "severity": Severity.critical,
        "required_actions": [
            "Do not view, copy or share the image; keep a written description only.",
            "Contact the police.",
            "Follow the UKCIS guidance on sharing nudes and semi-nudes.",
        ],
    },
    {
        "key": "harmful-content",
        "name": "Sexual, sexist, threatening, abusive or hate content",
        "condition": {
            "match": "all",
            "clauses": [
                {
                    "field": "content_flags",
                    "op": "includes_any",
                    "value": ["sexual", "sexist", "threatening", "abusive", "hate"],
                }
            ],
        },
        "severity": Severity.high,
        "required_actions": ["Consider contacting the police, and record the decision."],
    },
    {
        "key": "removal-refused",
        "name": "Removal was asked for and refused",
        "condition": {
            "match": "all",
            "clauses": [
                {"field": "removal_requested", "op": "is_true"},
                {"field": "removal_refused", "op": "is_true"},
            ],
        },
        "severity": Severity.high,
        "required_actions": [
            "Report the content to the platform.",
            "Seek legal advice from the local authority's or trust's legal team.",
            "Contact the Professional Online Safety Helpline (POSH).",
        ],
    },
    {
        "key": "pupil-involved",
        "name": "A pupil is responsible or targeted",
        "condition": {
            "match": "any",
            "clauses": [
                {"field": "offender_type", "op": "is", "value": "pupil"},
                {"field": "target_type", "op": "is", "value": "pupil"},
            ],
        },
        "severity": Severity.medium,
        "required_actions": ["DSL review."],
    },
]
