use super::*;

/// A sender at 20 ms per frame and a receiver pulling every 20 ms, 10 ms out of phase, in
/// simulated time.
struct World {
    jb: JitterBuffer,
    t0: Instant,
    stream: u32,
    seq0: u16,
    ts0: u32,
}

/// What one pull gave, without the borrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    Packet(u32),
    Fec(u32),
    Lost(u32),
    Stretch,
    Silence,
}

impl World {
    fn new() -> Self {
        Self::starting_at(7, 0, 0)
    }

    fn starting_at(stream: u32, seq0: u16, ts0: u32) -> Self {
        let t0 = Instant::now();
        World {
            jb: JitterBuffer::new(JitterConfig::default(), t0),
            t0,
            stream,
            seq0,
            ts0,
        }
    }

    /// Frame `n` of the current stream arrives at `at_ms`.
    fn arrive(&mut self, n: u16, at_ms: u64) -> PushOutcome {
        let seq = self.seq0.wrapping_add(n);
        let ts = self.ts0.wrapping_add(u32::from(n) * 960);
        let payload = [n as u8, 1, 2];
        self.jb.push(
            self.stream,
            seq,
            ts,
            &payload,
            self.t0 + Duration::from_millis(at_ms),
        )
    }

    /// Frame index `n` of the stream for a timestamp.
    fn frame_of(&self, ts: u32) -> u32 {
        ts.wrapping_sub(self.ts0) / 960
    }

    fn pull(&mut self, at_ms: u64) -> Out {
        let ts0 = self.ts0;
        let of = move |ts: u32| ts.wrapping_sub(ts0) / 960;
        match self.jb.pull(self.t0 + Duration::from_millis(at_ms)) {
            Playout::Packet { ts, payload } => {
                assert_eq!(payload[0], of(ts) as u8, "payload belongs to its frame");
                Out::Packet(of(ts))
            }
            Playout::Fec { ts, next_payload } => {
                assert_eq!(
                    next_payload[0],
                    (of(ts) + 1) as u8,
                    "FEC comes from the next frame"
                );
                Out::Fec(of(ts))
            }
            Playout::Conceal { ts: Some(ts) } => Out::Lost(of(ts)),
            Playout::Conceal { ts: None } => Out::Stretch,
            Playout::Silence => Out::Silence,
        }
    }

    /// Runs `frames` frames of steady traffic (arrivals at `n*20 + lag(n)` ms, `skip` lost),
    /// pulling at `k*20 + 10` ms; returns what each pull gave.
    fn run(
        &mut self,
        frames: u16,
        lag: impl Fn(u16) -> u64,
        skip: impl Fn(u16) -> bool,
    ) -> Vec<Out> {
        let mut arrivals: Vec<(u64, u16)> = (0..frames)
            .filter(|n| !skip(*n))
            .map(|n| (u64::from(n) * 20 + lag(n), n))
            .collect();
        arrivals.sort();
        let mut out = Vec::new();
        let mut i = 0;
        let end = u64::from(frames) * 20 + 400;
        let mut t = 10;
        while t < end {
            while i < arrivals.len() && arrivals[i].0 <= t {
                self.arrive(arrivals[i].1, arrivals[i].0);
                i += 1;
            }
            out.push(self.pull(t));
            t += 20;
        }
        out
    }
}

fn packets(out: &[Out]) -> Vec<u32> {
    out.iter()
        .filter_map(|o| match o {
            Out::Packet(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[test]
fn steady_packets_play_in_order_after_about_the_target_delay() {
    let mut w = World::new();
    let out = w.run(100, |_| 1, |_| false);
    let first = out.iter().position(|o| *o != Out::Silence).expect("plays");
    // Frame 0 arrives at 1 ms; the 40 ms target is met by the pull at 30 (30 + 10 ≥ 41 − 1).
    assert!((1..=3).contains(&first), "first frame at pull {first}");
    assert_eq!(packets(&out), (0..100).collect::<Vec<_>>());
    let s = w.jb.stats();
    assert_eq!((s.lost, s.dropped, s.late), (0, 0, 0));
    // The only concealment is at the end, when the sender stopped: five frames, then silence.
    assert_eq!((s.concealed, s.stretched), (5, 5));
    assert_eq!(w.jb.target(), Duration::from_millis(40));
}

#[test]
fn reordered_packets_are_played_in_order() {
    let mut w = World::new();
    // Every 4th packet overtakes its predecessor by 15 ms.
    let out = w.run(80, |n| if n % 4 == 1 { 25 } else { 1 }, |_| false);
    assert_eq!(packets(&out), (0..80).collect::<Vec<_>>());
    assert_eq!(w.jb.stats().lost, 0);
}

#[test]
fn duplicates_and_late_packets_are_dropped() {
    let mut w = World::new();
    assert_eq!(w.arrive(0, 0), PushOutcome::Accepted);
    assert_eq!(w.arrive(1, 20), PushOutcome::Accepted);
    assert_eq!(w.arrive(1, 21), PushOutcome::Duplicate);
    assert_eq!(w.arrive(2, 40), PushOutcome::Accepted);
    assert_eq!(w.pull(50), Out::Packet(0));
    assert_eq!(w.pull(70), Out::Packet(1));
    // Frame 0 again, after it was played: late.
    assert_eq!(w.arrive(0, 75), PushOutcome::Late);
    assert_eq!(w.pull(90), Out::Packet(2));
    let s = w.jb.stats();
    assert_eq!((s.duplicates, s.late, s.played), (1, 1, 3));
}

#[test]
fn a_lost_frame_is_rebuilt_from_fec_or_concealed() {
    let mut w = World::new();
    // Frame 10 is lost (11 carries its FEC); 20 and 21 are lost (22 carries 21's FEC).
    let out = w.run(40, |_| 1, |n| n == 10 || n == 20 || n == 21);
    let played: Vec<Out> = out.into_iter().filter(|o| *o != Out::Silence).collect();
    assert_eq!(played[10], Out::Fec(10));
    assert_eq!(played[11], Out::Packet(11));
    assert_eq!(played[20], Out::Lost(20));
    assert_eq!(played[21], Out::Fec(21));
    assert_eq!(played[22], Out::Packet(22));
    let s = w.jb.stats();
    assert_eq!((s.lost, s.fec), (3, 2));
    assert_eq!(s.concealed - s.stretched, 1, "one lost frame concealed");
}

#[test]
fn sequence_and_timestamp_wrap_is_invisible() {
    let mut w = World::starting_at(9, 65_500, u32::MAX - 960 * 30);
    let out = w.run(100, |_| 1, |_| false);
    assert_eq!(packets(&out), (0..100).collect::<Vec<_>>());
    assert_eq!(w.jb.stats().lost, 0);
    assert_eq!(w.frame_of(w.ts0.wrapping_add(960 * 99)), 99);
}

#[test]
fn a_new_stream_restarts_and_old_stragglers_are_ignored() {
    let mut w = World::new();
    let out = w.run(20, |_| 1, |_| false);
    assert_eq!(packets(&out).len(), 20);
    let gen = w.jb.generation();
    let old = w.stream;
    // The sender restarts (a new session): new stream id, seq and ts from 0 again.
    w.stream = 8;
    let base = 20 * 20 + 400;
    assert_eq!(w.arrive(0, base), PushOutcome::Restarted);
    assert_ne!(w.jb.generation(), gen, "the decoder must be reset");
    // A straggler of the old stream does not flip it back.
    w.stream = old;
    assert_eq!(w.arrive(19, base + 1), PushOutcome::Retired);
    w.stream = 8;
    let mut got = Vec::new();
    for k in 1..20u16 {
        w.arrive(k, base + u64::from(k) * 20);
        got.push(w.pull(base + u64::from(k) * 20 + 10));
    }
    let p = packets(&got);
    assert!(p.len() >= 17, "{p:?}");
    assert_eq!(p, (0..p.len() as u32).collect::<Vec<_>>());
    assert_eq!(w.jb.stats().streams, 2);
}

#[test]
fn an_underrun_stretches_then_goes_silent_then_primes_again() {
    let mut w = World::new();
    let out = w.run(10, |_| 1, |_| false);
    assert_eq!(packets(&out).len(), 10);
    // `run` pulled 20 more times after frame 9 with nothing new: 5 stretches, then silence.
    let tail: Vec<Out> = out
        .into_iter()
        .skip_while(|o| *o != Out::Packet(9))
        .skip(1)
        .collect();
    assert_eq!(tail[..5], [Out::Stretch; 5]);
    assert!(tail[5..].iter().all(|o| *o == Out::Silence));
    // The far end stays quiet (frames 10..40 never sent) while playout goes on …
    for t in (610..2_800).step_by(20) {
        assert_eq!(w.pull(t), Out::Silence);
    }
    // … then resumes at frame 40: the buffer primes again there.
    let mut got = Vec::new();
    for k in 40..60u16 {
        let t = 2_000 + u64::from(k) * 20;
        w.arrive(k, t);
        got.push(w.pull(t + 10));
    }
    let p = packets(&got);
    assert_eq!(p.first(), Some(&40));
    assert_eq!(p, (40..40 + p.len() as u32).collect::<Vec<_>>());
}

#[test]
fn the_delay_grows_under_jitter_and_shrinks_back_when_it_calms() {
    let mut w = World::new();
    // 10 s where every 5th packet is 70 ms late, then 10 s of a quiet network.
    let lag = |n: u16| {
        if n < 500 && n.is_multiple_of(5) {
            70
        } else {
            1
        }
    };
    let mut arrivals: Vec<(u64, u16)> = (0..1000u16)
        .map(|n| (u64::from(n) * 20 + lag(n), n))
        .collect();
    arrivals.sort();
    let (mut out, mut i) = (Vec::new(), 0);
    for k in 0..1000u64 {
        let t = k * 20 + 10;
        while i < arrivals.len() && arrivals[i].0 <= t {
            w.arrive(arrivals[i].1, arrivals[i].0);
            i += 1;
        }
        out.push(w.pull(t));
        if k == 490 {
            let target = w.jb.target();
            assert!(
                target >= Duration::from_millis(80) && target <= Duration::from_millis(120),
                "target under jitter {target:?}"
            );
            assert!(
                w.jb.delay() >= Duration::from_millis(60),
                "delay {:?}",
                w.jb.delay()
            );
        }
    }
    let missed_once_adapted = out[250..490]
        .iter()
        .filter(|o| matches!(o, Out::Lost(_) | Out::Stretch))
        .count();
    assert_eq!(
        missed_once_adapted, 0,
        "once adapted, the jitter is absorbed"
    );
    assert_eq!(w.jb.target(), Duration::from_millis(40));
    assert!(
        w.jb.delay() <= Duration::from_millis(65),
        "delay back near the target: {:?}",
        w.jb.delay()
    );
    assert!(w.jb.stats().dropped >= 2, "shrinking drops frames");
    let order = packets(&out);
    assert!(order.windows(2).all(|p| p[0] < p[1]), "always in order");
}

#[test]
fn a_stall_far_above_the_target_is_caught_up_at_once() {
    let mut w = World::new();
    let _ = w.run(20, |_| 1, |_| false);
    // The receiver stalls for 600 ms while 30 frames arrive, then pulls again.
    for k in 20..50u16 {
        w.arrive(k, u64::from(k) * 20 + 1);
    }
    let t = 50 * 20 + 10;
    let out = w.pull(t);
    assert!(
        matches!(out, Out::Packet(n) if n > 40),
        "skipped ahead: {out:?}"
    );
    assert!(w.jb.delay() <= Duration::from_millis(260));
}
