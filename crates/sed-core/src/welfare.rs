//! The welfare set W (SPEC §1): functions of the players' accumulated quantities.

use serde::{Deserialize, Serialize};

/// An exact non-negative fraction, used for the interpolation weight η so that the
/// principal's reward on the linear family is computed exactly (see [`Welfare::linear`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ratio {
    /// Numerator.
    pub num: u32,
    /// Denominator (> 0).
    pub den: u32,
}

impl Ratio {
    /// The value as a float.
    #[must_use]
    pub fn value(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

/// A welfare function over per-player quantities `u`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Welfare {
    /// `Σ uᵢ`.
    Utilitarian,
    /// `(Π uᵢ)^(1/n)`; 0 when any `uᵢ ≤ 0`.
    Nash,
    /// `min uᵢ`.
    Egalitarian,
    /// The paper's `η·Σ uᵢ + (1 − η)·min uᵢ`, `η ∈ [0, 1]`.
    Interpolated {
        /// η.
        eta: Ratio,
    },
    /// `((1/n) Σ uᵢ^p)^(1/p)`; `p = 0` is the geometric mean; for `p ≤ 0`, 0 when any
    /// `uᵢ ≤ 0`.
    PMean {
        /// The exponent.
        p: f64,
    },
}

impl Welfare {
    /// Evaluates the welfare of `u` (which must be non-empty).
    #[must_use]
    pub fn eval(&self, u: &[f64]) -> f64 {
        let n = u.len() as f64;
        let sum: f64 = u.iter().sum();
        let min = u.iter().copied().fold(f64::INFINITY, f64::min);
        match *self {
            Welfare::Utilitarian => sum,
            Welfare::Egalitarian => min,
            Welfare::Interpolated { eta } => eta.value() * sum + (1.0 - eta.value()) * min,
            Welfare::Nash => geometric_mean(u),
            Welfare::PMean { p: 0.0 } => geometric_mean(u),
            Welfare::PMean { p } => {
                if p < 0.0 && min <= 0.0 {
                    0.0
                } else {
                    (u.iter().map(|x| x.max(0.0).powf(p)).sum::<f64>() / n).powf(1.0 / p)
                }
            }
        }
    }

    /// `Some((a, b))` when this welfare is `(a·Σ uᵢ + (b − a)·min uᵢ) / b`, a member of the
    /// linear family that engines evaluate exactly; `None` for Nash and p-means.
    #[must_use]
    pub fn linear(&self) -> Option<Ratio> {
        match *self {
            Welfare::Utilitarian => Some(Ratio { num: 1, den: 1 }),
            Welfare::Egalitarian => Some(Ratio { num: 0, den: 1 }),
            Welfare::Interpolated { eta } => Some(eta),
            Welfare::Nash | Welfare::PMean { .. } => None,
        }
    }
}

impl std::fmt::Display for Welfare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Welfare::Utilitarian => write!(f, "utilitarian"),
            Welfare::Nash => write!(f, "nash"),
            Welfare::Egalitarian => write!(f, "egalitarian"),
            Welfare::Interpolated { eta } => write!(f, "interpolated (eta = {:.4})", eta.value()),
            Welfare::PMean { p } => write!(f, "p-mean (p = {p})"),
        }
    }
}

fn geometric_mean(u: &[f64]) -> f64 {
    if u.iter().any(|&x| x <= 0.0) {
        return 0.0;
    }
    (u.iter().map(|x| x.ln()).sum::<f64>() / u.len() as f64).exp()
}

/// A welfare function as written in a config file.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WelfareSpec {
    /// Σ uᵢ.
    Utilitarian,
    /// Geometric mean.
    Nash,
    /// min uᵢ.
    Egalitarian,
    /// η·Σ uᵢ + (1 − η)·min uᵢ with a fixed η in [0, 1] (stored to 1/65536).
    Interpolated {
        /// η.
        eta: f64,
    },
    /// The p-mean.
    PMean {
        /// The exponent p.
        p: f64,
    },
}

impl WelfareSpec {
    /// The welfare function it names.
    #[must_use]
    pub fn welfare(&self) -> Welfare {
        match *self {
            WelfareSpec::Utilitarian => Welfare::Utilitarian,
            WelfareSpec::Nash => Welfare::Nash,
            WelfareSpec::Egalitarian => Welfare::Egalitarian,
            WelfareSpec::Interpolated { eta } => Welfare::Interpolated {
                eta: Ratio {
                    num: (eta * 65536.0).round() as u32,
                    den: 65536,
                },
            },
            WelfareSpec::PMean { p } => Welfare::PMean { p },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welfare_values() {
        let u = [1.0, 4.0, 16.0];
        assert_eq!(Welfare::Utilitarian.eval(&u), 21.0);
        assert_eq!(Welfare::Egalitarian.eval(&u), 1.0);
        assert!((Welfare::Nash.eval(&u) - 4.0).abs() < 1e-12);
        assert_eq!(Welfare::Nash.eval(&[0.0, 3.0]), 0.0);
        let half = Welfare::Interpolated {
            eta: Ratio { num: 1, den: 2 },
        };
        assert_eq!(half.eval(&u), 11.0);
        assert!((Welfare::PMean { p: 1.0 }.eval(&u) - 7.0).abs() < 1e-12);
        assert!((Welfare::PMean { p: 0.0 }.eval(&u) - 4.0).abs() < 1e-12);
        assert_eq!(Welfare::PMean { p: -1.0 }.eval(&[0.0, 1.0]), 0.0);
        // Large p tends to max, very negative p to min.
        assert!((Welfare::PMean { p: 200.0 }.eval(&u) - 16.0).abs() < 0.2);
        assert!((Welfare::PMean { p: -200.0 }.eval(&u) - 1.0).abs() < 0.02);
    }

    #[test]
    fn a_positive_p_mean_counts_a_zero_utility() {
        // Only p < 0 zeroes the mean when someone has nothing: ((0² + 2²) / 2)^(1/2) = √2.
        let r = Welfare::PMean { p: 2.0 }.eval(&[0.0, 2.0]);
        assert!((r - 2f64.sqrt()).abs() < 1e-12, "{r}");
    }

    #[test]
    fn welfare_names() {
        assert_eq!(Welfare::Nash.to_string(), "nash");
        assert_eq!(Welfare::Utilitarian.to_string(), "utilitarian");
        let eta = Ratio { num: 1, den: 4 };
        assert_eq!(
            Welfare::Interpolated { eta }.to_string(),
            "interpolated (eta = 0.2500)"
        );
        assert_eq!(Welfare::PMean { p: 2.0 }.to_string(), "p-mean (p = 2)");
    }

    #[test]
    fn a_configured_eta_becomes_a_ratio_over_65536() {
        let w = WelfareSpec::Interpolated { eta: 0.25 }.welfare();
        assert_eq!(
            w,
            Welfare::Interpolated {
                eta: Ratio {
                    num: 16384,
                    den: 65536
                }
            }
        );
    }
}
