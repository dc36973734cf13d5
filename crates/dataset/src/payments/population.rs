//! Who pays, where and how much: the merchant categories, the countries, the day's rhythm,
//! and each card's own habits ([`Card`]).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A card of the population, with its habits.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// `c-<n>`.
    pub name: String,
    /// Where it usually pays.
    pub country: &'static str,
    /// Its typical amount, as a multiple of each category's median: log-uniform from 0.1 to
    /// 10 across cards (two orders of magnitude), so that one card's ordinary payment is
    /// another's fraud.
    pub scale: f64,
    /// How often it pays, relative to the average card: log-uniform from 0.25 to 4.
    pub rate: f64,
    /// The first hour (UTC) of its active hours.
    pub active_from: u32,
    /// How many hours it is active, from `active_from` on (wrapping past midnight); outside
    /// them it pays at [`QUIET`] of its rate.
    pub active_hours: u32,
}

/// A card's rate outside its active hours, as a share of its rate inside them.
pub const QUIET: f64 = 0.05;

impl Card {
    /// A card with habits drawn from `rng`.
    pub(crate) fn draw(rng: &mut ChaCha8Rng, n: usize) -> Card {
        let country = pick(rng, &COUNTRIES, |(_, weight)| *weight).0;
        let scale = rng.random_range(0.1f64.ln()..10f64.ln()).exp();
        let rate = rng.random_range(0.25f64.ln()..4f64.ln()).exp();
        let active_from = rng.random_range(5..=15);
        let active_hours = rng.random_range(8..=15);
        Card {
            name: format!("c-{n}"),
            country,
            scale,
            rate,
            active_from,
            active_hours,
        }
    }

    /// True when `hour` (UTC, 0 to 23) is one of its active hours.
    pub fn is_active(&self, hour: u32) -> bool {
        (hour + 24 - self.active_from) % 24 < self.active_hours
    }

    /// Its relative rate in `hour`.
    pub fn weight(&self, hour: u32) -> f64 {
        if self.is_active(hour) {
            self.rate
        } else {
            self.rate * QUIET
        }
    }
}

/// A merchant category: its code, its share of the population's payments and its amounts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Category {
    /// The MCC.
    pub mcc: &'static str,
    /// Relative share of payments.
    pub weight: f64,
    /// Median amount for a card of scale 1.
    pub median: f64,
    /// Standard deviation of the amount's logarithm.
    pub sigma: f64,
}

const fn category(mcc: &'static str, weight: f64, median: f64, sigma: f64) -> Category {
    Category {
        mcc,
        weight,
        median,
        sigma,
    }
}

/// The categories the population pays in.
pub const CATEGORIES: [Category; 11] = [
    category("5411", 30.0, 42.0, 0.6),  // groceries
    category("5812", 18.0, 28.0, 0.5),  // restaurants
    category("5814", 12.0, 11.0, 0.4),  // fast food
    category("5541", 10.0, 55.0, 0.35), // fuel
    category("4111", 8.0, 3.5, 0.5),    // transit
    category("5912", 6.0, 19.0, 0.6),   // pharmacies
    category("5311", 6.0, 65.0, 0.8),   // department stores
    category("5999", 4.0, 35.0, 0.9),   // other retail
    category("5732", 3.0, 180.0, 0.9),  // electronics
    category("7011", 2.0, 140.0, 0.6),  // hotels
    category("4511", 1.0, 320.0, 0.7),  // airlines
];

/// The categories a burst of small payments uses (fast food, transit, other retail): where a
/// stolen card is tried out.
pub const SMALL_CATEGORIES: [usize; 3] = [2, 4, 7];

/// Categories no card of the population uses; only frauds pay there, with everyday amounts
/// (what is unusual is the category alone).
pub const FRAUD_CATEGORIES: [Category; 3] = [
    category("7995", 1.0, 45.0, 0.7), // betting
    category("6051", 1.0, 45.0, 0.7), // quasi-cash
    category("4829", 1.0, 45.0, 0.7), // money transfer
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

/// Draws one of `items` with probability proportional to `weight`.
pub(crate) fn pick<'a, T>(
    rng: &mut ChaCha8Rng,
    items: &'a [T],
    weight: impl Fn(&T) -> f64,
) -> &'a T {
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

/// Each hour's cumulative card weights, to draw the card of a payment in that hour in
/// O(log cards).
#[derive(Debug, Clone)]
pub(crate) struct CardDraw {
    cumulative: Vec<[f64; 24]>,
}

impl CardDraw {
    pub(crate) fn new(cards: &[Card]) -> CardDraw {
        let mut total = [0.0; 24];
        let cumulative = cards
            .iter()
            .map(|card| {
                for (hour, sum) in total.iter_mut().enumerate() {
                    *sum += card.weight(hour as u32);
                }
                total
            })
            .collect();
        CardDraw { cumulative }
    }

    /// A card index for a payment in `hour`.
    pub(crate) fn draw(&self, rng: &mut ChaCha8Rng, hour: usize) -> usize {
        let total = self.cumulative.last().map_or(0.0, |sums| sums[hour]);
        let target = rng.random::<f64>() * total;
        self.cumulative
            .partition_point(|sums| sums[hour] <= target)
            .min(self.cumulative.len().saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn habits_spread_as_documented() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let cards: Vec<Card> = (0..4000).map(|n| Card::draw(&mut rng, n)).collect();
        let (low, high) = cards.iter().fold((f64::MAX, 0.0f64), |(lo, hi), c| {
            (lo.min(c.scale), hi.max(c.scale))
        });
        assert!(
            low < 0.11 && high > 9.0 && low >= 0.1 && high <= 10.0,
            "{low} {high}"
        );
        assert!(cards.iter().all(|c| (0.25..=4.0).contains(&c.rate)));
        let night_owls = cards.iter().filter(|c| c.is_active(2)).count();
        assert!(
            night_owls > 0 && night_owls < cards.len() / 4,
            "{night_owls}"
        );
        let card = Card {
            active_from: 22,
            active_hours: 4,
            ..cards[0].clone()
        };
        let active: Vec<u32> = (0..24).filter(|&h| card.is_active(h)).collect();
        assert_eq!(active, [0, 1, 22, 23], "wrapping past midnight");
    }

    #[test]
    fn cards_are_drawn_by_their_weight_in_the_hour() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut cards: Vec<Card> = (0..3).map(|n| Card::draw(&mut rng, n)).collect();
        for (card, (from, rate)) in cards.iter_mut().zip([(0, 1.0), (12, 3.0), (12, 0.5)]) {
            card.active_from = from;
            card.active_hours = 8;
            card.rate = rate;
        }
        let draw = CardDraw::new(&cards);
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[draw.draw(&mut rng, 14)] += 1;
        }
        // At 14:00, weights 0.05, 3 and 0.5.
        let share = |i: usize| counts[i] as f64 / 20_000.0;
        assert!((share(1) - 3.0 / 3.55).abs() < 0.02, "{counts:?}");
        assert!((share(0) - 0.05 / 3.55).abs() < 0.01, "{counts:?}");
    }
}
