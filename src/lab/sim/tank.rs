//! A break tank: its mass balance, the float-valve inlet, the overflow weir, leaks, and the
//! chlorine and age of the stored water.
//!
//! The balance is integrated on volumes, and every flow is clamped to what the tank can give
//! before it is booked, so that V_end − V_start equals the booked inflow − outflow − leak −
//! overflow to rounding: the platform's leakage and overflow analytics are tested against these
//! totals, so they must be exact rather than approximately right.

use cistern_actors::district::{InletCommand, LocalRule};
use cistern_schemas::fill_plan::FillMode;
use cistern_schemas::inventory::TankSpec;

/// Overflow weir: Q = C·h^1.5 with h the depth over the weir (a DN200 bell-mouth overflow).
const WEIR_M3H_PER_M15: f64 = 5000.0;
/// Metres of water per MPa.
const MPA_PER_M: f64 = 1.0 / 101.97;
/// Below this volume the stored water's quality is that of the inlet (nothing to mix with).
const MIXING_FLOOR_M3: f64 = 0.5;
/// A plan never lets the level fall this close to the supply floor: the inlet opens fully.
const FLOOR_MARGIN_M: f64 = 0.05;

/// Cumulative volumes booked through a tank since the simulation started, m³.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct TankTotals {
    pub(crate) initial_m3: f64,
    pub(crate) inflow_m3: f64,
    pub(crate) outflow_m3: f64,
    pub(crate) leak_m3: f64,
    pub(crate) overflow_m3: f64,
}

#[derive(Clone, Debug)]
pub(crate) struct Tank {
    area_m2: f64,
    height_m: f64,
    overflow_m: f64,
    hard_min_m: f64,
    /// Lowest level the supply can draw to: the hard minimum or the top of the fire reserve
    /// (the suction pipe sits above the reserve so that supply never takes it).
    supply_floor_m: f64,
    refill_on_m: f64,
    refill_off_m: f64,
    inlet_capacity_m3h: f64,
    pub(crate) volume_m3: f64,
    pub(crate) valve_open: bool,
    /// The inlet valve is jammed open (the overflow fault).
    pub(crate) valve_stuck_open: bool,
    /// Leak outflow at 1 m depth, m³/h; the leak grows with √depth (an orifice).
    pub(crate) leak_coefficient: f64,
    pub(crate) chlorine_mg_l: f64,
    pub(crate) age_h: f64,
    pub(crate) inflow_m3h: f64,
    pub(crate) outflow_m3h: f64,
    pub(crate) leak_m3h: f64,
    pub(crate) overflow_m3h: f64,
    pub(crate) totals: TankTotals,
    /// The platform's plan, as written to the controller's plan registers.
    pub(crate) plan: Option<LocalRule>,
    /// The plan's fallback hysteresis state (kept between steps, like the controller's).
    fallback_active: bool,
    /// What the fill logic did at the last step.
    pub(crate) mode: FillMode,
    /// The plan's rate limit while the valve is open in a window, m³/h.
    rate_limit_m3h: Option<f64>,
}

impl Tank {
    pub(crate) fn new(spec: &TankSpec, level_m: f64, chlorine_mg_l: f64, age_h: f64) -> Self {
        let volume_m3 = spec.volume_m3(level_m);
        Self {
            area_m2: spec.area_m2.max(1e-3),
            height_m: spec.height_m,
            overflow_m: spec.overflow_m,
            hard_min_m: spec.hard_min_m,
            supply_floor_m: spec.hard_min_m.max(spec.fire_reserve_m),
            refill_on_m: spec.refill_on_m,
            refill_off_m: spec.refill_off_m,
            inlet_capacity_m3h: spec.inlet_capacity_m3h,
            volume_m3,
            valve_open: level_m < spec.refill_on_m,
            valve_stuck_open: false,
            leak_coefficient: 0.0,
            chlorine_mg_l,
            age_h,
            inflow_m3h: 0.0,
            outflow_m3h: 0.0,
            leak_m3h: 0.0,
            overflow_m3h: 0.0,
            totals: TankTotals {
                initial_m3: volume_m3,
                ..TankTotals::default()
            },
            plan: None,
            fallback_active: false,
            mode: FillMode::FloatValve,
            rate_limit_m3h: None,
        }
    }

    pub(crate) fn level_m(&self) -> f64 {
        self.volume_m3 / self.area_m2
    }

    pub(crate) fn area_m2(&self) -> f64 {
        self.area_m2
    }

    pub(crate) fn inlet_capacity_m3h(&self) -> f64 {
        self.inlet_capacity_m3h
    }

    /// Whether the suction can still draw from this tank.
    pub(crate) fn can_supply(&self, margin_m: f64) -> bool {
        self.level_m() > self.supply_floor_m + margin_m
    }

    /// The low-low float switch.
    pub(crate) fn low_low(&self) -> bool {
        self.level_m() < self.hard_min_m
    }

    /// The overflow switch: water is going over the weir.
    pub(crate) fn overflowing(&self) -> bool {
        self.level_m() > self.overflow_m
    }

    /// Float valve with hysteresis: opens at refill-on, closes at refill-off.
    /// The controller's inlet logic at plan slot `slot`: the float valve without a plan (or
    /// after it expires), else the plan's local rule; never below the supply floor (hard
    /// minimum or fire reserve), where the inlet opens fully whatever the plan says.
    pub(crate) fn update_valve(&mut self, slot: u32) {
        let level = self.level_m();
        self.rate_limit_m3h = None;
        let command = self
            .plan
            .as_ref()
            .filter(|rule| slot < rule.expires_slot)
            .map(|rule| rule.command(slot, level, &mut self.fallback_active));
        let Some(command) = command else {
            self.mode = FillMode::FloatValve;
            self.fallback_active = false;
            if self.valve_stuck_open || level <= self.refill_on_m {
                self.valve_open = true;
            } else if level >= self.refill_off_m {
                self.valve_open = false;
            }
            return;
        };
        self.mode = if self.fallback_active {
            FillMode::Fallback
        } else {
            FillMode::Plan
        };
        self.valve_open = match command {
            InletCommand::Closed => false,
            InletCommand::Rate {
                rate_m3h,
                until_level_m,
            } => {
                self.rate_limit_m3h = Some(rate_m3h);
                level < until_level_m
            }
            InletCommand::Full { until_level_m } => level < until_level_m,
        };
        if level <= self.supply_floor_m + FLOOR_MARGIN_M {
            self.mode = FillMode::Fallback;
            self.rate_limit_m3h = None;
            self.valve_open = true;
        }
        if self.valve_stuck_open {
            self.valve_open = true;
        }
    }

    /// Inflow through the open valve: capacity · √((p_main − water head) / p_nominal).
    pub(crate) fn valve_flow_m3h(&self, mains_mpa: f64, nominal_mpa: f64) -> f64 {
        if !self.valve_open {
            return 0.0;
        }
        let drive = (mains_mpa - self.level_m() * MPA_PER_M).max(0.0);
        let flow = self.inlet_capacity_m3h * (drive / nominal_mpa.max(1e-3)).sqrt();
        match self.rate_limit_m3h {
            Some(limit) if !self.valve_stuck_open => flow.min(limit),
            _ => flow,
        }
    }

    /// Books one step of `dt_s` seconds with the given inflow and the draw the pumps ask of this
    /// tank; returns the draw actually delivered, m³/h.
    pub(crate) fn balance(&mut self, inflow_m3h: f64, draw_m3h: f64, dt_s: f64) -> f64 {
        let dt_h = dt_s / 3600.0;
        let before = self.volume_m3;
        let inflow = inflow_m3h.max(0.0) * dt_h;
        let outflow = (draw_m3h.max(0.0) * dt_h).min(before + inflow);
        let leak = (self.leak_coefficient * self.level_m().max(0.0).sqrt() * dt_h)
            .min(before + inflow - outflow)
            .max(0.0);
        let after = before + inflow - outflow - leak;
        let over_weir = after - self.area_m2 * self.overflow_m;
        let mut overflow = 0.0;
        if over_weir > 0.0 {
            let depth = over_weir / self.area_m2;
            overflow = (WEIR_M3H_PER_M15 * depth * depth.sqrt() * dt_h).min(over_weir);
        }
        // The weir cannot keep up only with absurd inflows; the lid then spills the rest.
        overflow += (after - overflow - self.area_m2 * self.height_m).max(0.0);
        self.volume_m3 = after - overflow;

        self.inflow_m3h = inflow / dt_h;
        self.outflow_m3h = outflow / dt_h;
        self.leak_m3h = leak / dt_h;
        self.overflow_m3h = overflow / dt_h;
        self.totals.inflow_m3 += inflow;
        self.totals.outflow_m3 += outflow;
        self.totals.leak_m3 += leak;
        self.totals.overflow_m3 += overflow;
        self.outflow_m3h
    }

    /// Mixes the step's inflow into the stored water (a stirred tank) and lets chlorine decay
    /// first-order with age.
    pub(crate) fn mix(&mut self, inlet_chlorine_mg_l: f64, decay_per_h: f64, dt_s: f64) {
        let dt_h = dt_s / 3600.0;
        if self.volume_m3 < MIXING_FLOOR_M3 {
            self.chlorine_mg_l = inlet_chlorine_mg_l;
            self.age_h = 0.0;
            return;
        }
        let exchange = (self.inflow_m3h / self.volume_m3 * dt_h).min(1.0);
        self.chlorine_mg_l += exchange * (inlet_chlorine_mg_l - self.chlorine_mg_l)
            - decay_per_h * self.chlorine_mg_l * dt_h;
        self.chlorine_mg_l = self.chlorine_mg_l.max(0.0);
        self.age_h = (self.age_h + dt_h - exchange * self.age_h).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TankSpec {
        TankSpec {
            area_m2: 20.0,
            height_m: 3.5,
            overflow_m: 3.2,
            hard_min_m: 0.4,
            fire_reserve_m: 0.0,
            refill_on_m: 2.4,
            refill_off_m: 2.9,
            inlet_capacity_m3h: 60.0,
        }
    }

    #[test]
    fn the_float_valve_has_hysteresis() {
        let mut t = Tank::new(&spec(), 2.6, 0.7, 5.0);
        t.update_valve(0);
        assert!(!t.valve_open);
        t.volume_m3 = 20.0 * 2.3;
        t.update_valve(0);
        assert!(t.valve_open);
        t.volume_m3 = 20.0 * 2.7;
        t.update_valve(0);
        assert!(t.valve_open, "stays open until refill-off");
        t.volume_m3 = 20.0 * 2.95;
        t.update_valve(0);
        assert!(!t.valve_open);
    }

    #[test]
    fn a_stuck_valve_overflows_and_the_books_balance() {
        let mut t = Tank::new(&spec(), 2.8, 0.7, 5.0);
        t.valve_stuck_open = true;
        t.leak_coefficient = 2.0;
        for _ in 0..4 * 3600 {
            t.update_valve(0);
            let q_in = t.valve_flow_m3h(0.3, 0.3);
            t.balance(q_in, 15.0, 1.0);
        }
        assert!(t.overflowing());
        assert!(t.totals.overflow_m3 > 10.0);
        assert!(
            t.level_m() < 3.2 + 0.1,
            "the weir holds the level near the overflow"
        );
        let tt = t.totals;
        let booked = tt.inflow_m3 - tt.outflow_m3 - tt.leak_m3 - tt.overflow_m3;
        assert!(((t.volume_m3 - tt.initial_m3) - booked).abs() < 1e-9);
    }

    #[test]
    fn a_tank_cannot_give_more_than_it_holds() {
        let mut t = Tank::new(&spec(), 0.0001, 0.7, 5.0);
        let got = t.balance(0.0, 100.0, 1.0);
        assert!((got - 0.002 * 3600.0).abs() < 1e-9, "{got}");
        assert!(t.volume_m3.abs() < 1e-12);
    }

    #[test]
    fn chlorine_decays_with_age() {
        let mut t = Tank::new(&spec(), 2.8, 0.8, 0.0);
        for _ in 0..10 * 3600 {
            t.mix(0.8, 0.08, 1.0);
        }
        assert!((t.age_h - 10.0).abs() < 1e-6);
        assert!((t.chlorine_mg_l - 0.8 * (-0.8_f64).exp()).abs() < 0.01);
    }
}
