"""The policy templates Haven ships with, written in our own words, each citing its sources.

A school starts a policy from one of these and edits the draft before approving it. Bodies are
Markdown with placeholders that the policies pages fill in with ``str.replace``:

- ``{school_name}``: the school's name from the settings;
- ``{review_date}``: the version's review date;
- ``{stance}``: (mobile phone policy only) the paragraph from `STANCE_TEXT` for the chosen stance.

The bodies contain no other braces, and `STANCE_TEXT` contains no placeholders.

Sources: NAHT, "Social media, TikTok and mobile phones in schools: an essential guide" (the policy's
place in the safeguarding portfolio, its purpose and procedures, the "Staff, should" list, parents,
carers and pupils, the standard for incidents and the sequential response, POSH and TikTok);
DfE, "Mobile phones in schools" (February 2024); DfE, "Keeping children safe in education";
DfE, "Searching, screening and confiscation" (2022); UKCIS, "Sharing nudes and semi-nudes: advice
for education settings working with children and young people".
"""

from dataclasses import dataclass

NAHT_GUIDE = (
    'NAHT, "Social media, TikTok and mobile phones in schools: an essential guide" '
    "(reference/naht-social-media-guide.txt)"
)
DFE_PHONES = (
    'Department for Education, "Mobile phones in schools: guidance for schools on prohibiting '
    'the use of mobile phones throughout the school day" (February 2024)'
)
DFE_KCSIE = 'Department for Education, "Keeping children safe in education" (current edition)'
DFE_SEARCHING = (
    'Department for Education, "Searching, screening and confiscation: guidance for schools" (2022)'
)
UKCIS_NUDES = (
    'UK Council for Internet Safety, "Sharing nudes and semi-nudes: advice for education settings '
    'working with children and young people" (updated 2024)'
)


@dataclass(frozen=True)
class ShippedPolicy:
    key: str  # "social-media", "mobile-phones"
    title: str
    kind: str  # PolicyKind value: "social_media" | "mobile_phone"
    audience: str  # Audience value; "staff" so that staff are asked to acknowledge it
    phone_stance: str | None  # PhoneStance value for the phone policy, else None
    body: str  # Markdown, with {school_name}, {review_date} and (phones) {stance}
    source: str


SOCIAL_MEDIA_BODY = """\
# {school_name}: social media policy

## 1. Purpose

This policy exists to keep every member of the {school_name} community safe and well when they
use social media, messaging apps and mobile devices. It applies to what happens on the school
site and equally to what happens away from it, in the evenings, at weekends and in the holidays,
whenever that activity touches pupils, staff or the school.

It sets out what we expect of each group, the line that no one may cross, how to raise a concern,
how the school responds when something goes wrong, and how the policy itself is kept under review.

## 2. Scope

The policy covers:

- **staff**, whether teaching or support, permanent, temporary or supply;
- **pupils**, of every year group;
- **parents and carers**, who are members of our community and are covered by it as well;
- **volunteers, governors and visitors** who work with our pupils or act on the school's behalf.

It applies to every platform (including, but not only, TikTok, Instagram, Snapchat, WhatsApp,
Facebook, X and YouTube), to public posts and to private or group messages alike.

## 3. Roles and responsibilities

- The **Designated Safeguarding Lead (DSL)** and the **senior leadership team (SLT)** own this
  policy. It forms part of the school's set of safeguarding policies and is read alongside the
  child protection policy, the staff code of conduct, the behaviour policy and the mobile phone
  policy.
- The SLT approves each version and makes sure it is put into practice.
- The DSL (or a deputy) receives concerns, decides what happens next and keeps the record.
- Every member of staff reads the policy, confirms in Haven that they have done so, and follows
  it.
- Governors check that the policy is in place, is followed and is reviewed on time.

## 4. Expected conduct: staff

Staff at {school_name} are expected to:

1. read this policy, understand it, and ask the DSL about anything that is unclear;
2. lock or sign out of computers, tablets and phones whenever they step away from them;
3. protect their phone and other devices with a PIN, password or biometric lock, so that a lost
   or stolen device cannot be used;
4. know how the privacy and security controls of the apps they use work, and check them
   regularly (the UK Safer Internet Centre publishes advice on protecting a professional
   reputation);
5. remember that content posted by other people, such as a photo or video they are tagged in, can
   damage their standing as much as anything they post themselves;
6. think about how their own online behaviour looks: conduct outside work can still breach the
   staff code of conduct;
7. talk to family, friends and colleagues about privacy settings, since their accounts can expose
   ours;
8. decline or ignore friend and follow requests from current or former pupils;
9. never share a personal phone number, email address or social media account with pupils or
   their families;
10. ask for a school phone when leading a trip or visit instead of using their own;
11. use their school email account only for school work, and a personal account only for their
    private life.

Staff do not contact pupils through personal accounts or apps. Any contact with pupils online goes
through systems the school provides and can see.

## 5. Expected conduct: pupils

Pupils are taught, through the curriculum and in assemblies and tutor time, how to use social
media and phones safely and respectfully, where the limits lie, and what happens when someone goes
past them. Teaching is matched to age and revisited each year.

Pupils are expected to follow this policy, the behaviour policy and the mobile phone policy. When
a pupil breaks them, the behaviour policy applies, and staff who are worried about how a pupil is
using social media, or about what is happening to them online, tell the DSL.

## 6. Expected conduct: parents and carers

Parents and carers are part of the school community and are covered by this policy. We ask them
to:

- read this policy and the mobile phone policy, and support their children to keep to them;
- raise any worry about the school, a member of staff or another child directly with the school
  (see section 8), not by posting about it, starting an online petition or commenting in group
  chats;
- not post photographs or videos of other people's children taken at school events without the
  permission of those children's parents;
- talk with their children about what they do online; the Think You Know website (CEOP) offers
  material for families.

The school shares what it knows about phones and social media with parents and carers through its
website and newsletters.

## 7. The standard we expect

Nobody in our community, whether staff, pupil, parent, carer or volunteer, may post, send, share,
repost or like material that threatens, hurts, humiliates or abuses another person. Anything that
falls below this standard is an incident under this policy and is dealt with as section 9 sets
out, whoever is responsible and whichever platform it is on.

## 8. Raising a concern

- **Staff** report any concern straight away on the *Report a concern* page in Haven. It takes
  less than a minute, and the DSL is told at once when the concern meets the escalation criteria.
  If a child is at immediate risk, staff also speak to the DSL in person without delay.
- **Pupils** can tell any adult in school they trust; that adult then reports it in Haven.
- **Parents and carers** contact the school office or the DSL by phone, email or letter. A
  complaint about a member of staff follows the school's complaints procedure.
- A concern about the conduct of a member of staff goes to the headteacher (or, if it is about the
  headteacher, to the chair of governors), who consults the Local Authority Designated Officer
  (LADO).

Concerns, discussions, decisions and the reasons for each decision are written down, including a
decision to take no further action.

## 9. Handling incidents

**Where a member of staff may have committed a criminal offence** using a personal phone or other
device, the school contacts the police and informs the LADO. This always happens; the school does
not investigate the matter itself first.

**Images of children.** If content may include nude or semi-nude images of anyone under 18, staff
never view more than they must, and never copy, screenshot, print, forward, store or save it, even
as evidence. They describe what they were told or saw and pass it straight to the DSL, who follows
the UKCIS advice on sharing nudes and semi-nudes.

For any other harmful or malicious online activity, the school works through these steps in
order, recording each one in the incident's record in Haven:

1. **Report and get support.** Tell the DSL or a senior leader and report it in Haven; no one
   should handle it alone.
2. **Keep evidence.** Capture screenshots of the content and the page or profile it sits on, and
   note the date and time each was taken.
3. **Pupils and staff responsible.** Where the person responsible is a pupil or a member of staff,
   use mediation, the behaviour policy or the staff disciplinary procedure, as fits.
4. **Other adults responsible.** Where a parent, carer or other adult is responsible, a senior
   leader invites them to a meeting to discuss it.
5. **Ask for removal.** Where the author is known, explain to them why the content is not
   acceptable and ask them to take it down.
6. **If they refuse.** Report the content to the platform using its own reporting tools, or take
   advice from the legal team of the local authority or trust. The UK Safer Internet Centre can
   also advise.
7. **Consider the police.** Online harassment can be a crime. Where content is sexual, sexist,
   threatening, abusive or motivated by hate, consider reporting it to the police.
8. **Use evidence with care.** Screenshots are kept securely and only for the school's record.
   Before showing them to anyone, including parents, check that doing so is lawful and speak to
   anyone else they involve.
9. **Look after the people affected.** The school has a duty of care to its staff as well as its
   pupils. Senior leaders, HR and, where wanted, union representatives offer support to any member
   of staff targeted online, and pupils are supported through the pastoral team.

**Getting content taken down.** Report harmful content to the platform first. For TikTok and other
major platforms, the quickest route to removal is the Professional Online Safety Helpline (POSH),
run by the UK Safer Internet Centre for people who work with children: telephone 0344 381 4772,
email helpline@saferinternet.org.uk. Because the Centre is one of TikTok's Community Partner
Channel partners, POSH can pass a report straight to TikTok's own safety team. It also works with
other platforms. For content on Facebook, its Bullying Prevention Hub and its guidance for
educators are further routes.

## 10. Monitoring and review

- **Reviewer:** the DSL, with the member of the SLT who leads on safeguarding, reviews this policy
  at least once a year, and sooner after a serious incident, a change in the law or new statutory
  guidance.
- **Next review due:** {review_date}.
- **Monitoring:** the DSL looks at the incidents recorded in Haven each term for patterns, and
  reports them to the SLT and governors.
- **Telling staff:** when a new version is published, Haven asks every member of staff to read and
  acknowledge it, and the SLT can see who has not yet done so. Changes are also explained at the
  next staff briefing.
- **Telling families:** the current version is published on the school website, and parents and
  carers are told when it changes.

## Sources

This policy is written in the school's own words. It draws on:

- NAHT, *Social media, TikTok and mobile phones in schools: an essential guide* (the policy's
  place among safeguarding policies, its purpose and procedures, what staff should do, parents,
  carers and pupils, the standard, and the steps for handling incidents, POSH and TikTok);
- Department for Education, *Keeping children safe in education* (recording concerns and
  decisions; allegations about staff and the LADO);
- UK Council for Internet Safety, *Sharing nudes and semi-nudes: advice for education settings
  working with children and young people* (images of children);
- UK Safer Internet Centre, Professional Online Safety Helpline (POSH).
"""


MOBILE_PHONE_BODY = """\
# {school_name}: mobile phone policy

## 1. Purpose

Phones can distract pupils from learning, expose them to bullying and harmful content, and let
pictures and videos of pupils and staff be taken and shared without consent. This policy sets out
how {school_name} limits those risks so that the school day is calm and focused and everyone in it
is safe. It works alongside the social media policy, the behaviour policy and the child protection
policy.

It applies to pupils, staff, volunteers and visitors, and to smartwatches and any other device
that can call, message, take pictures or go online.

## 2. Our stance

{stance}

## 3. Where phones are kept

- Pupils do not need a phone during the school day, though many carry one to travel safely to
  and from school.
- Whenever the stance above does not allow a phone to be used, it is switched off (not just set
  to silent), kept where the stance says, and neither seen nor heard.
- The school looks after phones handed in to it with reasonable care. A phone kept in a pupil's
  bag remains the pupil's responsibility.

## 4. Exemptions

Some pupils need their phone during the day. Exemptions are agreed individually, in writing, by
the DSL or the SENCo with the pupil and their parents or carers, and are recorded against the
pupil in Haven. They are reviewed at least once a year. Typical reasons are:

- **young carers** who need to be reachable by, or to reach, the person they care for;
- **medical needs**, such as a pupil whose phone receives readings from a glucose monitor or
  controls another medical device, as set out in their individual healthcare plan;
- **special educational needs or disabilities**, where a phone supports the pupil's learning or
  access and is part of their plan.

An exemption covers only the use that was agreed. Staff who need to know about an exemption are
told, so that a pupil is not challenged for using their phone as agreed.

## 5. Staff phones

- Staff do not use a personal phone in front of pupils, except in an emergency. Personal calls and
  messages wait until breaks and happen away from pupils, in the staffroom or offices.
- Staff never photograph or film pupils on a personal device, and never store pupils' details on
  one.
- On trips and visits the leader carries a school phone, and that is the number parents and the
  school use to make contact.
- Staff follow the social media policy whenever they use their phones, in or out of school.

## 6. Contacting pupils during the day

Parents and carers who need to reach their child during the school day call the school office,
which passes the message on. In an emergency the office fetches the pupil. Pupils who need to
contact home ask a member of staff and use a school phone. This keeps contact with home possible
without phones being out.

## 7. Confiscation and return

- A member of staff may confiscate a phone that is used, seen or heard against this policy. This
  is a disciplinary sanction the law allows schools to apply.
- The phone is switched off, labelled with the pupil's name and locked away in the school office.
  It is never left on a desk or in an unlocked drawer.
- The pupil collects it at the end of the school day. After repeated confiscations, a parent or
  carer may be asked to collect it in person.
- The school takes reasonable care of a confiscated phone. Staff who confiscate a phone lawfully
  are protected by law from liability for its loss or damage.

## 8. Searching

Pupils and their bags are searched, and the contents of a phone examined, only as the law and
the Department for Education's guidance on searching, screening and confiscation allow:

- a search is carried out by the headteacher or a member of staff they have authorised, where
  there are reasonable grounds to suspect the pupil has an item that may be searched for;
- the data on a phone is looked at only where there is good reason to do so;
- the DSL is told whenever the concern is a safeguarding one;
- every search is recorded in writing, with its reasons, and parents or carers are normally told.

Where a phone may hold nude or semi-nude images of a child, staff do not look through it: they
pass it unexamined to the DSL, who follows the UKCIS advice.

## 9. Incidents involving phones

- Filming or photographing anyone on site without their permission, or sharing such pictures or
  videos, is a serious breach of the behaviour policy. Filming a fight, or someone being
  humiliated, and passing it round is dealt with under the anti-bullying policy as well.
- Anyone who sees an image of a child that may be indecent tells the DSL straight away and does
  not copy, forward, save or show it to anyone.
- Incidents are reported in Haven and handled under the social media policy. The school asks for
  the removal of any image of a pupil or member of staff posted online without consent, using the
  steps and contacts that policy sets out, and involves the police where a crime may have been
  committed.

## 10. Monitoring and review

- **Reviewer:** the DSL, with the member of the SLT who leads on behaviour, reviews this policy at
  least once a year, or sooner if the guidance changes.
- **Next review due:** {review_date}.
- **Monitoring:** confiscations, exemptions and phone-related incidents recorded in Haven are
  reviewed each term to check the policy is working.
- **Telling staff and families:** when a new version is published, Haven asks every member of
  staff to read and acknowledge it. Pupils hear about it in tutor time and assemblies, and parents
  and carers find it on the school website and are told of changes.

## Sources

This policy is written in the school's own words. It draws on:

- Department for Education, *Mobile phones in schools: guidance for schools on prohibiting the use
  of mobile phones throughout the school day* (February 2024): the recommended stance,
  exemptions, staff use, contact with home and confiscation;
- Department for Education, *Searching, screening and confiscation: guidance for schools* (2022);
- NAHT, *Social media, TikTok and mobile phones in schools: an essential guide* (phone policies
  as a decision for each school, parents and carers in scope, a school phone on trips);
- UK Council for Internet Safety, *Sharing nudes and semi-nudes: advice for education settings
  working with children and young people* (images of children).
"""


STANCE_TEXT: dict[str, str] = {
    "prohibited_all_day": (
        "Mobile phones may not be used, seen or heard at any point in the school day, "
        "including at break, at lunchtime and between lessons; this is the approach the "
        "Department for Education recommends. Pupils who bring a phone hand it in, switched "
        "off, to their form tutor at morning registration; it is locked away and returned at "
        "the end of the day. The only exceptions are the individual exemptions in section 4."
    ),
    "prohibited_in_lessons": (
        "Pupils may not use a mobile phone in lessons, in tutor time or when moving between "
        "lessons. They may use it only at break and lunchtime, in the areas the school sets "
        "aside for it, and then in line with the social media policy. For the rest of the day "
        "the phone is switched off and kept out of sight in the pupil's bag. The only exceptions "
        "are the individual exemptions in section 4."
    ),
    "lesson_use_allowed": (
        "Pupils may use a mobile phone at break and lunchtime, in line with the social media "
        "policy, and in a lesson only when the teacher asks them to for a task, for example "
        "research, recording their own work or a quiz; it goes away as soon as the task ends. "
        "At all other times the phone is switched off and kept out of sight in the pupil's bag. "
        "Using a phone in a lesson never includes photographing or filming other people without "
        "their permission. The individual exemptions in section 4 still apply."
    ),
}


SOCIAL_MEDIA = ShippedPolicy(
    key="social-media",
    title="Social media policy",
    kind="social_media",
    audience="staff",
    phone_stance=None,
    body=SOCIAL_MEDIA_BODY,
    source=f"{NAHT_GUIDE}; {DFE_KCSIE}; {UKCIS_NUDES}",
)

MOBILE_PHONES = ShippedPolicy(
    key="mobile-phones",
    title="Mobile phone policy",
    kind="mobile_phone",
    audience="staff",
    phone_stance="prohibited_all_day",
    body=MOBILE_PHONE_BODY,
    source=f"{DFE_PHONES}; {DFE_SEARCHING}; {NAHT_GUIDE}; {UKCIS_NUDES}",
)

SHIPPED_POLICIES: list[ShippedPolicy] = [SOCIAL_MEDIA, MOBILE_PHONES]
