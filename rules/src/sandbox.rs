//! The Rhai sandbox: one engine per rule set, with hard limits and no I/O.
//!
//! Rule authors are engineers, not adversaries, but a rule is code that runs inside every room
//! actor thousands of times a second: a mistake such as `loop {}` or a string doubled in a loop
//! must cost a bounded amount and then be stopped, reported with its rule id and disabled,
//! never stall the actor. So the engine is built from the raw engine with only pure packages
//! (no `sleep`, no `timestamp`, no `eval`, no modules, no `print` to stdout), and every
//! resource Rhai can meter is limited ([`SandboxLimits`]).
//!
//! Helpers registered for rule authors:
//! - `below(value, limit)`, `above(value, limit)`, `outside(value, lo, hi)`: threshold
//!   verdicts; the engine applies the rule's `deadband` as hysteresis and reports `value` and
//!   `limit` in the message.
//! - `known(x)`: `x` is not `()` (an optional input that is bad, stale or missing reads `()`).

use crate::event::FactValue;
use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage,
    BasicMathPackage, BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{Dynamic, Engine, EvalAltResult, Module, OptimizationLevel, INT};
use serde::{Deserialize, Serialize};

/// Resource limits of the sandbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxLimits {
    /// Operations per evaluation (a library rule uses 10-300).
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_function_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_variables: usize,
    pub max_functions: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            max_operations: 20_000,
            max_call_levels: 16,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_size: 4_096,
            max_array_size: 1_024,
            max_map_size: 256,
            max_variables: 256,
            max_functions: 32,
        }
    }
}

/// A threshold verdict built by `below`, `above` or `outside`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Threshold {
    pub value: f64,
    pub kind: ThresholdKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ThresholdKind {
    Below(f64),
    Above(f64),
    Outside(f64, f64),
}

impl Threshold {
    /// Whether the value is past the limit; `was_active` widens the band by `deadband`
    /// (the alarm stays on until the value is back by the deadband).
    pub fn active(&self, was_active: bool, deadband: Option<crate::meta::Deadband>) -> bool {
        let band = |limit: f64| match (was_active, deadband) {
            (true, Some(d)) => d.width(limit),
            _ => 0.0,
        };
        let v = self.value;
        match self.kind {
            ThresholdKind::Below(l) => v < l + band(l),
            ThresholdKind::Above(l) => v > l - band(l),
            ThresholdKind::Outside(lo, hi) => v < lo + band(lo) || v > hi - band(hi),
        }
    }

    /// The limit to quote in a message: the one crossed (or nearest) for `outside`.
    pub fn limit(&self) -> f64 {
        match self.kind {
            ThresholdKind::Below(l) | ThresholdKind::Above(l) => l,
            ThresholdKind::Outside(lo, hi) => {
                if (self.value - lo).abs() <= (self.value - hi).abs() {
                    lo
                } else {
                    hi
                }
            }
        }
    }
}

/// What a script's last expression says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// `()`, or `#{active: ()}`: cannot tell; the alarm holds its state.
    Unknown,
    Bool {
        active: bool,
        value: Option<FactValue>,
        /// The value as the Chinese message shows it, where the script words it
        /// (`#{active: true, value: "forced entry", value_zh: "强行开门"}`).
        value_zh: Option<FactValue>,
    },
    Threshold(Threshold),
}

/// How an evaluation failed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum EvalFailure {
    /// Stopped by a sandbox limit: the rule is disabled.
    Killed(String),
    /// Any other runtime error (type mismatch, unknown function …): the verdict is unknown.
    Error(String),
}

/// Builds the sandboxed engine.
pub(crate) fn build_engine(limits: &SandboxLimits) -> Engine {
    let mut e = Engine::new_raw();
    // Pure packages only: LanguageCorePackage (sleep, exit, parse_json …), time and blob are
    // deliberately absent. They are flattened into one module: a function call then costs one
    // hash lookup instead of one per package (the resolution cache does not outlive a call).
    let mut lib = Module::new();
    for module in [
        ArithmeticPackage::new().as_shared_module(),
        BasicStringPackage::new().as_shared_module(),
        BasicIteratorPackage::new().as_shared_module(),
        BasicFnPackage::new().as_shared_module(),
        LogicPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
    ] {
        lib.combine_flatten((*module).clone());
    }
    e.register_global_module(lib.into());
    for symbol in ["eval", "sleep", "exit", "import", "export"] {
        e.disable_symbol(symbol);
    }
    e.set_strict_variables(true);
    e.set_fail_on_invalid_map_property(false);
    e.set_optimization_level(OptimizationLevel::Simple);
    e.set_max_operations(limits.max_operations);
    e.set_max_call_levels(limits.max_call_levels);
    e.set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth);
    e.set_max_string_size(limits.max_string_size);
    e.set_max_array_size(limits.max_array_size);
    e.set_max_map_size(limits.max_map_size);
    e.set_max_variables(limits.max_variables);
    e.set_max_functions(limits.max_functions);
    e.on_print(|s| tracing::debug!(target: "cistern_rules::script", "{s}"));
    e.on_debug(|s, src, pos| {
        tracing::debug!(target: "cistern_rules::script", source = src.unwrap_or(""), %pos, "{s}")
    });

    e.register_type_with_name::<Threshold>("Threshold");
    e.register_fn("below", |v: f64, l: f64| {
        threshold(v, ThresholdKind::Below(l))
    });
    e.register_fn("below", |v: f64, l: INT| {
        threshold(v, ThresholdKind::Below(l as f64))
    });
    e.register_fn("below", |v: INT, l: f64| {
        threshold(v as f64, ThresholdKind::Below(l))
    });
    e.register_fn("above", |v: f64, l: f64| {
        threshold(v, ThresholdKind::Above(l))
    });
    e.register_fn("above", |v: f64, l: INT| {
        threshold(v, ThresholdKind::Above(l as f64))
    });
    e.register_fn("above", |v: INT, l: f64| {
        threshold(v as f64, ThresholdKind::Above(l))
    });
    e.register_fn("outside", |v: f64, lo: f64, hi: f64| {
        threshold(v, ThresholdKind::Outside(lo, hi))
    });
    e.register_fn("outside", |v: f64, lo: INT, hi: INT| {
        threshold(v, ThresholdKind::Outside(lo as f64, hi as f64))
    });
    e.register_fn("known", |x: Dynamic| !x.is_unit());
    e
}

fn threshold(value: f64, kind: ThresholdKind) -> Threshold {
    Threshold { value, kind }
}

/// Interprets a script result.
pub(crate) fn outcome(result: Dynamic) -> Result<Outcome, EvalFailure> {
    if result.is_unit() {
        return Ok(Outcome::Unknown);
    }
    if let Ok(b) = result.as_bool() {
        return Ok(Outcome::Bool {
            active: b,
            value: None,
            value_zh: None,
        });
    }
    if let Some(t) = result.clone().try_cast::<Threshold>() {
        return Ok(Outcome::Threshold(t));
    }
    if result.is_map() {
        if let Some(map) = result.try_cast::<rhai::Map>() {
            let value = map.get("value").and_then(FactValue::from_dynamic);
            let value_zh = map.get("value_zh").and_then(FactValue::from_dynamic);
            let active = map.get("active").cloned().unwrap_or(Dynamic::UNIT);
            if active.is_unit() {
                return Ok(Outcome::Unknown);
            }
            if let Some(t) = active.clone().try_cast::<Threshold>() {
                return Ok(Outcome::Threshold(t));
            }
            if let Ok(b) = active.as_bool() {
                return Ok(Outcome::Bool {
                    active: b,
                    value,
                    value_zh,
                });
            }
        }
        return Err(EvalFailure::Error(
            "a map result needs `active: true/false/()`".into(),
        ));
    }
    Err(EvalFailure::Error(format!(
        "a rule returns a bool, (), a threshold (below/above/outside) or #{{active, value}}; got {}",
        result.type_name()
    )))
}

/// Sorts a runtime error into "stopped by the sandbox" or "plain error".
pub(crate) fn classify(err: &EvalAltResult) -> EvalFailure {
    let inner = err.unwrap_inner();
    match inner {
        EvalAltResult::ErrorTooManyOperations(_)
        | EvalAltResult::ErrorTooManyVariables(_)
        | EvalAltResult::ErrorTooManyModules(_)
        | EvalAltResult::ErrorStackOverflow(_)
        | EvalAltResult::ErrorDataTooLarge(..)
        | EvalAltResult::ErrorTerminated(..) => EvalFailure::Killed(err.to_string()),
        _ => EvalFailure::Error(err.to_string()),
    }
}
