"""Generate the bundled sample data: support tickets for "Ledgerly", a fictional invoicing and bookkeeping SaaS.

Why a generator instead of hand-written files: the sample must exercise every input format ftlib reads (OpenAI chat
with tools, images and weights, Bedrock Claude, Vertex Gemini, CSV pairs, two preference formats, a file of broken
lines) and stay byte-identical on every run, so tests can prove data/ never drifts from this script.

Stdlib only on purpose: it must not depend on ftlib's own format code, whose job is to read these files.
Usage: python scripts/make_sample_data.py --out data
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import random
import re
import struct
import textwrap
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED = 20261122
BROKEN_KINDS = (
    "invalid_json",
    "unknown_role",
    "missing_assistant",
    "empty_assistant",
    "secret",
    "messages_not_list",
    "not_an_object",
    "assistant_first",
    "tool_without_call_id",
)

_LIST_ITEM = re.compile(r"^(- |\d+\. )")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def txt(block: str) -> str:
    """Reflow an indented source block: wrapped lines join, blank lines split paragraphs, list items stay lines."""
    out: list[str] = []
    for raw in textwrap.dedent(block).strip().splitlines():
        line = raw.strip()
        if not line:
            out.append("")
        elif out and out[-1] and not _LIST_ITEM.match(line):
            out[-1] += " " + line
        else:
            out.append(line)
    return "\n".join(out)


def fill(template: str, values: dict[str, str]) -> str:
    """Replace {known} placeholders only, so literal braces in answers can never raise."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


# --------------------------------------------------------------------------------------------- knowledge bank
@dataclass(frozen=True)
class Intent:
    """One thing customers ask about: several phrasings, one or two good answers, natural follow-ups."""

    key: str
    area: str
    asks: tuple[str, ...]
    answers: tuple[str, ...]
    follow: tuple[tuple[str, str], ...] = ()
    wrong: str | None = None  # a plausible but incorrect answer, for preference data
    variants: bool = False  # answers are interchangeable phrasings; otherwise answers[i] answers asks[i]

    def answer_for(self, rng: random.Random, ask_i: int) -> str:
        if self.variants:
            return rng.choice(self.answers)
        return self.answers[min(ask_i, len(self.answers) - 1)]


def intent(key: str, area: str, asks: list[str], answers: list[str], follow: list[tuple[str, str]] | None = None,
           wrong: str | None = None, variants: bool = False) -> Intent:
    return Intent(key, area, tuple(asks), tuple(txt(a) for a in answers),
                  tuple((q, txt(a)) for q, a in follow or ()), txt(wrong) if wrong else None, variants)


INTENTS: list[Intent] = [
    intent(
        "recurring_setup", "recurring_billing",
        ["How do I set up a recurring invoice for a client I bill {amount} every month?",
         "We have a retainer client who pays the same amount on the 1st of each month. Is there a way to automate "
         "the invoice instead of duplicating last month's every time?",
         "can ledgerly send an invoice automatically every quarter?"],
        ["""Yes. Go to Invoices → Recurring → New schedule, pick the customer and line items, then set the frequency
            (weekly, monthly, quarterly, yearly or a custom interval) and the first issue date. Turn on "Send
            automatically" and Ledgerly emails each invoice on its issue date; leave it off if you'd rather review
            a draft first. Recurring schedules are included in Growth and Scale.""",
         """You can automate it with a recurring schedule:

            1. Open Invoices → Recurring and click New schedule.
            2. Choose the customer and add the line items (you can copy them from an existing invoice).
            3. Set the frequency and the first issue date, for example monthly on the 1st.
            4. Decide what happens on each run: "Create draft" lets you review it, "Send automatically" emails it
            straight away.
            5. Optional: set an end date or a number of invoices.

            The schedule page shows the next run date, and each invoice it creates gets the next number in your
            normal sequence."""],
        [("If I change the price on the schedule, does it update invoices already sent?",
          """No. Edits to a schedule only apply to invoices created after you save the change. Invoices already
             issued keep their original amounts; if one of them needs correcting, edit it (if unpaid) or issue a
             credit note."""),
         ("Can the client's card be charged automatically too?",
          """Yes, if you use Ledgerly Payments. Open the schedule and enable "Auto-charge saved payment method".
             The first time your client pays through the client portal they're asked to save a card or a bank debit
             mandate; after that each invoice is charged on its issue date and marked paid. If a charge fails, both
             you and the client get an email and the invoice stays open."""),
         ("How do I pause it while the client is away for two months?",
          """Open Invoices → Recurring, select the schedule and choose Pause. Nothing is created while it's paused.
             When you resume, Ledgerly asks whether to skip the missed periods or create them straight away.""")],
        wrong="""Recurring invoices aren't supported, so you'll need to duplicate last month's invoice and change the
            date each time.""",
        variants=True,
    ),
    intent(
        "bank_sync_stopped", "bank_sync",
        ["My bank feed for {bank} stopped importing transactions {days} days ago. Nothing new shows up in Banking.",
         "The bank connection says 'Reconnect required'. Why does this keep happening?",
         "transactions from {bank} are missing since last week, is sync broken?"],
        ["""Bank connections have to be re-authorised with your bank every 90 days (an open banking requirement),
            and sync pauses until that happens. Go to Banking → Connections, click Reconnect next to {bank} and sign
            in to your bank. Once reconnected, Ledgerly fetches everything since the last successful sync, so there's
            no gap to fill in by hand. If the connection already shows as active, click "Refresh now"; automatic
            sync runs about every 6 hours.""",
         """The most common reasons a feed stops are:

            - The 90-day consent with your bank expired: Banking → Connections shows "Reconnect required". Click
            Reconnect and sign in to {bank}.
            - Your online banking password or security device changed, which cancels the consent. Same fix.
            - The bank itself has an outage. We post known issues at status.ledgerly.app; sync catches up on its own
            once the bank is back.
            - The account was closed or renamed at the bank; remove the old connection and add the new account.

            After reconnecting, missing transactions since the last sync are imported automatically."""],
        [("I reconnected and now I see some transactions twice.",
          """That usually happens when a CSV statement was imported for the same period as the feed. Go to
             Banking → {bank} → Transactions, filter by Source: "Imported file", select the duplicates and choose
             Delete. Reconciled transactions can't be deleted until you unreconcile them, which protects periods
             you've already closed."""),
         ("How far back can the feed go?",
          """When you first connect, Ledgerly imports the last 90 days. On the Scale plan you can request up to
             12 months from Banking → Connections → Import history. For anything older, upload a CSV or OFX statement
             exported from your bank.""")],
        wrong="""Bank sync is down for everyone at the moment. There's nothing you need to do; it will come back by
            itself.""",
        variants=True,
    ),
    intent(
        "tax_rate_change", "tax",
        ["Our VAT rate is changing from {old_rate}% to {new_rate}% next month. How do I update Ledgerly without "
         "messing up old invoices?",
         "The sales tax rate in our area goes up to {new_rate}% on the 1st. What do I need to change?"],
        ["""Create a new rate rather than editing the old one:

            1. Settings → Taxes → New tax rate, name it clearly (for example "VAT {new_rate}%" or "Sales tax
            {new_rate}%") and enter the percentage.
            2. Open the old rate and choose Archive. Archived rates stay on invoices already issued but aren't offered
            for new ones.
            3. Set the new rate as the default under Settings → Taxes → Default rate.
            4. Ledgerly then lists any recurring schedules and saved items that still use the archived rate, with a
            button to switch them.

            Invoices you've already issued keep the tax they were sent with, so your past reports don't change."""],
        [("What about invoices I issue after the change for work done before it?",
          """That depends on your local tax rules rather than on Ledgerly (often the tax point is the earlier of
             the invoice date and the date of supply), so check with your accountant. If the old rate applies, tick
             "Show archived rates" in the tax dropdown on that line and select it.""")],
        wrong="""Just edit the existing rate and type {new_rate}%. Ledgerly recalculates all your past invoices so
            everything stays consistent.""",
    ),
    intent(
        "compound_tax", "tax",
        ["We're in British Columbia and need to charge GST and PST on the same line. How do I do that?",
         "is it possible to put two taxes on one invoice line?"],
        ["""Yes. Create each tax separately in Settings → Taxes, then click New tax group, add both rates and save.
            Pick the group on a line item and Ledgerly shows each tax as its own line in the invoice totals and in
            the tax report. If one tax is charged on top of the other (a compound tax), tick "Compound" on that rate
            and it's calculated on the subtotal plus the first tax."""],
    ),
    intent(
        "api_key_rotate", "api",
        ["What's the safest way to rotate our Ledgerly API key? Our billing integration uses it and I don't want "
         "downtime.",
         "Our security policy says API keys must be rotated every 90 days. How does that work in Ledgerly?"],
        ["""Go to Settings → Developer → API keys and click "Roll key" next to the key. Ledgerly creates a
            replacement and asks how long the old key should keep working: immediately, 1 hour, 24 hours or 7 days.

            Pick an overlap long enough to deploy, put the new key in your integration's secret store, and watch the
            old key's "Last used" column; once it shows no recent calls you can revoke it early. The new key is shown
            only once, so copy it straight into your secret manager rather than into a chat or email.""",
         """Use "Roll key" in Settings → Developer → API keys. It creates the new key and keeps the old one valid
            for the overlap you choose (up to 7 days), so you can deploy without downtime and then revoke the old
            one. Only Owners and Admins can manage keys."""],
        [("Can I limit what a key can do?",
          """Yes. When you create or roll a key you can choose scopes, for example read-only access to invoices and
             customers, or full access. Give each integration its own key with the narrowest scope it needs, so you
             can revoke one without breaking the others."""),
         ("Is there a test environment for trying the new key?",
          """Every account has a test mode. Keys that start with ldg_test_ only touch test data and never send
             emails or charge cards; live keys start with ldg_live_. Switch with the "Test mode" toggle at the top of
             the Developer page.""")],
        wrong="""Just delete the old key and create a new one. There's no downtime because keys are cached for a day
            on our side.""",
        variants=True,
    ),
    intent(
        "api_key_leaked", "api",
        ["A former contractor had access to our API key. How do I revoke it and issue a new one?",
         "I think one of our API keys was committed to a public GitHub repo by mistake. What should I do?"],
        ["""Treat it as compromised and rotate it without an overlap:

            1. Settings → Developer → API keys → "Roll key" and choose "Expire old key immediately".
            2. Put the new key into your integration's secret store and redeploy.
            3. Check Settings → Security → Audit log, filtered to API activity, for calls you don't recognise.
            4. If someone outside the company had a login too, remove them in Settings → Team.

            If you find anything suspicious in the audit log, reply here and we'll help you review it."""],
        [("Will rolling the key break our webhooks?",
          """No. Webhooks are signed with a separate signing secret per endpoint, not with your API key, so they
             keep working. If the signing secret may also have been exposed, roll it under Settings → Developer →
             Webhooks → your endpoint → "Roll secret".""")],
        wrong="""Keys can't be revoked, but as long as you change your account password the old key stops working.""",
    ),
    intent(
        "api_key_lost", "api",
        ["Where can I see my API key again? I lost it.",
         "I need the API key we created last month but the Developer page only shows the first few characters."],
        ["""For security a key is only displayed once, when it's created, so it can't be shown again and our support
            team can't see it either. Create a new key (or use "Roll key" on the existing one) in Settings →
            Developer → API keys, update the places that use it, then revoke the old key."""],
        wrong="""Send us your account email and we'll look up the full key and send it to you.""",
    ),
    intent(
        "webhook_verify", "webhooks",
        ["How do I verify that a webhook really came from Ledgerly?",
         "what's the format of the Ledgerly-Signature header?"],
        ["""Every delivery carries a Ledgerly-Signature header of the form t=<unix time>,v1=<hex signature>.
            To verify it:

            1. Read the raw request body exactly as received, before any JSON parsing.
            2. Compute HMAC-SHA256 over the string "<t>.<raw body>" using the endpoint's signing secret (Settings →
            Developer → Webhooks → your endpoint).
            3. Compare your result with v1 using a constant-time comparison.
            4. Reject the request if t is more than 5 minutes old, which stops replays.

            The most common mistake is hashing re-serialised JSON instead of the raw body; whitespace differences
            make the signature fail."""],
        [("In what order do events arrive?",
          """Order isn't guaranteed: a retried delivery can arrive after a newer event. Use the event's created
             time and the object's current status (or fetch the invoice from the API) instead of relying on order,
             and make your handler idempotent using the event id, because the same event can be delivered more than
             once.""")],
    ),
    intent(
        "webhook_failing", "webhooks",
        ["Our webhook endpoint keeps getting 401s in the delivery log and Ledgerly says it will disable it.",
         "We got an email that our webhook endpoint will be disabled. What does that mean?"],
        ["""A 401 means your server rejected our request, so the fix is on the receiving side. Usually it's one of
            these:

            - The signing secret was rolled and the server still uses the old one.
            - A framework or proxy parsed the body before verification, so the signature no longer matches.
            - Your endpoint sits behind an authentication layer (basic auth, an API gateway) that doesn't know about
            our requests.

            Failed deliveries are retried with exponential backoff for up to 3 days. If every attempt fails for 3
            days, the endpoint is disabled and the account owner gets an email. Once it's fixed, re-enable the
            endpoint and use "Resend" on the failed deliveries in Settings → Developer → Webhooks → Deliveries.""",
         """It means every delivery to that endpoint has been failing. We retry each event with exponential backoff
            for up to 3 days, and if nothing gets through for 3 days we disable the endpoint so it stops piling up
            failures. Open Settings → Developer → Webhooks → your endpoint → Deliveries and look at the status codes:

            - 401 or 403: your server rejects our requests, often because the signing secret was rolled or a new
            auth layer sits in front of the endpoint.
            - 404: the URL changed, for example after a deploy.
            - Timeouts: the handler takes longer than 10 seconds to respond.

            Once it's fixed, re-enable the endpoint and use "Resend" on the failed deliveries; nothing is lost as
            long as you do it within 30 days."""],
        [("How long do we have to respond to a delivery?",
          """Return a 2xx status within 10 seconds. Anything slower counts as a failure and is retried, so do the
             heavy work asynchronously: store the event, respond 200, then process it from a queue.""")],
    ),
    intent(
        "webhook_missing", "webhooks",
        ["We didn't get the invoice.paid webhook for {inv}. Can it be resent?",
         "Our system missed a few webhook events yesterday during a deploy. Is there a way to replay them?"],
        ["""Yes. Go to Settings → Developer → Webhooks, open the endpoint and switch to the Deliveries tab. Search for
            {inv} (or filter by date and status "Failed"), open the delivery and click Resend. Deliveries are kept
            for 30 days. If there's no delivery at all, check that the endpoint is subscribed to the invoice.paid
            event; endpoints only receive the events ticked in their settings.""",
         """Yes. Open Settings → Developer → Webhooks → your endpoint → Deliveries, filter by yesterday's date and
            status "Failed", select them all and click Resend. Deliveries are kept for 30 days. Because a resent event
            can arrive after newer ones, make sure your handler checks the event id and ignores events it has
            already processed."""],
    ),
    intent(
        "plan_upgrade", "plans",
        ["If I upgrade from Starter to Growth halfway through the month, how am I charged?",
         "What happens with billing if we move up to the Scale plan today?"],
        ["""Upgrades take effect immediately. You're charged a prorated amount for the rest of the current billing
            period (the new price minus the unused part of your current plan, calculated to the day), and from
            the next renewal you pay the normal price of the new plan. Change it in Settings → Billing → Change
            plan.""",
         """Immediately, and prorated: you pay the difference for the days left in this billing period, then the
            full new price from your next renewal date. Settings → Billing → Change plan."""],
        [("And if we go back down later?",
          """Downgrades take effect at the end of the billing period you've paid for, so you keep the higher plan's
             features until then and there's no partial refund for the remaining days.""")],
        wrong="""Upgrades start at your next renewal date, so you'll keep your current plan until then and won't be
            charged anything today.""",
        variants=True,
    ),
    intent(
        "plan_downgrade", "plans",
        ["We want to downgrade from Scale to Growth. What happens to our SSO and extra users?",
         "thinking about dropping to Growth, what would we lose?"],
        ["""A downgrade takes effect at the end of your current billing period, so nothing changes until then. When
            it switches:

            - SSO and SCIM are Scale features, so they're turned off and your team signs in with email and password.
            Everyone gets a password-setup email a few days before the switch.
            - Growth includes 5 users; users beyond that stay active and are billed as extra seats at $6/month each,
            or you can remove them in Settings → Team before the switch.
            - The audit log stays readable but stops recording new events.
            - Bank connections beyond Growth's limit of 3 are paused (not deleted) until you pick which to keep.

            Schedule it in Settings → Billing → Change plan; you can cancel the pending downgrade any time before
            it happens."""],
    ),
    intent(
        "annual_billing", "plans",
        ["How do I switch to annual billing?",
         "Is there a discount if we pay yearly?"],
        ["""Annual billing costs the same as 10 months, so you get two months free. Switch in Settings → Billing →
            Billing period → Annual. The change is immediate: you're charged the annual price minus a credit for the
            unused days of your current month, and your renewal date moves to one year from today."""],
    ),
    intent(
        "refund_annual_renewal", "refunds",
        ["I forgot to cancel and got charged {annual} for another year. Can I get a refund?",
         "Our annual plan renewed on {date} but we stopped using Ledgerly months ago. Is a refund possible?"],
        ["""Annual plans can be refunded on a prorated basis if you ask within 30 days of the renewal date. If
            you're inside that window, the account owner can request it in Settings → Billing → Request
            refund, or reply from the owner's email address and we'll do it for you. We cancel the renewal and refund
            the unused months to the original payment method; it shows up in 5-10 business days.

            If you want to keep your data, export it first (Settings → Account → Data export), because the account
            becomes read-only once the refund goes through.""",
         """Yes: annual plans can be refunded on a prorated basis within 30 days of the renewal, and {date} is within
            that window. The account owner can request it in Settings → Billing → Request refund, or reply from the
            owner's email address and we'll do it for you. We cancel the renewal and refund the unused months to the
            original payment method, which takes 5-10 business days. Export your data first if you want to keep it
            (Settings → Account → Data export)."""],
        wrong="""Sorry, all payments are final and we can't offer refunds on annual plans.""",
    ),
    intent(
        "refund_monthly_cancelled", "refunds",
        ["I cancelled last week but was still charged {monthly} today. Why?",
         "We cancelled our subscription but there's a new Ledgerly charge on our card statement. Please explain."],
        ["""Monthly subscriptions renew at the start of each billing period. Please check Settings → Billing →
            History: it shows the date the cancellation was confirmed and the date of the charge.

            - If the charge is dated after the cancellation, it's our mistake and we'll refund it in full; reply
            with the date and the last four digits of the card (never the full number).
            - If the cancellation was confirmed after the period had already renewed, the charge covers the current
            month and the account stays usable until the end of it. Partial months on monthly plans aren't refunded.""",
         ],
    ),
    intent(
        "refund_client_payment", "refunds",
        ["A client paid invoice {inv} twice by card. How do I refund one of the payments?",
         "How do I give a partial refund to a customer who paid through the portal?"],
        ["""Open the invoice, go to the Payments tab, click the payment you want to return and choose Refund. You
            can refund the full amount or type a partial amount. Ledgerly sends the money back to the same card or
            bank account, creates a credit note for the refunded amount so your books stay balanced, and emails your
            customer a receipt. Card refunds reach the customer in 5-10 business days. The original processing fee
            isn't returned by the card networks, so it stays as an expense."""],
        [("The Refund button is greyed out.",
          """That happens in three cases:

             - The payment was recorded manually (for example a bank transfer you marked as paid), so Ledgerly
             didn't process it and can't send it back. Refund from your bank, then on the invoice choose More →
             Create credit note and record the refund against it.
             - The card payment is less than 24 hours old and hasn't settled yet.
             - Your role is Staff or Read-only; refunds need Admin or Owner.""")],
        wrong="""Refunds can only be issued by our support team. Send us the card number and we'll process it.""",
    ),
    intent(
        "roles_overview", "users",
        ["What's the difference between the Accountant and Staff roles?",
         "I want to give my bookkeeper access but not let them change billing or invite people. Which role?"],
        ["""Here's what each role can do:

            - Owner: everything, including billing, plan changes and closing the account. There's exactly one.
            - Admin: everything except transferring ownership and closing the account; manages users, API keys and
            integrations.
            - Accountant: full bookkeeping access (bank reconciliation, journals, reports, tax, lock dates) and can
            view invoices, but can't manage users, billing or API keys.
            - Staff: creates, edits and sends invoices, estimates and customers; no banking or reports.
            - Read-only: can view invoices and reports, can't change anything.

            For a bookkeeper, Accountant is the usual choice. Invite them in Settings → Team → Invite user.""",
         """Accountant. It gives full access to banking, reconciliation, reports and tax, but not to billing, team
            management or API keys. Invite them from Settings → Team → Invite user and pick Accountant."""],
        [("Does an invited accountant count as a paid user?",
          """The first Accountant user is free on every plan, so your external bookkeeper doesn't use a seat.
             Additional Accountant users count like any other user.""")],
        wrong="""Give them Admin. Admins can't see billing, so that's the safest option.""",
    ),
    intent(
        "remove_user", "users",
        ["How do I remove a team member who left the company?",
         "{other} doesn't work with us anymore. How do I make sure they can't log in?"],
        ["""Go to Settings → Team, click the person, then Remove from account. They're signed out everywhere
            straight away and their seat is freed from your next invoice on. Everything they created (invoices,
            notes, reconciliations) stays, attributed to them in the activity log.

            One thing to check: API keys aren't tied to users, so if they ever had access to a key, roll it in
            Settings → Developer → API keys."""],
    ),
    intent(
        "ownership_transfer", "users",
        ["I'm leaving the company. How do I transfer ownership of our Ledgerly account to {other}?",
         "The account owner left and we can't reach her. How do we take over the account?"],
        ["""The current owner can do it in Settings → Team → Transfer ownership: choose {other} (they must already be
            an Admin) and confirm with your password. {other} gets an email and has 7 days to accept. Once they
            accept, you become an Admin and they can remove you. The billing card stays the same until they change
            it in Settings → Billing.

            If an owner has left and can't be reached, an Admin can contact us and we'll transfer ownership after
            verifying the company; we'll tell you which documents we need. We can't do that part over chat.""",
         """Only the owner can transfer ownership from inside the app, so in this case we'll do it for you after
            verifying the company. Please have one of your Admins reply from their Ledgerly email address with the
            name of the person who should become owner; we'll then ask for proof that they can act for the company
            (for example a company registration extract naming them as a director). For security this can't be
            completed over chat, and we'll email the old owner's address before making the change."""],
    ),
    intent(
        "sso_setup", "sso",
        ["How do we set up SSO with {idp}?",
         "Does Ledgerly support SAML single sign-on? We use {idp}."],
        ["""Yes, SAML 2.0 single sign-on is part of the Scale plan and works with {idp}:

            1. Settings → Security → Single sign-on → Add domain, then add the TXT record shown there to your DNS to
            verify {domain}.
            2. In {idp}, create a SAML app (or use Ledgerly from its app catalogue) with the ACS URL and Entity ID
            from that same page.
            3. Upload your identity provider's metadata XML in Ledgerly.
            4. Click "Test sign-in", then turn on "Require SSO".

            People signing in for the first time are created with the Staff role (you can change the default). The
            owner keeps a password login as a break-glass fallback, so a misconfigured identity provider can't lock
            everyone out."""],
        [("Do you support SCIM?",
          """Yes, on Scale. Generate a SCIM token in Settings → Security → Provisioning and paste it, with the SCIM
             base URL shown there, into {idp}. Users you unassign there are deactivated in Ledgerly automatically and
             their seat is freed immediately."""),
         ("Can contractors with their own email addresses still log in?",
          """Yes. SSO only applies to verified domains. People with other addresses keep signing in with a password
             and two-factor authentication; you can see who uses which method in Settings → Team.""")],
        wrong="""Ledgerly doesn't support SSO, but you can share one login among your team to keep things simple.""",
    ),
    intent(
        "sso_domain_error", "sso",
        ["We turned on SSO and now a user can't log in: 'Your email domain is not verified'.",
         "After enabling Require SSO, people from our {domain} subsidiary get an error."],
        ["""That message means the person's email domain isn't one of your verified domains. It usually happens with
            a second domain (a subsidiary or an old brand) or with a personal address. Either add and verify that
            domain in Settings → Security → Single sign-on → Add domain, or exempt the user in Settings → Team →
            their name → Sign-in method → Password."""],
    ),
    intent(
        "export_for_accountant", "exports",
        ["I need to send my accountant all invoices and payments for {year}. What's the easiest export?",
         "Can I export the profit and loss report to Excel?"],
        ["""Go to Reports → Export, tick Invoices and Payments, choose the date range 1 January to 31 December {year}
            and the format (CSV or Excel), then click Export. You'll get a ZIP with one file per type; add "Include
            PDFs" if your accountant also wants the invoice documents.

            Alternatively, invite your accountant with the Accountant role (the first one is free), so they can run
            any report themselves.""",
         """Yes. Open Reports → Profit & Loss, set the period and comparison you want, then click Export and choose
            Excel. CSV and PDF are available too, and the export keeps the grouping you see on screen."""],
    ),
    intent(
        "full_export", "exports",
        ["How do I export everything before we close our account?",
         "Do you have a GDPR data export? I want a copy of all our data."],
        ["""The account owner can request a full export in Settings → Account → Data export → Request export. It
            contains every customer, invoice, payment, expense, bank transaction and journal entry as CSV files,
            plus all invoice PDFs and attached receipts, in one ZIP. We email a download link when it's ready
            (minutes for most accounts, up to an hour for large ones); the link is valid for 7 days."""],
    ),
    intent(
        "invoice_not_received", "email",
        ["My client says they never received invoice {inv}.",
         "A customer claims our invoice emails don't arrive. How can I check?"],
        ["""Open the invoice and look at its Activity tab; it shows whether the email was Delivered, Opened or
            Bounced.

            - Bounced: the address is wrong or the mailbox is full. Fix the email on the customer record and click
            Resend.
            - Delivered but not opened: it's probably in their spam or quarantine folder. Ask them to check, and to
            add invoices@ledgerly.app to their safe senders.
            - In a hurry: choose More → Copy link and send the portal link yourself; they can view and pay from it."""],
        [("They found it in spam. Can I stop that happening?",
          """Set up a custom sending domain in Settings → Email → Sending domain. Add the SPF and DKIM records shown
             there to your DNS; once they verify, invoices are sent from your own domain, which mail filters trust
             far more than a shared address. It's available on Growth and Scale.""")],
    ),
    intent(
        "invoice_numbering", "invoices",
        ["Can I change the invoice number format to include the year, like {year}-001?",
         "I deleted a draft and now I'm worried there's a gap in my invoice numbers."],
        ["""Yes: Settings → Invoices → Numbering. Set the prefix to "{year}-", the next number to 1 and the padding
            to 3 digits. Tick "Restart numbering every year" and the counter resets each January with the new year's
            prefix. You can't set the next number below one you've already issued, which keeps the sequence unique.""",
         """No gap there: drafts in Ledgerly don't take a number until they're sent, so deleting a draft never
            skips one. If you ever see a real gap, it's usually a voided invoice; voided invoices keep their number
            and show up with the "Show void" filter on the invoice list, which is what auditors expect to see."""],
    ),
    intent(
        "edit_sent_invoice", "invoices",
        ["I sent invoice {inv} with the wrong amount. Can I just edit it?",
         "How do I delete an invoice that was sent to the wrong client?"],
        ["""You can edit a sent invoice as long as no payment has been recorded against it: open it, click Edit, fix
            it, and Ledgerly asks whether to email the updated version. The activity log keeps the earlier version.

            If it's already partly paid, or falls in a period before your lock date, create a credit note for the
            difference instead (More → Create credit note). Sent invoices can't be deleted, to keep an audit
            trail, but you can void one (More → Void): it keeps its number and no longer counts in your reports.""",
         """Sent invoices can't be deleted, so the audit trail stays complete, but you can void it: open the invoice,
            choose More → Void and give a short reason. It keeps its number, shows as "Void" and no longer counts in
            your reports or reminders. Then create a new invoice for the right client. If the email already went
            out, it's worth letting the wrong recipient know they can ignore it."""],
    ),
    intent(
        "partial_payment", "payments",
        ["A customer paid {amount} of a larger invoice. How do I record that?",
         "Can I ask for a 30% deposit before starting a project?"],
        ["""Open the invoice, click Record payment, and enter the amount they actually paid. The invoice status
            changes to "Partially paid", the balance due is shown on the invoice and in the client portal, and your
            payment reminders keep running for the remaining balance only.""",
         """Yes. On the invoice or estimate choose More → Request deposit and enter a percentage (30%) or a fixed
            amount. Ledgerly creates a deposit invoice you can send right away. When you later issue the final
            invoice, the paid deposit is deducted automatically, so the customer only sees the balance."""],
    ),
    intent(
        "reminders_late_fees", "payments",
        ["How do I set up automatic payment reminders?",
         "Can Ledgerly add a late fee to overdue invoices?"],
        ["""Go to Settings → Reminders. You can schedule up to three reminders, each relative to the due date
            (for example 3 days before, on the day, and 7 days after) and edit the wording of each email. Reminders
            stop automatically once an invoice is paid. To skip reminders for a particular customer, open the
            customer and turn off "Send reminders".""",
         """Yes: Settings → Reminders → Late fees. Choose a fixed amount or a percentage, and whether it's added
            once or every month the invoice stays unpaid. The fee is added as a separate line on the invoice and
            mentioned in the reminder email. Check what your local rules allow before you turn it on."""],
    ),
    intent(
        "multi_currency", "currency",
        ["Can I invoice a client in {currency2} when my books are in {currency}?",
         "Where do the exchange rates on foreign currency invoices come from?"],
        ["""Yes, multi-currency is available on Growth and Scale. Set the currency on the customer record (or on a
            single invoice) and the invoice is issued in {currency2}. In your books Ledgerly converts it to
            {currency} at the daily reference rate for the invoice date. When the payment arrives, any difference
            from that rate is recorded as a realised exchange gain or loss, so you don't need a manual journal.""",
         """Ledgerly uses the European Central Bank's daily reference rates, taken on the invoice date. You can
            override the rate on a single invoice (Edit → Currency → Custom rate) if you agreed a rate with the
            customer. Payments are converted at the rate on the payment date, and the difference is booked as an
            exchange gain or loss."""],
    ),
    intent(
        "two_factor_lost", "security",
        ["I got a new phone and can't get my 2FA codes anymore.",
         "One of our staff lost her authenticator app and is locked out."],
        ["""On the sign-in screen choose "Use a backup code" and enter one of the backup codes you saved when you
            set up two-factor authentication. Once you're in, set up your new phone under Settings → Profile →
            Security.

            If you don't have backup codes: for a team member, an Owner or Admin can reset their 2FA in Settings →
            Team → their name → Reset 2FA. If you're the account owner, we verify your identity through the account
            email first; for security we can't reset the owner's 2FA over chat.""",
         """An Owner or Admin can fix that in a minute: Settings → Team → click her name → Reset 2FA. She'll be
            asked to set up a new authenticator the next time she signs in. Ask her to save the backup codes this
            time."""],
        wrong="""Just tell us your password and we'll turn two-factor authentication off for you.""",
    ),
    intent(
        "lock_date", "bookkeeping",
        ["My accountant finished the {year} books. How do I stop anyone from changing last year's transactions?",
         "is there a way to close a period so nothing gets edited by accident?"],
        ["""Set a lock date in Settings → Accounting → Lock date, for example 31 December {year}. After that nobody
            can add, edit or delete transactions dated on or before it. You can also set a separate, later lock
            date for everyone except Accountant users, which lets your accountant make year-end adjustments while the
            rest of the team is locked out. Only Owners, Admins and Accountants can move a lock date, and every
            change is logged."""],
    ),
    intent(
        "reconcile_multi", "bookkeeping",
        ["How do I reconcile one bank payment that covers three invoices?",
         "The bank feed matched a deposit to the wrong invoice. How do I fix it?"],
        ["""In Banking, open the transaction and click "Find & match". Tick all three invoices; the total at the
            bottom must equal the bank amount. If the customer's bank took a fee, add an adjustment line for the
            difference (category "Bank fees") and then click Reconcile.""",
         """Open the transaction in Banking (filter "Reconciled"), click Unreconcile, and it goes back to the
            unmatched list with the invoice reopened. Then use "Find & match" to pick the right invoice. If the
            period is locked, someone with the Accountant role has to move the lock date first."""],
    ),
    intent(
        "import_data", "setup",
        ["We're moving from spreadsheets. Can I import my customer list and open invoices?",
         "how do i bulk import customers?"],
        ["""Yes. Go to Settings → Import, pick what you're importing and download the CSV template. Import in this
            order: customers first, then items, then open invoices (invoices refer to customers by name or email).
            After uploading you map your columns and see a preview before anything is saved. Imported open invoices
            aren't emailed to anyone, and opening balances go in last, under Import → Opening balances."""],
    ),
    intent(
        "estimates", "invoices",
        ["Can I send a quote and turn it into an invoice when the client accepts?",
         "do estimates show up in my revenue reports?"],
        ["""Yes. Create it under Estimates → New estimate and send it. Your client can accept it online from the
            email link, and you get a notification. Then open the estimate and click "Convert to invoice" (or turn
            on "Convert automatically when accepted" in Settings → Estimates). Estimates never affect your reports
            until they become invoices.""",
         """No. Estimates don't affect revenue, receivables or any other report until they're converted into
            invoices. You can still track them under Reports → Estimates, which shows what's been sent, accepted
            and declined."""],
    ),
    intent(
        "cancel_subscription", "account",
        ["How do I cancel my subscription?",
         "I want to delete our Ledgerly account and all our data."],
        ["""The account owner can cancel in Settings → Billing → Cancel subscription. You keep full access until the
            end of the period you've paid for. After that the account stays read-only for 90 days, so you can still
            log in and export; you can reactivate any time in that window.""",
         """The owner can do it in Settings → Account → Close account. Before that, download a full export (Settings
            → Account → Data export), because after closing there's a 30-day grace period in which we can restore the
            account, and after that all your business data is permanently deleted."""],
    ),
    intent(
        "payment_methods", "payments",
        ["Which payment methods can my clients use to pay invoices online?",
         "my client's card was declined in the portal, what can I tell them?"],
        ["""With Ledgerly Payments your clients can pay by card (Visa, Mastercard, American Express), Apple Pay and
            Google Pay, and by bank debit where available (ACH in the US, SEPA in the EU, Bacs in the UK). Turn each
            method on in Settings → Payments; the client portal only offers the ones that work in your customer's
            country and currency.""",
         """The decline comes from your client's card issuer, and we only see the short reason it sends back
            (shown on the invoice's Activity tab, for example "insufficient funds" or "do not honor"). Suggest they
            call the number on the back of the card or pay with another card or a bank debit from the same portal
            link. Nothing on your side needs changing."""],
    ),
    intent(
        "aged_receivables", "reports",
        ["Is there a report of who owes us money and how overdue they are?",
         "how do i see all overdue invoices at once?"],
        ["""Reports → Aged receivables. It groups what each customer owes into current, 1-30, 31-60, 61-90 and 90+
            days overdue, and you can click any amount to see the invoices behind it. To get it every Monday, open the
            report and choose Schedule → Weekly email."""],
    ),
    intent(
        "branding", "invoices",
        ["How do I add our logo and change the colours on invoices?",
         "The logo on my invoices looks blurry."],
        ["""Settings → Branding: upload your logo, pick a brand colour and a template (Classic, Modern or Compact),
            and add footer text such as bank details. The preview on the right updates as you go, and the changes
            apply to all invoices and estimates you send from then on.""",
         """That's usually a small logo being scaled up. Upload a PNG at least 600 pixels wide, or better an SVG,
            in Settings → Branding. SVG logos stay sharp at any size in the PDF."""],
    ),
    intent(
        "api_rate_limit", "api",
        ["We're getting HTTP 429 from the API during our nightly sync.",
         "What are the API rate limits?"],
        ["""A 429 means the key went over its rate limit: 120 requests per minute per key (600 on Scale). Every
            response has X-RateLimit-Remaining, and a 429 also carries Retry-After with the seconds to wait. For a
            nightly sync:

            - Use list endpoints with page_size=100 instead of fetching objects one by one.
            - Pass updated_since so you only fetch what changed since the last run.
            - Honour Retry-After and back off exponentially.
            - Consider webhooks for changes instead of polling.""",
         """Each API key can make 120 requests per minute (600 on the Scale plan). Every response includes
            X-RateLimit-Limit and X-RateLimit-Remaining headers, and if you go over you get HTTP 429 with a
            Retry-After header telling you how many seconds to wait. List endpoints return up to 100 objects per
            page, which is usually the easiest way to stay well under the limit."""],
    ),
    intent(
        "receipts", "expenses",
        ["Can I take photos of receipts and attach them to expenses?",
         "Is there an email address I can forward receipts to?"],
        ["""Yes, a few ways: snap a photo in the Ledgerly mobile app, drag files onto an expense on the web, or
            forward emails to your account's receipt inbox (the address is in Settings → Expenses → Receipt inbox).
            Ledgerly reads the vendor, date, amount and tax from each receipt and puts it in Expenses → Inbox for you
            to check and approve."""],
    ),
]

CLOSERS: list[tuple[str, str]] = [
    ("Great, I'll try that. Thanks!", "Sounds good. If anything doesn't work as described, just reply here."),
    ("That worked, thanks!", "Great, glad it's sorted. Anything else I can help with?"),
    ("perfect, thank you", "You're welcome! Have a good rest of your day."),
    ("Thanks, that's exactly what I needed.", "Happy to help. If anything else comes up, just reply here."),
    ("Got it. Thanks for the quick answer.", "Any time. Good luck with it!"),
    ("ok great", "Glad that helps. Let us know if you run into anything else."),
]

SYSTEMS = {
    "general": txt("""You are Ledgerly's customer support assistant. Ledgerly is invoicing and bookkeeping software for
        small businesses. Give accurate, concise answers with exact menu paths. Never ask for passwords, full card
        numbers or API keys."""),
    "friendly": txt("""You are a support agent for Ledgerly (invoices, recurring billing, bank sync, taxes, reports).
        Be warm but brief. If something needs a human (identity checks, legal or tax advice), say so and explain the
        next step."""),
    "email": txt("""You answer Ledgerly support tickets by email. Greet the customer by first name, answer in plain
        language, use numbered steps for procedures, and sign off as Ledgerly Support."""),
    "policy": txt("""Ledgerly support assistant. Plans: Starter, Growth, Scale. Upgrades apply immediately and are
        prorated; downgrades apply at the end of the billing period. Refunds take 5-10 business days. Don't invent
        features; say what is possible instead."""),
    "developer": txt("""You help developers integrate with the Ledgerly API and webhooks. Be precise about headers,
        scopes and error codes. Never print or request secret keys; refer to them by prefix only."""),
    "tools": txt("""You are Ledgerly's billing support assistant with access to account tools. Look facts up with the
        tools instead of guessing. Only refund duplicate or erroneous charges; for anything else, explain the refund
        policy. Never ask for full card numbers."""),
}
DEV_AREAS = {"api", "webhooks"}

# --------------------------------------------------------------------------------------------- people and fillers
FIRST = ["Maya", "Tomás", "Priya", "Jonas", "Aisha", "Liam", "Chen", "Sofia", "Kwame", "Emma", "Hiroshi", "Fatima",
         "Lucas", "Ingrid", "Rahul", "Olivia", "Mateo", "Zainab", "Noah", "Elena", "Daniel", "Yuki", "Grace", "Omar",
         "Hannah", "Diego", "Leila", "Sam", "Marta", "Ben"]
LAST = ["Okafor", "Lindqvist", "Sharma", "Becker", "Haddad", "Murphy", "Wang", "Rossi", "Mensah", "Dubois", "Tanaka",
        "Khan", "Silva", "Novak", "Iyer", "Brennan", "García", "Adeyemi", "Fischer", "Petrova", "Walsh", "Costa"]
COMPANIES = ["Northwind Studio", "Bluebird Bakery", "Harbor Lane Consulting", "Pixel & Pine", "Greenfield Plumbing",
             "Atlas Translation", "Copperleaf Design", "Summit Physio", "Brightside Tutoring", "Oakridge Joinery",
             "Lumen Architects", "Saltwater Media", "Redwood Legal", "Fernhill Farm Supplies", "Kestrel IT",
             "Marigold Events", "Ironbridge Engineering", "Cloudberry Apps", "Tidewater Logistics", "Quill & Ink",
             "Juniper Dental", "Foxglove Florists", "Granite Peak Roofing", "Sable Photography"]
CURRENCIES = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$"}
BANKS = ["First Harbor Bank", "Meridian Credit Union", "Northgate Bank", "Alpine Savings", "Bluewater Bank",
         "Crescent Trust", "Pioneer Federal"]
IDPS = ["Okta", "Microsoft Entra ID", "Google Workspace", "JumpCloud"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
AGENTS = ["Maya", "Jordan", "Alex", "Priya", "Sam", "Noor"]
CHANNELS = ["email", "chat", "in_app"]
PRICES = {"Starter": 12, "Growth": 32, "Scale": 79}  # per month; annual billing = 10 months


@dataclass(frozen=True)
class Customer:
    id: str
    first: str
    last: str
    company: str
    currency: str
    plan: str

    @property
    def domain(self) -> str:
        return re.sub(r"[^a-z]", "", self.company.lower().replace("&", "and"))[:18] + ".com"


def make_customers(rng: random.Random, n: int) -> list[Customer]:
    ids = rng.sample(range(1000, 9999), n)
    return [Customer(f"cust-{i}", rng.choice(FIRST), rng.choice(LAST), rng.choice(COMPANIES),
                     rng.choice(list(CURRENCIES)), rng.choice(["Starter", "Growth", "Growth", "Scale"])) for i in ids]


def money(rng: random.Random, cur: str, lo: int, hi: int) -> str:
    value = rng.randrange(lo, hi) * 5
    return f"{CURRENCIES[cur]}{value:,}.00"


def fillers(rng: random.Random, c: Customer) -> dict[str, str]:
    other_cur = rng.choice([k for k in CURRENCIES if k != c.currency])
    year = str(rng.choice([2023, 2024, 2025]))
    old = rng.choice(["19", "20", "21", "7.5", "8"])
    price = PRICES[c.plan]
    sym = CURRENCIES[c.currency]
    return {
        "first": c.first, "company": c.company, "domain": c.domain, "plan": c.plan, "currency": c.currency,
        "currency2": other_cur, "year": year, "old_rate": old, "new_rate": str(round(float(old) + rng.choice([1, 2]),
                                                                                          1)).removesuffix(".0"),
        "inv": f"INV-{rng.randint(1000, 4999)}", "inv2": f"INV-{rng.randint(5000, 8999)}",
        "amount": money(rng, c.currency, 20, 900), "bank": rng.choice(BANKS), "idp": rng.choice(IDPS),
        "other": rng.choice([f for f in FIRST if f != c.first]), "days": str(rng.randint(3, 12)),
        "date": f"{rng.randint(1, 28)} {rng.choice(MONTHS)}",
        "monthly": f"{sym}{price}.00", "annual": f"{sym}{price * 10}.00",
    }


class Tickets:
    """Unique ticket ids and the content keys already used, so no accidental duplicate ever sneaks in."""

    def __init__(self, rng: random.Random) -> None:
        self._next = rng.randint(10200, 10900)
        self._rng = rng
        self.seen: set[str] = set()

    def ticket(self) -> str:
        self._next += self._rng.randint(1, 29)
        return f"LDG-{self._next}"

    def claim(self, content: Any) -> bool:
        key = json.dumps(content, sort_keys=True, ensure_ascii=False)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


# --------------------------------------------------------------------------------------------- conversation model
@dataclass
class Conv:
    """A plain conversation (system + alternating user/assistant text) before it is written in any format."""

    system: str | None
    turns: list[tuple[str, str]]
    customer: Customer
    channel: str
    topic: str
    extra: dict[str, Any] = field(default_factory=dict)

    def content(self) -> list[Any]:
        return [self.system, self.turns]


def wrap_user(rng: random.Random, text: str, c: Customer, channel: str, first_turn: bool) -> str:
    """Dress a question the way it arrives on each channel: emails get greetings and signatures, chats don't."""
    if channel == "email" and first_turn:
        hello = rng.choice(["Hi Ledgerly team,", "Hello,", "Hi there,", "Good morning,", "Hi support,"])
        sign = rng.choice([f"Thanks,\n{c.first}", f"Best,\n{c.first} {c.last}\n{c.company}", f"Cheers, {c.first}",
                           f"Kind regards,\n{c.first} {c.last}"])
        return f"{hello}\n\n{text}\n\n{sign}"
    if channel == "chat":
        prefix = rng.choice(["", "", "hi! ", "Hey, ", "quick question: "])
        if prefix.endswith((", ", ": ")) or rng.random() < 0.3:
            first_word = text.split(" ", 1)[0]
            if first_word not in {"I", "I'm", "I've", "I'd"} and first_word[1:].islower():
                text = text[0].lower() + text[1:]
        return prefix + text
    return text


def wrap_answer(rng: random.Random, text: str, c: Customer, channel: str, first_turn: bool) -> str:
    if channel == "email" and first_turn:
        hello = rng.choice([f"Hi {c.first},", f"Hello {c.first},", f"Hi {c.first}, thanks for getting in touch."])
        sign = rng.choice(["Best regards,\nLedgerly Support", f"Thanks,\n{rng.choice(AGENTS)} at Ledgerly Support",
                           "Kind regards,\nThe Ledgerly Support team"])
        return f"{hello}\n\n{text}\n\n{sign}"
    if channel == "chat" and first_turn:
        return rng.choice(["", "", "Sure! ", "Happy to help. ", "Good question. "]) + text
    return text


def pick_system(rng: random.Random, it: Intent, channel: str) -> str | None:
    if rng.random() < 0.15:
        return None
    if channel == "email" and rng.random() < 0.6:
        return SYSTEMS["email"]
    if it.area in DEV_AREAS and rng.random() < 0.6:
        return SYSTEMS["developer"]
    if it.area in {"plans", "refunds"} and rng.random() < 0.5:
        return SYSTEMS["policy"]
    return SYSTEMS[rng.choice(["general", "general", "friendly"])]


def build_conv(rng: random.Random, it: Intent, c: Customer, user_turns: int, channel: str | None = None) -> Conv:
    """First question and answer, then the intent's own follow-ups, another topic, or a thank-you."""
    channel = channel or rng.choice(CHANNELS)
    vals = fillers(rng, c)
    ask_i = rng.randrange(len(it.asks))
    ans = it.answer_for(rng, ask_i)
    turns = [("user", wrap_user(rng, fill(it.asks[ask_i], vals), c, channel, True)),
             ("assistant", wrap_answer(rng, fill(ans, vals), c, channel, True))]
    follow = list(it.follow)
    rng.shuffle(follow)
    while len(turns) // 2 < user_turns:
        last = len(turns) // 2 == user_turns - 1
        if follow and not (last and rng.random() < 0.4):
            q, a = follow.pop()
        elif last:
            q, a = rng.choice(CLOSERS)
        else:
            other = rng.choice([i for i in INTENTS if i.key != it.key])
            other_i = rng.randrange(len(other.asks))
            q = rng.choice(["One more thing: ", "Also, ", "Different question: ", ""]) + other.asks[other_i]
            a = other.answer_for(rng, other_i)
        turns += [("user", fill(q, vals)), ("assistant", fill(a, vals))]
    return Conv(pick_system(rng, it, channel), turns, c, channel, it.key, {"vals": vals})


def unique_convs(rng: random.Random, tickets: Tickets, customers: list[Customer], n: int,
                 turn_weights: tuple[int, ...]) -> list[Conv]:
    """n conversations spread over all intents (cycled, so every topic appears), never repeating content."""
    out: list[Conv] = []
    order = list(INTENTS)
    rng.shuffle(order)
    while len(out) < n:
        it = order[len(out) % len(order)]
        users = rng.choices([1, 2, 3, 4], weights=turn_weights)[0]
        conv = build_conv(rng, it, rng.choice(customers), users)
        if tickets.claim(conv.content()):
            out.append(conv)
    return out


def meta(tickets: Tickets, conv: Conv) -> dict[str, Any]:
    return {"metadata": {"ticket_id": tickets.ticket(), "channel": conv.channel, "topic": conv.topic},
            "group": conv.customer.id}


# --------------------------------------------------------------------------------------------- PNG images
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """A valid 8-bit RGB PNG, built by hand so the generator needs nothing outside the stdlib."""
    raw = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def pattern(kind: str, a: tuple[int, int, int], b: tuple[int, int, int]) -> Callable[[int, int], tuple[int, int, int]]:
    def pixel(x: int, y: int) -> tuple[int, int, int]:
        if kind == "solid":
            return a
        if kind == "stripes":
            return a if (y // 4) % 2 == 0 else b
        if kind == "checker":
            return a if (x // 4 + y // 4) % 2 == 0 else b
        if kind == "banner":
            return a if y < 5 else b
        t = x / 15
        return tuple(round(p + (q - p) * t) for p, q in zip(a, b, strict=True))  # type: ignore[return-value]
    return pixel


def data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


# --------------------------------------------------------------------------------------------- OpenAI chat lines
def openai_line(conv: Conv, tickets: Tickets, weight0: bool = False) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": conv.system}] if conv.system else []
    for i, (role, text) in enumerate(conv.turns):
        m: dict[str, Any] = {"role": role, "content": text}
        if weight0 and role == "assistant":
            m["weight"] = 0 if i == 1 else 1
        msgs.append(m)
    return {"messages": msgs, **meta(tickets, conv)}


TOOLS = [
    {"type": "function", "function": {
        "name": "lookup_invoice", "description": "Fetch one invoice of the customer's account by its number.",
        "parameters": {"type": "object", "properties": {"invoice_number": {"type": "string"}},
                       "required": ["invoice_number"]}}},
    {"type": "function", "function": {
        "name": "get_subscription", "description": "Current plan, seats, price and renewal date of an account.",
        "parameters": {"type": "object", "properties": {"account_id": {"type": "string"}},
                       "required": ["account_id"]}}},
    {"type": "function", "function": {
        "name": "list_payments", "description": "Recent subscription charges made to an account, newest first.",
        "parameters": {"type": "object", "properties": {"account_id": {"type": "string"},
                                                        "limit": {"type": "integer", "minimum": 1, "maximum": 20}},
                       "required": ["account_id"]}}},
    {"type": "function", "function": {
        "name": "create_refund", "description": "Refund a subscription charge, fully or partly. Irreversible.",
        "parameters": {"type": "object", "properties": {
            "payment_id": {"type": "string"}, "amount": {"type": "number"},
            "reason": {"type": "string", "enum": ["duplicate", "billing_error", "goodwill"]}},
            "required": ["payment_id", "amount", "reason"]}}},
    {"type": "function", "function": {
        "name": "resend_invoice", "description": "Email an invoice again, optionally to a different address.",
        "parameters": {"type": "object", "properties": {"invoice_number": {"type": "string"},
                                                        "email": {"type": "string"}},
                       "required": ["invoice_number"]}}},
    {"type": "function", "function": {
        "name": "get_bank_connection", "description": "Status of the account's bank feed connections.",
        "parameters": {"type": "object", "properties": {"account_id": {"type": "string"}},
                       "required": ["account_id"]}}},
]


class ToolChat:
    """Builds one tool-using conversation step by step with deterministic call ids."""

    def __init__(self, rng: random.Random, c: Customer) -> None:
        self.rng, self.c = rng, c
        self.account = f"acct_{rng.randint(100000, 999999)}"
        self.msgs: list[dict[str, Any]] = [{"role": "system", "content": SYSTEMS["tools"]}]

    def _id(self) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "call_" + "".join(self.rng.choice(alphabet) for _ in range(24))

    def user(self, text: str) -> ToolChat:
        self.msgs.append({"role": "user", "content": text})
        return self

    def call(self, text: str, *calls: tuple[str, dict[str, Any], dict[str, Any]]) -> ToolChat:
        """One assistant turn with one or more (parallel) calls, then each call's result."""
        ids = [self._id() for _ in calls]
        self.msgs.append({"role": "assistant", "content": text, "tool_calls": [
            {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(args)}}
            for i, (n, args, _) in zip(ids, calls, strict=True)]})
        for i, (_, _, result) in zip(ids, calls, strict=True):
            self.msgs.append({"role": "tool", "tool_call_id": i, "content": json.dumps(result)})
        return self

    def answer(self, text: str) -> ToolChat:
        self.msgs.append({"role": "assistant", "content": txt(text)})
        return self


def tool_conversations(rng: random.Random, customers: list[Customer]) -> Iterator[tuple[Customer, str, ToolChat]]:
    """Ten billing tickets that need a look at the account: lookups, a refund, a resend, parallel calls."""
    def cust() -> Customer:
        return rng.choice(customers)

    c = cust()
    t = ToolChat(rng, c)
    inv, amt = f"INV-{rng.randint(1000, 4999)}", money(rng, c.currency, 40, 400)
    yield c, "payment_status", t.user(f"My client says they paid {inv} on Monday but it still shows as open. "
                                      f"Account {t.account}.").call(
        "Let me check that invoice.",
        ("lookup_invoice", {"invoice_number": inv},
         {"number": inv, "status": "open", "total": amt, "payment": {"method": "sepa_debit", "status": "processing",
                                                                     "initiated": "Monday"}})).answer(
        f"""Your client did start the payment: {inv} has a SEPA bank debit for {amt} that is still processing.
            Bank debits take 3-5 business days to clear, and the invoice switches to Paid automatically once the
            money arrives, so there's nothing you need to do. If it fails instead, you'll get an email and the
            invoice stays open.""")

    c = cust()
    t = ToolChat(rng, c)
    inv, amt = f"INV-{rng.randint(1000, 4999)}", money(rng, c.currency, 40, 400)
    yield c, "payment_status", t.user(f"Can you check why {inv} is marked overdue? The client told me they paid by "
                                      "card.").call(
        "I'll look it up.",
        ("lookup_invoice", {"invoice_number": inv},
         {"number": inv, "status": "overdue", "total": amt, "due": "14 days ago",
          "payment": {"method": "card", "status": "failed", "decline_reason": "insufficient_funds"}})).answer(
        f"""I checked {inv}: your client did try to pay {amt} by card, but the card issuer declined it with
            "insufficient funds", so no money was taken and the invoice is still overdue. They can pay again from the
            same portal link with another card or a bank debit. Your reminders will keep going out until it's
            paid; if you'd like to nudge them now, use Send reminder on the invoice.""")

    c = cust()
    t = ToolChat(rng, c)
    price = PRICES[c.plan]
    renew = f"{rng.randint(1, 28)} {rng.choice(MONTHS)}"
    yield c, "subscription", t.user("When does our plan renew, and how much will it be?").call(
        "Checking your subscription.",
        ("get_subscription", {"account_id": t.account},
         {"plan": c.plan, "billing_period": "monthly", "seats": 1 if c.plan == "Starter" else 4,
          "price": f"${price}.00", "renews_on": renew, "status": "active"})).answer(
        f"""You're on the {c.plan} plan, billed monthly. It renews on {renew} at ${price}.00. If you'd like to
            save, switching to annual billing costs the same as 10 months (Settings → Billing → Billing period).""")

    c = cust()
    t = ToolChat(rng, c)
    yield c, "subscription", t.user("Why was I charged $44 this month? Growth is $32.").call(
        "Let me look at your subscription.",
        ("get_subscription", {"account_id": t.account},
         {"plan": "Growth", "billing_period": "monthly", "seats": 7, "included_seats": 5, "extra_seat_price": "$6.00",
          "price": "$44.00", "status": "active"})).answer(
        """Your account has 7 users and Growth includes 5, so the 2 extra seats are $6 each: $32 + $12 = $44. If
            some of those users no longer need access, remove them in Settings → Team and next month's charge drops
            accordingly (an Accountant user you invite for your bookkeeper is free).""")

    c = cust()
    t = ToolChat(rng, c)
    price = rng.choice([32, 79])
    pay1, pay2 = f"pay_{rng.randint(10**7, 10**8 - 1)}", f"pay_{rng.randint(10**7, 10**8 - 1)}"
    yield c, "refund", t.user(f"I think we were charged twice for this month. Account {t.account}.").call(
        "I'll check the recent charges.",
        ("list_payments", {"account_id": t.account, "limit": 3},
         {"payments": [{"id": pay2, "amount": price, "currency": "USD", "date": "today", "status": "succeeded"},
                       {"id": pay1, "amount": price, "currency": "USD", "date": "today", "status": "succeeded"},
                       {"id": "pay_older", "amount": price, "currency": "USD", "date": "last month",
                        "status": "succeeded"}]})).call(
        "There are two identical charges today, so I'll refund the second one.",
        ("create_refund", {"payment_id": pay2, "amount": price, "reason": "duplicate"},
         {"refund_id": f"re_{rng.randint(10**6, 10**7 - 1)}", "status": "pending", "amount": price})).answer(
        f"""You're right, sorry about that: you were charged ${price}.00 twice today. I've refunded the duplicate
            charge in full. It's on its way back to the same card and usually appears within 5-10 business days;
            you'll also get a confirmation email with the refund receipt.""")

    c = cust()
    t = ToolChat(rng, c)
    yield c, "refund", t.user("I'd like a refund for the rest of this month, we're switching to another tool.").call(
        "Let me check your plan first.",
        ("get_subscription", {"account_id": t.account},
         {"plan": "Growth", "billing_period": "monthly", "price": "$32.00", "renews_on": "in 19 days",
          "status": "active"})).answer(
        """I'm sorry to see you go. You're on a monthly Growth plan, and partial months on monthly plans aren't
            refunded, so I can't refund the remaining 19 days. What I'd suggest: cancel now in Settings → Billing →
            Cancel subscription so you aren't charged again; you keep full access until the period ends and then
            read-only access for 90 days, which gives you time to export everything (Settings → Account → Data
            export).""")

    c = cust()
    t = ToolChat(rng, c)
    inv = f"INV-{rng.randint(1000, 4999)}"
    new_mail = f"accounts@{rng.choice(COMPANIES).lower().replace(' ', '').replace('&', 'and')}.com"
    yield c, "resend", t.user(f"Please resend {inv}, my client says they never got it. They want it at "
                              f"{new_mail}.").call(
        "Checking the invoice first.",
        ("lookup_invoice", {"invoice_number": inv},
         {"number": inv, "status": "sent", "email": {"to": "old address", "delivery": "bounced",
                                                     "reason": "mailbox does not exist"}})).call(
        "The first email bounced, so I'll send it to the new address.",
        ("resend_invoice", {"invoice_number": inv, "email": new_mail}, {"status": "queued"})).answer(
        f"""Done: the original email for {inv} bounced because the mailbox no longer exists, and I've just resent
            it to {new_mail}. To make sure future invoices go to the right place, update the email address on the
            customer record (Customers → the client → Edit).""")

    c = cust()
    t = ToolChat(rng, c)
    bank = rng.choice(BANKS)
    yield c, "bank_sync", t.user(f"No transactions from {bank} for over a week. What's going on?").call(
        "Let me look at your bank connection.",
        ("get_bank_connection", {"account_id": t.account},
         {"connections": [{"bank": bank, "status": "reauth_required", "last_sync": "9 days ago",
                           "consent_expired": True}]})).answer(
        f"""Your {bank} connection needs to be re-authorised: the 90-day consent with the bank expired 9 days ago,
            and sync pauses until it's renewed. Go to Banking → Connections, click Reconnect next to {bank} and sign
            in to your bank. Ledgerly then imports everything from the last 9 days automatically.""")

    c = cust()
    t = ToolChat(rng, c)
    bank = rng.choice(BANKS)
    yield c, "bank_sync", t.user(f"{bank} transactions stopped coming in yesterday.").call(
        "Checking the connection.",
        ("get_bank_connection", {"account_id": t.account},
         {"connections": [{"bank": bank, "status": "active", "last_sync": "26 hours ago", "consent_expired": False,
                           "provider_incident": "bank API degraded"}]})).answer(
        f"""Your connection itself is fine, but {bank} is having problems with its data service right now, which
            is why the last successful sync was 26 hours ago. Nothing needs to change on your side: once the bank
            recovers, the next sync picks up every missed transaction. You can follow the incident at
            status.ledgerly.app.""")

    c = cust()
    t = ToolChat(rng, c)
    inv, amt = f"INV-{rng.randint(1000, 4999)}", money(rng, c.currency, 40, 400)
    yield c, "parallel", t.user(f"Two things: is our plan still active, and has {inv} been paid?").call(
        "I'll check both at once.",
        ("get_subscription", {"account_id": t.account},
         {"plan": c.plan, "status": "active", "renews_on": "in 12 days"}),
        ("lookup_invoice", {"invoice_number": inv},
         {"number": inv, "status": "paid", "total": amt, "payment": {"method": "card", "status": "succeeded",
                                                                     "paid": "yesterday"}})).answer(
        f"""Yes to both. Your {c.plan} plan is active and renews in 12 days, and {inv} for {amt} was paid by card
            yesterday; it's marked Paid and the receipt went to your client automatically.""")


IMAGE_TICKETS = [
    ("bank_sync", "banner", (220, 53, 69), (248, 249, 250),
     "Attached a screenshot of what I see on the Banking page. The red banner says 'Reconnect required' next to "
     "{bank}. What do I do?",
     """Thanks for the screenshot. That red "Reconnect required" banner means the 90-day consent with {bank} has
        expired, which pauses the feed. Click Reconnect in the banner (or Banking → Connections → Reconnect) and sign
        in to your bank. Ledgerly then imports every transaction since the last successful sync, so nothing is
        lost."""),
    ("branding", "checker", (30, 30, 30), (240, 240, 240),
     "Here's how the logo looks in the invoice PDF, all pixelated. The original file is a small JPG.",
     """I can see the problem: the logo is being scaled up from a small JPG, which makes it blocky in the PDF.
        Upload a PNG at least 600 pixels wide, or an SVG if you have one, in Settings → Branding. SVG logos stay sharp
        at any size."""),
    ("tax", "stripes", (13, 110, 253), (255, 255, 255),
     "Screenshot attached: the tax line on my invoice shows 0% even though I set VAT {new_rate}% as default.",
     """Thanks, that helps. The default rate only applies to new lines and invoices created after you set it; the
        line in your screenshot was added from a saved item that has its own tax setting ("No tax"). Edit the item
        under Items → the item → Tax and choose VAT {new_rate}%, then re-select the item on the invoice. Ledgerly
        also lists items without a tax rate under Settings → Taxes → Items without tax."""),
    ("webhooks", "gradient", (25, 135, 84), (255, 193, 7),
     "This is our webhook delivery log: every attempt in the last hour is 401. We didn't change anything.",
     """The log shows our requests reaching your server and being rejected with 401, so the server is refusing
        them. If nothing changed in your code, check whether the endpoint's signing secret was rolled recently (the
        endpoint page shows "Secret rolled" with a date) or whether a new auth layer or proxy was put in front of
        the endpoint. Once it's fixed, select the failed deliveries and click Resend."""),
    ("payments", "solid", (255, 128, 0), (0, 0, 0),
     "My client sent me this from the payment page. It says 'Your card was declined (do_not_honor)'.",
     """That message comes from your client's card issuer: "do not honor" is a generic decline where the bank
        doesn't give a reason, often a fraud check or a card limit. Your client should call the number on the back of
        the card, or pay with another card or a bank debit from the same link. Nothing needs changing in your
        Ledgerly settings."""),
    ("reconciliation", "checker", (111, 66, 193), (214, 51, 132),
     "Screenshot of the bank match screen: it suggests {inv} for a deposit that belongs to a different customer.",
     """The suggestion is only based on the amount and date, so it's not applied until you confirm it. In that
        screen click "Find & match" instead of "Match", search for the right customer's invoice and select it. If
        you already accepted the wrong match, open the transaction under Reconciled, click Unreconcile and match it
        again."""),
]


def image_line(rng: random.Random, tickets: Tickets, c: Customer, spec: tuple[Any, ...], i: int) -> dict[str, Any]:
    topic, kind, a, b, ask, answer = spec
    vals = fillers(rng, c)
    # A pixel that differs per example keeps every image (and so every attachment hash) distinct.
    base = pattern(kind, a, b)
    image = png(16, 16, lambda x, y: (i * 17 % 256, 0, 255) if (x, y) == (15, 15) else base(x, y))
    msgs = [{"role": "system", "content": SYSTEMS["general"]},
            {"role": "user", "content": [{"type": "text", "text": fill(ask, vals)},
                                         {"type": "image_url", "image_url": {"url": data_url(image),
                                                                             "detail": "low"}}]},
            {"role": "assistant", "content": fill(txt(answer), vals)}]
    return {"messages": msgs, "metadata": {"ticket_id": tickets.ticket(), "channel": "in_app", "topic": topic},
            "group": c.id}


def openai_chat(rng: random.Random, tickets: Tickets, customers: list[Customer]) -> list[dict[str, Any]]:
    convs = unique_convs(rng, tickets, customers, 94, (45, 30, 15, 10))
    multi = [i for i, cv in enumerate(convs) if len(cv.turns) >= 4]
    weight0 = set(rng.sample(multi, 4))
    lines = [openai_line(cv, tickets, i in weight0) for i, cv in enumerate(convs)]
    for c, topic, chat in tool_conversations(rng, customers):
        line: dict[str, Any] = {"messages": chat.msgs, "tools": TOOLS}
        if topic == "parallel":
            line["parallel_tool_calls"] = True
        lines.append({**line, "metadata": {"ticket_id": tickets.ticket(), "channel": "chat", "topic": topic},
                      "group": c.id})
    for i, spec in enumerate(IMAGE_TICKETS):
        lines.append(image_line(rng, tickets, rng.choice(customers), spec, i))
    rng.shuffle(lines)
    return lines


# --------------------------------------------------------------------------------------------- other formats
def claude_line(conv: Conv, tickets: Tickets) -> dict[str, Any]:
    line: dict[str, Any] = {"system": conv.system} if conv.system else {}
    line["messages"] = [{"role": r, "content": t} for r, t in conv.turns]
    return {**line, **meta(tickets, conv)}


def vertex_line(conv: Conv, tickets: Tickets) -> dict[str, Any]:
    line: dict[str, Any] = {}
    if conv.system:
        line["systemInstruction"] = {"role": "system", "parts": [{"text": conv.system}]}
    line["contents"] = [{"role": "user" if r == "user" else "model", "parts": [{"text": t}]} for r, t in conv.turns]
    return {**line, **meta(tickets, conv)}


def plain_duplicates(lines: list[dict[str, Any]], rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Text-only OpenAI lines without weights, the ones that can be repeated verbatim in another format."""
    plain = [ln for ln in lines if "tools" not in ln and all(
        isinstance(m["content"], str) and "weight" not in m for m in ln["messages"])]
    return rng.sample(plain, n)


def openai_to_conv_parts(line: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]]:
    msgs = line["messages"]
    system = msgs[0]["content"] if msgs[0]["role"] == "system" else None
    return system, [(m["role"], m["content"]) for m in msgs if m["role"] != "system"]


def with_dupes(rng: random.Random, lines: list[dict[str, Any]], dupes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = list(lines)
    for d in dupes:
        out.insert(rng.randrange(len(out) + 1), d)
    return out


def dupe_claude(src: dict[str, Any]) -> dict[str, Any]:
    system, turns = openai_to_conv_parts(src)
    line: dict[str, Any] = {"system": system} if system else {}
    line["messages"] = [{"role": r, "content": t} for r, t in turns]
    return {**line, "metadata": src["metadata"], "group": src["group"]}


def dupe_vertex(src: dict[str, Any]) -> dict[str, Any]:
    system, turns = openai_to_conv_parts(src)
    line: dict[str, Any] = {}
    if system:
        line["systemInstruction"] = {"role": "system", "parts": [{"text": system}]}
    line["contents"] = [{"role": "user" if r == "user" else "model", "parts": [{"text": t}]} for r, t in turns]
    return {**line, "metadata": src["metadata"], "group": src["group"]}


def pairs_rows(rng: random.Random, tickets: Tickets, customers: list[Customer], n: int) -> list[list[str]]:
    rows: list[list[str]] = []
    order = list(INTENTS)
    rng.shuffle(order)
    while len(rows) < n:
        it = order[len(rows) % len(order)]
        conv = build_conv(rng, it, rng.choice(customers), 1, channel=rng.choice(["in_app", "chat"]))
        system = conv.system if rng.random() < 0.6 else None
        if tickets.claim([system, conv.turns]):
            rows.append([conv.turns[0][1], conv.turns[1][1], system or ""])
    return rows


def degrade(rng: random.Random, it: Intent, good: str, style: str) -> str:
    """A plausible but worse answer: factually wrong, vague, rude or rambling."""
    prose = " ".join(p for p in good.split("\n") if p and not _LIST_ITEM.match(p))
    snippet = ""
    for sentence in re.split(r"(?<=[.!?:])\s+", prose):
        if sentence.endswith(":"):
            continue  # a lead-in to a list reads as nonsense on its own
        snippet = f"{snippet} {sentence}".strip()
        if len(snippet) >= 60:
            break
    if style == "wrong" and it.wrong:
        return it.wrong
    if style == "vague":
        return rng.choice(["You should be able to find that somewhere in Settings. If it doesn't work, try logging "
                           "out and back in, or clear your browser cache.",
                           "That depends on your setup. Have a look at our help center, there's an article about it.",
                           "Yes, that's possible. Let us know if you have any other questions!"])
    if style == "rude":
        return (f"This is covered in our help center. {snippet} Please read the documentation before opening a "
                "ticket next time.")
    return txt("""Thank you so much for reaching out to Ledgerly Support! We truly appreciate you being a valued
        customer, and we understand how important it is for your business to have everything working smoothly.
        Let me start by restating your question to make sure I've understood it correctly, and then I'll walk you
        through some background on how this part of Ledgerly works, as well as a few other features you might find
        useful along the way.""") + "\n\n" + good + "\n\n" + txt("""In addition, you may want to explore our other
        features such as estimates, expense tracking, multi-currency invoicing and our mobile app, all of which are
        documented in our help center. We also run monthly webinars. If you have any further questions at all,
        please don't hesitate to reach out again, we're always here for you, and we hope you have a wonderful day!""")


def preference_items(rng: random.Random, tickets: Tickets, customers: list[Customer], n: int
                     ) -> list[tuple[str | None, str, str, str]]:
    """(system, question, chosen, rejected); 'wrong' answers only where an intent has a real wrong claim."""
    with_wrong = [i for i in INTENTS if i.wrong]
    styles = ["wrong", "vague", "rude", "long"]
    items: list[tuple[str | None, str, str, str]] = []
    while len(items) < n:
        style = styles[len(items) % len(styles)]
        it = rng.choice(with_wrong if style == "wrong" else INTENTS)
        conv = build_conv(rng, it, rng.choice(customers), 1, channel="in_app")
        question, good = conv.turns[0][1], conv.turns[1][1]
        if tickets.claim(["pref", question]):
            items.append((conv.system, question, good, fill(degrade(rng, it, good, style), conv.extra["vals"])))
    return items


def dpo_lines(items: list[tuple[str | None, str, str, str]]) -> list[dict[str, Any]]:
    out = []
    for system, q, good, bad in items:
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": q}]
        out.append({"input": {"messages": msgs}, "preferred_output": [{"role": "assistant", "content": good}],
                    "non_preferred_output": [{"role": "assistant", "content": bad}]})
    return out


def trl_lines(items: list[tuple[str | None, str, str, str]]) -> list[dict[str, Any]]:
    return [{"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": good}],
             "rejected": [{"role": "assistant", "content": bad}]} for _, q, good, bad in items]


# --------------------------------------------------------------------------------------------- broken lines
def fake_key(rng: random.Random) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "sk-proj-" + "".join(rng.choice(alphabet) for _ in range(40))


def broken_lines(rng: random.Random, tickets: Tickets, customers: list[Customer]) -> list[str]:
    """One line per kind of breakage ingest must report, mixed with three good lines that must survive."""
    good = [openai_line(cv, tickets) for cv in unique_convs(rng, tickets, customers, 6, (1, 0, 0, 0))]
    sys_msg = {"role": "system", "content": SYSTEMS["general"]}

    def msgs(line: dict[str, Any]) -> list[dict[str, Any]]:
        return [dict(m) for m in line["messages"]]

    def user_assistant(line: dict[str, Any]) -> list[dict[str, Any]]:
        return [m for m in msgs(line) if m["role"] != "system"]

    ticket = {"ticket_id": "LDG-BROKEN", "channel": "email"}
    bad: dict[str, str] = {}
    full = dumps(good[3])
    bad["invalid_json"] = full[: len(full) * 3 // 5]
    ua = user_assistant(good[4])
    bad["unknown_role"] = dumps({"messages": [sys_msg, ua[0], {"role": "moderator", "content":
                                 "Ticket flagged for review: customer asked about a refund."}, ua[1]]})
    bad["missing_assistant"] = dumps({"messages": [sys_msg, {"role": "user", "content":
                                      "How do I change the due date on a recurring invoice schedule?"}]})
    bad["empty_assistant"] = dumps({"messages": [sys_msg, {"role": "user", "content":
                                    "Can I export my chart of accounts?"}, {"role": "assistant", "content": ""}]})
    bad["secret"] = dumps({"messages": [sys_msg, {"role": "user", "content":
                           "Our integration stopped working after the update. This is the key it uses: "
                           f"{fake_key(rng)} - can you check if it is still valid?"},
                          {"role": "assistant", "content": txt(
                              """Please don't share API keys in support tickets: anyone who sees this conversation
                              could use it. Roll the key now in Settings → Developer → API keys and choose "Expire
                              old key immediately", then put the new key into your integration's secret store. After
                              that, if calls still fail, send us the error code from the response (not the key) and
                              we'll investigate.""")}], "metadata": ticket})
    bad["messages_not_list"] = dumps({"messages": {"user": "How do I add a second bank account?", "assistant":
                                      "Banking → Connections → Add connection."}})
    bad["not_an_object"] = dumps(user_assistant(good[5]))
    bad["assistant_first"] = dumps({"messages": [{"role": "assistant", "content": "Hi! How can I help you today?"},
                                                 {"role": "user", "content": "Where do I find my invoices?"},
                                                 {"role": "assistant", "content": "Under Invoices in the left menu."}]})
    bad["tool_without_call_id"] = dumps({"messages": [
        {"role": "user", "content": "Is INV-2210 paid?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [{"id": "call_missing", "type": "function",
         "function": {"name": "lookup_invoice", "arguments": json.dumps({"invoice_number": "INV-2210"})}}]},
        {"role": "tool", "content": json.dumps({"status": "paid"})},
        {"role": "assistant", "content": "Yes, INV-2210 is paid."}], "tools": TOOLS[:1]})
    assert tuple(bad) == BROKEN_KINDS
    lines = [bad[k] for k in BROKEN_KINDS]
    for g in good[:3]:
        lines.insert(rng.randrange(len(lines) + 1), dumps(g))
    return lines


# --------------------------------------------------------------------------------------------- writing
def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def jsonl(lines: list[Any]) -> str:
    return "".join((ln if isinstance(ln, str) else dumps(ln)) + "\n" for ln in lines)


def csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["prompt", "completion", "system"])
    writer.writerows(rows)
    return buf.getvalue()


def build() -> dict[str, str]:
    """Every file of the sample, name -> text. Pure: the same seed always gives the same bytes."""
    rng = random.Random(SEED)
    tickets = Tickets(rng)
    customers = make_customers(rng, 70)
    openai = openai_chat(rng, tickets, customers)
    claude = [claude_line(cv, tickets) for cv in unique_convs(rng, tickets, customers, 38, (45, 30, 15, 10))]
    vertex = [vertex_line(cv, tickets) for cv in unique_convs(rng, tickets, customers, 28, (45, 30, 15, 10))]
    dupes = plain_duplicates(openai, rng, 4)
    claude = with_dupes(rng, claude, [dupe_claude(d) for d in dupes[:2]])
    vertex = with_dupes(rng, vertex, [dupe_vertex(d) for d in dupes[2:]])
    pairs = pairs_rows(rng, tickets, customers, 30)
    prefs = preference_items(rng, tickets, customers, 25)
    broken = broken_lines(rng, tickets, customers)
    files = {
        "openai_chat.jsonl": jsonl(openai),
        "claude_bedrock.jsonl": jsonl(claude),
        "vertex_gemini.jsonl": jsonl(vertex),
        "pairs.csv": csv_text(pairs),
        "preferences_openai.jsonl": jsonl(dpo_lines(prefs[:15])),
        "preferences_trl.jsonl": jsonl(trl_lines(prefs[15:])),
        "broken.jsonl": jsonl(broken),
    }
    files["README.md"] = readme(len(openai), len(claude), len(vertex), len(pairs))
    return files


def readme(n_openai: int, n_claude: int, n_vertex: int, n_pairs: int) -> str:
    return f"""# Sample data: Ledgerly support tickets

Generated by `python scripts/make_sample_data.py --out data` (deterministic, stdlib only; do not edit by hand:
`tests/test_sample_data.py` fails if these files drift from the script).

The use case: a customer-support assistant for **Ledgerly**, a fictional invoicing and bookkeeping SaaS
(invoices, recurring billing, bank sync, tax rates, exports, user roles, API keys, SSO, webhooks, plans, refunds).
Customers, companies, banks, ticket ids and invoice numbers are all invented.

Files (formats as in /work/shared/PROVIDERS.md; ftlib detects the format per line):
- `openai_chat.jsonl`: OpenAI chat SFT, {n_openai} lines. System prompts; single and multi-turn conversations
  (2-4 user turns); 10 tool-call conversations with a `tools` list (`lookup_invoice`, `get_subscription`,
  `list_payments`, `create_refund`, `resend_invoice`, `get_bank_connection`), one of them with parallel calls;
  6 user messages carrying a small inline PNG (`data:image/png;base64,...`); 4 conversations with `"weight": 0`
  on an earlier assistant turn (kept as context, not trained on).
- `claude_bedrock.jsonl`: Bedrock Claude `{{"system"?, "messages"}}`, {n_claude} lines. Strictly alternating text
  conversations, with and without a system prompt.
- `vertex_gemini.jsonl`: Vertex Gemini SFT `{{"systemInstruction"?, "contents"}}`, {n_vertex} lines. `user`/`model`
  turns with text parts.
- `pairs.csv`: header `prompt,completion,system`, {n_pairs} rows. Multi-line completions containing commas and
  quotes (RFC 4180 quoting); an empty `system` where none applies.
- `preferences_openai.jsonl`: OpenAI DPO, 15 lines. Preferred = accurate, polite, concise; non-preferred = a
  plausible answer that is wrong, vague, rude or rambling.
- `preferences_trl.jsonl`: TRL conversational preference, 10 lines of `prompt` / `chosen` / `rejected`.
- `broken.jsonl`: 12 lines, 9 each broken in exactly one way plus 3 good ones (see below).

## ftlib extension keys
Lines may carry `"metadata"` (`ticket_id`, `channel`, `topic`) and `"group"` (the customer id). Several examples share
a group, so a group-aware split keeps one customer's tickets on one side. Exporters drop both keys.

## Duplicates on purpose
Four OpenAI conversations appear again, text-identical, in another format: two in `claude_bedrock.jsonl` and two in
`vertex_gemini.jsonl`. They hash to the same example id, so ingest reports them as duplicates and keeps one.

## broken.jsonl
In file order the broken lines are: {", ".join(f"`{k}`" for k in BROKEN_KINDS)}, with three good lines mixed in.
- `invalid_json`: a truncated line.
- `unknown_role`: a `"moderator"` message.
- `missing_assistant`: only system + user.
- `empty_assistant`: assistant content `""`.
- `secret`: a user message containing a fake but realistic-looking `sk-proj-...` key; ingest must reject it.
- `messages_not_list`: `messages` is an object.
- `not_an_object`: the line is a bare JSON array.
- `assistant_first`: the conversation starts with the assistant.
- `tool_without_call_id`: a `tool` message without `tool_call_id`.

Every other line in this folder is a valid OpenAI SFT example once converted (first non-system message from the
user, last from the assistant, no empty content, no `developer` role).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data"), help="folder to write (created if missing)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    files = build()
    for name, text in files.items():
        (args.out / name).write_bytes(text.encode("utf-8"))
    print(f"wrote {len(files)} files to {args.out}")


if __name__ == "__main__":
    main()
