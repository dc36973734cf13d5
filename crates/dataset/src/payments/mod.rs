//! The payments scenario: card payments as a payments topic carries them, with labelled
//! frauds of five kinds, seeded so that every record is known in advance.
//!
//! Each record is
//! `{"id": 17, "card": "c-81", "amount": 912.4, "merchant": {"mcc": "5411", "country": "FR"},
//! "ts": "2026-12-01T03:12:09Z", "label": 0}`, with `"fraud": "<kind>"` added on frauds
//! (label 1). The population:
//!
//! - cards `c-0` … `c-N`, each with its habits ([`Card`]): a home country (a payment goes to a
//!   merchant there, now and then (8%) abroad), a typical amount (a multiple of each
//!   category's median, from 0.1 to 10 across cards), a rate (0.25 to 4 times the average
//!   card's) and active hours (8 to 15 hours a day, outside which it pays at 5% of its rate);
//! - merchants are a category code (MCC) and a country; each category has its share of
//!   payments and a log-normal amount (groceries around 42 for a card of scale 1, transit
//!   around 3.50, electronics around 180, …);
//! - time runs from [`PaymentsParams::start`] with a day/night pattern (hourly rates from
//!   3% of the busiest hour's at 03:00 UTC to its full rate around noon and 18:00); each
//!   payment goes to a card drawn by its rate in that hour.
//!
//! Frauds ([`FraudKind`]), each unusual in one respect only, so that what gave one away can be
//! checked. Three are unusual for the whole population: an amount far beyond its category's
//! (60× to 600× its median, beyond every card's habits), a category no card ever uses
//! (betting, quasi-cash, money transfer, with the card's everyday amounts), and a burst at
//! night (one card paying 4 to 9 times a few minutes apart between 01:00 and 04:30 UTC, with
//! its ordinary categories and amounts). Two are ordinary for the population and unusual only
//! for the card: an amount 10 to 30 times the card's own (on a card whose own is at most 0.3
//! of the median, so the amount stays within what other cards pay), and a burst of small
//! payments (6 to 12, 15 to 90 seconds apart, in fast food, transit or other retail, within
//! the card's active hours).

mod population;

use std::collections::BinaryHeap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, StandardNormal};
use serde::Serialize;

pub use population::{
    Card, Category, CATEGORIES, COUNTRIES, FRAUD_CATEGORIES, HOURLY_RATE, QUIET, SMALL_CATEGORIES,
};

use population::{pick, CardDraw};

/// One payment, serialising to the record's JSON (fields in this order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payment {
    /// Counts up from the first id.
    pub id: i64,
    /// The card, `c-<n>`.
    pub card: String,
    /// In currency units, two decimals.
    pub amount: f64,
    /// Where it was paid.
    pub merchant: Merchant,
    /// When, RFC 3339 UTC to the second: `2026-12-01T03:12:09Z`.
    pub ts: String,
    /// 1 for a fraud.
    pub label: u8,
    /// The fraud's kind, on frauds only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraud: Option<FraudKind>,
}

impl Payment {
    /// The record's JSON text.
    pub fn to_json(&self) -> String {
        // Strings, finite numbers and small integers always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The record as a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Its time, epoch milliseconds (what a producer may stamp it with).
    pub fn time_ms(&self) -> i64 {
        DateTime::parse_from_rfc3339(&self.ts).map_or(0, |time| time.timestamp_millis())
    }
}

/// A merchant: its category code and its country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Merchant {
    /// ISO 18245 merchant category code, as text (`"5411"`).
    pub mcc: String,
    /// ISO 3166 country code (`"FR"`).
    pub country: String,
}

/// A fraud's kind; serialised as its [`name`](Self::name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FraudKind {
    /// An amount far beyond its category's, for any card.
    Amount,
    /// A category no card of the population uses.
    Category,
    /// One card paying several times at night, minutes apart.
    NightBurst,
    /// An amount many times the card's own, ordinary for the population.
    CardAmount,
    /// One card paying small amounts many times, seconds apart, within its active hours.
    CardBurst,
}

impl FraudKind {
    /// Every kind.
    pub const ALL: [FraudKind; 5] = [
        FraudKind::Amount,
        FraudKind::Category,
        FraudKind::NightBurst,
        FraudKind::CardAmount,
        FraudKind::CardBurst,
    ];

    /// `amount`, `category`, `night_burst`, `card_amount`, `card_burst`.
    pub fn name(self) -> &'static str {
        match self {
            FraudKind::Amount => "amount",
            FraudKind::Category => "category",
            FraudKind::NightBurst => "night_burst",
            FraudKind::CardAmount => "card_amount",
            FraudKind::CardBurst => "card_burst",
        }
    }

    /// True for the kinds that are unusual only against the card's own habits.
    pub fn is_per_card(self) -> bool {
        matches!(self, FraudKind::CardAmount | FraudKind::CardBurst)
    }
}

/// Share of payments abroad.
const ABROAD: f64 = 0.08;

/// The largest typical amount (scale) of a card an amount fraud against its own habits is
/// made on.
pub const CARD_AMOUNT_MAX_SCALE: f64 = 0.3;

/// The scenario's settings. [`Default`] gives the values listed on each field.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentsParams {
    /// Random seed (default 0): the same settings give the same records.
    pub seed: u64,
    /// Id of the first record (default 0).
    pub first_id: i64,
    /// Cards in the population (default 2000).
    pub cards: usize,
    /// Payments per day on average, frauds aside (default 2000).
    pub payments_per_day: f64,
    /// Share of payments replaced by an amount or a category fraud, half each
    /// (default 0.003).
    pub fraud_share: f64,
    /// Share of payments replaced by an amount fraud against the card's own habits
    /// (default 0.002).
    pub card_fraud_share: f64,
    /// Night bursts per night on average (default 1).
    pub bursts_per_night: f64,
    /// Bursts of small payments per day on average (default 1).
    pub card_bursts_per_day: f64,
    /// The time the stream starts (default 2026-11-02T00:00:00Z, a Monday).
    pub start: DateTime<Utc>,
}

impl Default for PaymentsParams {
    fn default() -> Self {
        PaymentsParams {
            seed: 0,
            first_id: 0,
            cards: 2000,
            payments_per_day: 2000.0,
            fraud_share: 0.003,
            card_fraud_share: 0.002,
            bursts_per_night: 1.0,
            card_bursts_per_day: 1.0,
            start: DateTime::from_timestamp(1_793_577_600, 0).unwrap_or_default(),
        }
    }
}

/// Settings that cannot make a stream.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentsError {
    /// No cards.
    #[error("the scenario needs at least one card")]
    NoCards,
    /// A rate that is not a positive number.
    #[error("payments per day must be a positive number, not {0}")]
    PaymentsPerDay(f64),
    /// A share outside [0, 1], or shares adding up beyond 1.
    #[error("the fraud shares must be between 0 and 1, and so must their sum, not {0}")]
    FraudShare(f64),
    /// A negative or non-finite burst rate.
    #[error("bursts per night or per day must be 0 or more, not {0}")]
    BurstsPerNight(f64),
}

impl PaymentsParams {
    /// The payments, in time order, without end (take as many as needed).
    pub fn records(&self) -> Result<Payments, PaymentsError> {
        if self.cards == 0 {
            return Err(PaymentsError::NoCards);
        }
        if !(self.payments_per_day > 0.0 && self.payments_per_day.is_finite()) {
            return Err(PaymentsError::PaymentsPerDay(self.payments_per_day));
        }
        for share in [
            self.fraud_share,
            self.card_fraud_share,
            self.fraud_share + self.card_fraud_share,
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(PaymentsError::FraudShare(share));
            }
        }
        for rate in [self.bursts_per_night, self.card_bursts_per_day] {
            if !(rate >= 0.0 && rate.is_finite()) {
                return Err(PaymentsError::BurstsPerNight(rate));
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let cards: Vec<Card> = (0..self.cards).map(|n| Card::draw(&mut rng, n)).collect();
        let mut small: Vec<usize> = (0..cards.len())
            .filter(|&card| cards[card].scale <= CARD_AMOUNT_MAX_SCALE)
            .collect();
        if small.is_empty() {
            // A tiny population may have no small spender: the smallest stands in.
            small.extend(
                (0..cards.len()).min_by(|&a, &b| cards[a].scale.total_cmp(&cards[b].scale)),
            );
        }
        let mut payments = Payments {
            params: self.clone(),
            rng,
            draw: CardDraw::new(&cards),
            cards,
            small,
            next_id: self.first_id,
            clock: 0.0,
            day: 0,
            pending: BinaryHeap::new(),
            planned: 0,
        };
        payments.plan_bursts(0);
        Ok(payments)
    }
}

/// A planned payment of a burst, ordered by time (earliest first in the heap).
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    at: f64,
    seq: u64,
    card: usize,
    kind: FraudKind,
}

impl Eq for Planned {}

impl Ord for Planned {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.total_cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Planned {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The payments stream ([`PaymentsParams::records`]).
#[derive(Debug, Clone)]
pub struct Payments {
    params: PaymentsParams,
    rng: ChaCha8Rng,
    cards: Vec<Card>,
    draw: CardDraw,
    /// The cards an amount fraud against the card's habits is made on.
    small: Vec<usize>,
    next_id: i64,
    /// Seconds since the start of the latest ordinary payment.
    clock: f64,
    /// The day whose bursts are planned up to (bursts are planned a day ahead).
    day: i64,
    pending: BinaryHeap<Planned>,
    /// Burst payments planned so far (orders equal times).
    planned: u64,
}

const DAY: f64 = 86_400.0;

impl Payments {
    /// The population's cards.
    pub fn cards(&self) -> &[Card] {
        &self.cards
    }

    /// How many bursts of `expected` on average.
    fn bursts(&mut self, expected: f64) -> u64 {
        let mut bursts = expected.floor() as u64;
        if self.rng.random::<f64>() < expected.fract() {
            bursts += 1;
        }
        bursts
    }

    fn plan(&mut self, card: usize, kind: FraudKind, mut at: f64, size: usize, gaps: (f64, f64)) {
        for _ in 0..size {
            self.planned += 1;
            let seq = self.planned;
            self.pending.push(Planned {
                at,
                seq,
                card,
                kind,
            });
            at += self.rng.random_range(gaps.0..gaps.1);
        }
    }

    /// Plans day `day`'s bursts: at night, and of small payments in a card's active hours.
    fn plan_bursts(&mut self, day: i64) {
        for _ in 0..self.bursts(self.params.bursts_per_night) {
            let card = self.rng.random_range(0..self.cards.len());
            let size = self.rng.random_range(4..=9);
            let at = day as f64 * DAY + self.rng.random_range(3_600.0..16_200.0);
            self.plan(card, FraudKind::NightBurst, at, size, (30.0, 180.0));
        }
        for _ in 0..self.bursts(self.params.card_bursts_per_day) {
            let card = self.rng.random_range(0..self.cards.len());
            let size = self.rng.random_range(6..=12);
            let habits = &self.cards[card];
            // Within its active hours, ending before they do.
            let (from, hours) = (
                f64::from(habits.active_from),
                f64::from(habits.active_hours),
            );
            let hour = from + self.rng.random_range(0.0..hours - 0.5);
            let at = day as f64 * DAY + hour * 3_600.0;
            self.plan(card, FraudKind::CardBurst, at, size, (15.0, 90.0));
        }
    }

    /// Seconds to the next ordinary payment, at the rate of the current hour.
    fn next_gap(&mut self) -> f64 {
        let mean_rate: f64 = HOURLY_RATE.iter().sum::<f64>() / 24.0;
        let per_second =
            self.params.payments_per_day / DAY * HOURLY_RATE[hour_of(self.clock)] / mean_rate;
        Exp::new(per_second).map_or(DAY, |exp| exp.sample(&mut self.rng))
    }

    fn time(&self, at: f64) -> String {
        let time = self.params.start + Duration::milliseconds((at * 1000.0) as i64);
        time.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// `median × factor`, spread as the category spreads, in cents, at least one.
    fn amount(&mut self, category: &Category, factor: f64) -> f64 {
        let normal: f64 = StandardNormal.sample(&mut self.rng);
        cents(category.median * (category.sigma * normal).exp() * factor)
    }

    fn country(&mut self, card: usize) -> String {
        if self.rng.random::<f64>() < ABROAD {
            pick(&mut self.rng, &COUNTRIES, |(_, weight)| *weight)
                .0
                .to_string()
        } else {
            self.cards[card].country.to_string()
        }
    }

    fn payment(&mut self, at: f64, card: usize, fraud: Option<FraudKind>) -> Payment {
        let scale = self.cards[card].scale;
        let ordinary = |rng: &mut ChaCha8Rng| *pick(rng, &CATEGORIES, |c| c.weight);
        let (category, amount) = match fraud {
            // What is unusual about a night burst is its time (and its pace), not where or
            // how much.
            None | Some(FraudKind::NightBurst) => {
                let category = ordinary(&mut self.rng);
                (category, self.amount(&category, scale))
            }
            Some(FraudKind::Amount) => {
                let category = ordinary(&mut self.rng);
                // 60× to 600× the median, log-uniform, without the ordinary spread on top:
                // beyond every card's habits.
                let factor = self.rng.random_range(60f64.ln()..600f64.ln()).exp();
                (category, cents(category.median * factor))
            }
            Some(FraudKind::Category) => {
                let index = self.rng.random_range(0..FRAUD_CATEGORIES.len());
                let category = FRAUD_CATEGORIES[index];
                (category, self.amount(&category, scale))
            }
            Some(FraudKind::CardAmount) => {
                let category = ordinary(&mut self.rng);
                // 10× to 30× the card's own median: at most 9× the category's, which cards
                // of scale up to 10 pay every day.
                let factor = self.rng.random_range(10f64.ln()..30f64.ln()).exp();
                (category, cents(category.median * scale * factor))
            }
            Some(FraudKind::CardBurst) => {
                let index = SMALL_CATEGORIES[self.rng.random_range(0..SMALL_CATEGORIES.len())];
                let category = CATEGORIES[index];
                let factor = scale * self.rng.random_range(0.3..1.0);
                (category, self.amount(&category, factor))
            }
        };
        let country = self.country(card);
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        Payment {
            id,
            card: self.cards[card].name.clone(),
            amount,
            merchant: Merchant {
                mcc: category.mcc.to_string(),
                country,
            },
            ts: self.time(at),
            label: u8::from(fraud.is_some()),
            fraud,
        }
    }
}

/// An amount in cents, at least one.
fn cents(amount: f64) -> f64 {
    ((amount * 100.0).round() / 100.0).max(0.01)
}

/// The hour of day (UTC) of `at` seconds since the start (a midnight).
fn hour_of(at: f64) -> usize {
    (at.rem_euclid(DAY) / 3600.0) as usize % 24
}

impl Iterator for Payments {
    type Item = Payment;

    fn next(&mut self) -> Option<Payment> {
        let gap = self.next_gap();
        let next_ordinary = self.clock + gap;
        if let Some(planned) = self.pending.peek().filter(|p| p.at <= next_ordinary) {
            // Planned a day ahead, so never before the clock; time never runs backwards.
            let (at, card, kind) = (planned.at.max(self.clock), planned.card, planned.kind);
            self.pending.pop();
            // The ordinary stream resumes from the burst payment with a fresh gap (arrivals
            // are memoryless).
            self.clock = at;
            return Some(self.payment(at, card, Some(kind)));
        }
        self.clock = next_ordinary;
        let day = (self.clock / DAY).floor() as i64;
        while self.day < day + 1 {
            self.day += 1;
            let ahead = self.day;
            self.plan_bursts(ahead);
        }
        let draw = self.rng.random::<f64>();
        let (fraud, card) = if draw < self.params.fraud_share {
            let kind = if self.rng.random::<bool>() {
                FraudKind::Amount
            } else {
                FraudKind::Category
            };
            (
                Some(kind),
                self.draw.draw(&mut self.rng, hour_of(self.clock)),
            )
        } else if draw < self.params.fraud_share + self.params.card_fraud_share {
            let card = self.small[self.rng.random_range(0..self.small.len())];
            (Some(FraudKind::CardAmount), card)
        } else {
            (None, self.draw.draw(&mut self.rng, hour_of(self.clock)))
        };
        Some(self.payment(self.clock, card, fraud))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn stream(seed: u64, n: usize) -> Vec<Payment> {
        PaymentsParams {
            seed,
            ..PaymentsParams::default()
        }
        .records()
        .unwrap()
        .take(n)
        .collect()
    }

    fn hour(payment: &Payment) -> f64 {
        let time = DateTime::parse_from_rfc3339(&payment.ts).unwrap();
        let seconds = time.timestamp().rem_euclid(86_400);
        seconds as f64 / 3600.0
    }

    #[test]
    fn a_record_is_the_user_shaped_json() {
        let payments = stream(1, 3000);
        let normal = payments.iter().find(|p| p.label == 0).unwrap();
        let text = normal.to_json();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["amount", "card", "id", "label", "merchant", "ts"]);
        assert!(
            text.starts_with(&format!("{{\"id\":{},\"card\":\"c-", normal.id)),
            "fields in the record's order: {text}"
        );
        assert_eq!(value["merchant"]["mcc"].as_str().unwrap().len(), 4);
        assert_eq!(value["merchant"]["country"].as_str().unwrap().len(), 2);
        assert!(value["ts"].as_str().unwrap().ends_with('Z'));
        assert!(DateTime::parse_from_rfc3339(value["ts"].as_str().unwrap()).is_ok());
        let fraud = payments.iter().find(|p| p.label == 1).unwrap();
        let value = fraud.to_value();
        assert!(
            FraudKind::ALL.iter().any(|k| value["fraud"] == k.name()),
            "{value}"
        );
        assert_eq!(
            value,
            serde_json::from_str::<serde_json::Value>(&fraud.to_json()).unwrap()
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        assert_eq!(stream(7, 5000), stream(7, 5000));
        assert_ne!(stream(7, 500), stream(8, 500));
        let later = PaymentsParams {
            first_id: 100,
            ..PaymentsParams::default()
        };
        let shifted: Vec<Payment> = later.records().unwrap().take(10).collect();
        let plain = stream(0, 10);
        assert_eq!(shifted[3].id, 103);
        assert_eq!(
            (shifted[3].card.as_str(), shifted[3].amount),
            (plain[3].card.as_str(), plain[3].amount)
        );
    }

    #[test]
    fn time_runs_forward_with_a_day_and_night() {
        let payments = stream(2, 60_000);
        assert!(
            payments.windows(2).all(|w| w[0].ts <= w[1].ts),
            "time order"
        );
        assert!(
            payments.windows(2).all(|w| w[1].id == w[0].id + 1),
            "ids count up"
        );
        let ordinary: Vec<f64> = payments.iter().filter(|p| p.label == 0).map(hour).collect();
        let night = ordinary
            .iter()
            .filter(|&&h| (1.0..5.0).contains(&h))
            .count() as f64;
        let midday = ordinary
            .iter()
            .filter(|&&h| (11.0..15.0).contains(&h))
            .count() as f64;
        // Hourly rates 0.06+0.04+0.04+0.05 against 1.1+1.3+1.2+1.0.
        let expected = 0.19 / 4.6;
        assert!(
            (night / midday - expected).abs() < expected * 0.25,
            "{night} vs {midday}"
        );
        // 60,000 payments at 2,000 a day: about 30 days.
        let days = DateTime::parse_from_rfc3339(&payments.last().unwrap().ts).unwrap()
            - DateTime::parse_from_rfc3339(&payments[0].ts).unwrap();
        assert!((28..=32).contains(&days.num_days()), "{days}");
    }

    #[test]
    fn frauds_are_of_their_kind() {
        let params = PaymentsParams {
            seed: 3,
            ..PaymentsParams::default()
        };
        let mut stream = params.records().unwrap();
        let cards = stream.cards().to_vec();
        let payments: Vec<Payment> = stream.by_ref().take(60_000).collect();
        let card = |p: &Payment| &cards[p.card[2..].parse::<usize>().unwrap()];
        let kinds = payments
            .iter()
            .filter_map(|p| p.fraud)
            .fold(HashMap::new(), |mut m, k| {
                *m.entry(k).or_insert(0usize) += 1;
                m
            });
        // 0.3% of about 60,000 split in two, 0.2% against the card; about 30 nights of one
        // burst of 4 to 9, and 30 days of one burst of 6 to 12.
        for kind in [FraudKind::Amount, FraudKind::Category] {
            assert!((60..=120).contains(&kinds[&kind]), "{kind:?}: {kinds:?}");
        }
        assert!(
            (90..=150).contains(&kinds[&FraudKind::CardAmount]),
            "{kinds:?}"
        );
        assert!(
            (100..=300).contains(&kinds[&FraudKind::NightBurst]),
            "{kinds:?}"
        );
        assert!(
            (180..=400).contains(&kinds[&FraudKind::CardBurst]),
            "{kinds:?}"
        );
        let fraud_only: Vec<&str> = FRAUD_CATEGORIES.iter().map(|c| c.mcc).collect();
        let small: Vec<&str> = SMALL_CATEGORIES
            .iter()
            .map(|&i| CATEGORIES[i].mcc)
            .collect();
        for payment in &payments {
            assert_eq!(payment.label == 1, payment.fraud.is_some());
            let category = CATEGORIES.iter().find(|c| c.mcc == payment.merchant.mcc);
            let habits = card(payment);
            match payment.fraud {
                None => assert!(category.is_some(), "{payment:?}"),
                Some(FraudKind::Category) => {
                    assert!(fraud_only.contains(&payment.merchant.mcc.as_str()));
                }
                Some(FraudKind::Amount) => {
                    let category = category.unwrap();
                    assert!(
                        payment.amount >= category.median * 60.0 - 0.01,
                        "{payment:?}"
                    );
                }
                Some(FraudKind::NightBurst) => {
                    assert!(category.is_some(), "{payment:?}");
                    assert!((1.0..5.0).contains(&hour(payment)), "{payment:?}");
                }
                Some(FraudKind::CardAmount) => {
                    let median = category.unwrap().median;
                    assert!(habits.scale <= CARD_AMOUNT_MAX_SCALE, "{habits:?}");
                    // Many times the card's own, within what the population pays.
                    assert!(payment.amount >= 9.9 * habits.scale * median, "{payment:?}");
                    assert!(payment.amount <= 9.01 * median, "{payment:?}");
                }
                Some(FraudKind::CardBurst) => {
                    assert!(
                        small.contains(&payment.merchant.mcc.as_str()),
                        "{payment:?}"
                    );
                    assert!(
                        habits.is_active(hour(payment) as u32),
                        "{payment:?} {habits:?}"
                    );
                }
            }
        }
        // A burst is one card, several times, minutes apart.
        for kind in [FraudKind::NightBurst, FraudKind::CardBurst] {
            let bursts: Vec<&Payment> = payments.iter().filter(|p| p.fraud == Some(kind)).collect();
            let same_card_next = bursts.windows(2).filter(|w| w[0].card == w[1].card).count();
            assert!(
                same_card_next * 10 >= bursts.len() * 7,
                "{kind:?}: {same_card_next} of {}",
                bursts.len()
            );
        }
    }

    #[test]
    fn each_card_pays_at_its_own_scale_and_rate() {
        let params = PaymentsParams {
            seed: 4,
            cards: 200,
            ..PaymentsParams::default()
        };
        let mut stream = params.records().unwrap();
        let cards = stream.cards().to_vec();
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); cards.len()];
        let mut active = 0usize;
        let mut ordinary = 0usize;
        for payment in stream.by_ref().take(40_000).filter(|p| p.label == 0) {
            let n: usize = payment.card[2..].parse().unwrap();
            let median = CATEGORIES
                .iter()
                .find(|c| c.mcc == payment.merchant.mcc)
                .unwrap()
                .median;
            ratios[n].push(payment.amount / median);
            ordinary += 1;
            active += usize::from(cards[n].is_active(hour(&payment) as u32));
        }
        // A card's median amount (against each category's median) is its scale, within the
        // spread of a few dozen payments.
        for (card, ratios) in cards.iter().zip(&mut ratios) {
            if ratios.len() >= 40 {
                ratios.sort_by(f64::total_cmp);
                let median = ratios[ratios.len() / 2];
                assert!(
                    (median.ln() - card.scale.ln()).abs() < 0.35,
                    "{card:?}: median ratio {median}"
                );
            }
        }
        // Busier cards pay more often.
        let busy: usize = cards
            .iter()
            .zip(&ratios)
            .filter(|(c, _)| c.rate > 2.0)
            .map(|(_, r)| r.len())
            .sum::<usize>()
            / cards.iter().filter(|c| c.rate > 2.0).count().max(1);
        let quiet: usize = cards
            .iter()
            .zip(&ratios)
            .filter(|(c, _)| c.rate < 0.5)
            .map(|(_, r)| r.len())
            .sum::<usize>()
            / cards.iter().filter(|c| c.rate < 0.5).count().max(1);
        assert!(busy > 3 * quiet, "{busy} vs {quiet}");
        // Most payments fall in the card's active hours.
        assert!(active * 10 > ordinary * 8, "{active} of {ordinary}");
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad = |change: fn(&mut PaymentsParams)| {
            let mut params = PaymentsParams::default();
            change(&mut params);
            params.records().unwrap_err()
        };
        assert_eq!(bad(|p| p.cards = 0), PaymentsError::NoCards);
        assert_eq!(
            bad(|p| p.payments_per_day = 0.0),
            PaymentsError::PaymentsPerDay(0.0)
        );
        assert!(matches!(
            bad(|p| p.fraud_share = f64::NAN),
            PaymentsError::FraudShare(_)
        ));
        assert_eq!(
            bad(|p| p.bursts_per_night = -1.0),
            PaymentsError::BurstsPerNight(-1.0)
        );
        assert_eq!(
            bad(|p| p.card_bursts_per_day = f64::INFINITY),
            PaymentsError::BurstsPerNight(f64::INFINITY)
        );
        assert_eq!(
            bad(|p| {
                p.fraud_share = 0.6;
                p.card_fraud_share = 0.6;
            }),
            PaymentsError::FraudShare(1.2)
        );
        let one = PaymentsParams {
            cards: 1,
            ..PaymentsParams::default()
        };
        assert_eq!(
            one.records().unwrap().take(5000).count(),
            5000,
            "one card will do"
        );
    }
}
