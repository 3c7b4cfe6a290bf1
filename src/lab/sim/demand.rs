//! Residential water demand of one room's consumers (DOMAIN.md §5).
//!
//! Demand = mean flow × daily shape × day factor × weekend factor × noise. The mean comes from
//! households × persons × litres per person per day; the shape has the three residential
//! peaks (06-08, 11:30-13, 17-22) with per-room jitter, a night minimum of 0.2-0.35 × mean and
//! an hourly peak factor of 1.7-2.1; the noise is an hourly AR(1) in log space (as the district
//! benchmark specifies) plus a faster component for the tap-by-tap flicker a flow meter sees,
//! both smaller in large compounds (σ ∝ 1/√households).
//!
//! The shape is tabulated per room at construction (15-minute slots, interpolated) because the
//! step must stay cheap: 2,100 rooms per simulated second.

use super::clock::LocalClock;
use super::noise::{normal, OrnsteinUhlenbeck};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

const SLOTS: usize = 96;
const SLOT_H: f64 = 24.0 / SLOTS as f64;
/// The reference compound size for the noise amplitudes.
const REFERENCE_HOUSEHOLDS: f64 = 800.0;

/// A soft-edged period of the day during which water use is raised.
#[derive(Clone, Copy, Debug)]
struct UsePeriod {
    start_h: f64,
    end_h: f64,
    weight: f64,
}

impl UsePeriod {
    fn at(&self, hour: f64, edge_h: f64) -> f64 {
        let logistic = |x: f64| 1.0 / (1.0 + (-x).exp());
        // Evening use spills past midnight: evaluate the neighbouring days too.
        [-24.0, 0.0, 24.0]
            .iter()
            .map(|shift| {
                let h = hour + shift;
                logistic((h - self.start_h) / edge_h) * logistic((self.end_h - h) / edge_h)
            })
            .sum::<f64>()
            * self.weight
    }
}

/// One room's demand model and its noise state.
#[derive(Clone, Debug)]
pub(crate) struct DemandModel {
    mean_m3h: f64,
    night_min: f64,
    peak_factor: f64,
    weekday_shape: [f32; SLOTS],
    weekend_shape: [f32; SLOTS],
    weekend_factor: f64,
    day: i64,
    day_factor: f64,
    hourly: OrnsteinUhlenbeck,
    flicker: OrnsteinUhlenbeck,
    /// exp(-σ²/2) of the log-space noise, so that the noise does not raise the mean.
    noise_bias: f64,
}

/// Day-to-day variation of a room's total (lognormal σ, DOMAIN.md §5).
const DAY_FACTOR_SIGMA: f64 = 0.08;

impl DemandModel {
    pub(crate) fn new(households: u32, clock: &LocalClock, rng: &mut ChaCha8Rng) -> Self {
        let households = f64::from(households.max(1));
        let persons = rng.random_range(2.5..3.2);
        let litres_per_person_day = rng.random_range(120.0..180.0);
        let mean_m3h = households * persons * litres_per_person_day / 1000.0 / 24.0;
        let night_min = rng.random_range(0.20..0.35);
        let peak_factor = rng.random_range(1.7..2.1);
        let edge_h = rng.random_range(0.3..0.5);
        let mut jitter = || rng.random_range(-0.75..0.75);
        let (jm, jd, je) = (jitter(), jitter(), jitter());
        let morning = UsePeriod {
            start_h: 6.0 + jm,
            end_h: 8.0 + jm,
            weight: 1.0,
        };
        let midday = UsePeriod {
            start_h: 11.5 + jd,
            end_h: 13.0 + jd,
            weight: 0.55,
        };
        let evening = UsePeriod {
            start_h: 17.0 + je,
            end_h: 22.0 + je,
            weight: 0.85,
        };
        let daytime = UsePeriod {
            start_h: 6.5,
            end_h: 23.0,
            weight: 1.0,
        };
        let weekday_shape = tabulate(
            &[morning, midday, evening],
            daytime,
            edge_h,
            night_min,
            peak_factor,
        );
        // At the weekend people rise later and more of them are at home at noon.
        let lie_in = rng.random_range(0.75..1.5);
        let weekend_periods = [
            UsePeriod {
                start_h: morning.start_h + lie_in,
                end_h: morning.end_h + lie_in,
                weight: 0.8,
            },
            UsePeriod {
                weight: 0.75,
                ..midday
            },
            evening,
        ];
        let weekend_shape = tabulate(&weekend_periods, daytime, edge_h, night_min, peak_factor);
        let weekend_factor = rng.random_range(1.03..1.08);

        let scale = (REFERENCE_HOUSEHOLDS / households).sqrt();
        let phi: f64 = rng.random_range(0.5..0.7);
        let hourly_innovation = (0.05 * scale).clamp(0.02, 0.12);
        let hourly_sigma = hourly_innovation / (1.0 - phi * phi).sqrt();
        let hourly = OrnsteinUhlenbeck::new(hourly_sigma, -3600.0 / phi.ln(), 1.0, rng);
        let flicker_sigma = (0.03 * scale).clamp(0.01, 0.08);
        let flicker_tau = rng.random_range(30.0..90.0);
        let flicker = OrnsteinUhlenbeck::new(flicker_sigma, flicker_tau, 1.0, rng);
        let noise_bias = (-(hourly_sigma.powi(2) + flicker_sigma.powi(2)) / 2.0).exp();
        let day_factor = draw_day_factor(rng);
        Self {
            mean_m3h,
            night_min,
            peak_factor,
            weekday_shape,
            weekend_shape,
            weekend_factor,
            day: clock.day,
            day_factor,
            hourly,
            flicker,
            noise_bias,
        }
    }

    /// The long-run mean flow, m³/h.
    pub(crate) fn mean_m3h(&self) -> f64 {
        self.mean_m3h
    }

    /// Advances the noise by one second and returns the demand over that second, m³/h.
    pub(crate) fn step(&mut self, clock: &LocalClock, rng: &mut ChaCha8Rng) -> f64 {
        if clock.day != self.day {
            self.day = clock.day;
            self.day_factor = draw_day_factor(rng);
        }
        self.hourly.step(rng);
        self.flicker.step(rng);
        self.current(clock)
    }

    /// The demand at `clock` with the noise where it stands, m³/h.
    pub(crate) fn current(&self, clock: &LocalClock) -> f64 {
        let (shape, weekend) = if clock.weekend {
            (
                self.shape(&self.weekend_shape, clock.hour),
                self.weekend_factor,
            )
        } else {
            (self.shape(&self.weekday_shape, clock.hour), 1.0)
        };
        let noise = (self.hourly.value() + self.flicker.value()).exp() * self.noise_bias;
        self.mean_m3h * shape * self.day_factor * weekend * noise
    }

    /// How busy the hour is, 0 at the night minimum and 1 at the peak: the room's stand-in for
    /// the district's draw on the mains, which has the same daily rhythm.
    pub(crate) fn busyness(&self, clock: &LocalClock) -> f64 {
        let table = if clock.weekend {
            &self.weekend_shape
        } else {
            &self.weekday_shape
        };
        let shape = self.shape(table, clock.hour);
        ((shape - self.night_min) / (self.peak_factor - self.night_min)).clamp(0.0, 1.0)
    }

    fn shape(&self, table: &[f32; SLOTS], hour: f64) -> f64 {
        let x = hour / SLOT_H;
        let i = (x as usize).min(SLOTS - 1);
        let frac = x - i as f64;
        let a = f64::from(table[i]);
        let b = f64::from(table[(i + 1) % SLOTS]);
        a + (b - a) * frac
    }
}

fn draw_day_factor(rng: &mut ChaCha8Rng) -> f64 {
    (DAY_FACTOR_SIGMA * normal(rng) - DAY_FACTOR_SIGMA * DAY_FACTOR_SIGMA / 2.0).exp()
}

/// The daily shape as a table with mean 1, minimum `night_min` and maximum `peak_factor`.
///
/// Peaks alone would make the day too spiky for a peak factor near 2, so a daytime plateau is
/// added whose weight is solved (by bisection) for the wanted peak factor; then the table is
/// shifted and scaled onto the wanted minimum and mean.
fn tabulate(
    peaks: &[UsePeriod],
    daytime: UsePeriod,
    edge_h: f64,
    night_min: f64,
    peak_factor: f64,
) -> [f32; SLOTS] {
    let mut peak_part = [0.0; SLOTS];
    let mut day_part = [0.0; SLOTS];
    for i in 0..SLOTS {
        let hour = i as f64 * SLOT_H;
        peak_part[i] = peaks.iter().map(|p| p.at(hour, edge_h)).sum();
        day_part[i] = daytime.at(hour, edge_h);
    }
    let fitted = fit_shape(&peak_part, &day_part, night_min, peak_factor);
    let mut table = [0.0_f32; SLOTS];
    for (t, r) in table.iter_mut().zip(fitted) {
        *t = r as f32;
    }
    table
}

/// Fits a daily shape: `peak_part + w × day_part`, with the daytime plateau's weight `w`
/// solved by bisection so that the shape's (max − min) / (mean − min) matches a peak factor of
/// `peak_factor` once mapped onto [`night_min`, `peak_factor`] with mean 1; returns the mapped
/// values. Peaks alone would make the day too spiky for a peak factor near 2.
pub(crate) fn fit_shape(
    peak_part: &[f64],
    day_part: &[f64],
    night_min: f64,
    peak_factor: f64,
) -> Vec<f64> {
    let combined = |w: f64| -> Vec<f64> {
        peak_part
            .iter()
            .zip(day_part)
            .map(|(p, d)| p + w * d)
            .collect()
    };
    let stats = |v: &[f64]| {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        (min, mean, max)
    };
    let peakiness = |w: f64| {
        let (min, mean, max) = stats(&combined(w));
        (max - min) / (mean - min).max(1e-12)
    };
    let wanted = (peak_factor - night_min) / (1.0 - night_min);
    let (mut lo, mut hi) = (0.0, 50.0);
    if peakiness(lo) > wanted {
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            if peakiness(mid) > wanted {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }
    let raw = combined(lo);
    let (min, mean, _) = stats(&raw);
    let scale = (1.0 - night_min) / (mean - min).max(1e-12);
    raw.iter().map(|r| night_min + scale * (r - min)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::sim::noise::{room_rng, Stream};
    use cistern_schemas::Timestamp;

    fn clock_at_local_hour(day: i64, hour: f64) -> LocalClock {
        let t_s = day * 86_400 + (hour * 3600.0) as i64 - 8 * 3600;
        LocalClock::at(Timestamp(t_s * 1000))
    }

    #[test]
    fn the_shape_has_the_wanted_mean_minimum_and_peak() {
        for index in 0..20 {
            let mut rng = room_rng(11, Stream::Physics, index);
            let m = DemandModel::new(800, &clock_at_local_hour(20_000, 0.0), &mut rng);
            for table in [&m.weekday_shape, &m.weekend_shape] {
                let mean = table.iter().map(|&v| f64::from(v)).sum::<f64>() / SLOTS as f64;
                let min = table.iter().copied().fold(f32::INFINITY, f32::min);
                let max = table.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                assert!((mean - 1.0).abs() < 1e-4, "mean {mean}");
                assert!((f64::from(min) - m.night_min).abs() < 1e-4);
                assert!(
                    (f64::from(max) - m.peak_factor).abs() < 0.02,
                    "{max} {}",
                    m.peak_factor
                );
            }
            let night = m.shape(&m.weekday_shape, 3.0);
            let morning = m.shape(&m.weekday_shape, 7.0);
            let evening = m.shape(&m.weekday_shape, 19.5);
            assert!(
                night < 0.5 && morning > 1.2 && evening > 1.2,
                "{night} {morning} {evening}"
            );
        }
    }

    #[test]
    fn a_day_of_demand_averages_near_the_mean() {
        let mut rng = room_rng(5, Stream::Physics, 0);
        let mut m = DemandModel::new(1500, &clock_at_local_hour(20_000, 0.0), &mut rng);
        let mut total = 0.0;
        let days = 7;
        for s in 0..days * 86_400 {
            let clock = clock_at_local_hour(20_000, s as f64 / 3600.0);
            total += m.step(&clock, &mut rng);
        }
        let avg = total / (days * 86_400) as f64;
        let ratio = avg / m.mean_m3h();
        assert!((0.85..1.2).contains(&ratio), "{ratio}");
    }
}
