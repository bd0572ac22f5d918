#!/usr/bin/python3
"""Synthetic FeedbackEvents for bench/e2e.sh: short, realistic feedback (~200 bytes of text) over
many products, each product with its own mix of recurring problems (Zipfian: a few big pain
points, a long tail), each problem phrased several ways, padded with the kind of context people
write around a complaint, plus ~5% one-off remarks that should not become pain points. So the
clustering does the work it does in production: paraphrases to join, noise to hold back.

  gen_events.py --events 1000000 --products 100 --out-dir DIR
      writes DIR/feedback.support.jsonl, DIR/feedback.sales.jsonl, DIR/feedback.customer.jsonl
      (proto3 JSON, one event per line, the file name is the input topic) and prints the counts.

  gen_events.py --workload distinct ...
      one pain point per 3 events: each problem is 3 consecutive events with the same text of
      made-up words no other problem uses, problems dealt round-robin to the products, so
      --events 3N gives a store of ~N pain points whatever the product count (bench/api_load.sh
      --pain-points: what the read API costs as the pain points grow).

  gen_events.py --workload banking77 ...
      the same files with the shape of real support queries: the 13,083 short texts of
      ../shared/data/banking77 (77 intents; --banking77-dir to point elsewhere), cycled in a fixed
      shuffled order, each event on a random product, so every product sees every intent and
      ends up with hundreds of pain points (issue 20). The dataset is read in place, never copied.

bench/latency.py imports EventMaker to produce the same kind of text at a fixed rate.
"""
import argparse
import csv
import datetime as dt
import json
import os
import random
import sys

# Each theme: paraphrases of one problem. Products draw a subset, so products differ.
THEMES = [
    ["the app crashes when I upload a photo", "uploading a picture makes the app crash",
     "crash every time I attach an image", "the app closes itself when I add a photo",
     "attaching pictures crashes the app on Android"],
    ["I never get the SMS code to log in", "the two factor code by text message never arrives",
     "login verification SMS is not delivered", "no SMS with the 2FA code so I cannot sign in"],
    ["the app drains my battery", "battery usage is huge since the last update",
     "the phone gets hot and the battery dies when the app runs in background",
     "your app eats my battery overnight"],
    ["push notifications arrive hours late", "notifications are delayed by a lot",
     "I get the alert long after the event happened", "late push notifications again"],
    ["please add a dark mode", "a dark theme would be great at night",
     "any plans for dark mode?", "the white screen is too bright, we need a dark theme"],
    ["CSV export is missing columns", "the exported csv file lacks the custom fields",
     "export to CSV drops some columns", "columns are missing when exporting the report to csv"],
    ["SSO login keeps failing", "single sign-on with Okta returns an error",
     "cannot log in through SAML SSO", "our team cannot sign in with SSO since Monday"],
    ["charts take forever to load", "dashboard graphs are very slow",
     "the analytics page is slow to render charts", "loading the charts times out"],
    ["report times are in the wrong timezone", "timestamps in reports ignore my time zone",
     "the scheduled report shows UTC instead of local time"],
    ["I was charged twice this month", "double charge on my credit card",
     "you billed me two times for the same invoice", "duplicate payment taken from my account"],
    ["cannot update my credit card", "the page to change the card details gives an error",
     "updating the payment method fails", "my new card is rejected when I try to save it"],
    ["the refund is taking too long", "still waiting for my refund after two weeks",
     "where is my refund?", "refund promised but never received"],
    ["the invoice shows the wrong VAT", "VAT number missing on the invoice",
     "tax on the invoice is calculated wrong"],
    ["search does not find documents I know exist", "search results are empty for exact titles",
     "full text search misses recent files", "searching by customer name returns nothing"],
    ["the Salesforce sync duplicates contacts", "CRM integration creates duplicate records",
     "every sync with Salesforce makes copies of our leads", "duplicate contacts after the CRM sync"],
    ["the Slack integration stopped posting messages", "no more alerts in our Slack channel",
     "Slack notifications from your app stopped working", "the Slack bot went silent"],
    ["the API returns 500 errors under load", "your REST API times out at peak hours",
     "we get internal server errors from the API", "API requests fail randomly with 502"],
    ["webhooks are delivered twice", "we receive duplicate webhook calls",
     "the same webhook event arrives several times"],
    ["pricing is too expensive for small teams", "the new price plan is too high for us",
     "we cannot justify the cost per seat", "the price increase is too steep"],
    ["we need more user seats on the basic plan", "the seat limit is too low",
     "please allow more users without upgrading", "five users is not enough on the starter plan"],
    ["onboarding is confusing for new users", "new hires do not understand the setup wizard",
     "the first setup steps are unclear", "getting started guide is confusing"],
    ["the calendar does not sync with Google Calendar", "events are missing from my Google calendar",
     "calendar sync with Outlook is broken", "meetings do not show up after the calendar sync"],
    ["file upload fails for large files", "cannot upload files bigger than 100 MB",
     "large attachments never finish uploading", "upload stops at 99 percent for big files"],
    ["the page layout breaks on small screens", "the mobile web layout is broken",
     "buttons overlap on my laptop screen", "the menu is cut off on tablets"],
    ["password reset email never arrives", "I did not get the reset password link",
     "the forgot password mail is not delivered", "no email when I reset my password"],
    ["the session expires too quickly", "I am logged out every few minutes",
     "the app keeps logging me out", "session timeout is way too short"],
    ["printing invoices produces blank pages", "the PDF export of invoices is empty",
     "printed reports come out blank", "PDF download shows an empty page"],
    ["permissions for guests are too broad", "guest users can see private projects",
     "we need finer access control for contractors", "role permissions are not granular enough"],
    ["checkout fails at the payment step", "customers cannot complete the checkout",
     "the payment page hangs when paying", "orders fail at the last checkout step"],
    ["the video call quality is poor", "video freezes during meetings",
     "audio drops out in video calls", "calls lag and the picture freezes"],
    ["data import from Excel fails", "importing a spreadsheet gives an error",
     "the xlsx import rejects valid files", "bulk import of customers does not work"],
    ["please add an offline mode", "the app is useless without internet",
     "we need to work offline on site", "offline support would help our field team"],
]
ONE_OFFS = ["love the new logo", "who won the game last night", "your support agent Maria was great",
            "is there a student discount", "the font on the landing page is nice",
            "can I get a t-shirt", "thanks for the quick fix", "happy new year to the team",
            "our account manager changed, who is the new one", "great webinar yesterday"]
PREFIXES = ["", "", "", "hi, ", "hello team, ", "urgent: ", "fyi ", "again: ", "hey, "]
SUFFIXES = ["", "", ".", "!", " please help", " - very annoying", " since yesterday",
            " for our whole team", " this is blocking us", " since the last update"]
CONTEXT = ["We have been customers for three years and this never happened before.",
           "Our team of forty people depends on this every day.",
           "I already contacted support last week but got no answer.",
           "This happens on both Windows and Mac.", "It started after the latest release.",
           "Our sales director is asking me about it every morning.",
           "We are considering other vendors because of this.",
           "Please let me know when a fix is planned.",
           "Otherwise we are quite happy with the product.",
           "It happens several times a day.", "Our renewal is coming up next month.",
           "I tried clearing the cache and reinstalling, no change.",
           "Several colleagues reported the same thing.",
           "The workaround from your help center did not work.",
           "Ticket reference is in the previous email.", "Thanks in advance."]
SOURCES = ["SOURCE_SUPPORT", "SOURCE_SALES", "SOURCE_CUSTOMER"]
TOPIC_OF = {"SOURCE_SUPPORT": "feedback.support", "SOURCE_SALES": "feedback.sales",
            "SOURCE_CUSTOMER": "feedback.customer"}
CHANNELS = {"SOURCE_SUPPORT": ["email", "chat"], "SOURCE_SALES": ["crm_note", "call"],
            "SOURCE_CUSTOMER": ["survey", "app_review"]}


class EventMaker:
    """Deterministic for a seed: products with their own themes and weights, accounts with ARR."""

    def __init__(self, products=100, themes_per_product=12, seed=1):
        self.rng = random.Random(seed)
        rng = self.rng
        self.products = []
        for p in range(products):
            themes = rng.sample(THEMES, min(themes_per_product, len(THEMES)))
            weights = [1.0 / (k + 1) for k in range(len(themes))]
            self.products.append(("product-%03d" % p, themes, weights))
        self.arr = [rng.choice([0, 120_000, 480_000, 2_400_000, 9_600_000]) for _ in range(5000)]

    def make(self):
        """(product_id, source, text, account index, channel) of one event."""
        rng = self.rng
        pid, themes, weights = self.products[rng.randrange(len(self.products))]
        if rng.random() < 0.05:
            text = rng.choice(ONE_OFFS)
        else:
            theme = rng.choices(themes, weights)[0]
            text = rng.choice(PREFIXES) + rng.choice(theme) + rng.choice(SUFFIXES)
        # Padding to ~200 bytes: people write context around the complaint.
        target = rng.randint(130, 230)
        while len(text) < target:
            text += " " + rng.choice(CONTEXT)
        source = rng.choice(SOURCES)
        return pid, source, text, rng.randrange(len(self.arr)), rng.choice(CHANNELS[source])


class Banking77Maker:
    """Banking77's texts over many products; deterministic for a seed, accounts as EventMaker's."""

    def __init__(self, data_dir, products=100, seed=1):
        self.rng = random.Random(seed)
        self.texts = []
        for name in ("train.csv", "test.csv"):
            with open(os.path.join(data_dir, name), newline="", encoding="utf-8") as f:
                self.texts += [row["text"] for row in csv.DictReader(f)]
        if not self.texts:
            raise SystemExit("gen_events.py: no texts in %s" % data_dir)
        self.rng.shuffle(self.texts)
        self.next_text = 0
        self.products = ["product-%03d" % p for p in range(products)]
        self.arr = [self.rng.choice([0, 120_000, 480_000, 2_400_000, 9_600_000])
                    for _ in range(5000)]

    def make(self):
        rng = self.rng
        text = self.texts[self.next_text % len(self.texts)]
        self.next_text += 1
        source = rng.choice(SOURCES)
        return (self.products[rng.randrange(len(self.products))], source, text,
                rng.randrange(len(self.arr)), rng.choice(CHANNELS[source]))


class DistinctMaker:
    """Problems of made-up words, each 3 times in a row (min_support): ~1 pain point per 3 events."""
    SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aiou"]
    REPEATS = 3

    def __init__(self, products=100, seed=1):
        self.rng = random.Random(seed)
        self.products = ["product-%03d" % p for p in range(products)]
        self.arr = [self.rng.choice([0, 120_000, 480_000, 2_400_000, 9_600_000])
                    for _ in range(5000)]
        self.count = 0

    def word(self, n):
        s = ""
        for _ in range(4):  # 56**4 words: distinct for ~3 million problems
            n, r = divmod(n, len(self.SYLLABLES))
            s += self.SYLLABLES[r]
        return s

    def make(self):
        problem = self.count // self.REPEATS
        self.count += 1
        text = " ".join(self.word(3 * problem + k) for k in range(3))
        source = self.rng.choice(SOURCES)
        return (self.products[problem % len(self.products)], source, text,
                self.rng.randrange(len(self.arr)), self.rng.choice(CHANNELS[source]))


def default_banking77_dir():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                        "banking77")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--products", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--workload", choices=["generated", "banking77", "distinct"], default="generated")
    ap.add_argument("--banking77-dir", default=default_banking77_dir())
    ap.add_argument("--now", default=None, help="ISO 8601; events spread over the 30 days before")
    a = ap.parse_args()
    if a.workload == "banking77":
        maker = Banking77Maker(a.banking77_dir, a.products, seed=a.seed)
    elif a.workload == "distinct":
        maker = DistinctMaker(a.products, seed=a.seed)
    else:
        maker = EventMaker(a.products, seed=a.seed)
    rng = maker.rng
    now = (dt.datetime.fromisoformat(a.now.replace("Z", "+00:00")) if a.now
           else dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    now_s = int(now.timestamp())
    files = {s: open(os.path.join(a.out_dir, TOPIC_OF[s] + ".jsonl"), "w") for s in SOURCES}
    counts = dict.fromkeys(SOURCES, 0)
    # Formatting a timestamp per event dominates otherwise; seconds repeat a lot.
    ts_cache = {}
    text_bytes = 0
    for i in range(a.events):
        pid, source, text, acct, channel = maker.make()
        # In the past (validation rejects > 24 h ahead), recent days busier so trends show.
        t = now_s - int(30 * 86400 * (rng.random() ** 1.6))
        ts = ts_cache.get(t)
        if ts is None:
            ts = dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if len(ts_cache) < 1_000_000:
                ts_cache[t] = ts
        event = {"eventId": "bench-%d-%d" % (a.seed, i), "source": source, "productId": pid,
                 "text": text, "occurredAt": ts, "accountId": "acct-%d" % acct,
                 "channel": channel}
        if maker.arr[acct]:
            event["accountArrCents"] = str(maker.arr[acct])
        files[source].write(json.dumps(event) + "\n")
        counts[source] += 1
        text_bytes += len(text)
    for f in files.values():
        f.close()
    print(" ".join("%s=%d" % (TOPIC_OF[s], counts[s]) for s in SOURCES),
          "mean_text_bytes=%.0f" % (text_bytes / max(1, a.events)))


if __name__ == "__main__":
    sys.exit(main())
