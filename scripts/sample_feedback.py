#!/usr/bin/env python3
"""Writes synthetic sample feedback (proto3-JSON FeedbackEvents, one per line) for the demo.

Three products, each with a handful of recurring problems phrased many ways, plus one-off remarks
(each said at most once per product) that should not become pain points. Deterministic for a given
--seed; timestamps spread over the 30 days before --now (default: the current time).

usage: sample_feedback.py [--events N] [--seed S] [--now ISO8601] [--by-source DIR] > feedback.jsonl
"""
import argparse
import datetime as dt
import json
import random

THEMES = {
    "mobile-app": [
        ["the app crashes when I upload a photo", "uploading a picture makes the app crash",
         "crash every time I attach an image", "app closes itself when I add a photo",
         "photo upload crashes the iOS app", "attaching pictures crashes the app on Android"],
        ["I never get the SMS code to log in", "two factor code by text message never arrives",
         "login verification SMS is not delivered", "no SMS with the 2FA code, cannot sign in",
         "the one-time passcode text takes forever to arrive"],
        ["the app drains my battery", "battery usage is huge since the last update",
         "phone gets hot and battery dies when the app runs in background",
         "your app eats my battery overnight"],
        ["push notifications arrive hours late", "notifications are delayed",
         "I get the alert long after the event happened", "late push notifications again"],
        ["please add a dark mode", "dark theme would be great at night",
         "any plans for dark mode?", "the white screen is too bright, need a dark theme"],
    ],
    "web-dashboard": [
        ["CSV export is missing columns", "exported csv file lacks the custom fields",
         "export to CSV drops some columns", "columns missing when exporting the report to csv"],
        ["SSO login keeps failing", "single sign-on with Okta returns an error",
         "cannot log in through SAML SSO", "our team cannot sign in with SSO since Monday"],
        ["charts take forever to load", "dashboard graphs are very slow",
         "the analytics page is slow to render charts", "loading the charts times out"],
        ["report times are in the wrong timezone", "timestamps in reports ignore my time zone",
         "the scheduled report shows UTC instead of local time"],
    ],
    "billing": [
        ["I was charged twice this month", "double charge on my card",
         "you billed me two times for the same invoice", "duplicate payment taken from my account"],
        ["cannot update my credit card", "the page to change the card details gives an error",
         "updating payment method fails", "new card is rejected when I try to save it"],
        ["refund is taking too long", "still waiting for my refund after two weeks",
         "where is my refund?", "refund promised but not received"],
        ["invoice shows the wrong VAT", "VAT number missing on the invoice",
         "tax on the invoice is calculated wrong"],
    ],
}

# Remarks that are said once: each is used at most once per product, so none recurs enough to
# become a pain point (a remark repeated many times would rightly be one).
ONE_OFFS = [
    "love the new logo", "who won the game last night", "your support agent Maria was great",
    "is there a student discount", "the font on the landing page is nice", "can I get a t-shirt",
    "thanks for the quick fix", "my cat walked across the keyboard, ignore the last ticket",
    "do you have an office in Lisbon", "congrats on the funding round",
    "what is your favourite pizza topping", "the webinar last week was really useful",
    "are you hiring backend engineers", "I moved to a new apartment yesterday",
    "my manager asked me to say hello", "the weather here is terrible today",
    "nice podcast episode with your CEO", "which conference are you attending in spring",
    "happy new year to the whole crew", "is the company dog-friendly",
    "I recommended you to a friend", "our intern thinks your mascot is cute",
    "the coffee at your booth was excellent", "sorry for the angry email last month",
    "is there a referral programme", "I found a typo in your careers page",
    "we are celebrating ten years as customers", "your newsletter made me laugh",
    "the hold music is catchy", "does anyone there speak Finnish",
    "I am writing this from a train", "our office plants finally bloomed",
    "please say thanks to the onboarding team", "can you recommend a good book on pricing",
    "the conference stickers were a hit", "I passed my driving test today",
    "how many people work at your company", "my daughter loves the colour scheme",
    "any chance of a meetup in Nairobi", "the keynote demo was impressive",
    "your status page has a nice design", "I will be on holiday next week",
    "what time zone is your support team in", "the survey was shorter than I expected",
    "great answer on the community forum yesterday",
]
PREFIXES = ["", "", "", "hi, ", "hello team, ", "urgent: ", "fyi ", "again: "]
SUFFIXES = ["", "", "", ".", "!", " please help", " - very annoying", " since yesterday",
            " for our whole team", " this is blocking us"]
SOURCES = ["SOURCE_SUPPORT", "SOURCE_SUPPORT", "SOURCE_CUSTOMER", "SOURCE_SALES"]
CHANNELS = {"SOURCE_SUPPORT": ["email", "chat"], "SOURCE_CUSTOMER": ["survey", "app_review"],
            "SOURCE_SALES": ["crm_note", "call"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--now", default=None)
    ap.add_argument("--by-source", metavar="DIR",
                    help="write DIR/feedback.support.jsonl etc. (one file per input topic)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    now = (dt.datetime.fromisoformat(args.now.replace("Z", "+00:00")) if args.now
           else dt.datetime.now(dt.timezone.utc))
    accounts = {"acct-%03d" % i: rng.choice([0, 120_000, 480_000, 2_400_000, 9_600_000])
                for i in range(250)}
    account_ids = sorted(accounts)
    products = sorted(THEMES)
    outputs = {}
    unused_remarks = {p: rng.sample(ONE_OFFS, len(ONE_OFFS)) for p in products}
    if args.by_source:
        for source in set(SOURCES):
            topic = "feedback." + source.split("_")[1].lower()
            outputs[source] = open("%s/%s.jsonl" % (args.by_source, topic), "w")
    for i in range(args.events):
        product = rng.choice(products)
        if rng.random() < 0.04 and unused_remarks[product]:
            text = unused_remarks[product].pop()
        else:
            themes = THEMES[product]
            # Earlier themes are more common, as real pain points are.
            theme = themes[min(int(rng.expovariate(0.7)), len(themes) - 1)]
            text = rng.choice(PREFIXES) + rng.choice(theme) + rng.choice(SUFFIXES)
        source = rng.choice(SOURCES)
        account = rng.choice(account_ids)
        # Recent days are busier, so trends show.
        age = dt.timedelta(seconds=int(30 * 86400 * (rng.random() ** 1.6)))
        event = {
            "eventId": "sample-%d-%06d" % (args.seed, i),
            "source": source,
            "productId": product,
            "text": text,
            "occurredAt": (now - age).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "accountId": account,
            "channel": rng.choice(CHANNELS[source]),
        }
        if accounts[account]:
            event["accountArrCents"] = str(accounts[account])
        line = json.dumps(event)
        if outputs:
            outputs[source].write(line + "\n")
        else:
            print(line)
    for f in outputs.values():
        f.close()


if __name__ == "__main__":
    main()
