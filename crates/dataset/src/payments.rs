//! The payments scenario: card payments as a payments topic carries them, with labelled
//! frauds of three kinds, seeded so that every record is known in advance.
//!
//! Each record is
//! `{"id": 17, "card": "c-81", "amount": 912.4, "merchant": {"mcc": "5411", "country": "FR"},
//! "ts": "2026-12-01T03:12:09Z", "label": 0}`, with `"fraud": "<kind>"` added on frauds
//! (label 1). The population:
//!
//! - cards `c-0` … `c-N`, each with a home country; a payment goes to a merchant of the home
//!   country, now and then (8%) abroad;
//! - merchants are a category code (MCC) and a country; each category has its share of
//!   payments and a log-normal amount (groceries around 42, transit around 3.50, electronics
//!   around 180, …);
//! - time runs from [`PaymentsParams::start`] with a day/night pattern (hourly rates from
//!   3% of the busiest hour's at 03:00 UTC to its full rate around noon and 18:00).
//!
//! Frauds ([`FraudKind`]), each unusual in one respect only, so that what gave one away can be
//! checked: an amount far beyond its category's (15× to 300× its median, in an ordinary
//! category), a category no card of the population ever uses (betting, quasi-cash, money
//! transfer, with everyday amounts), and a burst at night (one card paying 4 to 9 times a few
//! minutes apart between 01:00 and 04:30 UTC, in ordinary categories with ordinary amounts).
//!
//! Cards share one behaviour for now; [`Card`] is where each card's own habits (a typical
//! amount, active hours) will go when per-card features need them.

use std::collections::BinaryHeap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, StandardNormal};
use serde::Serialize;

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
    /// An amount far beyond its category's.
    Amount,
    /// A category no card of the population uses.
    Category,
    /// One card paying several times at night, minutes apart.
    NightBurst,
}

impl FraudKind {
    /// Every kind.
    pub const ALL: [FraudKind; 3] = [
        FraudKind::Amount,
        FraudKind::Category,
        FraudKind::NightBurst,
    ];

    /// `amount`, `category`, `night_burst`.
    pub fn name(self) -> &'static str {
        match self {
            FraudKind::Amount => "amount",
            FraudKind::Category => "category",
            FraudKind::NightBurst => "night_burst",
        }
    }
}

/// A card of the population.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// `c-<n>`.
    pub name: String,
    /// Where it usually pays.
    pub country: &'static str,
}

/// A merchant category: its code, its share of the population's payments and its amounts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Category {
    /// The MCC.
    pub mcc: &'static str,
    /// Relative share of payments.
    pub weight: f64,
    /// Median amount.
    pub median: f64,
    /// Standard deviation of the amount's logarithm.
    pub sigma: f64,
}

/// The categories the population pays in.
pub const CATEGORIES: [Category; 11] = [
    Category {
        mcc: "5411",
        weight: 30.0,
        median: 42.0,
        sigma: 0.6,
    }, // groceries
    Category {
        mcc: "5812",
        weight: 18.0,
        median: 28.0,
        sigma: 0.5,
    }, // restaurants
    Category {
        mcc: "5814",
        weight: 12.0,
        median: 11.0,
        sigma: 0.4,
    }, // fast food
    Category {
        mcc: "5541",
        weight: 10.0,
        median: 55.0,
        sigma: 0.35,
    }, // fuel
    Category {
        mcc: "4111",
        weight: 8.0,
        median: 3.5,
        sigma: 0.5,
    }, // transit
    Category {
        mcc: "5912",
        weight: 6.0,
        median: 19.0,
        sigma: 0.6,
    }, // pharmacies
    Category {
        mcc: "5311",
        weight: 6.0,
        median: 65.0,
        sigma: 0.8,
    }, // department stores
    Category {
        mcc: "5999",
        weight: 4.0,
        median: 35.0,
        sigma: 0.9,
    }, // other retail
    Category {
        mcc: "5732",
        weight: 3.0,
        median: 180.0,
        sigma: 0.9,
    }, // electronics
    Category {
        mcc: "7011",
        weight: 2.0,
        median: 140.0,
        sigma: 0.6,
    }, // hotels
    Category {
        mcc: "4511",
        weight: 1.0,
        median: 320.0,
        sigma: 0.7,
    }, // airlines
];

/// Categories no card of the population uses; only frauds pay there, with everyday amounts
/// (what is unusual is the category alone).
pub const FRAUD_CATEGORIES: [Category; 3] = [
    Category {
        mcc: "7995",
        weight: 1.0,
        median: 45.0,
        sigma: 0.7,
    }, // betting
    Category {
        mcc: "6051",
        weight: 1.0,
        median: 45.0,
        sigma: 0.7,
    }, // quasi-cash
    Category {
        mcc: "4829",
        weight: 1.0,
        median: 45.0,
        sigma: 0.7,
    }, // money transfer
];

/// Home countries and their shares of cards (and of merchants).
pub const COUNTRIES: [(&str, f64); 5] = [
    ("FR", 35.0),
    ("DE", 25.0),
    ("ES", 15.0),
    ("IT", 15.0),
    ("NL", 10.0),
];

/// Relative payment rate by hour of day (UTC).
pub const HOURLY_RATE: [f64; 24] = [
    0.10, 0.06, 0.04, 0.04, 0.05, 0.10, 0.30, 0.60, 0.90, 1.00, 1.00, 1.10, 1.30, 1.20, 1.00, 1.00,
    1.10, 1.20, 1.30, 1.20, 0.90, 0.60, 0.35, 0.20,
];

/// Share of payments abroad.
const ABROAD: f64 = 0.08;

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
    /// Night bursts per night on average (default 1).
    pub bursts_per_night: f64,
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
            bursts_per_night: 1.0,
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
    /// A share outside [0, 1].
    #[error("the fraud share must be between 0 and 1, not {0}")]
    FraudShare(f64),
    /// A negative or non-finite burst rate.
    #[error("bursts per night must be 0 or more, not {0}")]
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
        if !(0.0..=1.0).contains(&self.fraud_share) {
            return Err(PaymentsError::FraudShare(self.fraud_share));
        }
        if !(self.bursts_per_night >= 0.0 && self.bursts_per_night.is_finite()) {
            return Err(PaymentsError::BurstsPerNight(self.bursts_per_night));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let cards = (0..self.cards)
            .map(|n| Card {
                name: format!("c-{n}"),
                country: pick(&mut rng, &COUNTRIES, |(_, weight)| *weight).0,
            })
            .collect();
        let mut payments = Payments {
            params: self.clone(),
            rng,
            cards,
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

/// A planned payment of a night burst, ordered by time (earliest first in the heap).
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    at: f64,
    seq: u64,
    card: usize,
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

    /// Plans day `day`'s night bursts.
    fn plan_bursts(&mut self, day: i64) {
        let expected = self.params.bursts_per_night;
        let mut bursts = expected.floor() as u64;
        if self.rng.random::<f64>() < expected.fract() {
            bursts += 1;
        }
        for _ in 0..bursts {
            let card = self.rng.random_range(0..self.cards.len());
            let size = self.rng.random_range(4..=9);
            let mut at = day as f64 * DAY + self.rng.random_range(3_600.0..16_200.0);
            for _ in 0..size {
                self.planned += 1;
                let seq = self.planned;
                self.pending.push(Planned { at, seq, card });
                at += self.rng.random_range(30.0..180.0);
            }
        }
    }

    /// Seconds to the next ordinary payment, at the rate of the current hour.
    fn next_gap(&mut self) -> f64 {
        let mean_rate: f64 = HOURLY_RATE.iter().sum::<f64>() / 24.0;
        let hour = ((self.clock.rem_euclid(DAY)) / 3600.0) as usize % 24;
        let per_second = self.params.payments_per_day / DAY * HOURLY_RATE[hour] / mean_rate;
        Exp::new(per_second).map_or(DAY, |exp| exp.sample(&mut self.rng))
    }

    fn time(&self, at: f64) -> String {
        let time = self.params.start + Duration::milliseconds((at * 1000.0) as i64);
        time.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    fn amount(&mut self, category: &Category, factor: f64) -> f64 {
        let normal: f64 = StandardNormal.sample(&mut self.rng);
        let amount = category.median * (category.sigma * normal).exp() * factor;
        ((amount * 100.0).round() / 100.0).max(0.01)
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
        let (category, factor) = match fraud {
            None => (*pick(&mut self.rng, &CATEGORIES, |c| c.weight), 1.0),
            Some(FraudKind::Amount) => {
                let category = *pick(&mut self.rng, &CATEGORIES, |c| c.weight);
                // 15× to 300× the median, log-uniform: far beyond the category's amounts.
                let factor = self.rng.random_range(15f64.ln()..300f64.ln()).exp();
                (category, factor)
            }
            Some(FraudKind::Category) => {
                let index = self.rng.random_range(0..FRAUD_CATEGORIES.len());
                (FRAUD_CATEGORIES[index], 1.0)
            }
            // What is unusual about a burst is its time (and its pace), not where or how much.
            Some(FraudKind::NightBurst) => (*pick(&mut self.rng, &CATEGORIES, |c| c.weight), 1.0),
        };
        let amount = if fraud == Some(FraudKind::Amount) {
            // The median times the factor, without the ordinary spread on top.
            ((category.median * factor * 100.0).round() / 100.0).max(0.01)
        } else {
            self.amount(&category, factor)
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

impl Iterator for Payments {
    type Item = Payment;

    fn next(&mut self) -> Option<Payment> {
        let gap = self.next_gap();
        let next_ordinary = self.clock + gap;
        if let Some(planned) = self.pending.peek().filter(|p| p.at <= next_ordinary) {
            let (at, card) = (planned.at, planned.card);
            self.pending.pop();
            // The ordinary stream resumes from the burst payment with a fresh gap (arrivals
            // are memoryless), so time never runs backwards.
            self.clock = at;
            return Some(self.payment(at, card, Some(FraudKind::NightBurst)));
        }
        self.clock = next_ordinary;
        let day = (self.clock / DAY).floor() as i64;
        while self.day < day + 1 {
            self.day += 1;
            let ahead = self.day;
            self.plan_bursts(ahead);
        }
        let card = self.rng.random_range(0..self.cards.len());
        let fraud = if self.rng.random::<f64>() < self.params.fraud_share {
            Some(if self.rng.random::<bool>() {
                FraudKind::Amount
            } else {
                FraudKind::Category
            })
        } else {
            None
        };
        Some(self.payment(self.clock, card, fraud))
    }
}

/// Draws one of `items` with probability proportional to `weight`.
fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T], weight: impl Fn(&T) -> f64) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut draw = rng.random::<f64>() * total;
    for item in items {
        draw -= weight(item);
        if draw < 0.0 {
            return item;
        }
    }
    &items[items.len() - 1]
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
        let payments = stream(3, 60_000);
        let kinds = payments
            .iter()
            .filter_map(|p| p.fraud)
            .fold(HashMap::new(), |mut m, k| {
                *m.entry(k).or_insert(0usize) += 1;
                m
            });
        // 0.3% of about 60,000 split in two; about 30 nights of one burst of 4 to 9.
        for kind in [FraudKind::Amount, FraudKind::Category] {
            assert!((60..=120).contains(&kinds[&kind]), "{kind:?}: {kinds:?}");
        }
        assert!(
            (100..=300).contains(&kinds[&FraudKind::NightBurst]),
            "{kinds:?}"
        );
        let fraud_only: Vec<&str> = FRAUD_CATEGORIES.iter().map(|c| c.mcc).collect();
        for payment in &payments {
            assert_eq!(payment.label == 1, payment.fraud.is_some());
            let category = CATEGORIES.iter().find(|c| c.mcc == payment.merchant.mcc);
            match payment.fraud {
                None => assert!(category.is_some(), "{payment:?}"),
                Some(FraudKind::Category) => {
                    assert!(fraud_only.contains(&payment.merchant.mcc.as_str()));
                    assert!(
                        payment.amount < 45.0 * 20.0,
                        "everyday amounts: {payment:?}"
                    );
                }
                Some(FraudKind::Amount) => {
                    let category = category.unwrap();
                    assert!(
                        payment.amount >= category.median * 15.0 - 0.01,
                        "{payment:?}"
                    );
                }
                Some(FraudKind::NightBurst) => {
                    assert!(category.is_some(), "{payment:?}");
                    assert!((1.0..5.0).contains(&hour(payment)), "{payment:?}");
                }
            }
        }
        // A burst is one card, several times, minutes apart.
        let bursts: Vec<&Payment> = payments
            .iter()
            .filter(|p| p.fraud == Some(FraudKind::NightBurst))
            .collect();
        let same_card_next = bursts.windows(2).filter(|w| w[0].card == w[1].card).count();
        assert!(
            same_card_next * 10 >= bursts.len() * 7,
            "{same_card_next} of {}",
            bursts.len()
        );
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
    }
}
