//! Where a point's efficiency went: the POP metrics (load balance x communication x
//! computation), from the time each lane spent inside tasks. Pure arithmetic over a point's
//! figures; the runners and the simulator measure the lanes, this file only divides.

use serde::{Deserialize, Serialize};

/// Time inside tasks in one run (the repeat at the point's median wall time): what the
/// breakdown is computed from. A *lane* runs one task at a time: a pool thread, a worker's
/// thread, a process of the pool, or one of an async pool's in-flight slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Useful {
    /// Time inside the parallel phase's tasks (their waits included), summed over the lanes,
    /// seconds.
    pub tasks_s: f64,
    /// The busiest lane's share of it, seconds.
    pub max_lane_s: f64,
    /// Lanes that ran at least one task.
    pub lanes: usize,
    /// The serial phase's task, seconds (0 without one).
    pub serial_s: f64,
    /// Distributed points: the wall time with an ideal network over the wall time with the
    /// network as calibrated, from two runs of the simulator (absent without a calibration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<f64>,
}

impl Useful {
    /// The useful time of a run from each lane's time inside tasks and the serial task's, ns.
    pub fn of(lanes_ns: &[u64], serial_ns: u64) -> Useful {
        let busy: Vec<u64> = lanes_ns.iter().copied().filter(|&ns| ns > 0).collect();
        Useful {
            tasks_s: busy.iter().map(|&ns| ns as f64).sum::<f64>() / 1e9,
            max_lane_s: busy.iter().copied().max().unwrap_or(0) as f64 / 1e9,
            lanes: busy.len(),
            serial_s: serial_ns as f64 / 1e9,
            transfer: None,
        }
    }

    /// All the time inside tasks, the serial task's included, seconds.
    pub fn total_s(&self) -> f64 {
        self.tasks_s + self.serial_s
    }
}

/// A point's efficiency as the product of the factors that lose it (each 1 when nothing is
/// lost; computation can pass 1 when tasks ran faster than on one core).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Mean time inside tasks over the lanes, over the busiest lane's: below 1 when some
    /// lanes had more work than others (task sizes, a thread starved of tasks).
    pub load_balance: f64,
    /// The busiest lane's time inside tasks over the wall time (with a serial phase, the mean
    /// lane's over the wall, divided by the load balance): everything that is not a task:
    /// dispatch, waiting for refills, the serial phase, the network.
    pub communication: f64,
    /// The 1-core run's wall time over the time inside tasks at this point, per core: below 1
    /// when tasks got slower (memory, caches, clock, contention for a lock).
    pub computation: f64,
    /// Distributed points: the part of communication an ideal network would not win back
    /// (communication over transfer): the coordinator's dispatch, the workers' refills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serialisation: Option<f64>,
    /// Distributed points: the wall time with an ideal network (no latency, unlimited
    /// bandwidth) over the wall time with the network as calibrated, from two runs of the
    /// simulator (absent without a calibration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<f64>,
}

/// The factors of a breakdown, in the order tables and heat maps show them.
pub const FACTORS: [&str; 5] = [
    "load_balance",
    "communication",
    "serialisation",
    "transfer",
    "computation",
];

impl Breakdown {
    /// The breakdown of a point of `cores` cores whose run took `wall_s` with `useful` time
    /// inside tasks, against the 1-core run's wall time `t1_s` (the reference: a plain loop
    /// does nothing but run tasks, so its wall time is its useful time). The product of the
    /// three factors is `t1_s / (cores * wall_s)`, the point's efficiency, exactly.
    /// `None` when the figures cannot give one (no time inside tasks, no wall time).
    pub fn of(useful: &Useful, cores: usize, wall_s: f64, t1_s: f64) -> Option<Breakdown> {
        let total = useful.total_s();
        if cores == 0 || wall_s <= 0.0 || t1_s <= 0.0 || total <= 0.0 {
            return None;
        }
        // Every core is a lane, whether or not it ran a task (a thread that never got one
        // counts as idle); an async pool may have more lanes than cores.
        let lanes = useful.lanes.max(cores) as f64;
        let load_balance = if useful.max_lane_s > 0.0 {
            (useful.tasks_s / lanes) / useful.max_lane_s
        } else {
            1.0
        };
        let communication = (total / lanes) / (load_balance * wall_s);
        let computation = t1_s * lanes / (cores as f64 * total);
        let breakdown = Breakdown {
            load_balance,
            communication,
            computation,
            serialisation: None,
            transfer: None,
        };
        Some(match useful.transfer {
            Some(transfer) => breakdown.with_transfer(transfer),
            None => breakdown,
        })
    }

    /// Splits communication into serialisation x transfer, given `transfer` (the wall time
    /// with an ideal network over the wall time with the real one).
    pub fn with_transfer(mut self, transfer: f64) -> Breakdown {
        if transfer.is_finite() && transfer > 0.0 {
            let transfer = transfer.min(1.0);
            self.transfer = Some(transfer);
            self.serialisation = Some(self.communication / transfer);
        }
        self
    }

    /// The product of the three factors: the efficiency they explain.
    pub fn product(&self) -> f64 {
        self.load_balance * self.communication * self.computation
    }

    /// A factor by its name in [`FACTORS`].
    pub fn factor(&self, name: &str) -> Option<f64> {
        match name {
            "load_balance" => Some(self.load_balance),
            "communication" => Some(self.communication),
            "computation" => Some(self.computation),
            "serialisation" => self.serialisation,
            "transfer" => self.transfer,
            _ => None,
        }
    }

    /// The factor that loses the most: the smallest of load balance, communication and
    /// computation, with its value; communication is named by its smaller part (and that
    /// part's value) when it is split.
    pub fn limiting(&self) -> (&'static str, f64) {
        let communication = match (self.serialisation, self.transfer) {
            (Some(s), Some(t)) if t < s => ("transfer", t),
            (Some(s), Some(_)) => ("serialisation", s),
            _ => ("communication", self.communication),
        };
        let mut worst = (("load_balance", self.load_balance), self.load_balance);
        for (candidate, value) in [
            (communication, self.communication),
            (("computation", self.computation), self.computation),
        ] {
            if value < worst.1 {
                worst = (candidate, value);
            }
        }
        worst.0
    }
}

/// A factor's band in the heat map: "good" above 0.8, "fair" above 0.6, "poor" below.
pub fn band(value: f64) -> &'static str {
    if value > 0.8 {
        "good"
    } else if value > 0.6 {
        "fair"
    } else {
        "poor"
    }
}

/// A factor's name as people read it.
pub fn factor_title(name: &str) -> &'static str {
    match name {
        "load_balance" => "load balance",
        "communication" => "communication",
        "serialisation" => "serialisation",
        "transfer" => "transfer",
        "computation" => "computation",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_factors_multiply_to_the_efficiency_and_each_names_its_own_loss() {
        // Perfect: 2 lanes of 0.5 s each, wall 0.5 s, T1 1 s.
        let b = Breakdown::of(&Useful::of(&[500_000_000, 500_000_000], 0), 2, 0.5, 1.0).unwrap();
        assert!(close(b.load_balance, 1.0) && close(b.communication, 1.0) && close(b.computation, 1.0));
        // Imbalance: one lane 0.7 s, one 0.3 s, wall 0.7 s.
        let b = Breakdown::of(&Useful::of(&[700_000_000, 300_000_000], 0), 2, 0.7, 1.0).unwrap();
        assert!(
            close(b.load_balance, 0.5 / 0.7) && close(b.communication, 1.0),
            "{b:?}"
        );
        assert!(close(b.product(), 1.0 / 1.4));
        // Tasks twice as slow: 2 lanes of 1 s, wall 1 s.
        let b = Breakdown::of(&Useful::of(&[1_000_000_000; 2], 0), 2, 1.0, 1.0).unwrap();
        assert!(close(b.computation, 0.5) && close(b.load_balance, 1.0) && close(b.communication, 1.0));
        // Waiting between tasks: lanes 0.5 s each in a wall of 0.8 s.
        let b = Breakdown::of(&Useful::of(&[500_000_000; 2], 0), 2, 0.8, 1.0).unwrap();
        assert!(close(b.communication, 0.5 / 0.8) && close(b.product(), 1.0 / 1.6));
        assert_eq!(b.limiting().0, "communication");
        // A thread that ran nothing is an idle lane: 4 cores, 2 lanes busy.
        let b = Breakdown::of(&Useful::of(&[500_000_000, 500_000_000, 0], 0), 4, 0.5, 1.0).unwrap();
        assert!(close(b.load_balance, 0.5) && close(b.product(), 0.5), "{b:?}");
        assert_eq!(b.limiting().0, "load_balance");
    }

    #[test]
    fn a_serial_phase_is_communication_not_imbalance() {
        // Half serial at 2 cores: 0.25 s on each lane, then 0.5 s of serial task; wall 0.75 s.
        let u = Useful::of(&[250_000_000, 250_000_000], 500_000_000);
        let b = Breakdown::of(&u, 2, 0.75, 1.0).unwrap();
        assert!(close(b.load_balance, 1.0), "{b:?}");
        assert!(close(b.communication, 2.0 / 3.0), "{b:?}");
        assert!(close(b.computation, 1.0), "{b:?}");
        assert!(close(b.product(), 1.0 / 1.5));
    }

    #[test]
    fn transfer_splits_communication_and_names_the_network_when_it_loses_most() {
        let u = Useful {
            transfer: Some(0.6),
            ..Useful::of(&[500_000_000; 2], 0)
        };
        let b = Breakdown::of(&u, 2, 1.0, 1.0).unwrap();
        assert_eq!(b.transfer, Some(0.6));
        assert!(close(b.serialisation.unwrap() * 0.6, b.communication));
        assert_eq!(b.limiting().0, "transfer");
        assert!(Breakdown::of(&Useful::default(), 2, 1.0, 1.0).is_none());
        assert_eq!((band(0.9), band(0.7), band(0.5)), ("good", "fair", "poor"));
    }
}
