//! Where a point's cores go: which workers (or simulated nodes) run how many threads.

/// Places `cores` over workers of `capacities` threads: on as few workers as hold them (the
/// largest first, in the given order among equals), spread evenly over those. A 16-core point
/// on machines of 8 cores runs on two of them, 8 + 8, as 16 cores of such machines would, so a
/// point's cores share a machine's memory and network link as they would in production. `None`
/// when the workers do not have that many threads in all, or for 0 cores.
pub fn place(capacities: &[usize], cores: usize) -> Option<Vec<usize>> {
    if cores == 0 || cores > capacities.iter().sum() {
        return None;
    }
    let mut order: Vec<usize> = (0..capacities.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(capacities[i]));
    let mut chosen = Vec::new();
    let mut room = 0;
    for i in order {
        if room >= cores {
            break;
        }
        if capacities[i] > 0 {
            chosen.push(i);
            room += capacities[i];
        }
    }
    chosen.sort_unstable();
    let mut placement = vec![0; capacities.len()];
    let mut left = cores;
    while left > 0 {
        for &i in &chosen {
            if left > 0 && placement[i] < capacities[i] {
                placement[i] += 1;
                left -= 1;
            }
        }
    }
    Some(placement)
}
