//! Social choice (SPEC §1): players report their types and a social choice function maps
//! the reports to the principal's welfare objective.

use crate::types::TYPE_LEVELS;
use crate::welfare::{Ratio, Welfare};

/// A social choice function: reports (σᵢ as multiples of `1 / TYPE_LEVELS`) and the
/// principal's own optional type go in, a member of the welfare set comes out.
/// Implement it to add new voting rules.
pub trait SocialChoice: Send + Sync + std::fmt::Debug {
    /// Chooses the objective for the coming voting round.
    fn choose(&self, reports: &[u32], principal_type: Option<u32>) -> Welfare;
}

/// The paper's default: `η = mean(σ)` in the interpolated welfare.
#[derive(Clone, Copy, Debug, Default)]
pub struct MeanVote;

impl SocialChoice for MeanVote {
    fn choose(&self, reports: &[u32], _principal_type: Option<u32>) -> Welfare {
        Welfare::Interpolated {
            eta: Ratio {
                num: reports.iter().sum(),
                den: TYPE_LEVELS * reports.len() as u32,
            },
        }
    }
}

/// `η = median(σ)` (the mean of the two middle reports for an even count).
#[derive(Clone, Copy, Debug, Default)]
pub struct MedianVote;

impl SocialChoice for MedianVote {
    fn choose(&self, reports: &[u32], _principal_type: Option<u32>) -> Welfare {
        let mut s = reports.to_vec();
        s.sort_unstable();
        let n = s.len();
        let num = if n % 2 == 1 {
            2 * s[n / 2]
        } else {
            s[n / 2 - 1] + s[n / 2]
        };
        Welfare::Interpolated {
            eta: Ratio {
                num,
                den: 2 * TYPE_LEVELS,
            },
        }
    }
}

/// Majority between two named objectives: player i votes for `first` when
/// `σᵢ ≥ threshold` and for `second` otherwise; ties go to `first`.
#[derive(Clone, Copy, Debug)]
pub struct MajorityVote {
    /// Objective backed by reports at or above the threshold.
    pub first: Welfare,
    /// Objective backed by reports below it.
    pub second: Welfare,
    /// The threshold, in `1 / TYPE_LEVELS`.
    pub threshold: u32,
}

impl SocialChoice for MajorityVote {
    fn choose(&self, reports: &[u32], _principal_type: Option<u32>) -> Welfare {
        let yes = reports.iter().filter(|&&r| r >= self.threshold).count();
        if 2 * yes >= reports.len() {
            self.first
        } else {
            self.second
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_median_majority() {
        let r = [0, 64, 256];
        let Welfare::Interpolated { eta } = MeanVote.choose(&r, None) else {
            panic!()
        };
        assert!((eta.value() - 320.0 / 768.0).abs() < 1e-12);
        let Welfare::Interpolated { eta } = MedianVote.choose(&r, None) else {
            panic!()
        };
        assert_eq!(eta.value(), 0.25);
        let Welfare::Interpolated { eta } = MedianVote.choose(&[0, 64, 128, 256], None) else {
            panic!()
        };
        assert_eq!(eta.value(), 96.0 / 256.0);
        let m = MajorityVote {
            first: Welfare::Utilitarian,
            second: Welfare::Egalitarian,
            threshold: 128,
        };
        assert_eq!(m.choose(&[200, 10, 10], None), Welfare::Egalitarian);
        assert_eq!(m.choose(&[200, 200, 10], None), Welfare::Utilitarian);
        assert_eq!(m.choose(&[200, 10], None), Welfare::Utilitarian);
    }

    #[test]
    fn the_median_of_two_and_of_five_reports() {
        let eta = |reports: &[u32]| match MedianVote.choose(reports, None) {
            Welfare::Interpolated { eta } => eta.value(),
            w => panic!("{w:?}"),
        };
        assert_eq!(
            eta(&[256, 0]),
            0.5,
            "an even count: the mean of the middle two"
        );
        assert_eq!(
            eta(&[256, 0, 128, 32, 64]),
            0.25,
            "an odd count: the middle one"
        );
        assert_eq!(eta(&[64]), 0.25);
    }
}
