//! Learning rate per optimiser step.

use crate::config::ScheduleSection;

/// The learning rate of every step of a run.
#[derive(Clone, Debug)]
pub struct LrSchedule {
    base_lr: f64,
    section: ScheduleSection,
    steps_per_epoch: u64,
    total_steps: u64,
}

impl LrSchedule {
    /// `base_lr` scaled per step over `epochs × steps_per_epoch` steps
    /// (`steps_per_epoch` 0 counts as 1).
    pub fn new(base_lr: f64, section: ScheduleSection, steps_per_epoch: u64, epochs: u64) -> Self {
        Self { base_lr, section, steps_per_epoch: steps_per_epoch.max(1), total_steps: steps_per_epoch.max(1) * epochs }
    }

    /// Steps in the whole run.
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    /// The rate for `step` (0-based, the step about to be taken).
    ///
    /// Warm-up is linear from 0, `lr·step/warmup_steps`, as arcface_torch's
    /// `PolyScheduler`; after it, polynomial decay
    /// `lr·(1 − (step − warmup)/(total − warmup))^power`, or MultiStepLR's
    /// `lr·γ^(milestones passed)` with milestones in epochs.
    pub fn lr(&self, step: u64) -> f64 {
        let warmup_epochs = match self.section {
            ScheduleSection::Poly { warmup_epochs, .. } | ScheduleSection::Step { warmup_epochs, .. } => warmup_epochs,
        };
        let warmup_steps = (warmup_epochs * self.steps_per_epoch as f64).round() as u64;
        if step < warmup_steps {
            return self.base_lr * step as f64 / warmup_steps as f64;
        }
        match &self.section {
            ScheduleSection::Poly { power, .. } => {
                let span = self.total_steps.saturating_sub(warmup_steps).max(1) as f64;
                let progress = ((step - warmup_steps) as f64 / span).min(1.0);
                self.base_lr * (1.0 - progress).powf(*power)
            }
            ScheduleSection::Step { milestones, gamma, .. } => {
                let epoch = step / self.steps_per_epoch;
                let passed = milestones.iter().filter(|&&m| epoch >= m).count();
                self.base_lr * gamma.powi(passed as i32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polynomial_with_warmup_by_hand() {
        // 10 steps per epoch, 5 epochs, 1 warm-up epoch: steps 0..10 warm up.
        let schedule = LrSchedule::new(0.1, ScheduleSection::Poly { warmup_epochs: 1.0, power: 2.0 }, 10, 5);
        assert_eq!(schedule.lr(0), 0.0);
        assert!((schedule.lr(5) - 0.05).abs() < 1e-15);
        assert!((schedule.lr(10) - 0.1).abs() < 1e-15);
        // Step 30: progress (30 − 10)/(50 − 10) = 0.5 → 0.1 · 0.25.
        assert!((schedule.lr(30) - 0.025).abs() < 1e-15);
        assert!((schedule.lr(49) - 0.1 * (1.0f64 / 40.0).powi(2)).abs() < 1e-15);
    }

    #[test]
    fn magface_step_drops() {
        // MagFace: lr 0.1, ×0.1 at epochs 10, 18 and 22; 100 steps per epoch.
        let schedule = LrSchedule::new(0.1, ScheduleSection::Step { milestones: vec![10, 18, 22], gamma: 0.1, warmup_epochs: 0.0 }, 100, 25);
        assert_eq!(schedule.lr(0), 0.1);
        assert_eq!(schedule.lr(999), 0.1);
        assert!((schedule.lr(1000) - 0.01).abs() < 1e-15);
        assert!((schedule.lr(1800) - 0.001).abs() < 1e-15);
        assert!((schedule.lr(2499) - 1e-4).abs() < 1e-15);
    }
}
