//! The compute kernels: what a task actually does with a core, and the digest it yields.
//!
//! The kernels are written so that the optimiser cannot delete or shortcut them: each step
//! depends on the previous one (no vectorising, no closed form), and the final state feeds the
//! digest the runner must report.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::mix::{hash2, hash3, mix64, reduce};
use crate::spec::{Access, Kind, Task, Workload};

/// Independent pointer-chasing chains in the memory kernel. Several chains keep several cache
/// misses in flight, as real memory-bound code does, so the kernel is limited by memory
/// bandwidth as well as latency and contends with the other cores for it.
const MEMORY_CHAINS: usize = 4;

/// Bytes of a working set filled between two progress reports.
pub const FILL_CHUNK_BYTES: u64 = 64 << 20;

/// Runs the compute part of tasks. Built once per run (the `memory` kind fills its shared
/// buffer here, outside any timed region) and shared read-only by every thread.
#[derive(Clone, Debug)]
pub struct Executor {
    kind: Kind,
    access: Access,
    seed: u64,
    fingerprint: u64,
    /// The buffer `memory` tasks read; empty for other kinds. Shared, read-only. Under stream
    /// access, its two halves are the triad's `b` and `c`.
    arena: Arc<[u64]>,
    /// The triad's `a`, which stream tasks write (a third of the working set; empty
    /// otherwise). What is written there never feeds a digest: every writer of an element
    /// writes the same value, and atomics make the sharing well-defined.
    out: Arc<[AtomicU64]>,
}

/// Per-thread reusable memory, so that running a task allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    payload: Vec<u8>,
}

impl Executor {
    /// Prepares to run tasks of `workload`, or says why its buffer cannot be had: what a server
    /// must use for a working set a peer asked for (an allocation that fails is an answer,
    /// never an abort).
    pub fn try_new(workload: &Workload) -> Result<Executor, String> {
        Executor::try_new_with(workload, &mut |_, _| {})
    }

    /// [`Executor::try_new`], telling `progress` how many bytes of the working set are filled
    /// out of how many, every [`FILL_CHUNK_BYTES`] (a 16 GiB working set takes a while).
    pub fn try_new_with(workload: &Workload, progress: &mut dyn FnMut(u64, u64)) -> Result<Executor, String> {
        let (arena_words, out_words) = buffer_words(workload);
        let mut arena: Vec<u64> = Vec::new();
        let mut out: Vec<AtomicU64> = Vec::new();
        let reserved = usize::try_from(arena_words)
            .ok()
            .zip(usize::try_from(out_words).ok())
            .and_then(|(a, o)| arena.try_reserve_exact(a).ok().and(out.try_reserve_exact(o).ok()));
        reserved.ok_or_else(|| format!("cannot allocate a working set of {} bytes", workload.working_set))?;
        let total = (arena_words + out_words) * 8;
        let chunk = FILL_CHUNK_BYTES / 8;
        let mut filled = 0;
        while filled < arena_words {
            let end = (filled + chunk).min(arena_words);
            arena.extend((filled..end).map(|i| hash2(workload.seed, i)));
            filled = end;
            progress(filled * 8, total);
        }
        // Written now, so that no page of it is first touched inside a task.
        let mut zeroed = 0;
        while zeroed < out_words {
            let end = (zeroed + chunk).min(out_words);
            out.extend((zeroed..end).map(|_| AtomicU64::new(0)));
            zeroed = end;
            progress((arena_words + zeroed) * 8, total);
        }
        Ok(Executor {
            kind: workload.kind,
            access: workload.access,
            seed: workload.seed,
            fingerprint: workload.fingerprint(),
            arena: Arc::from(arena),
            out: Arc::from(out),
        })
    }

    /// An executor for `workload` over this one's buffers (no second fill): `workload` must
    /// differ from the one this was built for in its task count or sizes only (the same kind,
    /// access, seed and working set), as a workload does once `task_cost` is calibrated.
    pub fn for_workload(&self, workload: &Workload) -> Executor {
        Executor {
            kind: workload.kind,
            access: workload.access,
            seed: workload.seed,
            fingerprint: workload.fingerprint(),
            arena: self.arena.clone(),
            out: self.out.clone(),
        }
    }

    /// Prepares to run tasks of `workload`; panics where its working set cannot be allocated
    /// (configs are checked against the memory at hand first; a server uses [`Executor::try_new`]).
    pub fn new(workload: &Workload) -> Executor {
        Executor::try_new(workload).unwrap_or_else(|reason| panic!("{reason}"))
    }

    /// Generates `task`'s payload into `scratch` and runs the task's compute part on it.
    /// Returns the task's digest. Does not wait for the task's I/O: that is the caller's part.
    pub fn compute(&self, task: &Task, scratch: &mut Scratch) -> u64 {
        fill_payload(self.seed, task, &mut scratch.payload);
        self.compute_on(task, &scratch.payload)
    }

    /// Runs `task`'s compute part on a payload that was generated elsewhere (shipped by a
    /// coordinator, say). The digest equals [`Executor::compute`]'s when the payload is the
    /// one [`fill_payload`] generates.
    pub fn compute_on(&self, task: &Task, payload: &[u8]) -> u64 {
        let input = hash2(read_payload(payload), hash2(self.fingerprint, task.id));
        let state = match self.kind {
            Kind::Cpu | Kind::Mixed | Kind::Replay => cpu_chain(input, 0, task.iterations),
            Kind::Memory if self.access == Access::Stream => {
                self.stream(input).run(task.iterations).finish(input)
            }
            Kind::Memory => Chase::new(&self.arena, input).run(task.iterations).finish(input),
            Kind::Io => input,
        };
        hash3(self.fingerprint, task.id, state)
    }

    fn stream(&self, input: u64) -> Triad<'_> {
        Triad::new(&self.arena, &self.out, input)
    }

    /// [`Executor::compute`] in slices of `slice` iterations, calling `between` after each
    /// slice but the last: the same digest, with a point where a runner may yield the core
    /// (an emulated interpreter lock is released there when another thread asks for it).
    pub fn compute_sliced(
        &self,
        task: &Task,
        scratch: &mut Scratch,
        slice: u64,
        mut between: impl FnMut(),
    ) -> u64 {
        fill_payload(self.seed, task, &mut scratch.payload);
        let input = hash2(read_payload(&scratch.payload), hash2(self.fingerprint, task.id));
        let slice = slice.max(1);
        let state = match self.kind {
            Kind::Cpu | Kind::Mixed | Kind::Replay => {
                let (mut x, mut done) = (input, 0);
                while done < task.iterations {
                    let end = (done + slice).min(task.iterations);
                    x = cpu_chain(x, done, end);
                    done = end;
                    if done < task.iterations {
                        between();
                    }
                }
                x
            }
            Kind::Memory if self.access == Access::Stream => {
                in_slices(self.stream(input), task.iterations, slice, between, Triad::run).finish(input)
            }
            Kind::Memory => in_slices(
                Chase::new(&self.arena, input),
                task.iterations,
                slice,
                between,
                Chase::run,
            )
            .finish(input),
            Kind::Io => input,
        };
        hash3(self.fingerprint, task.id, state)
    }
}

/// Writes the payload of `task` into `buf`: `payload_bytes` bytes derived from the seed and the
/// task id, so any machine can regenerate them and a coordinator can ship them.
pub fn fill_payload(seed: u64, task: &Task, buf: &mut Vec<u8>) {
    let len = task.payload_bytes as usize;
    buf.clear();
    buf.reserve(len);
    let base = hash2(seed, task.id);
    let mut word = 0u64;
    while buf.len() + 8 <= len {
        buf.extend_from_slice(&mix64(base.wrapping_add(word)).to_le_bytes());
        word += 1;
    }
    let tail = len - buf.len();
    buf.extend_from_slice(&mix64(base.wrapping_add(word)).to_le_bytes()[..tail]);
}

/// Folds every byte of the payload into one word, so the kernel depends on all of it.
fn read_payload(payload: &[u8]) -> u64 {
    let mut chunks = payload.chunks_exact(8);
    let mut acc = payload.len() as u64;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"));
        acc = (acc ^ w).rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    acc ^ u64::from_le_bytes(last)
}

/// The CPU kernel: a serial chain of multiply-rotate-xor steps, one per iteration; steps
/// `start..end` of it (so that a chain can be run in slices with the same result).
#[inline(never)]
fn cpu_chain(mut x: u64, start: u64, end: u64) -> u64 {
    for i in start..end {
        x = x.wrapping_mul(0xd1b5_4a32_d192_ed03).rotate_left(23) ^ i;
    }
    x
}

/// Runs a resumable kernel `iterations` steps in slices of `slice`, calling `between` after
/// each slice but the last.
fn in_slices<K>(
    mut kernel: K,
    iterations: u64,
    slice: u64,
    mut between: impl FnMut(),
    run: impl Fn(K, u64) -> K,
) -> K {
    let mut done = 0;
    while done < iterations {
        let n = slice.min(iterations - done);
        kernel = run(kernel, n);
        done += n;
        if done < iterations {
            between();
        }
    }
    kernel
}

/// Words of the shared buffer and of the written one for `workload`: the working set read at
/// random, or two thirds of it read and one third written under stream access.
fn buffer_words(workload: &Workload) -> (u64, u64) {
    if workload.kind != Kind::Memory {
        return (0, 0);
    }
    let words = (workload.working_set / 8).max(1);
    match workload.access {
        Access::Random => (words, 0),
        Access::Stream => {
            let third = (words / 3).max(1);
            (2 * third, third)
        }
    }
}

/// The stream kernel: STREAM's triad, `a[i] = b[i] + s * c[i]`, over consecutive elements
/// from a start the task's input picks, wrapping at the end; one iteration is one element (16
/// bytes read, 8 written). Resumable, so that it can run in slices.
struct Triad<'a> {
    b: &'a [u64],
    c: &'a [u64],
    a: &'a [AtomicU64],
    scalar: u64,
    position: usize,
    sum: u64,
}

impl<'a> Triad<'a> {
    fn new(arena: &'a [u64], out: &'a [AtomicU64], input: u64) -> Triad<'a> {
        let (b, c) = arena.split_at(out.len());
        // Start on a cache line (8 words), so that a task's first line is a whole one.
        let position = reduce(input, out.len()) & !7;
        Triad {
            b,
            c,
            a: out,
            scalar: input | 1,
            position,
            sum: 0,
        }
    }

    #[inline(never)]
    fn run(mut self, iterations: u64) -> Triad<'a> {
        let n = self.a.len();
        let mut left = iterations;
        while left > 0 {
            let len = (left.min((n - self.position) as u64)) as usize;
            let range = self.position..self.position + len;
            for ((a, &b), &c) in self.a[range.clone()]
                .iter()
                .zip(&self.b[range.clone()])
                .zip(&self.c[range])
            {
                let value = b.wrapping_add(self.scalar.wrapping_mul(c));
                a.store(value, Ordering::Relaxed);
                self.sum = self.sum.wrapping_add(value);
            }
            self.position = (self.position + len) % n;
            left -= len as u64;
        }
        self
    }

    fn finish(self, input: u64) -> u64 {
        hash2(input, self.sum)
    }
}

/// The memory kernel: rounds of one dependent random read on each of [`MEMORY_CHAINS`]
/// chains over the shared buffer. Resumable, so that it can run in slices.
struct Chase<'a> {
    arena: &'a [u64],
    state: [u64; MEMORY_CHAINS],
    index: [usize; MEMORY_CHAINS],
}

impl<'a> Chase<'a> {
    fn new(arena: &'a [u64], input: u64) -> Chase<'a> {
        let len = arena.len();
        let mut state = [0u64; MEMORY_CHAINS];
        let mut index = [0usize; MEMORY_CHAINS];
        for (c, (s, i)) in state.iter_mut().zip(index.iter_mut()).enumerate() {
            *s = hash2(input, c as u64);
            *i = reduce(*s, len);
        }
        Chase { arena, state, index }
    }

    #[inline(never)]
    fn run(mut self, iterations: u64) -> Chase<'a> {
        let len = self.arena.len();
        for _ in 0..iterations {
            for c in 0..MEMORY_CHAINS {
                let s = (self.state[c] ^ self.arena[self.index[c]]).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                self.state[c] = s;
                self.index[c] = reduce(s ^ (s >> 29), len);
            }
        }
        self
    }

    fn finish(self, input: u64) -> u64 {
        self.state.into_iter().fold(input, hash2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::sample;

    #[test]
    fn payload_has_the_requested_length_and_is_deterministic() {
        let w = sample(Kind::Cpu);
        for bytes in [0, 1, 7, 8, 9, 1000] {
            let task = Task {
                payload_bytes: bytes,
                ..w.task(3)
            };
            let (mut a, mut b) = (Vec::new(), vec![1, 2, 3]);
            fill_payload(w.seed, &task, &mut a);
            fill_payload(w.seed, &task, &mut b);
            assert_eq!(a.len(), bytes as usize);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn sliced_computation_gives_the_same_digest_and_yields_between_slices() {
        let stream = Workload {
            access: Access::Stream,
            ..sample(Kind::Memory)
        };
        let cases = [Kind::Cpu, Kind::Memory, Kind::Io, Kind::Mixed].map(sample);
        for mut w in cases.into_iter().chain([stream]) {
            let kind = (w.kind, w.access);
            // More iterations than the stream's arrays have elements: it wraps around.
            w.iterations = 3000;
            let exec = Executor::new(&w);
            let task = w.task(9);
            let whole = exec.compute(&task, &mut Scratch::default());
            for slice in [1, 7, 999, 1000, 5000] {
                let mut yields = 0;
                let sliced = exec.compute_sliced(&task, &mut Scratch::default(), slice, || yields += 1);
                assert_eq!(sliced, whole, "{kind:?} in slices of {slice}");
                let expected = if w.kind.computes() {
                    task.iterations.div_ceil(slice) - 1
                } else {
                    0
                };
                assert_eq!(yields, expected, "{kind:?} slice {slice}");
            }
        }
    }

    #[test]
    fn stream_access_writes_its_third_and_digests_apart_from_random_access() {
        let random = sample(Kind::Memory);
        let stream = Workload {
            access: Access::Stream,
            ..random.clone()
        };
        let (r, s) = (Executor::new(&random), Executor::new(&stream));
        assert_eq!(
            s.arena.len() + s.out.len(),
            (stream.working_set / 8 / 3 * 3) as usize
        );
        let task = stream.task(4);
        let digest = s.compute(&task, &mut Scratch::default());
        assert_ne!(digest, r.compute(&random.task(4), &mut Scratch::default()));
        assert_eq!(
            digest,
            s.compute(&task, &mut Scratch::default()),
            "writes change no digest"
        );
        let written = s.out.iter().filter(|a| a.load(Ordering::Relaxed) != 0).count();
        assert_eq!(written as u64, task.iterations.min(s.out.len() as u64));
    }

    #[test]
    fn filling_reports_progress_up_to_the_whole_working_set_and_is_done_once() {
        let w = Workload {
            working_set: 3 * FILL_CHUNK_BYTES + 24,
            access: Access::Stream,
            ..sample(Kind::Memory)
        };
        let mut reports = Vec::new();
        let built = Executor::try_new_with(&w, &mut |filled, total| reports.push((filled, total))).unwrap();
        let total = reports[0].1;
        assert!(reports.len() >= 3, "{reports:?}");
        assert!(reports.windows(2).all(|p| p[0].0 < p[1].0), "{reports:?}");
        assert_eq!(reports.last(), Some(&(total, total)));
        // Another workload over the same buffers: the digests of a fresh executor.
        let more = Workload {
            iterations: 77,
            ..w.clone()
        };
        let task = more.task(3);
        let reused = built.for_workload(&more).compute(&task, &mut Scratch::default());
        assert_eq!(
            reused,
            Executor::new(&more).compute(&task, &mut Scratch::default())
        );
    }

    #[test]
    fn digest_depends_on_every_payload_byte() {
        let w = sample(Kind::Cpu);
        let exec = Executor::new(&w);
        let task = w.task(5);
        let mut payload = Vec::new();
        fill_payload(w.seed, &task, &mut payload);
        let base = exec.compute_on(&task, &payload);
        for i in [0, 31, 63] {
            let mut changed = payload.clone();
            changed[i] ^= 1;
            assert_ne!(exec.compute_on(&task, &changed), base, "byte {i}");
        }
    }

    #[test]
    fn digest_depends_on_seed_id_and_parameters() {
        for kind in [Kind::Cpu, Kind::Memory, Kind::Io, Kind::Mixed] {
            let w = sample(kind);
            let d = |w: &Workload, id| Executor::new(w).compute(&w.task(id), &mut Scratch::default());
            assert_eq!(d(&w, 1), d(&w, 1), "{kind:?} is deterministic");
            assert_ne!(d(&w, 1), d(&w, 2), "{kind:?} depends on the id");
            let reseeded = Workload {
                seed: 43,
                ..w.clone()
            };
            assert_ne!(d(&w, 1), d(&reseeded, 1), "{kind:?} depends on the seed");
            let bigger = Workload {
                payload_bytes: 65,
                ..w.clone()
            };
            assert_ne!(d(&w, 1), d(&bigger, 1), "{kind:?} depends on the parameters");
        }
    }
}
